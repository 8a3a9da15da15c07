"""process_exporter_metrics input: per-process metrics from procfs under Prometheus'
process-exporter names, as a metrics signal (in_process_exporter_metrics, Linux).

Families (all made at start, whatever ``metrics`` says; labels in brackets):
counters ``process_cpu_seconds_total`` [name pid ppid mode], ``process_read_bytes_total``,
``process_write_bytes_total``, ``process_major_page_faults_total``,
``process_minor_page_faults_total`` [name pid ppid], ``process_context_switches_total``
[name pid context_switch_type], ``process_thread_cpu_seconds_total`` [name threadname
thread_id mode], ``process_thread_io_bytes_total`` [... iomode],
``process_thread_major_page_faults_total``, ``process_thread_minor_page_faults_total``
[name threadname thread_id], ``process_thread_context_switches_total`` [...
context_switch_type]; gauges ``process_memory_bytes`` [name pid ppid type],
``process_open_filedesc``, ``process_fd_ratio``, ``process_start_time_seconds``,
``process_num_threads`` [name pid ppid], ``process_states`` [name pid ppid state],
``process_thread_wchan`` [name pid wchan]. Help texts are Fluent Bit's, word for word.

Fluent Bit 5.1.1 behaviour kept:
- The processes are the numbered folders of ``path.procfs``, in name order; ``name`` is the
  command name of ``PID/stat``; a process is measured when ``process_include_pattern``
  (default ``.+``) is found in it and ``process_exclude_pattern`` (none by default) is not
  (Onigmo regexes, searched).
- ``metrics`` selects what is read: an entry is taken when it starts (any case) with one of
  cpu, io, memory, state, context_switches, fd, start_tim(e), thread_wchan, thread, tried
  in that order (``fdx`` is fd, ``Thread`` thread); anything else is logged ("Unknown
  metrics") and ignored.
- Values as Fluent Bit computes them: cpu seconds are whole seconds (clock ticks / 100, the
  kernel's USER_HZ), user and system; start time is ``btime`` of ``stat`` plus the start
  ticks / 100; memory is ``vsize`` (type virtual_memory) and ``rss`` pages × the page size
  (rss), with the major and minor page faults; states: one series per state R, S, D, Z, T,
  I, 1 for the process's and 0 for the others; fd: the symlinks of ``PID/fd`` and their
  ratio to the hard "Max open files" of ``PID/limits``; thread_wchan: 1 for the content of
  ``PID/wchan`` ("" for "0"); io: ``read_bytes``/``write_bytes`` of ``PID/io``;
  context_switches: ``voluntary_ctxt_switches``/``nonvoluntary_ctxt_switches`` of
  ``PID/status``; thread: ``num_threads`` and, for each thread but the main one
  (``PID/task/TID``), cpu seconds, io bytes (iomode read/write), page faults and context
  switches.
- The metrics are read once at start, then every ``scrape_interval`` (default 5 s) read
  again and emitted as one metrics chunk; every series is stamped with the time the pass
  began, and a series the pass did not set (a process that ended, a thread, a wchan that
  changed) is dropped (cmt_expire).
- A file that cannot be read (a process that ended while it was read, another user's
  ``io`` or ``fd``) leaves its series out of the pass, silently.

Differences:
- ``name`` is the text between the first '(' and the last ')' of ``stat``, so a command
  named ``(sd-pam)`` is ``(sd-pam)``; Fluent Bit cuts it at the first ')' (``(sd-pam``),
  and a name holding ") " shifts every field it reads after it.
- the ``name`` label of ``process_thread_context_switches_total`` is the process's name, as
  on every other thread family (Fluent Bit puts the thread's name there, and filters the
  thread by its own name); a thread's context switches are read even when its ``io``
  cannot be (Fluent Bit then skips them). ``process_context_switches_total`` takes its
  name from ``stat`` as the other families (Fluent Bit: the ``Name`` of ``status``, the
  same but for escaped characters).
- a counter that went down (a PID reused by a process of the same name and parent) takes
  its new value (Fluent Bit refuses it and the series is missing for one pass); a process
  whose ``limits`` has no "Max open files" has no fd ratio (Fluent Bit: a division by 0).
- an invalid regex is a config error at its key (Fluent Bit crashes); ``scrape_interval
  0`` is 5 s (Fluent Bit never collects); a ``path.procfs`` that cannot be listed is an
  error line once, then debug lines while it stays so, and an info line when it can be
  listed again (Fluent Bit: an error every interval).
"""
import os
import re
import time

from edgeship.codecs import cmetrics
from edgeship.core.schema import Option
from edgeship.plugins.inputs._host import Host, colon_fields, split_stat
from edgeship.plugins.inputs._interval import IntervalInput

# Fluent Bit divides clock ticks by the kernel's USER_HZ, a constant.
USER_HZ = 100
DEFAULT_METRICS = "cpu,io,memory,state,context_switches,fd,start_time,thread_wchan,thread"
# What a ``metrics`` entry must start with (any case), tried in this order, as Fluent Bit.
SELECTORS = (("cpu", "cpu"), ("io", "io"), ("memory", "memory"), ("state", "state"),
             ("context_switches", "context_switches"), ("fd", "fd"),
             ("start_tim", "start_time"), ("thread_wchan", "thread_wchan"),
             ("thread", "thread"))
STATES = ("R", "S", "D", "Z", "T", "I")
_LLONG_MAX = 2 ** 63 - 1
_LEADING_INT = re.compile(r"\s*([+-]?[0-9]+)")


def selected(entries):
    """The set of metric groups a ``metrics`` list selects, and the entries it does not
    know."""
    chosen, unknown = set(), []
    for entry in entries:
        lowered = entry.lower()
        for prefix, group in SELECTORS:
            if lowered.startswith(prefix):
                chosen.add(group)
                break
        else:
            unknown.append(entry)
    return chosen, unknown


def u64(text):
    """Fluent Bit's pe_utils_str_to_uint64: strtoll of the leading integer (a negative one
    wraps as a uint64), None when there is none or it overflows."""
    if text.isdigit():
        value = int(text)
    else:
        match = _LEADING_INT.match(text)
        if match is None:
            return None
        value = int(match.group(1))
    if value > _LLONG_MAX or value < -_LLONG_MAX - 1:
        return None
    return value % (1 << 64)


def _numbered(folder):
    """The names of the numbered subfolders of ``folder``, in name order (glob's
    ``[0-9]*``); OSError when it cannot be listed."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.name[:1].isdigit() and e.is_dir())


def _max_open_files(path):
    """The hard limit of "Max open files" in a ``limits`` file (the fifth word, as Fluent
    Bit reads it), 0 when the line is not there."""
    limit = 0
    for line in Host.read(path).splitlines():
        if line.startswith("Max open files"):
            words = [w for w in line.split(" ") if w]
            value = u64(words[4]) if len(words) > 4 else None
            if value is not None:
                limit = value
    return limit


class ProcessExporterMetrics(IntervalInput):
    name = "process_exporter_metrics"
    description = "Process Exporter Metrics (Prometheus Compatible)"
    options = (
        Option("scrape_interval", "time", "5",
               help="seconds between the metrics chunks this input emits (0: 5)"),
        Option("path.procfs", default="/proc", help="procfs mount point"),
        Option("process_include_pattern", default=".+",
               help="only the processes whose name this regex is found in"),
        Option("process_exclude_pattern",
               help="leave out the processes whose name this regex is found in"),
        Option("metrics", "list", DEFAULT_METRICS,
               help="what to collect, comma separated: cpu, io, memory, state, "
                    "context_switches, fd, start_time, thread_wchan, thread"),
    )

    def configure(self):
        conf = self.conf
        self.procfs = conf["path.procfs"]
        self.include = self.regex_option("process_include_pattern")
        self.exclude = self.regex_option("process_exclude_pattern")
        self.groups, unknown = selected(conf["metrics"])
        for entry in unknown:
            self.log.warn("Unknown metrics: %s", entry)
        self.log.info("path.procfs = %s", self.procfs)
        self.page_size = os.sysconf("SC_PAGESIZE")
        self.failures = self.log.failure_streak()
        self.metrics = cmetrics.Context()
        self._families(self.metrics)

    def _families(self, ctx):
        """Fluent Bit's families, in its order."""
        process = ("name", "pid", "ppid")
        thread = ("name", "threadname", "thread_id")
        self.cpu_seconds = ctx.counter("process", "", "cpu_seconds_total",
                                       "CPU usage in seconds", process + ("mode",))
        self.read_bytes = ctx.counter("process", "", "read_bytes_total",
                                      "number of bytes read", process)
        self.write_bytes = ctx.counter("process", "", "write_bytes_total",
                                       "number of bytes write", process)
        self.major_faults = ctx.counter("process", "", "major_page_faults_total",
                                        "Major page fault", process)
        self.minor_faults = ctx.counter("process", "", "minor_page_faults_total",
                                        "Minor page fault", process)
        self.context_switches = ctx.counter("process", "", "context_switches_total",
                                            "Context switches",
                                            ("name", "pid", "context_switch_type"))
        self.memory_bytes = ctx.gauge(
            "process", "", "memory_bytes",
            "number of bytes of memory in use per type (VirtualMemory, RSS)",
            process + ("type",))
        self.open_fds = ctx.gauge("process", "", "open_filedesc",
                                  "number of open file descriptors", process)
        self.fd_ratio = ctx.gauge("process", "", "fd_ratio",
                                  "the ratio between open fds and max fds", process)
        self.start_time = ctx.gauge("process", "", "start_time_seconds",
                                    "start time in seconds since 1970/01/01", process)
        self.num_threads = ctx.gauge("process", "", "num_threads", "Number of threads",
                                     process)
        self.states = ctx.gauge("process", "", "states",
                                "Process in states Running, Sleeping, Waiting, Zombie, or Other",
                                process + ("state",))
        self.thread_wchan = ctx.gauge(
            "process", "", "thread_wchan",
            "Number of threads in this process waiting on each wchan", ("name", "pid", "wchan"))
        self.thread_cpu_seconds = ctx.counter(
            "process", "", "thread_cpu_seconds_total",
            "CPU user/system usage in seconds with the same threadname", thread + ("mode",))
        self.thread_io_bytes = ctx.counter(
            "process", "", "thread_io_bytes_total",
            "number of bytes read/written by these threads", thread + ("iomode",))
        self.thread_major_faults = ctx.counter("process", "", "thread_major_page_faults_total",
                                               "Major page fault for these threads", thread)
        self.thread_minor_faults = ctx.counter("process", "", "thread_minor_page_faults_total",
                                               "Minor page fault for these threads", thread)
        self.thread_context_switches = ctx.counter(
            "process", "", "thread_context_switches_total", "Context switches",
            thread + ("context_switch_type",))

    # ------------------------------------------------------------------ timer
    @property
    def period(self):
        return self.conf["scrape_interval"] or 5

    def start(self):
        self.update(time.time_ns())

    async def tick(self):
        self.update(time.time_ns())
        payload = self.metrics.encode()
        if payload is not None:
            self.context.emit_metrics(self.tag, payload)

    # ------------------------------------------------------------------ one pass
    def update(self, now):
        """Read every process once; series stamped ``now``; the rest expire."""
        try:
            pids = _numbered(self.procfs)
        except OSError as exc:
            self.failures.failed("cannot list the processes of %s: %s" % (self.procfs, exc))
            return
        if self.failures.recovered():
            self.log.info("the processes of %s can be listed again", self.procfs)
        boot = self._boot_time()
        for pid in pids:
            try:
                self._process(pid, boot, now)
            except (OSError, ValueError, IndexError):
                continue            # it ended while it was read: what was set stays
        self.metrics.expire(now)

    def _boot_time(self):
        try:
            for line in Host.read(os.path.join(self.procfs, "stat")).splitlines():
                if line.startswith("btime"):
                    value = u64(line[5:].strip())
                    if value is not None:
                        return value
        except OSError:
            pass
        return 0

    def _wanted(self, name):
        if self.include is not None and not self.include.search(name):
            return False
        return self.exclude is None or not self.exclude.search(name)

    def _process(self, pid, boot, now):
        base = os.path.join(self.procfs, pid)
        name, fields = split_stat(Host.read(os.path.join(base, "stat")))
        if not self._wanted(name):
            return
        groups = self.groups
        labels = (name, pid, fields[1])
        if "state" in groups:
            state = fields[0]
            for letter in STATES:
                self.states.set(1 if state == letter else 0, labels + (letter,), now)
        if "cpu" in groups:
            self._cpu(self.cpu_seconds, fields, labels, now)
        if "start_time" in groups:
            ticks = u64(fields[19])
            if ticks is not None:
                self.start_time.set(boot + ticks // USER_HZ, labels, now)
        if "thread" in groups:
            self._set(self.num_threads, fields[17], labels, now)
        if "memory" in groups:
            self._set(self.memory_bytes, fields[20], labels + ("virtual_memory",), now)
            pages = u64(fields[21])
            if pages is not None and self.page_size > 0:
                self.memory_bytes.set(pages * self.page_size, labels + ("rss",), now)
            self._set(self.major_faults, fields[9], labels, now)
            self._set(self.minor_faults, fields[7], labels, now)
        if "fd" in groups:
            self._fds(base, labels, now)
        if "thread_wchan" in groups:
            self._wchan(base, name, pid, now)
        if "io" in groups:
            for mode, value in self._io_bytes(base):
                family = self.read_bytes if mode == "read" else self.write_bytes
                family.set(value, labels, now)
        if "thread" in groups:
            self._threads(base, name, pid, now)
        if "context_switches" in groups:
            self._context_switches(base, self.context_switches, (name, pid), now)

    @staticmethod
    def _set(family, text, labels, now):
        value = u64(text)
        if value is not None:
            family.set(value, labels, now)

    @staticmethod
    def _cpu(family, fields, labels, now):
        for mode, index in (("user", 11), ("system", 12)):
            ticks = u64(fields[index])
            if ticks is not None:
                family.set(ticks // USER_HZ, labels + (mode,), now)

    def _fds(self, base, labels, now):
        try:
            with os.scandir(os.path.join(base, "fd")) as entries:
                count = sum(1 for entry in entries if entry.is_symlink())
        except OSError:
            return
        self.open_fds.set(count, labels, now)
        try:
            limit = _max_open_files(os.path.join(base, "limits"))
        except OSError:
            return
        if limit:
            self.fd_ratio.set(count / limit, labels, now)

    def _wchan(self, base, name, pid, now):
        try:
            lines = Host.read(os.path.join(base, "wchan")).splitlines()
        except OSError:
            return
        for line in lines:
            self.thread_wchan.set(1, (name, pid, "" if line == "0" else line), now)

    @staticmethod
    def _io_bytes(base):
        """[(iomode, bytes)] of ``read_bytes`` and ``write_bytes`` in ``base/io``."""
        try:
            fields = colon_fields(Host.read(os.path.join(base, "io")))
        except OSError:
            return []
        found = []
        for mode, key in (("read", "read_bytes"), ("write", "write_bytes")):
            value = u64(fields[key]) if key in fields else None
            if value is not None:
                found.append((mode, value))
        return found

    def _context_switches(self, base, family, labels, now):
        try:
            fields = colon_fields(Host.read(os.path.join(base, "status")))
        except OSError:
            return
        for key in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
            if key in fields:
                self._set(family, fields[key], labels + (key,), now)

    def _threads(self, base, name, pid, now):
        task = os.path.join(base, "task")
        try:
            tids = _numbered(task)
        except OSError:
            return
        for tid in tids:
            if tid == pid:
                continue            # the main thread: the process's own numbers
            folder = os.path.join(task, tid)
            try:
                thread_name, fields = split_stat(Host.read(os.path.join(folder, "stat")))
                labels = (name, thread_name, tid)
                self._cpu(self.thread_cpu_seconds, fields, labels, now)
                self._set(self.thread_major_faults, fields[9], labels, now)
                self._set(self.thread_minor_faults, fields[7], labels, now)
            except (OSError, IndexError):
                continue            # the thread ended
            for mode, value in self._io_bytes(folder):
                self.thread_io_bytes.set(value, labels + (mode,), now)
            self._context_switches(folder, self.thread_context_switches, labels, now)


PLUGIN = ProcessExporterMetrics
