"""Issue 12 benchmark: tail + json -> tcp, syslog and gelf outputs over TCP into a raw socket
receiver, edgeship and (when a binary is given or on PATH) Fluent Bit in the same run.

    python tools/bench/bench_stream.py [--lines 1000000] [--fluent-bit PATH] [--only NAME]

Each row times from the sender's start until the receiver (a thread of this process
counting message delimiters: newline, NUL, or msgpack entries) holds every record. CPU per
event is the sender's. Prints markdown rows for the README's performance table.
"""
import os
import socket
import sys
import threading

import msgpack

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.bench.common import (EDGESHIP, HEADER, comparison_parser, fluent_bit,  # noqa: E402
                                measure_delivery, movie_log, print_ratio, workdir)

# name -> (output options, what ends a message on the wire: bytes, or None for msgpack)
VARIANTS = [
    ("tcp json_lines", ["name=tcp", "format=json_lines"], b"\n"),
    ("tcp msgpack", ["name=tcp", "format=msgpack"], None),
    ("syslog rfc5424 tcp", ["name=syslog", "mode=tcp", "syslog_message_key=movie",
                            "syslog_appname_key=event"], b"\n"),
    ("gelf tcp", ["name=gelf", "mode=tcp", "gelf_short_message_key=movie"], b"\0"),
]


class Receiver:
    """A TCP listener counting messages on every connection."""

    def __init__(self, delimiter):
        self.delimiter = delimiter
        self.count = 0
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn):
        unpacker = msgpack.Unpacker() if self.delimiter is None else None
        while True:
            data = conn.recv(1 << 20)
            if not data:
                return
            if unpacker is None:
                found = data.count(self.delimiter)
            else:
                unpacker.feed(data)
                found = 0
                try:
                    while True:
                        unpacker.skip()
                        found += 1
                except msgpack.OutOfData:
                    pass
            with self.lock:
                self.count += found

    def close(self):
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()


def sender_args(binary, log, parsers, port, options):
    head = [binary, "-q"] if binary else EDGESHIP
    args = head + ["-f", "0.2", "-R", parsers, "-i", "tail", "-p", "path=" + log,
                   "-p", "read_from_head=on", "-p", "parser=json", "-t", "bench"]
    name = options[0].split("=", 1)[1]
    args += ["-o", name, "-m", "*", "-p", "host=127.0.0.1", "-p", "port=%d" % port,
             "-p", "retry_limit=no_limits"]
    for option in options[1:]:
        args += ["-p", option]
    return args


def measure(label, lines, binary, log, parsers, options, delimiter):
    receiver = Receiver(delimiter)
    try:
        return measure_delivery(label, lines,
                                sender_args(binary, log, parsers, receiver.port, options),
                                lambda: receiver.count)
    finally:
        receiver.close()


def main():
    args = comparison_parser(__doc__).parse_args()
    binary = fluent_bit(args.fluent_bit)
    with workdir() as tmp:
        log, parsers = movie_log(tmp, args.lines)
        print(HEADER)
        for name, options, delimiter in VARIANTS:
            if args.only and args.only != name:
                continue
            ours = measure("edgeship: " + name, args.lines, None, log, parsers, options,
                           delimiter)
            if binary is None:
                continue
            theirs = measure("Fluent Bit: " + name, args.lines, binary, log, parsers, options,
                             delimiter)
            print_ratio(ours, theirs, name)


if __name__ == "__main__":
    main()
