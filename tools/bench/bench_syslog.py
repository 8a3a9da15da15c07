"""Syslog benchmark: RFC 5424 messages over TCP (octet counting, as rsyslog forwards them)
into the syslog input with the stock syslog-rfc5424 parser -> null.

    python tools/bench/bench_syslog.py [--messages 1000000] [--framing octet_counting|newline]
                                       [--fluent-bit PATH] [--tail]

This script is the sender: it builds the messages in memory first, then writes them on one
connection and shuts its side. The receiver closes the connection once it has read, parsed
and routed every message (both edgeship and Fluent Bit handle a read completely before the
next, and close at end of stream), so the row is events/s from the first byte sent to that
close, and the CPU time per event of the receiver in that window plus one flush interval
(see common.py). With a Fluent Bit binary (``--fluent-bit PATH`` or ``fluent-bit`` on PATH)
the same run is made with Fluent Bit (its stock parsers.conf, ``-R``) and the ratio follows.

``--tail``: the same messages, one a line, in a file read by the tail input with the same
parser (the regex parser path without sockets), each run to its end (``Exit_On_Eof``).
"""
import argparse
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.bench.common import (EDGESHIP, HEADER, MOVIES, Measured, fluent_bit,  # noqa: E402
                                free_port, print_ratio, row, run_timed, workdir)

FLUSH = 0.2


def messages(count, framing):
    """``count`` RFC 5424 messages with microsecond times, framed."""
    out = []
    for i in range(count):
        message = ("<%d>1 2024-03-25T10:%02d:%02d.%06d+00:00 edge-%d movies %d ID%d - "
                   "user %d watched %s" % (8 + i % 8, (i // 60) % 60, i % 60, i % 1000000,
                                           i % 4, 1000 + i % 50, i % 100, i % 100000,
                                           MOVIES[i % len(MOVIES)])).encode()
        if framing == "octet_counting":
            out.append(b"%d %s" % (len(message), message))
        else:
            out.append(message + b"\n")
    return b"".join(out)


def _connect(port, deadline):
    while time.monotonic() < deadline:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=600)
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the receiver did not start")


def measure(name, args, port, payload, count):
    receiver = Measured(args)
    sock = _connect(port, time.monotonic() + 20)
    receiver.window()
    start = time.perf_counter()
    sock.sendall(payload)
    sock.shutdown(socket.SHUT_WR)
    sock.recv(1)                        # b"": the receiver read everything and closed
    elapsed = time.perf_counter() - start
    time.sleep(FLUSH)                   # one flush interval: the null output's share
    cpu, rss = receiver.finish()
    sock.close()
    return row(name, count, elapsed, cpu, rss)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1000000)
    parser.add_argument("--framing", choices=("octet_counting", "newline"),
                        default="octet_counting")
    parser.add_argument("--fluent-bit", help="Fluent Bit binary to compare with (default: "
                                             "fluent-bit on PATH, if any)")
    parser.add_argument("--tail", action="store_true",
                        help="read the messages from a file with tail instead")
    args = parser.parse_args()
    binary = fluent_bit(args.fluent_bit)
    if args.tail:
        return tail(args.messages)
    payload = messages(args.messages, args.framing)
    common = ["-p", "mode=tcp", "-p", "listen=127.0.0.1", "-p", "format=" + args.framing,
              "-p", "parser=syslog-rfc5424", "-p", "buffer_chunk_size=256k",
              "-p", "buffer_max_size=1m"]
    with workdir():
        print(HEADER)
        port = free_port()
        ours = measure("edgeship: syslog over TCP (%s) -> null" % args.framing,
                       EDGESHIP + ["-f", str(FLUSH), "-i", "syslog", "-p", "port=%d" % port]
                       + common + ["-o", "null", "-m", "*"], port, payload, args.messages)
        if binary is None:
            return
        parsers = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(binary))),
                               "etc", "parsers.conf")
        if not os.path.exists(parsers):
            parsers = "/etc/fluent-bit/parsers.conf"
        port = free_port()
        theirs = measure("Fluent Bit: syslog over TCP (%s) -> null" % args.framing,
                         [binary, "-q", "-f", str(FLUSH), "-R", parsers, "-i", "syslog",
                          "-p", "port=%d" % port] + common + ["-o", "null", "-m", "*"],
                         port, payload, args.messages)
        print_ratio(ours, theirs)


def tail(count):
    """tail + syslog-rfc5424 -> null on a file of ``count`` messages (edgeship only)."""
    with workdir() as folder:
        log = os.path.join(folder, "syslog.log")
        with open(log, "wb") as f:
            f.write(messages(count, "newline"))
        print(HEADER)
        stock = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))), "edgeship", "etc", "parsers.conf")
        seconds, cpu, rss, _ = run_timed(
            ["-f", str(FLUSH), "-R", stock, "-i", "tail", "-p", "path=" + log,
             "-p", "read_from_head=on", "-p", "exit_on_eof=on", "-p", "parser=syslog-rfc5424",
             "-t", "syslog", "-o", "null", "-m", "*"])
        row("edgeship: tail + syslog-rfc5424 -> null", count, seconds, cpu, rss)


if __name__ == "__main__":
    main()
