"""nats output: a real edgeship child publishes to Debian's nats-server; a subscriber (the
core NATS session over a plain socket) reads what arrived."""
import json
import shutil
import signal
import socket
import subprocess
import threading

import pytest

from conftest import free_port, wait_for, accepts_connections
from edgeship.core.nats import ClientSession

pytestmark = pytest.mark.e2e

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
RECORD = '{"log":"hi \u00e9","n":1.5,"k":{"a":[1,null]}}'
# What Fluent Bit 5.1.1 published for RECORD at 1700000000.123456789 under the tag app.
FLUENT_BIT_MESSAGE = (b'[[1700000000.123457,{"tag":"app","log":"hi \\u00e9","n":1.5,'
                      b'"k":{"a":[1,null]}}]]')


class NatsServer:
    def __init__(self, folder, port=None, max_payload=None):
        self.port = port or free_port()
        conf = folder / "nats.conf"
        conf.write_text("listen: 127.0.0.1:%d\n%s" % (
            self.port, "max_payload: %d\n" % max_payload if max_payload else ""))
        self.proc = subprocess.Popen([NATS_SERVER, "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: accepts_connections(self.port))

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


class Subscriber:
    """Every message published on ``subject``, in order."""

    def __init__(self, port, subject):
        self.messages = []
        self.sock = socket.create_connection(("127.0.0.1", port))
        session = ClientSession()
        self.sock.sendall(session.send(("CONNECT", b'{"verbose":false}'))
                          + b"SUB " + subject + b" 1\r\n" + session.send(("PING",)))
        self.session = session
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.ready.wait(10)

    def _read(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            result = self.session.receive(data)
            if result.reply:
                self.sock.sendall(result.reply)
            for event in result.events:
                if event[0] == "PONG":
                    self.ready.set()
                elif event[0] == "MSG":
                    self.messages.append(event[2])

    def records(self):
        return [entry for message in list(self.messages) for entry in json.loads(message)]


def config(tmp_path, port, samples=1, record=RECORD, copies=1):
    path = tmp_path / "fluent-bit.conf"
    path.write_text("[SERVICE]\n    Flush 0.2\n    Log_File %s\n"
                    "[INPUT]\n    Name dummy\n    Tag app\n    Dummy %s\n    Samples %d\n"
                    "    Copies %d\n    Rate 50\n    Start_time_sec 1700000000\n"
                    "    Start_time_nsec 123456789\n    Fixed_Timestamp on\n"
                    "[OUTPUT]\n    Name nats\n    Match *\n    Port %d\n"
                    "    Retry_Limit no_limits\n"
                    % (tmp_path / "log", record, samples, copies, port))
    return path


def test_a_chunk_is_the_message_fluent_bit_publishes(spawn, tmp_path):
    server = NatsServer(tmp_path)
    try:
        subscriber = Subscriber(server.port, b"app")
        spawn(["-c", str(config(tmp_path, server.port))])
        wait_for(lambda: subscriber.messages)
        assert subscriber.messages[0] == FLUENT_BIT_MESSAGE
    finally:
        server.kill()


def test_a_chunk_over_max_payload_goes_in_several_messages(spawn, tmp_path):
    server = NatsServer(tmp_path, max_payload=512)
    big = '{"log":"%s"}' % ("x" * 600)
    try:
        subscriber = Subscriber(server.port, b"app")
        spawn(["-c", str(config(tmp_path, server.port, samples=1, copies=20))])
        wait_for(lambda: len(subscriber.records()) == 20)
        assert len(subscriber.messages) > 1
        assert all(len(message) <= 512 for message in subscriber.messages)
        other = tmp_path / "big"
        other.mkdir()
        spawn(["-c", str(config(other, server.port, record=big))])
        log = other / "log"
        wait_for(lambda: log.exists() and "over the server's max_payload (512 bytes) "
                 "dropped" in log.read_text())
    finally:
        server.kill()


def test_a_killed_server_loses_nothing(spawn, tmp_path):
    server = NatsServer(tmp_path)
    port = server.port
    subscriber = Subscriber(port, b"app")
    spawn(["-c", str(config(tmp_path, port, samples=200))])
    wait_for(lambda: len(subscriber.records()) >= 20)
    server.kill()
    wait_for(lambda: "could not" in (tmp_path / "log").read_text())
    server = NatsServer(tmp_path, port=port)
    try:
        again = Subscriber(port, b"app")
        wait_for(lambda: len(subscriber.records()) + len(again.records()) >= 200, timeout=60)
    finally:
        server.kill()
