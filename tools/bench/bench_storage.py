"""Issue 4 benchmark: what the spool costs. tail N lines -> null with memory storage and with
filesystem storage (storage.sync normal and full), and tail -> a dead output with filesystem
storage (the whole file becomes a backlog on disk): events/s and peak RSS against the memory
budget.

    python tools/bench/bench_storage.py [--lines 1000000] [--budget-mb 8]

Each row is a separate child process (its own peak RSS and CPU time). Prints markdown rows.
"""
import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.bench.common import (HEADER, generate_lines, row, run_timed,  # noqa: E402
                                tail_args, workdir)

ROWS = ("memory", "filesystem", "filesystem-full", "dead-output")


def args_for(kind, log, spool, budget):
    tail = ["-f", "0.2"] + tail_args(log)
    if kind == "memory":
        return tail + ["-p", "mem_buf_limit=%d" % budget, "-o", "null", "-m", "*"]
    service = ["-b", spool, "-p", "storage.type=filesystem"]
    if kind == "dead-output":
        # forward to a port nobody listens on: every flush fails, everything stays spooled.
        return tail + service + ["-o", "forward", "-m", "*", "-p", "host=127.0.0.1",
                                 "-p", "port=9", "-p", "retry_limit=no_limits"]
    return tail + service + ["-o", "null", "-m", "*"]


def one(kind, lines, log, spool, budget):
    shutil.rmtree(spool, ignore_errors=True)
    conf = os.path.join(os.path.dirname(log), "service.conf")
    with open(conf, "w") as f:
        f.write("[SERVICE]\n    Grace 1\n    storage.backlog.mem_limit %d\n    storage.sync %s\n"
                % (budget, "full" if kind == "filesystem-full" else "normal"))
    secs, cpu, rss, _ = run_timed(["-c", conf] + args_for(kind, log, spool, budget))
    name = {"memory": "tail -> null, memory storage",
            "filesystem": "tail -> null, filesystem storage (sync normal)",
            "filesystem-full": "tail -> null, filesystem storage (sync full)",
            "dead-output": "tail -> dead forward, filesystem storage (all spooled)"}[kind]
    row(name + ", budget %d MB" % (budget // 1000000), lines, secs, cpu, rss)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1000000)
    ap.add_argument("--budget-mb", type=int, default=8)
    ap.add_argument("--rows", default=",".join(ROWS))
    args = ap.parse_args()
    with workdir() as tmp:
        log = os.path.join(tmp, "movies.log")
        generate_lines(log, args.lines)
        print(HEADER)
        for kind in args.rows.split(","):
            one(kind, args.lines, log, os.path.join(tmp, "spool"), args.budget_mb * 1000 * 1000)


if __name__ == "__main__":
    main()
