"""node_exporter_metrics input: host metrics as Prometheus' node_exporter names them, as a
metrics signal (in_node_exporter_metrics, Linux).

Fluent Bit 5.1.1 behaviour kept: one shared metrics context; each collector named in
``metrics`` (in that order) creates its families at start, updates them once at once, then
every ``collector.<name>.scrape_interval`` seconds (0: ``scrape_interval``; read as C's atoi
reads it, so ``10s`` is 10 and ``1m`` is 1); every ``scrape_interval`` the whole context is
emitted as one metrics chunk (the first one interval after start). Unknown names in
``metrics`` and repeated ones are ignored. ``path.procfs``/``path.sysfs`` (under
``path.rootfs`` when it is not ``/``) say where /proc and /sys are; the filesystem
collector reads PID 1's mount list wherever they are, as Fluent Bit does.

Collectors: cpu, cpufreq, meminfo, diskstats, filesystem, loadavg, netdev, thermal_zone,
uname, time, stat, vmstat (``collectors``). Differences: Fluent Bit's other Linux collectors
(timex, netstat, sockstat, filefd, textfile, systemd, processes, nvme, hwmon,
powersupplyclass) are not in edgeship: a ``metrics`` list naming them logs that once at
start. Fluent Bit packs a second, empty copy of the cpu seconds families and one set of
network families per interface (invisible in every rendering); edgeship packs each family
once. A sysfs file that cannot be read is logged at debug level, not as an error on every
update.
"""
import asyncio
import os
import time

from edgeship.codecs import cmetrics
from edgeship.core.schema import Option
from edgeship.engine.plugin import Input
from edgeship.plugins.inputs.node_exporter_metrics.collectors import COLLECTORS, NOT_HERE

_DEFAULT_METRICS = ("cpu,cpufreq,meminfo,diskstats,filesystem,uname,stat,time,timex,loadavg,"
                    "vmstat,netdev,netstat,sockstat,filefd,systemd,nvme,thermal_zone,hwmon,"
                    "powersupplyclass")
# Fluent Bit looks up the interval by the name in the metrics list, with these exceptions.
_INTERVAL_NAMES = ("cpu", "cpufreq", "meminfo", "diskstats", "filesystem", "uname", "stat",
                   "time", "timex", "loadavg", "vmstat", "netdev", "netstat", "sockstat",
                   "filefd", "textfile", "systemd", "processes", "thermalzone", "nvme", "hwmon")


def _atoi(text):
    """C's atoi: the leading digits, 0 when there are none."""
    digits = ""
    for ch in (text or "").strip():
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else 0


class NodeExporterMetrics(Input):
    name = "node_exporter_metrics"
    description = "Node Exporter Metrics (Prometheus Compatible)"
    options = (
        Option("scrape_interval", "time", "5",
               help="seconds between the metrics chunks this input emits"),
        Option("metrics", default=_DEFAULT_METRICS, help="the collectors to run, comma separated"),
        Option("path.rootfs", default="/", help="root of the host's filesystem"),
        Option("path.procfs", default="/proc", help="where procfs is"),
        Option("path.sysfs", default="/sys", help="where sysfs is"),
        Option("filesystem.ignore_mount_point_regex",
               default="^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|"
                       "var/lib/containers/storage/.+)($|/)",
               help="mount points the filesystem collector skips"),
        Option("filesystem.ignore_filesystem_type_regex",
               default="^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|"
                       "fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|"
                       "rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$",
               help="filesystem types the filesystem collector skips"),
        Option("diskstats.ignore_device_regex",
               default=r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$",
               help="devices the diskstats collector skips"),
    ) + tuple(Option("collector.%s.scrape_interval" % name, default="0",
                     help="seconds between updates of the %s collector; 0: scrape_interval"
                     % name) for name in _INTERVAL_NAMES)

    def configure(self):
        conf = self.conf
        root = conf["path.rootfs"]
        paths = {"procfs": conf["path.procfs"], "sysfs": conf["path.sysfs"]}
        if root and root != "/":
            paths = {k: os.path.join(root, v.lstrip("/")) for k, v in paths.items()}
        self.log.info("path.rootfs = %s", root)
        self.log.info("path.procfs = %s", paths["procfs"])
        self.log.info("path.sysfs  = %s", paths["sysfs"])
        names = []
        for name in conf["metrics"].split(","):
            name = name.strip()
            if name and name not in names:
                names.append(name)
        missing = [n for n in names if n in NOT_HERE]
        if missing:
            self.log.info("collectors not in edgeship, skipped: %s", ", ".join(missing))
        self.metrics = cmetrics.Context()
        self.scrape_interval = conf["scrape_interval"] or 5
        self.collectors = []
        for name in names:
            cls = COLLECTORS.get(name)
            if cls is None:
                continue
            interval = _atoi(conf.get("collector.%s.scrape_interval" % name))
            collector = cls(self.metrics, paths, conf, self.log)
            self.collectors.append([collector, interval or self.scrape_interval, 0.0])

    def _update(self, collector):
        try:
            collector.update(time.time_ns())
        except OSError as exc:
            self.log.debug("%s: %s", type(collector).__name__.lower(), exc)

    async def run(self):
        loop = asyncio.get_running_loop()
        start = loop.time()
        for entry in self.collectors:           # once at start
            self._update(entry[0])
            entry[2] = start + entry[1]
        next_snapshot = start + self.scrape_interval
        while not self.stopping:
            due = min([entry[2] for entry in self.collectors] + [next_snapshot])
            await asyncio.sleep(max(0.0, due - loop.time()))
            now = loop.time()
            for entry in self.collectors:
                if entry[2] <= now:
                    self._update(entry[0])
                    entry[2] = now + entry[1]
            if next_snapshot <= now:
                next_snapshot = now + self.scrape_interval
                payload = self.metrics.encode()
                if payload is not None:
                    self.context.emit_metrics(self.tag, payload)


PLUGIN = NodeExporterMetrics
