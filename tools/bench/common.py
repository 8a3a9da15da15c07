"""What every benchmark shares: the movie-log generator, the tail input's arguments, running
edgeship as a child process and reading its peak RSS, and the markdown rows. Figures go to
the README's performance table."""
import contextlib
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EDGESHIP = [sys.executable, "-m", "edgeship"]
MOVIES = ("the+matrix+1999", "alien+1979", "heat+1995", "up+2009", "arrival+2016")
EVENTS = ("watch", "rate", "pause", "stop")

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
    log is 100 MB)."""
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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_timed(args, cwd=None, timeout=600):
    """Run edgeship to its end; returns (seconds, peak RSS in MB, CompletedProcess)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(EDGESHIP + list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        raise SystemExit("edgeship failed (%d): %s" % (proc.returncode, proc.stderr[-2000:]))
    # ru_maxrss of children is the max over all waited children: see run_in_child, or
    # accept the max as an upper bound.
    return elapsed, max(peak, before) / 1024.0, proc


def run_in_child(module, function, *args):
    """Call ``module.function(*args)`` in a fresh interpreter: RUSAGE_CHILDREN's peak RSS
    is the max over every child a process waited for, so one row per interpreter makes it
    that row's own."""
    code = "import sys; sys.path.insert(0, %r); from %s import %s; %s(*%r)" % (
        ROOT, module, function, function, args)
    subprocess.run([sys.executable, "-c", code], check=True)


def count_lines(path):
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


def row(name, events, seconds, rss_mb=None):
    rate = events / seconds if seconds else 0
    rss = "" if rss_mb is None else " | %.1f MB" % rss_mb
    print("| %s | %d | %.2f s | %s events/s%s |" % (name, events, seconds,
                                                     format(int(rate), ","), rss))
    return rate
