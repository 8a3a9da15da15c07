"""A fake Raspberry Pi 4 procfs and sysfs (4 cores, thermal_zone0 "cpu-thermal", eth0 and
wlan0, an SD card mmcblk0 with two partitions), as the files look on Raspberry Pi OS.

Processes: ``sensor-daemon`` (PID 1234, a second thread ``sensor-io``, five open files),
``kthreadd`` (PID 2, only its stat and cmdline: as a process that ended while it was read)
and a zombie ``(sd-pam)`` (PID 4321, a name with parentheses).
edgeship reads it when EDGESHIP_PROCFS / EDGESHIP_SYSFS point at it (``environ()``).

The hardware cannot exist on this machine; the files are what the host-metric inputs read,
and ``advance`` moves their counters so a test knows the exact values a record must hold."""
import json
import os
import shutil

# Per core: user nice system idle iowait irq softirq steal guest guest_nice
CORES = [[2500, 50, 750, 100000, 125, 0, 25, 0, 0, 0],
         [2600, 40, 700, 100100, 100, 0, 20, 0, 0, 0],
         [2400, 60, 800, 99900, 150, 0, 30, 0, 0, 0],
         [2500, 50, 750, 100000, 125, 0, 25, 0, 0, 0]]

MEMINFO = {"MemTotal": 3884316, "MemFree": 2947616, "MemAvailable": 3390000,
           "Buffers": 30124, "Cached": 512000, "SwapCached": 0,
           "SwapTotal": 102396, "SwapFree": 92156}

# name -> [sectors read, sectors written] (fields 6 and 10 of /proc/diskstats)
DISKS = {"ram0": [0, 0], "mmcblk0": [380834, 66064], "mmcblk0p1": [4000, 10],
         "mmcblk0p2": [370000, 66000]}
DISK_NUMBERS = {"ram0": (1, 0), "mmcblk0": (179, 0), "mmcblk0p1": (179, 1),
                "mmcblk0p2": (179, 2)}

# name -> the 16 /proc/net/dev counters
INTERFACES = {"lo": [12345, 100, 0, 0, 0, 0, 0, 0, 12345, 100, 0, 0, 0, 0, 0, 0],
              "eth0": [9876543, 54321, 1, 2, 3, 4, 5, 6, 1234567, 4321, 7, 8, 9, 10, 11, 12],
              # A VLAN whose name starts with eth0: Fluent Bit's prefix match takes it.
              "eth0.100": [5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5],
              "wlan0": [222222, 2000, 0, 0, 0, 0, 0, 10, 111111, 1000, 0, 0, 0, 0, 0, 0]}

UPTIME = "12345.67"
PROCESS_PID = 1234
PROCESS_NAME = "sensor-daemon"
# utime, stime (clock ticks) and rss (pages) of the fake process
PROCESS = {"utime": 300, "stime": 100, "rss": 2500}
PROCESS_STATUS = {"VmPeak": 12000, "VmSize": 11000, "VmLck": 0, "VmPin": 0, "VmHWM": 4000,
                  "VmRSS": 3900, "VmData": 2100, "VmStk": 132, "VmExe": 400, "VmLib": 3000,
                  "VmPTE": 48, "VmSwap": 0}
PROCESS_FDS = 5
# The per-process files process_exporter_metrics reads besides stat and status.
PROCESS_IO = {"rchar": 323934931, "wchar": 323929600, "syscr": 632687, "syscw": 632675,
              "read_bytes": 4096, "write_bytes": 1236992, "cancelled_write_bytes": 0}
PROCESS_SWITCHES = (150, 12)            # voluntary, nonvoluntary
PROCESS_OPEN_FILES = (1024, 4096)       # soft, hard "Max open files"
PROCESS_WCHAN = "do_epoll_wait"
THREAD_TID = 1240
THREAD_NAME = "sensor-io"
THREAD_IO = {"rchar": 1000, "wchar": 2000, "syscr": 10, "syscw": 20, "read_bytes": 8192,
             "write_bytes": 65536, "cancelled_write_bytes": 0}
THREAD_SWITCHES = (30, 4)
ZOMBIE_PID = 4321
ZOMBIE_NAME = "(sd-pam)"
BOOT_TIME = 1700000000
# A stat line: pid, name, state, ppid, minflt, majflt, utime, stime, threads, starttime,
# vsize, rss (the other fields as a sleeping process has them).
STAT = ("%d (%s) %s %d 1234 1234 0 -1 4194560 %d 0 %d 0 %d %d 0 0 20 0 %d 0 %d %d %d "
        "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 2 0 0 0 0 0")
LIMITS = ("Limit                     Soft Limit           Hard Limit           Units     \n"
          "Max cpu time              unlimited            unlimited            seconds   \n"
          "Max stack size            8388608              unlimited            bytes     \n"
          "Max processes             30499                30499                processes \n"
          "Max open files            %-20d %-20d files     \n"
          "Max locked memory         8388608              8388608              bytes     \n")


class FakePi:
    def __init__(self, root):
        self.root = str(root)
        self.procfs = os.path.join(self.root, "proc")
        self.sysfs = os.path.join(self.root, "sys")
        self.cores = [list(c) for c in CORES]
        self.meminfo = dict(MEMINFO)
        self.disks = {k: list(v) for k, v in DISKS.items()}
        self.disk_numbers = dict(DISK_NUMBERS)
        self.interfaces = {k: list(v) for k, v in INTERFACES.items()}
        self.process = dict(PROCESS)
        self.temp = 48686
        self.write()
        self._write_static()

    def end_process(self, pid):
        """The process ``pid`` ends: its folder goes."""
        shutil.rmtree(os.path.join(self.procfs, str(pid)))

    def environ(self):
        return {"EDGESHIP_PROCFS": self.procfs, "EDGESHIP_SYSFS": self.sysfs}

    def _file(self, path, text):
        full = os.path.join(self.root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full + ".new", "w") as f:
            f.write(text)
        os.replace(full + ".new", full)     # a reader never sees half a file

    def _write_static(self):
        pid = str(PROCESS_PID)
        self._file("proc/%s/cmdline" % pid, "/usr/local/bin/%s\0--config\0/etc/s.conf\0"
                   % PROCESS_NAME)
        self._file("proc/%s/status" % pid, _status(PROCESS_NAME, "S (sleeping)", 2,
                                                   PROCESS_SWITCHES, PROCESS_STATUS))
        fd_dir = os.path.join(self.procfs, pid, "fd")
        os.makedirs(fd_dir, exist_ok=True)
        for n in range(PROCESS_FDS):        # as the kernel shows them: symlinks
            os.symlink("socket:[%d]" % (20000 + n) if n > 2 else "/dev/null",
                       os.path.join(fd_dir, str(n)))
        self._file("proc/%s/io" % pid, _io(PROCESS_IO))
        self._file("proc/%s/limits" % pid, LIMITS % PROCESS_OPEN_FILES)
        self._file("proc/%s/wchan" % pid, PROCESS_WCHAN)
        thread = "proc/%s/task/%d/" % (pid, THREAD_TID)
        self._file(thread + "stat", STAT % (THREAD_TID, THREAD_NAME, "S", 1, 40, 2, 250, 50,
                                            2, 130, 12345678, 2500))
        self._file(thread + "status", _status(THREAD_NAME, "S (sleeping)", 2, THREAD_SWITCHES))
        self._file(thread + "io", _io(THREAD_IO))
        zombie = "proc/%d/" % ZOMBIE_PID
        self._file(zombie + "cmdline", "")
        self._file(zombie + "stat", STAT % (ZOMBIE_PID, ZOMBIE_NAME, "Z", 4320, 0, 0, 7, 3, 1,
                                            250, 0, 0))
        self._file(zombie + "task/%d/stat" % ZOMBIE_PID, STAT % (
            ZOMBIE_PID, ZOMBIE_NAME, "Z", 4320, 0, 0, 7, 3, 1, 250, 0, 0))
        self._file(zombie + "status", _status(ZOMBIE_NAME, "Z (zombie)", 1, (20, 1)))
        self._file(zombie + "io", _io(dict.fromkeys(PROCESS_IO, 0)))
        self._file(zombie + "limits", LIMITS % PROCESS_OPEN_FILES)
        self._file(zombie + "wchan", "0")
        os.makedirs(os.path.join(self.procfs, str(ZOMBIE_PID), "fd"), exist_ok=True)
        # A kernel thread: empty cmdline, no Vm lines.
        self._file("proc/2/cmdline", "")
        self._file("proc/2/stat", "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 "
                   "0 1 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 17 1 0 0")
        self._file("proc/uptime", "%s 40000.00\n" % UPTIME)
        self._file("sys/class/thermal/thermal_zone0/type", "cpu-thermal\n")
        self._file("sys/class/thermal/cooling_device0/type", "gpio-fan\n")
        self._file("sys/class/thermal/cooling_device0/cur_state", "0\n")

    def write(self):
        """Write every counter file from the current values."""
        total = [sum(col) for col in zip(*self.cores)]
        stat = "cpu  %s\n" % " ".join(map(str, total))
        stat += "".join("cpu%d %s\n" % (n, " ".join(map(str, c)))
                        for n, c in enumerate(self.cores))
        stat += "intr 123456 0 0\nctxt 987654\nbtime %d\nprocesses 4321\n" % BOOT_TIME
        self._file("proc/stat", stat)
        self._file("proc/meminfo", "".join("%-15s %8d kB\n" % (k + ":", v)
                                           for k, v in self.meminfo.items()))
        lines = []
        for name, (read, written) in self.disks.items():
            major, minor = self.disk_numbers[name]
            lines.append("%4d %7d %s 4620 1523 %d 12080 2117 2592 %d 21990 0 12860 34070 "
                         "0 0 0 0 0 0" % (major, minor, name, read, written))
        self._file("proc/diskstats", "\n".join(lines) + "\n")
        dev = ("Inter-|   Receive                                                |  Transmit\n"
               " face |bytes    packets errs drop fifo frame compressed multicast|bytes    "
               "packets errs drop fifo colls carrier compressed\n")
        for name, values in self.interfaces.items():
            dev += "%6s: %s\n" % (name, " ".join("%7d" % v for v in values))
        self._file("proc/net/dev", dev)
        p = self.process
        stat = STAT % (PROCESS_PID, PROCESS_NAME, "S", 1, 500, 3, p["utime"], p["stime"], 2,
                       100, 12345678, p["rss"])
        self._file("proc/%d/stat" % PROCESS_PID, stat)
        self._file("proc/%d/task/%d/stat" % (PROCESS_PID, PROCESS_PID), stat)
        self._file("sys/class/thermal/thermal_zone0/temp", "%d\n" % self.temp)


def _status(name, state, threads, switches, memory=None):
    """A ``/proc/PID/status`` (the lines edgeship reads, in the kernel's order)."""
    return ("Name:\t%s\nState:\t%s\n" % (name, state)
            + "".join("%s:\t%8d kB\n" % kv for kv in (memory or {}).items())
            + "Threads:\t%d\n" % threads
            + "voluntary_ctxt_switches:\t%d\nnonvoluntary_ctxt_switches:\t%d\n" % switches)


def _io(counters):
    return "".join("%s: %d\n" % kv for kv in counters.items())


# Podman containers as podman's containers.json lists them, in its order: (id, names, image
# name in the metadata or None, running). A stopped container stays listed with no cgroup.
PODMAN = [("3a1f" * 16, ["web"], "docker.io/library/nginx:1.25", True),
          ("5b2e" * 16, ["backup"], "docker.io/library/alpine:3.19", False),
          ("7c3d" * 16, ["sensor-reader"], None, True)]
# Per container: its first PID (cgroup.procs) and its cgroup values while it runs ("cpu" and
# "user": usage_usec and user_usec on v2, cpuacct.usage and cpuacct.usage_user on v1).
PODMAN_VALUES = {
    "3a1f" * 16: {"pid": 4242, "memory": 52428800, "peak": 73400320, "limit": "max",
                  "rss": 31457280, "cpu": 123456789012345, "user": 98765432109876,
                  "io": [(8, 0, 1048576, 524288, 300, 120), (179, 0, 4096, 8192, 2, 3)],
                  "net": {"lo": [800, 10, 0], "eth0": [1234567, 2, 3],
                          "vethab12cd": [5, 5, 5]}},
    "7c3d" * 16: {"pid": 5151, "memory": 8388608, "peak": 9437184, "limit": "268435456",
                  "rss": 4194304, "cpu": 4000000001, "user": 2999999999,
                  "io": [], "net": {"lo": [0, 0, 0], "eth0": [42, 0, 1]}},
    "5b2e" * 16: {"pid": 6060, "memory": 1048576, "peak": 2097152, "limit": "max",
                  "rss": 524288, "cpu": 1000, "user": 500, "io": [(8, 0, 1, 2, 3, 4)],
                  "net": {"lo": [0, 0, 0], "eth0": [1, 2, 3]}},
}
CONTAINERS_JSON = "var/lib/containers/storage/overlay-containers/containers.json"


class FakePodman:
    """Podman on the fake Pi: containers.json under ``root`` and, for the running containers,
    their cgroups (v2: one folder ``machine.slice/libpod-ID.scope``; v1: one per controller)
    under ``root/sys/fs/cgroup`` and their network counters in ``/proc/PID/net/dev``, with the
    conmon scopes beside them as systemd makes them."""

    def __init__(self, pi, cgroup_version=2):
        self.pi = pi
        self.version = cgroup_version
        self.config = os.path.join(pi.root, CONTAINERS_JSON)
        self.cgroup = os.path.join(pi.sysfs, "fs", "cgroup")
        self.containers = [list(c) for c in PODMAN]
        self.values = {cid: dict(v) for cid, v in PODMAN_VALUES.items()}
        if self.version == 2:
            self.pi._file("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n")
            self.pi._file("sys/fs/cgroup/system.slice/ssh.service/cgroup.procs", "600\n")
        else:
            self.pi._file("sys/fs/cgroup/cpu,cpuacct/cpuacct.usage", "1\n")
            for link in ("cpu", "cpuacct"):
                os.symlink("cpu,cpuacct", os.path.join(self.cgroup, link))
        self.write()

    def scopes(self, cid):
        """The folders of a container's cgroup, relative to the fake root."""
        scope = "machine.slice/libpod-%s.scope" % cid
        if self.version == 2:
            return ["sys/fs/cgroup/" + scope]
        return ["sys/fs/cgroup/%s/%s" % (c, scope) for c in ("memory", "cpu,cpuacct", "systemd")]

    def write(self):
        entries = []
        for cid, names, image, running in self.containers:
            meta = {"name": names[-1], "created-at": 1700000000}
            if image is not None:
                meta = dict({"image-name": image, "image-id": cid[::-1]}, **meta)
            entries.append({"id": cid, "names": names, "image": cid[::-1], "layer": cid[1:] + "0",
                            "metadata": json.dumps(meta, separators=(",", ":")),
                            "big-data-names": ["volatile.json"],
                            "created": "2023-11-14T22:13:20.123456789Z",
                            "flags": {"MountLabel": "", "ProcessLabel": ""}})
            if running:
                self._write_cgroup(cid, self.values[cid])
        self.pi._file(CONTAINERS_JSON, json.dumps(entries, separators=(",", ":")))

    def _write_cgroup(self, cid, v):
        pid = v["pid"]
        files = {}
        if self.version == 2:
            io = "".join("%d:%d rbytes=%d wbytes=%d rios=%d wios=%d dbytes=0 dios=0\n" % d
                         for d in v["io"])
            files = {"memory.current": "%d\n" % v["memory"], "memory.peak": "%d\n" % v["peak"],
                     "memory.max": "%s\n" % v["limit"],
                     "memory.stat": "anon %d\nfile 1048576\nkernel 262144\n" % v["rss"],
                     "cpu.stat": "usage_usec %d\nuser_usec %d\nsystem_usec %d\n"
                                 % (v["cpu"], v["user"], v["cpu"] - v["user"]),
                     "io.stat": io, "cgroup.procs": "%d\n%d\n" % (pid, pid + 1)}
            folders = {self.scopes(cid)[0]: files}
        else:
            memory, cpu, systemd = self.scopes(cid)
            limit = v["limit"] if v["limit"] != "max" else "9223372036854771712"
            folders = {
                memory: {"memory.usage_in_bytes": "%d\n" % v["memory"],
                         "memory.max_usage_in_bytes": "%d\n" % v["peak"],
                         "memory.limit_in_bytes": "%s\n" % limit,
                         "memory.stat": "cache 1048576\nrss %d\nrss_huge 0\ntotal_rss %d\n"
                                        % (v["rss"], v["rss"])},
                cpu: {"cpuacct.usage": "%d\n" % v["cpu"],
                      "cpuacct.usage_user": "%d\n" % v["user"]},
                systemd: {"cgroup.procs": "%d\n" % pid}}
        for folder, contents in folders.items():
            for name, text in contents.items():
                self.pi._file("%s/%s" % (folder, name), text)
            conmon = folder.replace("libpod-", "libpod-conmon-")
            self.pi._file(conmon + "/cgroup.procs", "%d\n" % (pid - 1))
        dev = ("Inter-|   Receive                                                |  Transmit\n"
               " face |bytes    packets errs drop fifo frame compressed multicast|bytes    "
               "packets errs drop fifo colls carrier compressed\n")
        for name, (rx, rx_errs, tx_errs) in v["net"].items():
            row = [rx, 7, rx_errs, 0, 0, 0, 0, 0, rx // 2 + 1, 5, tx_errs, 0, 0, 0, 0, 0]
            dev += "%6s: %s\n" % (name, " ".join("%7d" % n for n in row))
        self.pi._file("proc/%d/net/dev" % pid, dev)

    def stop(self, cid):
        """The container stops: its cgroups go, it stays in containers.json."""
        for folder in self.scopes(cid):
            for conmon in (folder, folder.replace("libpod-", "libpod-conmon-")):
                shutil.rmtree(os.path.join(self.pi.root, conmon), ignore_errors=True)
        self.containers = [c[:3] + [False] if c[0] == cid else c for c in self.containers]
        self.write()

    def start(self, cid):
        self.containers = [c[:3] + [True] if c[0] == cid else c for c in self.containers]
        self.write()
