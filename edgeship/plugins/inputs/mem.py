"""mem input: memory and swap of the machine, and optionally the RSS of one process (in_mem).

Every interval one record of unsigned integers in KiB: ``Mem.total``, ``Mem.used``,
``Mem.free``, ``Swap.total``, ``Swap.used``, ``Swap.free``; with ``PID`` also ``proc_bytes``
(the process's RSS in bytes: rss pages × page size, from ``/proc/PID/stat``) and ``proc_hr``
(the same, human-readable: ``"13.71M"``).

Kept from Fluent Bit 5.1.1 (plugins/in_mem): the values of sysinfo(2), read here from
``/proc/meminfo``, the file sysinfo's numbers come from: total = MemTotal, free = MemFree
(not MemAvailable), used = total − free, swap likewise; the first record one interval after
the start; a PID that cannot be read is warned about once ("could not measure PID") and
measured no more.

Difference: Fluent Bit 5.1.1 packs the *address* of the ``proc_hr`` string as an integer
(``140380872110256``), a defect; edgeship sends the string Fluent Bit meant to send.
"""
import os
import struct

from edgeship.core.schema import Option
from edgeship.plugins.inputs._host import Host
from edgeship.plugins.inputs._interval import IntervalInput, interval_options

_UNITS = ("b", "K", "M", "G", "T", "P", "E", "Z", "Y")


def human_size(size):
    """Fluent Bit's human_readable_size: ``"512 b"``, ``"13.71M"`` (1024-based, a float
    printed with two decimals)."""
    unit = 0
    while unit + 1 < len(_UNITS) and size >= 1024 ** (unit + 1):
        unit += 1
    if unit == 0:
        return "%d %s" % (size, _UNITS[0])
    single = struct.unpack("f", struct.pack("f", size / 1024.0 ** unit))[0]  # C's float
    return "%.2f%s" % (single, _UNITS[unit])


class MemInput(IntervalInput):
    name = "mem"
    description = "Memory Usage"
    options = interval_options() + (
        Option("PID", "int", "0", help="also measure the RSS of this process (0: none)"),
    )

    def configure(self):
        self.host = Host()
        self.pid = self.conf["pid"]
        self.page_size = os.sysconf("SC_PAGE_SIZE")
        self.failed = False

    def _meminfo(self):
        values = {}
        for line in self.host.read(self.host.proc("meminfo")).splitlines():
            key, _, rest = line.partition(":")
            if key in ("MemTotal", "MemFree", "SwapTotal", "SwapFree"):
                values[key] = int(rest.split()[0])
        return values

    def collect(self, now_ns):
        rss = None
        if self.pid:
            try:
                rss = int(self.host.process_stat(self.pid)[21]) * self.page_size
            except (OSError, ValueError, IndexError):
                self.log.warn("could not measure PID %d", self.pid)
                self.pid = 0
        try:
            info = self._meminfo()
            total, free = info["MemTotal"], info["MemFree"]
            swap_total, swap_free = info["SwapTotal"], info["SwapFree"]
        except (OSError, ValueError, IndexError, KeyError) as exc:
            if not self.failed:
                self.log.error("cannot read %s: %r", self.host.proc("meminfo"), exc)
            self.failed = True
            return []
        self.failed = False
        record = {"Mem.total": total, "Mem.used": total - free, "Mem.free": free,
                  "Swap.total": swap_total, "Swap.used": swap_total - swap_free,
                  "Swap.free": swap_free}
        if rss is not None:
            record["proc_bytes"] = rss
            record["proc_hr"] = human_size(rss)
        return [record]


PLUGIN = MemInput
