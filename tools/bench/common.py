"""What every benchmark shares: the movie-log generator, running edgeship as a child process
and reading its peak RSS. Figures go to the README's performance table."""
import os
import random
import resource
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


def workdir(prefix="edgeship-bench-"):
    return tempfile.mkdtemp(prefix=prefix)


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
    # ru_maxrss of children is the max over all waited children: run one child per process
    # (each benchmark row in its own interpreter) or accept the max as an upper bound.
    return elapsed, max(peak, before) / 1024.0, proc


def count_lines(path):
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


def row(name, events, seconds, rss_mb=None):
    rate = events / seconds if seconds else 0
    rss = "" if rss_mb is None else " | %.1f MB" % rss_mb
    line = "| %s | %d | %.2f s | %s events/s%s |" % (name, events, seconds, format(int(rate), ","), rss)
    print(line)
    return rate
