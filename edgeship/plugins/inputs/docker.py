"""docker input: CPU and memory of the running Docker containers from their cgroups
(in_docker).

Kept from Fluent Bit 5.1.1: every ``Interval_Sec`` (1) + ``Interval_NSec``, one record per
container, ``{"id": first 12 characters, "name": the container's name, "cpu_used",
"mem_used", "mem_limit"}``. cgroup v2 (``path.sysfs``, ``/sys/fs/cgroup``, has
cgroup.controllers): containers are the ``system.slice/docker-ID.scope`` folders; cpu_used
is ``usage_usec`` of cpu.stat (microseconds), mem_used memory.current, mem_limit
memory.max (``max``: 2^64-1). cgroup v1: the ``cpu/docker/ID`` folders; cpu_used is
cpuacct.usage (nanoseconds), memory from ``memory/docker/ID`` (memory.usage_in_bytes,
memory.limit_in_bytes). The name is the first ``"Name"`` value of
``path.containers/ID/config.v2.json`` (``/var/lib/docker/containers``), as Docker writes it
(``/web``). ``Include`` / ``Exclude``: space-separated container ids (12 or 64 characters)
whose containers are kept / left out.

Differences (README "Where edgeship differs"): cpu_used and mem_used are whole unsigned
integers (Fluent Bit packs them as 32-bit values, so they wrap at 4 GiB and after 71 minutes
of CPU); a container whose files cannot be read is left out of that collection with a
warning (Fluent Bit then sends no record for any container); containers come in id order.
"""
import os

from edgeship.core.schema import Option
from edgeship.plugins.inputs._cgroups import UINT64_MAX, first_number, is_v2, keyed_number
from edgeship.plugins.inputs._host import Host
from edgeship.plugins.inputs._interval import IntervalInput, interval_options

LONG_ID, SHORT_ID = 64, 12
V2_SERVICE_DIR = "system.slice"


def container_name(config_text):
    """The first ``"Name"`` value of a config.v2.json text, or None."""
    start = config_text.find('"Name"')
    if start < 0:
        return None
    rest = config_text[start + 6:]
    colon = rest.find(":")
    if colon < 0:
        return None
    rest = rest[colon + 1:].lstrip()
    if not rest.startswith('"'):
        return None
    end = rest.find('"', 1)
    return rest[1:end] if end > 1 else None


def _ids(text):
    return [part for part in (text or "").split(" ") if len(part) in (LONG_ID, SHORT_ID)]


class DockerInput(IntervalInput):
    name = "docker"
    description = "Docker containers metrics"
    options = interval_options() + (
        Option("Include", help="container ids to measure, space separated (default: all)"),
        Option("Exclude", help="container ids to leave out, space separated"),
        Option("path.sysfs", default="/sys/fs/cgroup", help="the cgroup file system"),
        Option("path.containers", default="/var/lib/docker/containers",
               help="Docker's containers folder (their config.v2.json)"),
    )

    def configure(self):
        self.sysfs = self.conf["path.sysfs"]
        self.include = _ids(self.conf["include"]) if self.conf["include"] else None
        self.exclude = _ids(self.conf["exclude"])
        self.v2 = is_v2(self.sysfs)
        self.log.info("Detected cgroups %s", "v2" if self.v2 else "v1")
        self.problems = set()

    def _containers(self):
        """The ids of the running containers, in order."""
        if self.v2:
            folder = os.path.join(self.sysfs, V2_SERVICE_DIR)
            names = [n for n in self._list(folder) if len(n) == LONG_ID + 13
                     and n.startswith("docker-") and n.endswith(".scope")]
            ids = [n[len("docker-"):-len(".scope")] for n in names]
        else:
            ids = [n for n in self._list(os.path.join(self.sysfs, "cpu", "docker"))
                   if len(n) == LONG_ID]
        ids = sorted(i for i in ids if os.path.isdir(self._cgroup(i, "cpu")))
        if self.include is not None:
            ids = [i for i in ids if any(i.startswith(k) for k in self.include)]
        return [i for i in ids if not any(i.startswith(k) for k in self.exclude)]

    @staticmethod
    def _list(folder):
        try:
            return os.listdir(folder)
        except OSError:
            return []

    def _cgroup(self, cid, controller):
        if self.v2:
            return os.path.join(self.sysfs, V2_SERVICE_DIR, "docker-%s.scope" % cid)
        return os.path.join(self.sysfs, controller, "docker", cid)

    def _measure(self, cid):
        """(cpu_used, mem_used, mem_limit) of a container; OSError or ValueError when they
        cannot be read."""
        if self.v2:
            folder = self._cgroup(cid, "cpu")
            cpu = keyed_number(Host.read(os.path.join(folder, "cpu.stat")), "usage_usec")
            used = first_number(Host.read(os.path.join(folder, "memory.current")))
            limit_text = Host.read(os.path.join(folder, "memory.max")).strip()
            limit = UINT64_MAX if limit_text.startswith("max") else first_number(limit_text)
        else:
            cpu = first_number(Host.read(os.path.join(self._cgroup(cid, "cpu"),
                                                      "cpuacct.usage")))
            memory = self._cgroup(cid, "memory")
            used = first_number(Host.read(os.path.join(memory, "memory.usage_in_bytes")))
            limit = first_number(Host.read(os.path.join(memory, "memory.limit_in_bytes")))
        if cpu is None or used is None or limit is None:
            raise ValueError("a value that is not a number")
        return cpu, used, limit

    def collect(self, now_ns):
        records = []
        for cid in self._containers():
            try:
                config = os.path.join(self.conf["path.containers"], cid, "config.v2.json")
                name = container_name(Host.read(config))
                if name is None:
                    raise ValueError("no Name in %s" % config)
                cpu, used, limit = self._measure(cid)
            except (OSError, ValueError) as exc:
                if cid not in self.problems:        # once per container, not every tick
                    self.problems.add(cid)
                    self.log.warn("container %s left out: %s", cid[:SHORT_ID], exc)
                continue
            self.problems.discard(cid)
            records.append({"id": cid[:SHORT_ID], "name": name, "cpu_used": cpu,
                            "mem_used": used, "mem_limit": limit})
        return records


PLUGIN = DockerInput
