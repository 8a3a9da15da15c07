"""Issue 5 benchmark: tail + json -> forward -> an edgeship in_forward -> counter.

    python tools/bench/bench_forward.py [--lines 1000000] [--input tail|dummy]

Two processes, as in production: the sender (tail reading N JSON lines with the json parser,
or the dummy input with many Copies) and the receiver (in_forward; the counter output is
the null output plus one line per chunk, which is how the script knows the receiver has all
N records). Each row is events/s from the sender's start until the receiver counted N, with
and without Require_ack_response and gzip. The goal is >= 300,000 events/s without gzip.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.bench.common import (EDGESHIP, free_port, generate_lines, row,  # noqa: E402
                                tail_args, workdir, write_parsers)

VARIANTS = (
    ("forward", []),
    ("forward + ack", ["-p", "require_ack_response=on"]),
    ("forward + gzip", ["-p", "compress=gzip"]),
    ("forward + gzip + ack", ["-p", "compress=gzip", "-p", "require_ack_response=on"]),
)


class Receiver:
    """edgeship -i forward -o counter; counts the records it reports."""

    def __init__(self, port):
        self.count = 0
        self.proc = subprocess.Popen(
            EDGESHIP + ["-f", "0.2", "-i", "forward", "-p", "listen=127.0.0.1",
                        "-p", "port=%d" % port, "-o", "counter", "-m", "*"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("the receiver did not start")

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.count += json.loads(line)["log_records"]
            except (ValueError, KeyError):
                pass

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def sender_args(kind, lines, log, parsers, port):
    if kind == "tail":
        source = tail_args(log, parsers, exit_on_eof=False, tag="bench")
    else:
        copies = 10000
        source = ["-i", "dummy", "-p", "copies=%d" % copies, "-p", "rate=1000",
                  "-p", "samples=%d" % (lines // copies), "-p", "flush_on_startup=on",
                  "-p", 'dummy={"user":12345,"movie":"the+matrix+1999","rating":4,'
                            '"event":"watch"}', "-t", "bench"]
    return EDGESHIP + ["-f", "0.2"] + source + [
        "-o", "forward", "-m", "*", "-p", "host=127.0.0.1", "-p", "port=%d" % port,
        "-p", "retry_limit=no_limits"]


def measure(name, kind, lines, log, parsers, extra):
    port = free_port()
    receiver = Receiver(port)
    start = time.perf_counter()
    sender = subprocess.Popen(sender_args(kind, lines, log, parsers, port) + extra,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while receiver.count < lines and time.monotonic() < deadline:
            time.sleep(0.01)
        elapsed = time.perf_counter() - start
    finally:
        sender.kill()
        sender.wait()
        receiver.stop()
    if receiver.count < lines:
        raise SystemExit("%s: the receiver got %d of %d records" % (name, receiver.count, lines))
    return row("%s (%s)" % (name, kind), lines, elapsed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1000000)
    parser.add_argument("--input", choices=("tail", "dummy"), default="tail")
    parser.add_argument("--only", help="run only the variants whose name contains this")
    args = parser.parse_args()
    with workdir() as tmp:
        log = os.path.join(tmp, "movies.log")
        parsers = write_parsers(tmp)
        if args.input == "tail":
            generate_lines(log, args.lines)
        print("| pipeline | events | time | rate |")
        print("|---|---|---|---|")
        for name, extra in VARIANTS:
            if args.only and args.only not in name:
                continue
            measure(name, args.input, args.lines, log, parsers, extra)


if __name__ == "__main__":
    main()
