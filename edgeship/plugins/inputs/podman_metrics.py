"""podman_metrics input: CPU, memory, network and block-I/O counters of Podman's containers, as
a metrics signal (in_podman_metrics).

Kept from Fluent Bit 5.1.1 (names, help texts, types, labels, order and values checked on the
binary against the fake Pi's Podman, cgroup v2 and v1, tests/fake_pi.py):
- Every ``scrape_interval`` (30 s; the first one interval after start, and one at start too
  with ``scrape_on_start`` when the interval is 2 s or more) the input reads podman's
  ``path.config`` (default /var/lib/containers/storage/overlay-containers/containers.json)
  and emits one metrics context of the containers it lists. A container is an entry of its
  root array that has a ``metadata`` key: ``id`` is its ``id``, ``name`` the last of its
  ``names``, ``image`` the ``image-name`` of its metadata (a JSON text), else ``unknown``.
- cgroup v2 when ``path.sysfs`` (/sys/fs/cgroup) has cgroup.controllers, else v1. Each
  collection walks ``path.sysfs`` (symbolic links not followed) for the folders whose name
  starts with ``libpod``, but ``libpod_parent`` and the ``conmon`` ones; a container's
  cgroup is the first found whose path holds its id (v1: and ``memory``, ``cpuacct`` or
  ``systemd``, one per controller). A container with none (stopped) is left out.
- The counters ``container_memory_usage_bytes`` (v2 memory.current, v1
  memory.usage_in_bytes), ``container_memory_max_usage_bytes`` (memory.peak,
  memory.max_usage_in_bytes), ``container_spec_memory_limit_bytes`` (memory.max,
  memory.limit_in_bytes; none while it is ``max``), ``container_cpu_user_seconds_total``
  and ``container_cpu_usage_seconds_total`` (cpu.stat ``user_usec`` and ``usage_usec``,
  cpuacct.usage_user and cpuacct.usage; whole seconds, rounded down), the gauge
  ``container_memory_rss`` (memory.stat ``rss`` on v1), the v2 counters
  ``container_disk_read_bytes_total``, ``_write_bytes_total``, ``_reads_total``,
  ``_writes_total`` (io.stat ``rbytes``, ``wbytes``, ``rios``, ``wios`` summed over the
  devices), labels ``id``, ``name``, ``image``; and ``container_network_receive_bytes_total``,
  ``_receive_errors_total``, ``_transmit_bytes_total``, ``_transmit_errors_total`` with a
  fourth label ``interface``, from ``path.procfs``/PID/net/dev of the first PID of the
  cgroup's cgroup.procs (v2: else containers/cgroup.procs; v1: the systemd controller's).
  As in Fluent Bit the first interface the file lists (``lo``, always first in a container's
  network namespace) and the ``veth`` ones are left out. A value that cannot be read leaves
  out its series only. Families come in the order of their first value, counters before
  the gauge; series in containers.json's order.
- A containers.json that cannot be read, is not JSON or has no array at its root, or a
  ``path.sysfs`` that cannot be listed: nothing is emitted that time.

Differences (README "Where edgeship differs"):
- Where Fluent Bit's cgroup v2 values are wrong: the CPU seconds are ``usage_usec`` and
  ``user_usec`` divided by 10^6 (Fluent Bit divides the microseconds by 10^9, as for v1's
  nanoseconds: 1000 times too small, 0 for a container under 16 minutes of CPU), and
  ``container_memory_rss`` is memory.stat's ``anon`` (v2 has no ``rss``: Fluent Bit never
  reports it there). The series of a container that stopped or was removed go away with it
  (Fluent Bit keeps sending their last values for as long as it runs). The context holds the
  container families only (Fluent Bit's also carries the input's own ``fluentbit_input_*``
  metrics: the fluentbit_metrics input gives those).
- Logging: a containers.json or ``path.sysfs`` problem is one warning per collection (Fluent
  Bit: a warning and an error); a file of a container that cannot be read or holds no number,
  or a missing image name, is warned about once while it lasts (Fluent Bit: every collection,
  so on every v2 host for memory.stat's ``rss`` and an unlimited memory.max); a stopped
  container, or one that goes away while it is read, is a debug line.
- A failing first scrape with ``scrape_on_start`` is logged and the input runs on (Fluent Bit
  refuses to start). The paths are matched below ``path.sysfs`` (Fluent Bit matches the whole
  path, so a root holding ``memory`` in its name matches every folder). Any number of
  containers (Fluent Bit reads at most 2048 JSON tokens, about a hundred containers, and
  names of up to 49 bytes); an entry without an ``id`` is skipped (Fluent Bit uses the
  previous entry's); names and image names are the decoded JSON strings. ``scrape_interval``
  may be a fraction.
"""
import os
import time

from edgeship.codecs import cmetrics, untrusted
from edgeship.core.schema import Option
from edgeship.plugins.inputs._cgroups import first_number, io_totals, is_v2, keyed_number
from edgeship.plugins.inputs._host import Host, net_dev
from edgeship.plugins.inputs._interval import IntervalInput

DEFAULT_CONFIG = "/var/lib/containers/storage/overlay-containers/containers.json"
LABELS = ("id", "name", "image")
NET_LABELS = LABELS + ("interface",)
# In Fluent Bit's order of setting: (value key, kind, subsystem, name, help).
FAMILIES = (
    ("memory_usage", cmetrics.COUNTER, "memory", "usage_bytes",
     "Container memory usage in bytes"),
    ("memory_max_usage", cmetrics.COUNTER, "memory", "max_usage_bytes",
     "Container max memory usage in bytes"),
    ("memory_limit", cmetrics.COUNTER, "spec_memory", "limit_bytes",
     "Container memory limit in bytes"),
    ("rss", cmetrics.GAUGE, "memory", "rss", "Container RSS in bytes"),
    ("cpu_user", cmetrics.COUNTER, "cpu", "user_seconds_total",
     "Container cpu usage in seconds in user mode"),
    ("cpu", cmetrics.COUNTER, "cpu", "usage_seconds_total", "Container cpu usage in seconds"),
    ("disk_read_bytes", cmetrics.COUNTER, "disk", "read_bytes_total",
     "Container block I/O bytes read"),
    ("disk_write_bytes", cmetrics.COUNTER, "disk", "write_bytes_total",
     "Container block I/O bytes written"),
    ("disk_reads", cmetrics.COUNTER, "disk", "reads_total", "Container block I/O reads completed"),
    ("disk_writes", cmetrics.COUNTER, "disk", "writes_total",
     "Container block I/O writes completed"),
)
# (the /proc/net/dev column after the name, name, help), help texts as Fluent Bit spells them.
NET_FAMILIES = (
    (0, "receive_bytes_total", "Network received bytes"),
    (2, "receive_errors_total", "Network received errors"),
    (8, "transmit_bytes_total", "Network transmited bytes"),
    (10, "transmit_errors_total", "Network transmitedd errors"),
)
V1_CONTROLLERS = ("memory", "cpuacct", "systemd")


def image_name(metadata):
    """The ``image-name`` of a container's metadata (a JSON text), else None."""
    if not isinstance(metadata, str):
        return None
    try:
        value = untrusted.loads(metadata)
    except ValueError:
        return None
    image = value.get("image-name") if isinstance(value, dict) else None
    return image if isinstance(image, str) else None


def containers(value):
    """``(id, name, image name or None)`` of each container a containers.json value lists."""
    found = []
    for entry in value:
        if not isinstance(entry, dict) or "metadata" not in entry:
            continue
        cid, names = entry.get("id"), entry.get("names")
        if not isinstance(cid, str) or not cid:
            continue
        name = names[-1] if isinstance(names, list) and names else ""
        found.append((cid, name if isinstance(name, str) else "",
                      image_name(entry["metadata"])))
    return found


def is_scope(name):
    """A folder Fluent Bit takes for a container's cgroup."""
    return name.startswith("libpod") and name != "libpod_parent" and "conmon" not in name


def scopes(root):
    """``(path below root, full path)`` of the container cgroup folders under ``root``, as a
    depth-first walk in directory order finds them; OSError when ``root`` cannot be listed."""
    found = []
    pending = [("", root, True)]
    while pending:
        rel, path, top = pending.pop()
        try:
            with os.scandir(path) as listing:
                entries = [(e.name, e.path) for e in listing if e.is_dir(follow_symlinks=False)]
        except OSError:
            if top:
                raise
            continue            # gone since it was listed
        children = []
        for name, full in entries:
            below = rel + "/" + name
            if is_scope(name):
                found.append((below, full))
            children.append((below, full, False))
        pending.extend(reversed(children))
    return found


def net_counters(text):
    """``(interface, [rx bytes, rx errors, tx bytes, tx errors])`` of a /proc/PID/net/dev text
    as Fluent Bit reads it: not its first interface, nor the veth ones; None for a column that
    is not there."""
    rows = []
    for name, columns in net_dev(text)[1:]:
        if name.startswith("veth"):
            continue
        values = []
        for index, _name, _help in NET_FAMILIES:
            word = columns[index] if index < len(columns) else None
            values.append(None if word is None else (first_number(word) or 0))
        rows.append((name, values))
    return rows


class _Reading:
    """The files of one collection, and what could not be read in them."""

    def __init__(self):
        self.problems = {}

    def text(self, folder, name):
        path = os.path.join(folder, name)
        try:
            return Host.read(path)
        except OSError as exc:
            self.problems[path] = "cannot read %s: %s" % (path, exc.strerror or exc)
            return None

    def number(self, folder, name):
        text = self.text(folder, name)
        if text is None:
            return None
        value = first_number(text)
        if value is None and not text.startswith("max"):
            path = os.path.join(folder, name)
            self.problems[path] = "no number in %s" % path
        return value

    def keyed(self, text, folder, name, key):
        if text is None:
            return None
        value = keyed_number(text, key)
        if value is None:
            path = os.path.join(folder, name)
            self.problems[(path, key)] = "%s not found in %s" % (key, path)
        return value


def _seconds(value, per_second):
    return None if value is None else value // per_second


class PodmanMetrics(IntervalInput):
    name = "podman_metrics"
    description = "Podman metrics"
    options = (
        Option("scrape_interval", "time", "30", above=0,
               help="seconds between the metrics of podman containers"),
        Option("scrape_on_start", "bool", "false",
               help="one scrape at start too (when scrape_interval is 2 s or more)"),
        Option("path.config", help="podman's containers.json (default: %s)" % DEFAULT_CONFIG),
        Option("path.sysfs", default="/sys/fs/cgroup", help="the cgroup file system"),
        Option("path.procfs", default="/proc", help="the proc file system"),
    )

    def configure(self):
        conf = self.conf
        if conf["path.config"]:
            self.config = conf["path.config"]
            self.log.info("Using config file %s", self.config)
        else:
            self.config = DEFAULT_CONFIG
            self.log.info("Using default config file %s", self.config)
        self.sysfs = conf["path.sysfs"]
        self.procfs = conf["path.procfs"]
        self.v2 = is_v2(self.sysfs)
        self.log.info("Detected cgroups %s", "v2" if self.v2 else "v1")
        self.reported = set()

    @property
    def period(self):
        return self.conf["scrape_interval"]

    def start(self):
        if self.conf["scrape_on_start"] and self.period >= 2:
            self.scrape()

    async def tick(self):
        self.scrape()

    # ------------------------------------------------------------------ one collection
    def _listed(self):
        """The containers of containers.json, or None (logged) when it cannot be read."""
        try:
            text = Host.read(self.config)
            if not text:
                raise OSError("empty file")
        except OSError as exc:
            self.log.warn("cannot read %s: %s", self.config, getattr(exc, "strerror", 0) or exc)
            return None
        try:
            value = untrusted.loads(text)
        except ValueError as exc:
            self.log.warn("%s is not JSON (%s): no metrics this time", self.config, exc)
            return None
        if not isinstance(value, list):
            self.log.warn("%s: expected an array at the JSON root", self.config)
            return None
        return containers(value)

    def scrape(self):
        listed = self._listed()
        if listed is None:
            return
        try:
            found = scopes(self.sysfs)
        except OSError as exc:
            self.log.warn("cannot list %s: %s", self.sysfs, exc.strerror or exc)
            return
        now = time.time_ns()
        reading = _Reading()
        metrics = cmetrics.Context()
        families = {}

        def family(key, *spec):
            made = families.get(key)
            if made is None:
                made = families[key] = metrics.family(*spec)
            return made

        for cid, name, image in listed:
            if image is None:
                reading.problems[("image", cid)] = "Image name was not found for %s" % cid
                image = "unknown"
            measured = self._measure(cid, name, found, reading)
            if measured is None:
                continue
            values, interfaces = measured
            labels = (cid, name, image)
            for key, kind, subsystem, metric, desc in FAMILIES:
                if values.get(key) is not None:
                    family(key, kind, "container", subsystem, metric, desc, LABELS).set(
                        values[key], labels, now)
            for interface, counts in interfaces:
                for (_index, metric, desc), value in zip(NET_FAMILIES, counts):
                    if value is not None:
                        family(metric, cmetrics.COUNTER, "container", "network", metric, desc,
                               NET_LABELS).set(value, labels + (interface,), now)
        for key, message in reading.problems.items():
            if key not in self.reported:
                self.log.warn("%s", message)
        self.reported = set(reading.problems)
        payload = metrics.encode()
        if payload is not None:
            self.context.emit_metrics(self.tag, payload)

    def _measure(self, cid, name, found, reading):
        """(values by key, [(interface, counts)]) of one container, None when it has no
        cgroup (stopped) or its cgroup went away while it was read."""
        if self.v2:
            folder = next((full for rel, full in found if cid in rel), None)
            folders = [folder] if folder else []
        else:
            folders = [next((full for rel, full in found if cid in rel and controller in rel),
                            None) for controller in V1_CONTROLLERS]
        if not any(folders):
            self.log.debug("container %s (%s) has no cgroup: not running", name, cid)
            return None
        before = dict(reading.problems)
        values = self._values_v2(folders[0], reading) if self.v2 else \
            self._values_v1(*folders, reading=reading)
        pid = values.pop("pid")
        interfaces = []
        if pid:
            text = reading.text(os.path.join(self.procfs, str(pid), "net"), "dev")
            if text is not None:
                interfaces = net_counters(text)
        if not all(os.path.isdir(f) for f in folders if f):
            self.log.debug("container %s (%s) went away while it was read", name, cid)
            reading.problems = before
            return None
        return values, interfaces

    @staticmethod
    def _values_v2(folder, reading):
        memory_stat = reading.text(folder, "memory.stat")
        cpu_stat = reading.text(folder, "cpu.stat")
        values = {
            "memory_usage": reading.number(folder, "memory.current"),
            "memory_max_usage": reading.number(folder, "memory.peak"),
            "memory_limit": reading.number(folder, "memory.max"),
            "rss": reading.keyed(memory_stat, folder, "memory.stat", "anon"),
            "cpu_user": _seconds(reading.keyed(cpu_stat, folder, "cpu.stat", "user_usec"),
                                 10 ** 6),
            "cpu": _seconds(reading.keyed(cpu_stat, folder, "cpu.stat", "usage_usec"), 10 ** 6),
        }
        io_stat = reading.text(folder, "io.stat")
        if io_stat is not None:
            values.update(zip(("disk_read_bytes", "disk_write_bytes", "disk_reads",
                               "disk_writes"), io_totals(io_stat)))
        procs = reading.text(folder, "cgroup.procs")
        pid = first_number(procs) if procs else None
        if not pid:
            procs = reading.text(folder, "containers/cgroup.procs")
            pid = first_number(procs) if procs else None
            if pid:                 # the first file was empty: only the second counts
                reading.problems.pop(os.path.join(folder, "cgroup.procs"), None)
        values["pid"] = pid
        return values

    @staticmethod
    def _values_v1(memory, cpu, systemd, reading):
        values = {"pid": None}
        if memory:
            memory_stat = reading.text(memory, "memory.stat")
            values.update({
                "memory_usage": reading.number(memory, "memory.usage_in_bytes"),
                "memory_max_usage": reading.number(memory, "memory.max_usage_in_bytes"),
                "memory_limit": reading.number(memory, "memory.limit_in_bytes"),
                "rss": reading.keyed(memory_stat, memory, "memory.stat", "rss"),
            })
        if cpu:
            values["cpu_user"] = _seconds(reading.number(cpu, "cpuacct.usage_user"), 10 ** 9)
            values["cpu"] = _seconds(reading.number(cpu, "cpuacct.usage"), 10 ** 9)
        if systemd:
            values["pid"] = reading.number(systemd, "cgroup.procs")
        return values


PLUGIN = PodmanMetrics
