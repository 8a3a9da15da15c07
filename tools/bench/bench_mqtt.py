"""Issue 6 benchmark: tail + json -> mqtt output -> Mosquitto -> an independent subscriber.

    python tools/bench/bench_mqtt.py [--lines 1000000] [--per-record-lines 200000]

Each row times from edgeship's start until the subscriber (a paho client in this process,
on its own thread, counting records inside the payloads) holds every record. Batched rows
send one message per chunk (json_lines, cbor); per-record rows one JSON message per record.
The last rows are paho alone publishing the same per-record messages, the ceiling for the
per-record rows. CPU per event: edgeship's and the broker's (the paho rows: this process's,
publisher and subscriber, and the broker's). Prints markdown rows for the README's
performance table.
"""
import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.bench.common import (EDGESHIP, HEADER, ROOT, Measured,  # noqa: E402
                                cpu_seconds, generate_lines, row, tail_args, workdir,
                                write_parsers)

sys.path.insert(0, os.path.join(ROOT, "tests"))
from mosquitto import Broker  # noqa: E402

BROKER_TUNING = "max_queued_messages 0\nmax_inflight_messages 0\n"


class Counter:
    """A paho subscriber counting records as they arrive."""

    def __init__(self, port, fmt, qos):
        import cbor2
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.records = 0
        self.done = threading.Event()
        self.target = 0
        self.fmt = fmt
        self.cbor = cbor2
        ready = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-counter")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("bench/#", qos)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        ready.wait(10)

    def _message(self, client, userdata, message):
        if self.fmt == "json_lines":
            self.records += message.payload.count(b"\n")
        elif self.fmt == "cbor":
            self.records += len(self.cbor.loads(message.payload))
        else:
            self.records += 1
        if self.records >= self.target:
            self.done.set()

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def edgeship_row(name, log, parsers, lines, fmt, qos, folder):
    broker = Broker(os.path.join(folder, "broker-" + name.replace(" ", "_")),
                    extra=BROKER_TUNING).start()
    counter = Counter(broker.port, fmt, qos)
    counter.target = lines
    args = ["-f", "0.2"] + tail_args(log, parsers, exit_on_eof=False) + [
            "-o", "mqtt", "-m", "*", "-p", "port=%d" % broker.port, "-p", "topic=bench/$TAG",
            "-p", "qos=%d" % qos, "-p", "format=%s" % fmt, "-p", "retry_limit=no_limits"]
    broker_before = cpu_seconds(broker.proc.pid)
    start = time.perf_counter()
    child = Measured(EDGESHIP + args)
    finished = counter.done.wait(300)
    elapsed = time.perf_counter() - start
    broker_cpu = cpu_seconds(broker.proc.pid) - broker_before
    cpu, rss = child.finish()
    counter.close()
    broker.kill()
    if not finished:
        raise SystemExit("%s: only %d of %d records arrived" % (name, counter.records, lines))
    return row(name, lines, elapsed, cpu + broker_cpu, rss)


def paho_row(folder, count, qos, sample):
    """paho alone: publish ``count`` messages and wait for every ack (or for the writes)."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    broker = Broker(os.path.join(folder, "broker-paho-%d" % qos), extra=BROKER_TUNING).start()
    counter = Counter(broker.port, "json", qos)
    counter.target = count
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-paho")
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    broker_before = cpu_seconds(broker.proc.pid)
    start = time.perf_counter()
    cpu_start = time.process_time()
    for _ in range(count):
        client.publish("bench/paho", sample, qos=qos)
    counter.done.wait(300)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start + cpu_seconds(broker.proc.pid) - broker_before
    client.disconnect()
    client.loop_stop()
    counter.close()
    broker.kill()
    return row("paho alone, QoS %d, one message per record" % qos, count, elapsed, cpu)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1000000, help="records for batched rows")
    parser.add_argument("--per-record-lines", type=int, default=200000,
                        help="records for the one-message-per-record rows")
    opts = parser.parse_args()
    with workdir("edgeship-bench-mqtt-") as folder:
        parsers = write_parsers(folder)
        big = os.path.join(folder, "big.log")
        small = os.path.join(folder, "small.log")
        generate_lines(big, opts.lines)
        generate_lines(small, opts.per_record_lines)
        with open(small) as f:
            sample = json.dumps(dict(json.loads(f.readline()), date=1711360800.123456))
        print(HEADER)
        for fmt, qos in (("json_lines", 0), ("json_lines", 1), ("cbor", 1)):
            edgeship_row("tail -> mqtt %s batched, QoS %d" % (fmt, qos), big, parsers, opts.lines,
                         fmt, qos, folder)
        for qos in (0, 1):
            edgeship_row("tail -> mqtt json per record, QoS %d" % qos, small, parsers,
                         opts.per_record_lines, "json", qos, folder)
            paho_row(folder, opts.per_record_lines, qos, sample)


if __name__ == "__main__":
    main()
