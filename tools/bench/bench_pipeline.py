"""Issue 2 benchmark: tail + json parser -> null and -> file (plain), idle RSS, start-up.

    python tools/bench/bench_pipeline.py [--lines 1000000]

Each measured run is a separate child process (its own peak RSS and CPU time, see
common.py). Prints markdown rows for the README's performance table.
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.bench.common import (CHILD_ENV, EDGESHIP, HEADER, count_lines,  # noqa: E402
                                generate_lines, row, run_timed, tail_args, workdir,
                                write_parsers)


def one(kind, lines, log, parsers, out_dir):
    source = ["-f", "0.2"] + tail_args(log, parsers)
    if kind == "null":
        secs, cpu, rss, _ = run_timed(source + ["-o", "null", "-m", "*"])
        row("tail + json -> null", lines, secs, cpu, rss)
    else:
        out = os.path.join(out_dir, "out.jsonl")
        if os.path.exists(out):
            os.unlink(out)
        secs, cpu, rss, _ = run_timed(source + [
            "-o", "file", "-m", "*", "-p", "path=" + out_dir, "-p", "file=out.jsonl",
            "-p", "format=plain"])
        written = count_lines(out)
        assert written == lines, "file output has %d of %d lines" % (written, lines)
        row("tail + json -> file (plain)", lines, secs, cpu, rss)


def idle_rss():
    proc = subprocess.Popen(EDGESHIP + ["-i", "dummy", "-o", "null", "-q"], env=CHILD_ENV)
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
        subprocess.run(EDGESHIP + ["--version"], check=True, capture_output=True, env=CHILD_ENV)
        took = time.perf_counter() - start
        best = took if best is None else min(best, took)
    print("| `edgeship --version` | best of 10: %.0f ms |" % (best * 1000))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1000000)
    args = ap.parse_args()
    with workdir() as tmp:
        log = os.path.join(tmp, "movies.log")
        parsers = write_parsers(tmp)
        generate_lines(log, args.lines)
        print(HEADER)
        for kind in ("null", "file"):
            one(kind, args.lines, log, parsers, tmp)
        idle_rss()
        startup()


if __name__ == "__main__":
    main()
