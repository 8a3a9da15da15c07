"""The MicroPython agent (firmware/) under a real MicroPython interpreter, publishing to a
real Mosquitto: every sample arrives, the ring survives a broker outage, a full ring drops
the oldest records and counts them, and edgeship's mqtt_client reads the agent's CBOR."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import cbor2
from hypothesis import given, strategies as st

from conftest import ROOT, wait_for
from edgeship.core.cbor import dumps
from mosquitto import Broker, Subscriber

MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")
FIRMWARE = os.path.join(ROOT, "firmware")


def start_agent(tmp_path, **config):
    conf = {"device_id": "fw-1", "host": "127.0.0.1", "interval_s": 0.05,
            "retry_base_s": 0.3, "retry_cap_s": 1,
            "sensors": [{"name": "temp_c", "type": "sim"}]}
    conf.update(config)
    path = tmp_path / "agent.json"
    path.write_text(json.dumps(conf))
    env = dict(os.environ, MICROPYPATH="%s:%s:.frozen" % (ROOT, FIRMWARE))
    return subprocess.Popen([MICROPYTHON, os.path.join(FIRMWARE, "main.py"), str(path)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def finish(proc, timeout=30):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode()
    line = [l for l in out.decode().splitlines() if l.startswith("agent: done")][-1]
    return json.loads(line[len("agent: done "):])


def seqs(messages, decode=json.loads):
    return sorted({decode(m.payload)["seq"] for m in messages})


def test_every_sample_arrives_as_json(tmp_path):
    broker = Broker(tmp_path).start()
    try:
        sub = Subscriber(broker, "devices/#")
        stats = finish(start_agent(tmp_path, port=broker.port, samples=30))
        wait_for(lambda: len(sub.messages) >= 30)
        record = json.loads(sub.messages[0].payload)
        assert sub.messages[0].topic == "devices/fw-1/telemetry"
        assert record["device"] == "fw-1" and isinstance(record["temp_c"], float)
        assert abs(record["time"] - time.time()) < 60
        assert seqs(sub.messages) == list(range(30))
        assert stats == {"sampled": 30, "acked": 30, "dropped": 0, "connects": 1}
        sub.close()
    finally:
        broker.kill()


class Relay:
    """A TCP relay between the agent and the broker whose connections the test can cut at
    any moment: whatever the agent wrote without getting a PUBACK must be sent again. (A
    broker SIGKILL would also lose what the broker itself had acked but not yet forwarded,
    which is the broker's loss, not the agent's.)"""

    def __init__(self, target_port):
        self.target_port = target_port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.open = True
        self.sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            sock.close()

    def cut(self):
        self.open = False
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.sockets = []

    def close(self):
        self.cut()
        self.server.close()


def test_connection_loss_loses_nothing(tmp_path):
    broker = Broker(tmp_path).start()
    relay = Relay(broker.port)
    try:
        sub = Subscriber(broker, "devices/#")
        agent = start_agent(tmp_path, port=relay.port, samples=40, interval_s=0.05,
                            format="cbor")
        wait_for(lambda: len(sub.messages) >= 10)
        relay.cut()       # mid-stream: in-flight PUBLISHes and PUBACKs are lost
        time.sleep(1.0)   # samples keep coming into the ring; reconnects are refused
        relay.open = True
        stats = finish(agent)
        wait_for(lambda: seqs(sub.messages, cbor2.loads) == list(range(40)))
        assert stats["acked"] == 40 and stats["dropped"] == 0 and stats["connects"] >= 2
        sub.close()
    finally:
        relay.close()
        broker.kill()


def test_broker_restart_is_survived(tmp_path):
    broker = Broker(tmp_path).start()
    try:
        agent = start_agent(tmp_path, port=broker.port, samples=30, interval_s=0.05)
        time.sleep(0.5)
        broker.kill()     # SIGKILL; the agent keeps sampling and reconnects by itself
        time.sleep(0.5)
        broker.start()
        sub = Subscriber(broker, "devices/#")
        stats = finish(agent)
        assert stats["sampled"] == 30 and stats["dropped"] == 0 and stats["connects"] >= 2
        assert stats["acked"] == 30
        sub.close()
    finally:
        broker.kill()


def test_full_ring_drops_the_oldest_and_counts_them(tmp_path):
    broker = Broker(tmp_path)  # configured, not started: the agent's connects are refused
    agent = start_agent(tmp_path, port=broker.port, samples=60, interval_s=0.01,
                        ring_bytes=1000)
    time.sleep(1.5)  # all 60 sampled into a ring that holds about a dozen
    try:
        broker.start()
        sub = Subscriber(broker, "devices/#")
        stats = finish(agent)
        assert stats["sampled"] == 60 and stats["dropped"] > 0
        assert stats["acked"] + stats["dropped"] == 60
        wait_for(lambda: len(sub.messages) >= stats["acked"])
        assert seqs(sub.messages) == list(range(60 - stats["acked"], 60))  # newest survived
        sub.close()
    finally:
        broker.kill()


def test_edgeship_reads_the_agents_cbor(tmp_path, spawn):
    broker = Broker(tmp_path).start()
    out = tmp_path / "out"
    try:
        edgeship = spawn(["-f", "0.2", "-i", "mqtt_client", "-p", "host=127.0.0.1",
                          "-p", "port=%d" % broker.port, "-p", "topic=devices/#",
                          "-p", "format=cbor", "-p", "tag=$TOPIC",
                          "-o", "file", "-m", "devices.*", "-p", "path=%s" % out,
                          "-p", "file=sensors.jsonl", "-p", "format=plain", "-p", "mkdir=on"])
        time.sleep(1.0)  # let it subscribe
        finish(start_agent(tmp_path, port=broker.port, samples=20, format="cbor"))
        path = out / "sensors.jsonl"
        wait_for(lambda: path.exists() and len(path.read_text().splitlines()) >= 20)
        records = [json.loads(l) for l in path.read_text().splitlines()]
        assert sorted(r["seq"] for r in records) == list(range(20))
        assert all(r["device"] == "fw-1" and "temp_c" in r for r in records)
        edgeship.proc.send_signal(signal.SIGTERM)
    finally:
        broker.kill()


@given(st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 64 - 1) | st.floats(allow_nan=False)
    | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12))
def test_core_cbor_agrees_with_cbor2(value):
    assert cbor2.loads(dumps(value)) == value
