"""SIGKILL an edge relaying tail -> forward (Require_ack_response) -> receiver, N times, and
count what was lost and what arrived twice.

    python tools/kill_relay.py [--kills 10] [--rate 1000] [--flush 1] [--storage memory]

A writer appends numbered lines to the tailed file at ``--rate`` lines per second the whole
time. The edge (``edgeship``: tail with a DB -> forward with acks) is SIGKILLed after a
random 1-3 s of work, ``--kills`` times, and started again at once; the receiver (an
edgeship in_forward -> file) stays up. At the end the edge runs until the receiver has every
line. Printed: lines, kills, lost (must be 0), duplicates in all and per kill (a line
received again is counted against the kill before it), next to one flush interval's worth
of lines (rate x Flush), the bound the README states.

The re-sent lines of one kill are the chunk the aggregator had acknowledged but the edge had
not yet recorded as confirmed: at most one chunk, a chunk being what the tail read in one
Flush interval (or 256 KB while it catches up a backlog after a restart).
"""
import argparse
import bisect
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.bench.common import EDGESHIP, free_port, workdir  # noqa: E402

PAD = "x" * 80


class Writer(threading.Thread):
    """Appends ``line-NNNNNNNNN`` lines to ``path`` at ``rate`` per second until stopped."""

    def __init__(self, path, rate):
        threading.Thread.__init__(self, daemon=True)
        self.path = path
        self.rate = rate
        self.written = 0
        self.done = threading.Event()

    def run(self):
        start = time.monotonic()
        with open(self.path, "a") as f:
            while not self.done.is_set():
                due = int((time.monotonic() - start) * self.rate)
                if due > self.written:
                    f.write("".join("line-%09d %s\n" % (n, PAD)
                                    for n in range(self.written, due)))
                    f.flush()
                    self.written = due
                time.sleep(0.01)


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def configs(folder, port, flush, storage):
    receiver = _write(os.path.join(folder, "receiver.conf"), """[SERVICE]
    Flush     0.2
    Grace     5
    Log_File  {folder}/receiver.log
[INPUT]
    Name   forward
    Listen 127.0.0.1
    Port   {port}
[OUTPUT]
    Name   file
    Match  *
    Path   {folder}
    File   received.jsonl
    Format plain
""".format(folder=folder, port=port))
    storage_path = "    storage.path %s/spool\n" % folder if storage == "filesystem" else ""
    edge = _write(os.path.join(folder, "edge.conf"), """[SERVICE]
    Flush          {flush}
    Grace          5
    Log_File       {folder}/edge.log
    scheduler.base 1
    scheduler.cap  2
{storage_path}[INPUT]
    Name             tail
    Path             {folder}/app.log
    Read_From_Head   on
    Refresh_Interval 1
    DB               {folder}/tail.db
    Tag              app
    storage.type     {storage}
[OUTPUT]
    Name                 forward
    Match                *
    Host                 127.0.0.1
    Port                 {port}
    Require_ack_response on
    Retry_Limit          no_limits
""".format(folder=folder, port=port, flush=flush, storage=storage,
           storage_path=storage_path))
    return receiver, edge


def start(conf, folder):
    return subprocess.Popen(EDGESHIP + ["-c", conf], cwd=folder, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def received(path):
    """Line numbers in the order the receiver wrote them."""
    if not os.path.exists(path):
        return []
    numbers = []
    with open(path) as f:
        for line in f:
            if line.endswith("\n"):
                numbers.append(int(json.loads(line)["log"][5:14]))
    return numbers


def settled_count(path):
    """Lines the receiver wrote, once it has written what the killed edge sent it (the count
    stays the same for a second): what comes after is the next run's."""
    count = len(received(path))
    while True:
        time.sleep(1.0)
        now = len(received(path))
        if now == count:
            return count
        count = now


def duplicates_per_kill(numbers, restarts):
    """Lines received again, per kill: a line whose number came before is a duplicate of the
    kill before it (``restarts[k]``: how many lines the receiver had written when the edge
    was started again after kill k)."""
    counts = [0] * len(restarts)
    seen = set()
    for position, number in enumerate(numbers):
        if number in seen:
            kill = bisect.bisect_right(restarts, position) - 1
            counts[max(kill, 0)] += 1
        seen.add(number)
    return counts


def measure(kills=10, rate=1000, flush=1.0, storage="memory", seed=1, up=(1.0, 3.0),
            timeout=300, folder=None):
    """Run the scenario; returns a dict of the figures."""
    rnd = random.Random(seed)
    with workdir("edgeship-kill-relay-") as tmp:
        folder = folder or tmp
        port = free_port()
        receiver_conf, edge_conf = configs(folder, port, flush, storage)
        writer = Writer(os.path.join(folder, "app.log"), rate)
        open(writer.path, "w").close()
        receiver = start(receiver_conf, folder)
        edge = None
        try:
            time.sleep(0.5)  # the receiver listening; the edge retries until it is
            writer.start()
            out = os.path.join(folder, "received.jsonl")
            restarts = []
            edge = start(edge_conf, folder)
            for kill in range(kills):
                time.sleep(rnd.uniform(*up))
                os.killpg(edge.pid, signal.SIGKILL)
                edge.wait()
                if kill == kills - 1:
                    writer.done.set()
                    writer.join()
                restarts.append(settled_count(out))
                edge = start(edge_conf, folder)
            deadline = time.monotonic() + timeout
            wanted = set(range(writer.written))
            while time.monotonic() < deadline and not wanted <= set(received(out)):
                time.sleep(0.5)
            for proc in (edge, receiver):
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
            numbers = received(out)
        finally:
            writer.done.set()
            for proc in (edge, receiver):
                if proc is not None and proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
    per_kill = duplicates_per_kill(numbers, restarts)
    return {"lines": writer.written, "kills": kills, "storage": storage, "flush": flush,
            "rate": rate, "lost": len(wanted - set(numbers)),
            "duplicates": len(numbers) - len(set(numbers)), "duplicates_per_kill": per_kill,
            "flush_interval_lines": int(rate * flush)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--rate", type=int, default=1000, help="lines per second written")
    parser.add_argument("--flush", type=float, default=1.0, help="the edge's Flush")
    parser.add_argument("--storage", choices=("memory", "filesystem"), default="memory")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    figures = measure(args.kills, args.rate, args.flush, args.storage, args.seed)
    print(json.dumps(figures))
    per_kill = figures["duplicates_per_kill"]
    print("| %s | %d lines/s, Flush %s | %d lines, %d kills | lost %d | duplicates %d: "
          "%.0f per kill on average, %d at most (one Flush interval = %d lines) |" % (
              figures["storage"], figures["rate"], figures["flush"], figures["lines"],
              figures["kills"], figures["lost"], figures["duplicates"],
              figures["duplicates"] / float(max(1, figures["kills"])), max(per_kill or [0]),
              figures["flush_interval_lines"]))
    return 1 if figures["lost"] else 0


if __name__ == "__main__":
    sys.exit(main())
