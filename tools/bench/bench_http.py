"""HTTP outputs benchmark: tail + json -> http json_lines, -> es _bulk, -> opentelemetry
(OTLP/HTTP protobuf), and -> azure (a signed JSON array), to a local receiver.

    python tools/bench/bench_http.py [--lines 1000000] [--fluent-bit PATH] [--only NAME]

The sender (tail reading N JSON lines with the json parser) posts to a receiver on loopback
that this script runs in a thread (the same for edgeship and Fluent Bit): it reads each
request, counts its records (JSON lines, bulk action/source pairs, or the log records of an
ExportLogsServiceRequest, decoded with opentelemetry-proto) and answers 200 (es:
``{"errors":false,...}``). Each row is events/s from the sender's start until the receiver
counted all N records (azure: the objects of its JSON array, by their leading time key), the sender's CPU time per event (the receiver's is left out: it is
the same for both) and its peak RSS.

With a Fluent Bit binary (``--fluent-bit PATH``, or ``fluent-bit`` on PATH) the same
pipelines run with Fluent Bit as the sender in the same run, and the ratio of edgeship's
figures to Fluent Bit's follows.
"""
import asyncio
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.bench.common import (EDGESHIP, HEADER, comparison_parser, fluent_bit,  # noqa: E402
                                free_port, measure_delivery, movie_log, print_ratio,
                                tail_args, workdir)

VARIANTS = (
    ("http json_lines", "lines", ["-o", "http", "-p", "format=json_lines", "-p", "uri=/in"]),
    ("es bulk", "bulk", ["-o", "es", "-p", "index=bench", "-p", "suppress_type_name=on"]),
    ("opentelemetry", "otlp", ["-o", "opentelemetry"]),
    # The host holds the customer id, so both keep it as given (Fluent Bit's rule).
    ("azure", "azure", ["-o", "azure", "-p", "customer_id=127.0.0.1",
                        "-p", "shared_key=c2VjcmV0LWtleQ==", "-p", "tls=off"]),
)
_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
_BULK_OK = b'{"took":1,"errors":false,"items":[]}'


class Receiver:
    """An HTTP/1.1 receiver counting records, on its own thread and loop."""

    def __init__(self, mode):
        self.mode = mode
        self.count = 0
        self.port = free_port()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait()

    def _run(self, ready):
        loop = asyncio.new_event_loop()
        loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port,
                                                     limit=1 << 20))
        ready.set()
        loop.run_forever()

    async def _serve(self, reader, writer):
        body = _BULK_OK if self.mode == "bulk" else b'{"status":"ok"}'
        answer = _OK % (len(body), body)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                data = await reader.readexactly(length)
                if self.mode == "otlp":
                    self.count += _log_records(data)
                elif self.mode == "azure":
                    self.count += data.count(b'{"@timestamp":')
                else:
                    lines = data.count(b"\n")
                    self.count += lines // 2 if self.mode == "bulk" else lines
                writer.write(answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def _log_records(body):
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    request = ExportLogsServiceRequest()
    request.ParseFromString(body)
    return sum(len(scope.log_records) for resource in request.resource_logs
               for scope in resource.scope_logs)


def measure(name, lines, args, receiver):
    receiver.count = 0
    return measure_delivery(name, lines, args, lambda: receiver.count)


def main():
    args = comparison_parser(__doc__).parse_args()
    binary = fluent_bit(args.fluent_bit)
    with workdir() as tmp:
        log, parsers = movie_log(tmp, args.lines)
        print(HEADER)
        for name, mode, output in VARIANTS:
            if args.only and args.only != name:
                continue
            receiver = Receiver(mode)
            common = output + ["-m", "*", "-p", "host=127.0.0.1",
                               "-p", "port=%d" % receiver.port, "-p", "retry_limit=no_limits"]
            ours = measure("edgeship: tail + json -> %s" % name, args.lines,
                           EDGESHIP + ["-f", "0.2"] + tail_args(log, parsers, exit_on_eof=False,
                                                                tag="bench") + common, receiver)
            if binary is None:
                continue
            theirs = measure("Fluent Bit: tail + json -> %s" % name, args.lines,
                             [binary, "-q", "-f", "0.2", "-R", parsers, "-i", "tail",
                              "-p", "path=" + log, "-p", "read_from_head=on",
                              "-p", "parser=json", "-t", "bench"] + common, receiver)
            print_ratio(ours, theirs, name)


if __name__ == "__main__":
    main()
