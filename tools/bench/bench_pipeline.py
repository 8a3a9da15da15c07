"""Issue 2 benchmark: tail + json parser -> null and -> file (plain), idle RSS, start-up.

    python tools/bench/bench_pipeline.py [--lines 1000000]

Each measured run is a separate child process, so peak RSS is per run. Prints markdown rows
for the README's performance table.
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.bench.common import (EDGESHIP, JSON_PARSER, count_lines, generate_lines,  # noqa: E402
                                row, run_timed, workdir)


def tail_args(log, parsers, extra):
    return ["-R", parsers, "-f", "0.2", "-i", "tail", "-p", "path=" + log,
            "-p", "read_from_head=on", "-p", "exit_on_eof=on", "-p", "parser=json",
            "-t", "movies"] + extra


def measure(kind, lines, log, parsers, out_dir):
    """One row, in a child interpreter so that RUSAGE_CHILDREN is this run's alone."""
    code = ("import sys; sys.path.insert(0, %r); from tools.bench.bench_pipeline import one; "
            "one(%r, %d, %r, %r, %r)" % (os.getcwd(), kind, lines, log, parsers, out_dir))
    subprocess.run([sys.executable, "-c", code], check=True)


def one(kind, lines, log, parsers, out_dir):
    if kind == "null":
        secs, rss, _ = run_timed(tail_args(log, parsers, ["-o", "null", "-m", "*"]))
        row("tail + json -> null", lines, secs, rss)
    else:
        secs, rss, _ = run_timed(tail_args(log, parsers, [
            "-o", "file", "-m", "*", "-p", "path=" + out_dir, "-p", "file=out.jsonl",
            "-p", "format=plain"]))
        written = count_lines(os.path.join(out_dir, "out.jsonl"))
        assert written == lines, "file output has %d of %d lines" % (written, lines)
        row("tail + json -> file (plain)", lines, secs, rss)


def idle_rss():
    proc = subprocess.Popen(EDGESHIP + ["-i", "dummy", "-o", "null", "-q"])
    time.sleep(3)
    with open("/proc/%d/status" % proc.pid) as f:
        status = dict(line.split(":", 1) for line in f)
    proc.terminate()
    proc.wait()
    print("| idle `edgeship -i dummy -o null` | VmRSS %s | VmHWM %s |" % (
        status["VmRSS"].strip(), status["VmHWM"].strip()))


def startup():
    best = None
    for _ in range(10):
        start = time.perf_counter()
        subprocess.run(EDGESHIP + ["--version"], check=True, capture_output=True)
        took = time.perf_counter() - start
        best = took if best is None else min(best, took)
    print("| `edgeship --version` | best of 10: %.0f ms |" % (best * 1000))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1000000)
    args = ap.parse_args()
    tmp = workdir()
    log = os.path.join(tmp, "movies.log")
    parsers = os.path.join(tmp, "parsers.conf")
    with open(parsers, "w") as f:
        f.write(JSON_PARSER)
    generate_lines(log, args.lines)
    measure("null", args.lines, log, parsers, tmp)
    measure("file", args.lines, log, parsers, tmp)
    idle_rss()
    startup()


if __name__ == "__main__":
    main()
