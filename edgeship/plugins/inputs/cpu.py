"""cpu input: CPU usage of the whole machine and of each core, or of one process (in_cpu).

Every interval it reads ``/proc/stat`` (with ``PID``: ``/proc/PID/stat``) once and emits one
record of doubles: ``cpu_p``, ``user_p``, ``system_p``, then ``cpuN.p_cpu``, ``cpuN.p_user``,
``cpuN.p_system`` for each core (``{"cpu_p":0.5,"user_p":0.5,"system_p":0.0,"cpu0.p_cpu":1.0,
...}``).

Kept from Fluent Bit 5.1.1 (plugins/in_cpu):
- The ticks are read when the input starts, so the first record, one interval later, is the
  usage over that first interval (no record at start, no record of zeros).
- ``cpu_p`` = Δ(user+nice+system) / CLK_TCK × 100 / cores / interval, ``user_p`` the same of
  user+nice, ``system_p`` of system: the whole machine, 0-100. Per core the same without the
  division by the core count (0-100 per core). The interval is the configured one, not the
  time measured between two reads, and the arithmetic is done in Fluent Bit's order, so the
  doubles are the same.
- ``cpuN`` numbers the cores in ``/proc/stat`` order from 0; the core count is the number of
  cores ``/proc/stat`` lists at start (the online cores, as sysconf(_SC_NPROCESSORS_ONLN)).
- ``PID p``: only ``cpu_p``, ``user_p``, ``system_p`` of that process, from utime+stime,
  utime and stime, divided by the core count. A process that does not exist at start is an
  error at start (Fluent Bit: "Could not obtain CPU data").

Difference: a process that ends later is logged once, not every interval; the record stops
until a process of that PID exists again.
"""
import os

from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.plugins.inputs._host import Host
from edgeship.plugins.inputs._interval import IntervalInput, interval_options


def _busy(pre, now, scale):
    """Fluent Bit's CPU_METRIC_* arithmetic: 0.0 when nothing moved, else the tick difference
    (as a double) put through ``scale``."""
    if pre == now:
        return 0.0
    return scale(float(abs(now - pre)))


class CpuInput(IntervalInput):
    name = "cpu"
    description = "CPU Usage"
    options = (
        Option("PID", "int", "-1", help="measure this process only (-1: the whole machine)"),
    ) + interval_options()

    def configure(self):
        self.host = Host()
        self.pid = self.conf["pid"]
        self.ticks_per_second = os.sysconf("SC_CLK_TCK")
        try:
            self.cores = len(self._machine()) - 1
            if self.pid >= 0:
                self._process()
        except (OSError, ValueError, IndexError) as exc:
            raise ConfigError("cpu: could not obtain CPU data: %s" % exc,
                              key="pid" if self.pid >= 0 else None)
        self.keys = [("cpu_p", "user_p", "system_p")] + [
            ("cpu%d.p_cpu" % n, "cpu%d.p_user" % n, "cpu%d.p_system" % n)
            for n in range(self.cores)]
        self.before = None
        self.missing = False

    def _machine(self):
        """[(user+nice+system, user+nice, system)] of the ``cpu`` line then of each core."""
        rows = []
        for line in self.host.read(self.host.proc("stat")).splitlines():
            if not line.startswith("cpu"):
                break
            user, nice, system = [int(v) for v in line.split()[1:4]]
            rows.append((user + nice + system, user + nice, system))
        if len(rows) < 2:
            raise ValueError("no cpu lines in %s" % self.host.proc("stat"))
        return rows

    def _process(self):
        fields = self.host.process_stat(self.pid)
        utime, stime = int(fields[11]), int(fields[12])
        return [(utime + stime, utime, stime)]

    def start(self):
        self.before = self._sample()

    def _sample(self):
        try:
            rows = self._process() if self.pid >= 0 else self._machine()[:self.cores + 1]
        except (OSError, ValueError, IndexError) as exc:
            if not self.missing:
                self.log.error("error retrieving %s CPU stats: %s",
                               "PID %d" % self.pid if self.pid >= 0 else "overall system", exc)
            self.missing = True
            return None
        if self.missing:
            self.log.info("CPU stats readable again")
        self.missing = False
        return rows

    def collect(self, now_ns):
        now = self._sample()
        before, self.before = self.before, now
        if now is None or before is None or len(now) != len(before):
            return []
        ticks, cores, seconds = self.ticks_per_second, self.cores, self.period

        def machine(diff):
            return ((diff / ticks) * 100) / cores / seconds

        def core(diff):
            return ((diff * 100) / ticks) / seconds

        record = {}
        for i, (keys, pre, cur) in enumerate(zip(self.keys, before, now)):
            scale = machine if i == 0 else core
            for key, a, b in zip(keys, pre, cur):
                record[key] = _busy(a, b, scale)
        return [record]


PLUGIN = CpuInput
