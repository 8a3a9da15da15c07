"""node_exporter_metrics' Linux collectors, Fluent Bit 5.1.1's (ne_*_linux.c): each creates
its families in the shared context once (``init``) and sets their series on every ``update``;
metric names, help texts, labels and units are node_exporter's as Fluent Bit writes them.

Files are read whole, once per update; a file that cannot be read leaves its series as they
were and is logged at debug level (Fluent Bit logs an error on every update).
"""
import glob
import os
import re

from edgeship.codecs import cmetrics as cm
from edgeship.plugins.inputs._host import Host, net_dev

_CPU_MODES = ("idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user")
# /proc/stat's per-cpu columns, in order.
_STAT_COLUMNS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
                 "guest", "guest_nice")


def _lines(path):
    return Host.read(path).splitlines()


def _number(text):
    """strtod of a whole token, else None (the value is then left as it was)."""
    try:
        return float(text)
    except ValueError:
        return None


def _sys_int(path):
    """A sysfs integer (strtoll of its first line), or None when it cannot be read."""
    try:
        return int(Host.read(path).split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _sys_text(path):
    try:
        return Host.read(path).split("\n", 1)[0]
    except OSError:
        return None


def _numbered(pattern, prefix):
    """``(number text, path)`` of the dirs matching ``pattern`` whose name is ``prefix``
    and digits, in glob's (lexical) order as Fluent Bit lists them."""
    found = []
    for path in sorted(glob.glob(pattern)):
        digits = os.path.basename(path)[len(prefix):]
        if digits.isdigit():
            found.append((digits, path))
    return found


class Collector:
    def __init__(self, ctx, paths, options, log):
        self.ctx = ctx
        self.proc = paths["procfs"]
        self.sys = paths["sysfs"]
        self.options = options
        self.log = log
        self.init()

    def init(self):
        pass

    def update(self, now):
        raise NotImplementedError


class Cpu(Collector):
    def init(self):
        self.core_throttles = self.ctx.counter(
            "node", "cpu", "core_throttles_total",
            "Number of times this CPU core has been throttled.", ["core", "package"])
        self.package_throttles = self.ctx.counter(
            "node", "cpu", "package_throttles_total",
            "Number of times this CPU package has been throttled.", ["package"])
        self.seconds = self.ctx.counter("node", "cpu", "seconds_total",
                                        "Seconds the CPUs spent in each mode.", ["cpu", "mode"])
        self.guest = self.ctx.counter("node", "cpu", "guest_seconds_total",
                                      "Seconds the CPUs spent in guests (VMs) for each mode.",
                                      ["cpu", "mode"])
        self.ticks = float(os.sysconf("SC_CLK_TCK"))

    def update(self, now):
        for digits, path in _numbered(os.path.join(self.sys, "devices/system/cpu/cpu*"), "cpu"):
            core = _sys_int(os.path.join(path, "topology/core_id"))
            package = _sys_int(os.path.join(path, "topology/physical_package_id"))
            if core is None or package is None:
                continue
            count = _sys_int(os.path.join(path, "thermal_throttle/core_throttle_count"))
            if count is not None:
                self.core_throttles.set(count, [str(core), str(package)], now)
            count = _sys_int(os.path.join(path, "thermal_throttle/package_throttle_count"))
            if count is not None:
                self.package_throttles.set(count, [str(package)], now)
        for line in _lines(os.path.join(self.proc, "stat")):
            if not line.startswith("cpu") or line.startswith("cpu "):
                continue
            fields = line.split()
            values = [_number(v) for v in fields[1:]]
            if len(values) < 8 or None in values:
                self.log.error("could not process line: %s", line)
                continue
            cpu = fields[0][3:]
            columns = dict(zip(_STAT_COLUMNS, values))
            for mode in _CPU_MODES:
                self.seconds.set(columns.get(mode, 0.0) / self.ticks, [cpu, mode], now)
            self.guest.set(columns.get("guest", 0.0) / self.ticks, [cpu, "user"], now)
            self.guest.set(columns.get("guest_nice", 0.0) / self.ticks, [cpu, "nice"], now)


class CpuFreq(Collector):
    _FILES = (("frequency_hertz", "Current cpu thread frequency in hertz.", "cpuinfo_cur_freq"),
              ("frequency_max_hertz", "Maximum cpu thread frequency in hertz.",
               "cpuinfo_max_freq"),
              ("frequency_min_hertz", "Minimum cpu thread frequency in hertz.",
               "cpuinfo_min_freq"),
              ("scaling_frequency_hertz", "Current scaled CPU thread frequency in hertz.",
               "scaling_cur_freq"),
              ("scaling_frequency_max_hertz", "Maximum scaled CPU thread frequency in hertz.",
               "scaling_max_freq"),
              ("scaling_frequency_min_hertz", "Minimum scaled CPU thread frequency in hertz.",
               "scaling_min_freq"))

    def init(self):
        self.families = [(self.ctx.gauge("node", "cpu", name, desc, ["cpu"]), source)
                         for name, desc, source in self._FILES]

    def update(self, now):
        for digits, path in _numbered(os.path.join(self.sys, "devices/system/cpu/cpu*"), "cpu"):
            for family, source in self.families:
                khz = _sys_int(os.path.join(path, "cpufreq", source))
                if khz is not None:
                    family.set(khz * 1000, [digits], now)


class MemInfo(Collector):
    def init(self):
        self.families = {}
        for name, _value, _unit in self._fields():
            self.families[name] = self.ctx.gauge("node", "memory", name,
                                                 "Memory information field %s." % name)

    def _fields(self):
        fields = []
        for line in _lines(os.path.join(self.proc, "meminfo")):
            parts = line.split()
            if len(parts) < 2:
                continue
            name = parts[0].rstrip(":").replace("(anon)", "_anon").replace("(file)", "_file")
            if len(parts) == 3:
                name += "_bytes"
            fields.append((name, _number(parts[1]), len(parts) == 3))
        return fields

    def update(self, now):
        for name, value, in_kb in self._fields():
            family = self.families.get(name)
            if family is not None and value is not None:
                family.set(value * 1024 if in_kb else value, (), now)


class DiskStats(Collector):
    # /proc/diskstats columns 4.. in order: (name, help, type, factor)
    _COLUMNS = (
        ("reads_completed_total", "The total number of reads completed successfully.", cm.COUNTER, 1),
        ("reads_merged_total", "The total number of reads merged.", cm.COUNTER, 1),
        ("read_bytes_total", "The total number of bytes read successfully.", cm.COUNTER, 512),
        ("read_time_seconds_total", "The total number of seconds spent by all reads.",
         cm.COUNTER, 0.001),
        ("writes_completed_total", "The total number of writes completed successfully.",
         cm.COUNTER, 1),
        ("writes_merged_total", "The number of writes merged.", cm.COUNTER, 1),
        ("written_bytes_total", "The total number of bytes written successfully.", cm.COUNTER, 512),
        ("write_time_seconds_total", "This is the total number of seconds spent by all writes.",
         cm.COUNTER, 0.001),
        ("io_now", "The number of I/Os currently in progress.", cm.GAUGE, 1),
        ("io_time_seconds_total", "Total seconds spent doing I/Os.", cm.COUNTER, 0.001),
        ("io_time_weighted_seconds_total", "The weighted # of seconds spent doing I/Os.",
         cm.COUNTER, 0.001),
        ("discards_completed_total", "The total number of discards completed successfully.",
         cm.COUNTER, 1),
        ("discards_merged_total", "The total number of discards merged.", cm.COUNTER, 1),
        ("discarded_sectors_total", "The total number of sectors discarded successfully.",
         cm.COUNTER, 1),
        ("discard_time_seconds_total",
         "This is the total number of seconds spent by all discards.", cm.COUNTER, 0.001),
        ("flush_requests_total", "The total number of flush requests completed successfully",
         cm.COUNTER, 1),
        ("flush_requests_time_seconds_total",
         "This is the total number of seconds spent by all flush requests.", cm.COUNTER, 0.001),
    )

    def init(self):
        self.ignore = re.compile(self.options["diskstats.ignore_device_regex"])
        self.families = [(self.ctx.family(kind, "node", "disk", name, desc, ["device"]), factor)
                         for name, desc, kind, factor in self._COLUMNS]

    def update(self, now):
        for line in _lines(os.path.join(self.proc, "diskstats")):
            fields = line.split()
            if len(fields) < 4 or self.ignore.search(fields[2]):
                continue
            for (family, factor), text in zip(self.families, fields[3:]):
                value = _number(text)
                if value is not None:
                    family.set(value * factor if factor != 1 else value, [fields[2]], now)


class FileSystem(Collector):
    _FAMILIES = (("avail_bytes", "Filesystem space available to non-root users in bytes."),
                 ("device_error",
                  "Whether an error occurred while getting statistics for the given device."),
                 ("files", "Filesystem total file nodes."),
                 ("files_free", "Filesystem total free file nodes."),
                 ("free_bytes", "Filesystem free space in bytes."),
                 ("readonly", "Filesystem read-only status."),
                 ("size_bytes", "Filesystem size in bytes."))

    def init(self):
        self.ignore_mount = re.compile(self.options["filesystem.ignore_mount_point_regex"])
        self.ignore_type = re.compile(self.options["filesystem.ignore_filesystem_type_regex"])
        self.families = {name: self.ctx.gauge("node", "filesystem", name, desc,
                                              ["device", "fstype", "mountpoint"])
                         for name, desc in self._FAMILIES}

    def _mounts(self):
        # Fluent Bit reads PID 1's mounts, whatever path.procfs says.
        for path in ("/proc/1/mounts", "/proc/self/mounts"):
            try:
                return _lines(path)
            except OSError:
                continue
        return []

    def update(self, now):
        for line in self._mounts():
            fields = line.split()
            if len(fields) < 3:
                continue
            device, mountpoint, fstype = fields[0], _unescape(fields[1]), fields[2]
            if self.ignore_type.search(fstype) or self.ignore_mount.search(mountpoint):
                continue
            try:
                st = os.statvfs(mountpoint)
            except OSError:
                continue
            labels = [device, fstype, mountpoint]
            values = {"avail_bytes": st.f_bsize * st.f_bavail, "device_error": 0,
                      "files": st.f_files, "files_free": st.f_ffree,
                      "free_bytes": st.f_bsize * st.f_bfree,
                      "readonly": 1 if st.f_flag & os.ST_RDONLY else 0,
                      "size_bytes": st.f_bsize * st.f_blocks}
            for name, _desc in self._FAMILIES:
                self.families[name].set(values[name], labels, now)


def _unescape(path):
    return path.replace("\\040", " ").replace("\\011", "\t")


class LoadAvg(Collector):
    def init(self):
        self.families = [self.ctx.gauge("node", "", "load%s" % n, "%sm load average." % n)
                         for n in ("1", "5", "15")]

    def update(self, now):
        fields = _lines(os.path.join(self.proc, "loadavg"))[0].split()
        for family, text in zip(self.families, fields[:3]):
            value = _number(text)
            if value is not None:
                family.set(value, (), now)


class NetDev(Collector):
    def init(self):
        self.families = {}
        try:
            self._families(_lines(os.path.join(self.proc, "net/dev")))
        except OSError:
            pass    # made on the first update that can read it

    def _families(self, lines):
        """The families of net/dev's columns, in order (made when first seen); None when
        its header cannot be read."""
        if len(lines) < 2:
            return None
        header = lines[1].split("|")
        if len(header) != 3:
            self.log.error("invalid header line in net/dev: %s", lines[1])
            return None
        families = []
        for direction, columns in (("receive", header[1]), ("transmit", header[2])):
            for column in columns.split():
                name = "%s_%s_total" % (direction, column)
                family = self.families.get(name)
                if family is None:
                    family = self.families[name] = self.ctx.counter(
                        "node", "network", name, "Network device statistic %s." % column,
                        ["device"])
                families.append(family)
        return families

    def update(self, now):
        text = Host.read(os.path.join(self.proc, "net/dev"))
        families = self._families(text.splitlines())
        if families is None:
            return
        for device, values in net_dev(text):
            for family, column in zip(families, values):
                value = _number(column)
                if value is not None:
                    family.set(value, [device], now)


class ThermalZone(Collector):
    def init(self):
        self.temp = self.ctx.gauge("node", "thermal_zone", "temp", "Zone temperature in Celsius",
                                   ["zone", "type"])
        self.cur = self.ctx.gauge("node", "cooling_device", "cur_state",
                                  "Current throttle state of the cooling device", ["name", "type"])
        self.max = self.ctx.gauge("node", "cooling_device", "max_state",
                                  "Maximum throttle state of the cooling device", ["name", "type"])

    def update(self, now):
        base = os.path.join(self.sys, "class/thermal")
        zones = _numbered(os.path.join(base, "thermal_zone*"), "thermal_zone")
        if not zones:
            return      # and, as Fluent Bit, no cooling devices either
        for digits, path in zones:
            kind = _sys_text(os.path.join(path, "type"))
            temp = _sys_int(os.path.join(path, "temp"))
            if kind is not None and temp is not None:
                self.temp.set(temp / 1000.0, [digits, kind], now)
        for digits, path in _numbered(os.path.join(base, "cooling_device*"), "cooling_device"):
            kind = _sys_text(os.path.join(path, "type"))
            if kind is None:
                continue
            for family, source in ((self.cur, "cur_state"), (self.max, "max_state")):
                value = _sys_int(os.path.join(path, source))
                if value is not None:
                    family.set(value, [digits, kind], now)


class Uname(Collector):
    def init(self):
        self.info = self.ctx.gauge(
            "node", "uname", "info",
            "Labeled system information as provided by the uname system call.",
            ["sysname", "release", "version", "machine", "nodename", "domainname"])

    def update(self, now):
        u = os.uname()
        domain = _sys_text(os.path.join(self.proc, "sys/kernel/domainname")) or "(none)"
        self.info.set(1, [u.sysname, u.release, u.version, u.machine, u.nodename, domain], now)


class Time(Collector):
    def init(self):
        self.seconds = self.ctx.gauge("node", "", "time_seconds",
                                      "System time in seconds since epoch (1970).")

    def update(self, now):
        self.seconds.set(now / 1e9, (), now)


class Stat(Collector):
    _LINES = (("intr", "intr_total", "Total number of interrupts serviced.", cm.COUNTER),
              ("ctxt", "context_switches_total", "Total number of context switches.", cm.COUNTER),
              ("processes", "forks_total", "Total number of forks.", cm.COUNTER),
              ("btime", "boot_time_seconds", "Node boot time, in unixtime.", cm.GAUGE),
              ("procs_running", "procs_running", "Number of processes in runnable state.",
               cm.GAUGE),
              ("procs_blocked", "procs_blocked",
               "Number of processes blocked waiting for I/O to complete.", cm.GAUGE))

    def init(self):
        self.families = {key: self.ctx.family(kind, "node", "", name, desc)
                         for key, name, desc, kind in self._LINES}

    def update(self, now):
        for line in _lines(os.path.join(self.proc, "stat")):
            fields = line.split()
            family = self.families.get(fields[0]) if len(fields) > 1 else None
            if family is not None:
                value = _number(fields[1])
                if value is not None:
                    family.set(value, (), now)


class VmStat(Collector):
    _KEEP = re.compile(r"^(oom_kill|pgpg|pswp|pg.*fault).*")

    def init(self):
        self.families = {}
        for key, _value in self._values():
            if self._KEEP.match(key):
                self.families[key] = self.ctx.counter(
                    "node", "vmstat", key, "/proc/vmstat information field %s." % key)

    def _values(self):
        pairs = []
        for line in _lines(os.path.join(self.proc, "vmstat")):
            fields = line.split()
            if len(fields) >= 2:
                pairs.append((fields[0], _number(fields[1])))
        return pairs

    def update(self, now):
        for key, value in self._values():
            family = self.families.get(key)
            if family is not None and value is not None:
                family.set(value, (), now)


# Fluent Bit's names; a name it knows that edgeship has no collector for is logged once.
COLLECTORS = {"cpu": Cpu, "cpufreq": CpuFreq, "meminfo": MemInfo, "diskstats": DiskStats,
              "filesystem": FileSystem, "loadavg": LoadAvg, "netdev": NetDev,
              "thermal_zone": ThermalZone, "uname": Uname, "time": Time, "stat": Stat,
              "vmstat": VmStat}
NOT_HERE = ("timex", "netstat", "sockstat", "filefd", "textfile", "systemd", "processes",
            "nvme", "hwmon", "powersupplyclass")
