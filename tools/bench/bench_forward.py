"""Forward benchmark: tail + json -> forward -> in_forward -> file, two processes.

    python tools/bench/bench_forward.py [--lines 1000000] [--format msgpack|plain|out_file]
                                        [--fluent-bit PATH] [--only NAME] [--input tail|dummy]

As in production: the sender (tail reading N JSON lines with the json parser, or the dummy
input with many Copies) forwards to the receiver (in_forward -> file output), a process of
its own. Each row is events/s from the sender's start until the receiver's file holds all N
records (this script counts them as they are written), the CPU time per event of both
processes together (see common.py: the sender's whole run, the receiver's from the
sender's start; shown as the sum, sender + receiver) and the peak RSS of each (sender /
receiver). Rows with and without Require_ack_response, Workers and gzip.

With a Fluent Bit binary (``--fluent-bit PATH``, or ``fluent-bit`` on PATH) the same
pipelines run with Fluent Bit as sender and receiver in the same run, and the ratio of
edgeship's figures to Fluent Bit's follows.
"""
import os
import sys
import time

import msgpack

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.bench.common import (EDGESHIP, HEADER, Measured, comparison_parser,  # noqa: E402
                                fluent_bit, free_port, generate_lines, print_ratio, row,
                                tail_args, workdir, write_parsers)

VARIANTS = (
    ("forward", []),
    ("forward + ack", ["require_ack_response=on", "workers=1"]),
    ("forward + ack, Workers 2", ["require_ack_response=on", "workers=2"]),
    ("forward + gzip", ["compress=gzip"]),
    ("forward + gzip, compress.thread", ["compress=gzip", "compress.thread=on"]),
    ("forward + gzip + ack", ["compress=gzip", "require_ack_response=on"]),
)


class Written:
    """Counts the records of the receiver's output file as it grows."""

    def __init__(self, path, fmt):
        self.path = path
        self.fmt = fmt
        self.count = 0
        self.offset = 0
        self.unpacker = msgpack.Unpacker(raw=True, strict_map_key=False,
                                         max_buffer_size=64 * 1024 * 1024)

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return self.count
        self.offset += len(data)
        if self.fmt != "msgpack":
            self.count += data.count(b"\n")
            return self.count
        self.unpacker.feed(data)
        try:
            while True:
                self.unpacker.skip()
                self.count += 1
        except msgpack.OutOfData:
            pass
        return self.count


def edgeship_sender(source, port, options):
    args = EDGESHIP + ["-f", "0.2"] + source + [
        "-o", "forward", "-m", "*", "-p", "host=127.0.0.1", "-p", "port=%d" % port,
        "-p", "retry_limit=no_limits"]
    for option in options:
        args += ["-p", option]
    return args


def edgeship_receiver(port, out_dir, fmt):
    return EDGESHIP + ["-f", "0.2", "-i", "forward", "-p", "listen=127.0.0.1",
                       "-p", "port=%d" % port, "-o", "file", "-m", "*", "-p", "path=" + out_dir,
                       "-p", "file=out", "-p", "format=" + fmt]


def fluent_bit_sender(binary, log, parsers, port, options):
    args = [binary, "-q", "-f", "0.2", "-R", parsers, "-i", "tail", "-p", "path=" + log,
            "-p", "read_from_head=on", "-p", "parser=json", "-t", "bench", "-o", "forward",
            "-m", "*", "-p", "host=127.0.0.1", "-p", "port=%d" % port,
            "-p", "retry_limit=no_limits"]
    for option in options:
        args += ["-p", option]
    return args


def fluent_bit_receiver(binary, port, out_dir, fmt):
    return [binary, "-q", "-f", "0.2", "-i", "forward", "-p", "listen=127.0.0.1",
            "-p", "port=%d" % port, "-o", "file", "-m", "*", "-p", "path=" + out_dir,
            "-p", "file=out", "-p", "format=" + fmt]


def _listening(port, deadline):
    import socket
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def measure(name, lines, port, sender_args, receiver_args, out_dir, fmt):
    """One row: start the receiver, then the sender, until the file holds ``lines``
    records. Returns (events/s, CPU us per event)."""
    out = os.path.join(out_dir, "out")
    if os.path.exists(out):
        os.unlink(out)
    receiver = Measured(receiver_args)
    if not _listening(port, time.monotonic() + 10):
        receiver.finish()
        raise SystemExit("%s: the receiver did not start" % name)
    written = Written(out, fmt)
    receiver.window()
    start = time.perf_counter()
    sender = Measured(sender_args)
    deadline = time.monotonic() + 600
    while written.poll() < lines and time.monotonic() < deadline:
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    sender_cpu, sender_rss = sender.finish()
    receiver_cpu, receiver_rss = receiver.finish()
    if written.count < lines:
        raise SystemExit("%s: the receiver wrote %d of %d records" % (name, written.count, lines))
    return row(name, lines, elapsed, (sender_cpu, receiver_cpu), (sender_rss, receiver_rss))


def main():
    parser = comparison_parser(__doc__)
    parser.add_argument("--input", choices=("tail", "dummy"), default="tail")
    parser.add_argument("--format", choices=("msgpack", "plain", "out_file"), default="msgpack",
                        help="the receiver's file output format")
    args = parser.parse_args()
    binary = fluent_bit(args.fluent_bit)
    with workdir() as tmp:
        log = os.path.join(tmp, "movies.log")
        parsers = write_parsers(tmp)
        if args.input == "tail":
            generate_lines(log, args.lines)
            source = tail_args(log, parsers, exit_on_eof=False, tag="bench")
        else:
            copies = 10000
            source = ["-i", "dummy", "-p", "copies=%d" % copies, "-p", "rate=1000",
                      "-p", "samples=%d" % (args.lines // copies), "-p", "flush_on_startup=on",
                      "-p", 'dummy={"user":12345,"movie":"the+matrix+1999","rating":4,'
                                '"event":"watch"}', "-t", "bench"]
        print("receiver: in_forward -> file, Format %s" % args.format)
        print(HEADER)
        for name, options in VARIANTS:
            if args.only and args.only != name:
                continue
            port = free_port()
            ours = measure("edgeship: %s (%s)" % (name, args.input), args.lines, port,
                           edgeship_sender(source, port, options),
                           edgeship_receiver(port, tmp, args.format), tmp, args.format)
            if binary is None or args.input != "tail" or "compress.thread=on" in options:
                continue        # (compress.thread is edgeship's own)
            port = free_port()
            theirs = measure("Fluent Bit: %s (tail)" % name, args.lines, port,
                             fluent_bit_sender(binary, log, parsers, port, options),
                             fluent_bit_receiver(binary, port, tmp, args.format), tmp,
                             args.format)
            print_ratio(ours, theirs, name)


if __name__ == "__main__":
    main()
