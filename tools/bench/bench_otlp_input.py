"""OTLP input benchmark: OTLP/HTTP protobuf log requests into the opentelemetry input -> null.

    python tools/bench/bench_otlp_input.py [--records 500000] [--batch 2000]
                                           [--connections 8] [--fluent-bit PATH]

This script is the sender, as an OpenTelemetry Collector's exporter with a sending queue:
``--connections`` keep-alive connections each POST requests of ``--batch`` log records
(built in memory first) and wait for each answer before the next. edgeship answers a request
once its records are confirmed (the null output confirms at its flush), Fluent Bit once they
are in memory, so the row is events/s from the first request to the last answer and the
receiver's CPU time per event in that window plus one flush interval (see common.py). With
a Fluent Bit binary the same run is made with Fluent Bit and the ratio follows.
"""
import argparse
import http.client
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.bench.common import (EDGESHIP, HEADER, MOVIES, Measured, fluent_bit,  # noqa: E402
                                free_port, print_ratio, row, workdir)

FLUSH = 0.2


def request_body(batch, offset):
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import \
        ExportLogsServiceRequest
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    attribute = resource_logs.resource.attributes.add()
    attribute.key, attribute.value.string_value = "service.name", "movies"
    records = resource_logs.scope_logs.add().log_records
    now = time.time_ns()
    for i in range(offset, offset + batch):
        log = records.add(time_unix_nano=now + i, severity_number=9)
        pairs = log.body.kvlist_value.values
        for key, kind, value in (("user", "int_value", i % 100000),
                                 ("movie", "string_value", MOVIES[i % len(MOVIES)]),
                                 ("rating", "double_value", (i % 50) / 10.0)):
            pair = pairs.add()
            pair.key = key
            setattr(pair.value, kind, value)
    return request.SerializeToString()


def _wait_listening(port, deadline):
    while time.monotonic() < deadline:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the receiver did not start")


def measure(name, args, port, bodies, count, connections):
    receiver = Measured(args)
    _wait_listening(port, time.monotonic() + 20)
    receiver.window()
    failures = []

    def send(mine):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        for body in mine:
            conn.request("POST", "/v1/logs", body, {"Content-Type": "application/x-protobuf"})
            response = conn.getresponse()
            response.read()
            if response.status not in (200, 201, 204):
                failures.append(response.status)
        conn.close()

    threads = [threading.Thread(target=send, args=(bodies[n::connections],))
               for n in range(connections)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    time.sleep(FLUSH)                   # one flush interval: the null output's share
    cpu, rss = receiver.finish()
    if failures:
        raise SystemExit("%s: %d requests failed (%s)" % (name, len(failures), failures[:3]))
    return row(name, count, elapsed, cpu, rss)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=500000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--fluent-bit", help="Fluent Bit binary to compare with (default: "
                                             "fluent-bit on PATH, if any)")
    args = parser.parse_args()
    binary = fluent_bit(args.fluent_bit)
    bodies = [request_body(args.batch, offset)
              for offset in range(0, args.records, args.batch)]
    count = len(bodies) * args.batch
    common = ["-p", "listen=127.0.0.1", "-p", "buffer_max_size=16M"]
    with workdir():
        print(HEADER)
        port = free_port()
        ours = measure("edgeship: OTLP/HTTP logs -> null", EDGESHIP + [
            "-f", str(FLUSH), "-i", "opentelemetry", "-p", "port=%d" % port] + common
            + ["-o", "null", "-m", "*"], port, bodies, count, args.connections)
        if binary is None:
            return
        port = free_port()
        theirs = measure("Fluent Bit: OTLP/HTTP logs -> null", [
            binary, "-q", "-f", str(FLUSH), "-i", "opentelemetry", "-p", "port=%d" % port]
            + common + ["-o", "null", "-m", "*"], port, bodies, count, args.connections)
        print_ratio(ours, theirs)


if __name__ == "__main__":
    main()
