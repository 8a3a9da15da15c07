"""Issue 11 benchmark: what reading the host costs. cpu, mem, disk, netif (lo) and proc on
this machine's /proc, each collecting every 10 ms for a few seconds (an exec one-shot
``sleep`` ends the run through Exit_After_Oneshot), records printed as JSON lines.

    python tools/bench/bench_host_inputs.py [--seconds 5]

Prints one markdown row: collections (records), their rate, and the CPU time per collection
of the whole process (start-up included, so a longer run gives a lower figure).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.bench.common import HEADER, row, run_timed, workdir  # noqa: E402

INPUTS = (("cpu", ""), ("mem", ""), ("disk", ""), ("netif", "    Interface lo\n"),
          ("proc", "    Proc_Name python3\n"))


def config(folder, seconds):
    text = "[SERVICE]\n    Flush 0.5\n    Log_Level error\n"
    for name, extra in INPUTS:
        text += ("[INPUT]\n    Name %s\n%s    Interval_Sec 0\n    Interval_NSec 10000000\n"
                 % (name, extra))
    text += ("[INPUT]\n    Name exec\n    Tag clock\n    Command sleep %d\n"
             "    Exit_After_Oneshot on\n" % seconds)
    text += "[OUTPUT]\n    Name stdout\n    Match *\n    Format json_lines\n"
    path = os.path.join(folder, "host.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    with workdir() as folder:
        seconds, cpu, rss, out = run_timed(["-c", config(folder, args.seconds)])
    records = out.count("\n")
    print(HEADER)
    row("cpu + mem + disk + netif + proc every 10 ms -> stdout", records, seconds, cpu, rss)


if __name__ == "__main__":
    main()
