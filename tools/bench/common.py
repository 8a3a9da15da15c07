"""What every benchmark shares: the movie-log generator, the tail input's arguments, running
edgeship (or Fluent Bit) as measured child processes, and the markdown rows. Figures go to
the README's performance table.

Every row gives events/s and the CPU time per event: user + system time of every process
of the pipeline (all their threads), from ``os.wait4`` once a process has ended (killed or
not), minus what it used before the measured window when it was started earlier (read from
``/proc/PID/stat``). Peak RSS is each process's own VmHWM, read until it ends. edgeship
runs from compiled bytecode, as installed (``compile_edgeship``), whatever
PYTHONDONTWRITEBYTECODE says: compiling every module at each start would count in both.
"""
import argparse
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EDGESHIP = [sys.executable, "-m", "edgeship"]
MOVIES = ("the+matrix+1999", "alien+1979", "heat+1995", "up+2009", "arrival+2016")
EVENTS = ("watch", "rate", "pause", "stop")
_TICKS = os.sysconf("SC_CLK_TCK")
CHILD_ENV = dict(os.environ)
CHILD_ENV.pop("PYTHONDONTWRITEBYTECODE", None)

JSON_PARSER = """[PARSER]
    Name   json
    Format json
"""


def generate_lines(path, count, seed=7):
    """Write ``count`` JSON lines like
    {"ts":"2024-03-25T10:00:00Z","user":12345,"movie":"the+matrix+1999","rating":4,"event":"watch"}"""
    rnd = random.Random(seed)
    with open(path, "w") as f:
        batch = []
        for i in range(count):
            batch.append('{"ts":"2024-03-25T10:%02d:%02dZ","user":%d,"movie":"%s","rating":%d,'
                         '"event":"%s"}\n' % ((i // 60) % 60, i % 60, rnd.randrange(100000),
                                              rnd.choice(MOVIES), rnd.randrange(1, 6),
                                              rnd.choice(EVENTS)))
            if len(batch) == 10000:
                f.write("".join(batch))
                batch = []
        f.write("".join(batch))


@contextlib.contextmanager
def workdir(prefix="edgeship-bench-"):
    """A temporary folder for the generated log and outputs, removed afterwards (a 1M-line
    log is 100 MB). Compiles edgeship first (see the module docstring)."""
    compile_edgeship()
    path = tempfile.mkdtemp(prefix=prefix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_parsers(folder):
    """A parsers file with the ``json`` parser; returns its path."""
    path = os.path.join(folder, "parsers.conf")
    with open(path, "w") as f:
        f.write(JSON_PARSER)
    return path


def tail_args(log, parsers=None, exit_on_eof=True, tag="movies"):
    """edgeship arguments for a tail input reading ``log`` from its head (with the json
    parser of ``parsers`` when given); exit_on_eof makes the run end with the file."""
    args = ["-R", parsers] if parsers else []
    args += ["-i", "tail", "-p", "path=" + log, "-p", "read_from_head=on"]
    if exit_on_eof:
        args += ["-p", "exit_on_eof=on"]
    if parsers:
        args += ["-p", "parser=json"]
    return args + ["-t", tag]


def fluent_bit(path=None):
    """The Fluent Bit binary to compare with: ``path``, else ``fluent-bit`` on PATH, else
    None (the Fluent Bit rows are left out)."""
    return path or shutil.which("fluent-bit")


def compile_edgeship():
    """Write the bytecode of the edgeship the benchmarks run (the one ``python -m
    edgeship`` finds from the current directory)."""
    subprocess.run([sys.executable, "-c", "import compileall, os, edgeship; "
                    "compileall.compile_dir(os.path.dirname(edgeship.__file__), quiet=1)"],
                   check=True, env=CHILD_ENV)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid, known=0.0):
    """VmHWM of a running process in MB (``known`` once it has exited). Read from /proc,
    not from ``ru_maxrss``: that one starts from the forking parent's size."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return max(known, int(line.split()[1]) / 1024.0)
    except OSError:
        pass
    return known


def cpu_seconds(pid):
    """User + system CPU seconds a running process used so far (all its threads)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS   # utime, stime (fields 14, 15)


class Measured:
    """A child process whose CPU time and peak RSS are measured: ``window()`` marks the
    start of the measured time (default: its start), ``finish()`` ends it (a kill unless it
    exits by itself) and returns (CPU seconds in the window, peak RSS in MB)."""
    POLL = 0.01

    def __init__(self, args, stdout=None, stderr=None, cwd=None):
        self.proc = subprocess.Popen(args, stdout=stdout or subprocess.DEVNULL,
                                     stderr=stderr or subprocess.DEVNULL, cwd=cwd,
                                     env=CHILD_ENV)
        self.pid = self.proc.pid
        self.before = 0.0
        self.returncode = None

    def window(self):
        self.before = cpu_seconds(self.pid)

    def finish(self, kill=True, timeout=None):
        ended = 0
        peak = 0.0
        if not kill and timeout is not None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                peak = peak_rss_mb(self.pid, peak)
                ended, status, usage = os.wait4(self.pid, os.WNOHANG)
                if ended:
                    break
                time.sleep(self.POLL)
            else:
                kill = True     # out of time
        if kill:
            peak = peak_rss_mb(self.pid, peak)
            os.kill(self.pid, signal.SIGKILL)
        if not ended:
            _, status, usage = os.wait4(self.pid, 0)
        self.proc.returncode = self.returncode = os.waitstatus_to_exitcode(status)
        return usage.ru_utime + usage.ru_stime - self.before, peak


def comparison_parser(doc):
    """The arguments of a benchmark that runs Fluent Bit too, when there is one: ``--lines``,
    ``--fluent-bit``, ``--only`` (the caller may add its own)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1000000)
    parser.add_argument("--fluent-bit", help="Fluent Bit binary to compare with (default: "
                                             "fluent-bit on PATH, if any)")
    parser.add_argument("--only", help="run only the variant of this name")
    return parser


def movie_log(folder, lines):
    """(path of a movie log of ``lines`` JSON lines, path of the json parser's file), both
    written in ``folder``."""
    log = os.path.join(folder, "movies.log")
    generate_lines(log, lines)
    return log, write_parsers(folder)


def measure_delivery(name, events, args, received, timeout=600):
    """One row: run the sender ``args`` until ``received()`` (what a receiver of this process
    counted so far) reaches ``events``; its CPU time and peak RSS. Returns row()'s figures."""
    start = time.perf_counter()
    sender = Measured(args)
    deadline = time.monotonic() + timeout
    while received() < events and time.monotonic() < deadline:
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    cpu, rss = sender.finish()
    if received() < events:
        raise SystemExit("%s: the receiver counted %d of %d records"
                         % (name, received(), events))
    return row(name, events, elapsed, cpu, rss)


def run_timed(args, cwd=None, timeout=600):
    """Run edgeship to its end; returns (seconds, CPU seconds, peak RSS in MB, stdout)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = Measured(EDGESHIP + list(args), stdout=out, stderr=err, cwd=cwd)
        cpu, rss = child.finish(kill=False, timeout=timeout)
        elapsed = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise SystemExit("edgeship failed (%d): %s" % (child.returncode,
                                                           err.read()[-2000:].decode()))
        return elapsed, cpu, rss, out.read().decode()


def count_lines(path):
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


HEADER = ("| benchmark | events | time | events/s | CPU per event | peak RSS |\n"
          "|---|---|---|---|---|---|")


def row(name, events, seconds, cpu=None, rss_mb=None):
    """Print a markdown row; returns (events/s, CPU us per event or None). ``cpu`` and
    ``rss_mb``: one figure, or one per process (CPU shown as the sum and its parts)."""
    rate = events / seconds if seconds else 0
    parts = ""
    if isinstance(cpu, tuple):
        parts = " (%s)" % " + ".join("%.2f" % (c * 1e6 / events) for c in cpu)
        cpu = sum(cpu)
    per_event = cpu * 1e6 / events if cpu is not None and events else None
    if rss_mb is None:
        rss = ""
    elif isinstance(rss_mb, tuple):
        rss = " / ".join("%.1f" % mb for mb in rss_mb) + " MB"
    else:
        rss = "%.1f MB" % rss_mb
    print("| %s | %d | %.2f s | %s | %s | %s |" % (
        name, events, seconds, format(int(rate), ","),
        "" if per_event is None else "%.2f us%s" % (per_event, parts), rss))
    sys.stdout.flush()
    return rate, per_event


def print_ratio(ours, theirs, name=None):
    """The markdown row comparing edgeship's row() figures with Fluent Bit's."""
    print("| ratio edgeship / Fluent Bit%s | | | %.2fx | %.2fx | |"
          % (": " + name if name else "", ours[0] / theirs[0], ours[1] / theirs[1]))
