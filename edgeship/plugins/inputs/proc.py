"""proc input: is a process running, and its memory and open files (in_proc).

Every interval one record: ``{"alive": true, "proc_name": "sensor-daemon", "pid": 1234,
"mem.VmPeak": .., "mem.VmSize": .., "mem.VmLck": .., "mem.VmHWM": .., "mem.VmRSS": ..,
"mem.VmData": .., "mem.VmStk": .., "mem.VmExe": .., "mem.VmLib": .., "mem.VmPTE": ..,
"mem.VmSwap": .., "fd": 5}``.

Kept from Fluent Bit 5.1.1 (plugins/in_proc): the process is the first of ``/proc/*/cmdline``
(in the glob's name order) whose argv[0] basename equals ``Proc_Name``, looked up again every
interval; ``pid`` is -1 when there is none. ``mem.*`` are the Vm lines of
``/proc/PID/status`` in kB × 1000 (Fluent Bit's factor, not 1024), 0 for a line the kernel
does not print; ``fd`` the entries of ``/proc/PID/fd``. ``Mem off`` / ``Fd off`` leave those
keys out; ``Alert on`` sends a record only while the process is not running. ``Proc_Name``
is required ("'proc_name' is not set").

Difference: for a process that is not running Fluent Bit sends uninitialised memory as the
``mem.*`` values (garbage that changes every record); edgeship sends 0.
"""
import os

from edgeship.core.schema import Option
from edgeship.plugins.inputs._host import Host, colon_fields
from edgeship.plugins.inputs._interval import IntervalInput, interval_options

MEM_KEYS = ("Peak", "Size", "Lck", "HWM", "RSS", "Data", "Stk", "Exe", "Lib", "PTE", "Swap")
# Fluent Bit reads at most this much of a cmdline.
CMDLINE_READ = 256


class ProcInput(IntervalInput):
    name = "proc"
    description = "Check Process health"
    options = interval_options() + (
        Option("Alert", "bool", "false", help="only generate records when the process is down"),
        Option("Mem", "bool", "true", help="append the memory usage (mem.Vm*) to the record"),
        Option("Fd", "bool", "true", help="append the open file count (fd) to the record"),
        Option("Proc_Name", required=True, help="name of the process to check (argv[0])"),
    )

    def configure(self):
        self.host = Host()
        self.proc_name = self.conf["proc_name"]

    def _find(self):
        """The pid of the first process whose argv[0] basename is Proc_Name, or -1."""
        try:
            names = sorted(n for n in os.listdir(self.host.procfs) if n.isdigit())
        except OSError as exc:
            self.log.error_often("cannot list %s: %s", self.host.procfs, exc)
            return -1
        for name in names:
            try:
                with open(self.host.proc(name, "cmdline"), "rb") as f:
                    argv0 = f.read(CMDLINE_READ)[:CMDLINE_READ - 1].split(b"\0", 1)[0]
            except OSError:
                continue
            if argv0 and os.path.basename(argv0.rstrip(b"/")).decode("utf-8", "replace") \
                    == self.proc_name:
                return int(name)
        return -1

    def _memory(self, pid):
        values = dict.fromkeys(MEM_KEYS, 0)
        try:
            text = self.host.read(self.host.proc(pid, "status"))
        except OSError as exc:
            self.log.error_often("open error: %s (%s)", self.host.proc(pid, "status"), exc)
            return values
        fields = colon_fields(text)
        for key in MEM_KEYS:
            digits = "".join(ch for ch in fields.get("Vm" + key, "") if ch.isdigit())
            values[key] = int(digits or 0) * 1000
        return values

    def _fds(self, pid):
        try:
            return len(os.listdir(self.host.proc(pid, "fd")))
        except OSError as exc:
            self.log.error_often("opendir error %s: %s", self.host.proc(pid, "fd"), exc)
            return 0

    def collect(self, now_ns):
        pid = self._find()
        alive = pid >= 0
        if alive and self.conf["alert"]:
            return []
        record = {"alive": alive, "proc_name": self.proc_name, "pid": pid}
        if self.conf["mem"]:
            memory = self._memory(pid) if alive else dict.fromkeys(MEM_KEYS, 0)
            for key in MEM_KEYS:
                record["mem.Vm" + key] = memory[key]
        if self.conf["fd"]:
            record["fd"] = self._fds(pid) if alive else 0
        return [record]


PLUGIN = ProcInput
