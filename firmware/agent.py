"""The edgeship MicroPython agent: sample sensors, queue each record in a byte-bounded ring,
publish it to an MQTT broker at QoS 1 and forget it only when the broker acknowledged it.

It reuses edgeship's core (copied to the device next to this file by tools/flash.py):
``ByteRing`` (the ring buffer), ``mqtt_client`` (the sans-IO MQTT session), ``cbor``,
``backoff``. When the ring is full the oldest records are dropped and counted, never the
newest; while the broker is away records wait in the ring and are re-sent on reconnect.

Also runs on CPython, which is how the agent and edgeship share tests.
"""
import errno
import json
import socket
import time

from edgeship.core import cbor
from edgeship.core.backoff import retry_wait
from edgeship.core.mqtt import MalformedPacket
from edgeship.core.mqtt_client import (DISCONNECT_BYTES, PINGREQ_BYTES, ClientSession,
                                       connect_packet, publish_packet)
from edgeship.core.ring import ByteRing

DEFAULTS = {
    "device_id": "device", "host": "127.0.0.1", "port": 1883, "client_id": None,
    "username": None, "password": None, "keepalive": 60,
    "topic": "devices/{device_id}/telemetry", "format": "json", "qos": 1,
    "interval_s": 5.0, "samples": 0, "ring_bytes": 16384, "max_inflight": 8,
    "retry_base_s": 1, "retry_cap_s": 60, "sensors": [],
}
# Some ports count time from 2000-01-01; records carry Unix time.
EPOCH_OFFSET = 946684800 if time.gmtime(0)[0] == 2000 else 0


if hasattr(time, "ticks_ms"):  # MicroPython: wrapping millisecond ticks
    now_ms = time.ticks_ms
    ms_since = lambda start: time.ticks_diff(time.ticks_ms(), start)  # noqa: E731
else:
    def now_ms():
        return int(time.monotonic() * 1000)

    def ms_since(start):
        return now_ms() - start

_SOCKET_TIMEOUT = getattr(socket, "timeout", ())


def timed_out(exc):
    """A read that found nothing in time, as opposed to a broken connection."""
    return isinstance(exc, _SOCKET_TIMEOUT) or (exc.args and exc.args[0] in (errno.EAGAIN,
                                                                            errno.ETIMEDOUT))


def send_all(sock, data):
    # MicroPython sockets write everything with write(); CPython's have sendall().
    (getattr(sock, "sendall", None) or sock.write)(data)


class Agent:
    def __init__(self, config, sensors):
        conf = dict(DEFAULTS)
        conf.update(config)
        self.conf = conf
        self.sensors = sensors
        self.topic = conf["topic"].replace("{device_id}", conf["device_id"])
        self.client_id = conf["client_id"] or "edgeship-" + conf["device_id"]
        self.encode = cbor.dumps if conf["format"] == "cbor" else _json_bytes
        self.ring = ByteRing(conf["ring_bytes"])
        self.payloads = {}          # seq -> encoded record, while it is in the ring
        self.inflight = {}          # packet id -> seq
        self.sent_once = set()      # seqs published at least once (DUP on a re-send)
        self.seq = 0
        self.stats = {"sampled": 0, "acked": 0, "dropped": 0, "connects": 0}
        self.sock = None
        self.session = None
        self.failures = 0
        self.retry_at = 0
        self.last_io = now_ms()

    # -------------------------------------------------------------- records
    def sample(self):
        record = {"device": self.conf["device_id"], "seq": self.seq,
                  "time": time.time_ns() // 1000000 / 1000 + EPOCH_OFFSET}
        for name, sensor in self.sensors:
            value = sensor.read()
            if value is not None:
                record[name] = value
        self.enqueue(self.encode(record))
        self.stats["sampled"] += 1

    def enqueue(self, payload):
        seq = self.seq
        self.seq += 1
        for old in self.ring.victims(len(payload)):
            self.forget(old)
            self.stats["dropped"] += 1
        if len(payload) > self.ring.limit > 0:
            self.stats["dropped"] += 1  # larger than the whole ring: cannot be kept
            return
        self.ring.add(seq, len(payload))
        self.payloads[seq] = payload

    def forget(self, seq):
        self.ring.remove(seq)
        self.payloads.pop(seq, None)
        self.sent_once.discard(seq)

    # -------------------------------------------------------------- network
    def connect(self):
        conf = self.conf
        addr = socket.getaddrinfo(conf["host"], conf["port"])[0][-1]
        sock = socket.socket()
        sock.settimeout(5)
        try:
            sock.connect(addr)
            send_all(sock, connect_packet(self.client_id, conf["keepalive"], True,
                                     conf["username"], conf["password"]))
            session = ClientSession()
            while not session.connected:
                data = sock.recv(512)
                if not data:
                    raise OSError("broker closed the connection")
                session.receive(data)
                if session.refused:
                    raise OSError("broker refused the connection: " + session.refused)
        except Exception:
            sock.close()
            raise
        sock.settimeout(0.05)
        self.sock, self.session = sock, session
        self.inflight = {}
        self.failures = 0
        self.stats["connects"] += 1
        self.last_io = now_ms()

    def drop_connection(self):
        if self.sock is not None:
            self.sock.close()
        self.sock = self.session = None
        self.inflight = {}
        self.failures += 1
        wait = retry_wait(self.failures, self.conf["retry_base_s"], self.conf["retry_cap_s"]) - 1
        self.retry_at = now_ms() + int(wait * 1000)

    def pump(self):
        """Publish what the ring holds (up to max_inflight unacked) and read acks."""
        qos = self.conf["qos"]
        busy = set(self.inflight.values())
        for seq in self.ring.keys():
            if len(self.inflight) >= self.conf["max_inflight"] and qos:
                break
            if seq in busy:
                continue
            packet_id = self.session.next_packet_id() if qos else 0
            send_all(self.sock, publish_packet(self.topic, self.payloads[seq], qos, packet_id,
                                          dup=seq in self.sent_once))
            self.last_io = now_ms()
            if qos:
                self.inflight[packet_id] = seq
                self.sent_once.add(seq)
            else:
                self.forget(seq)  # QoS 0: written is all the broker promises
                self.stats["acked"] += 1
        try:
            data = self.sock.recv(1024)
        except OSError as exc:
            if not timed_out(exc):
                raise
            data = None
        if data == b"":
            raise OSError("broker closed the connection")
        if data:
            for packet_id in self.session.receive(data):
                seq = self.inflight.pop(packet_id, None)
                if seq is not None and seq in self.payloads:
                    self.forget(seq)
                    self.stats["acked"] += 1
        if ms_since(self.last_io) > self.conf["keepalive"] * 500:
            send_all(self.sock, PINGREQ_BYTES)
            self.last_io = now_ms()

    # -------------------------------------------------------------- main loop
    def step(self):
        if self.sock is None and ms_since(self.retry_at) >= 0:
            try:
                self.connect()
            except (OSError, MalformedPacket) as exc:
                print("agent: connect failed:", exc)
                self.drop_connection()
        if self.sock is not None:
            try:
                self.pump()
            except (OSError, MalformedPacket) as exc:
                print("agent: connection lost:", exc)
                self.drop_connection()

    def run(self):
        samples = self.conf["samples"]
        interval_ms = int(self.conf["interval_s"] * 1000)
        next_sample = now_ms()
        while True:
            if (samples <= 0 or self.stats["sampled"] < samples) and ms_since(next_sample) >= 0:
                self.sample()
                next_sample = now_ms() + interval_ms
            self.step()
            if samples > 0 and self.stats["sampled"] >= samples and not self.payloads:
                break
            if self.sock is None:
                time.sleep(0.05)
        if self.sock is not None:
            send_all(self.sock, DISCONNECT_BYTES)
            self.sock.close()
        print("agent: done", json.dumps(self.stats))


def _json_bytes(record):
    return json.dumps(record, separators=(",", ":")).encode()
