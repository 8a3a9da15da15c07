"""websocket output: a real edgeship child sends to a real WebSocket server (the
``websockets`` library's protocol, tests/websocket_receiver.py, a process of its own); the
upgrade request and the messages are the ones Fluent Bit 5.1.1 sent for the same config
(captured from the binary), the server is killed mid-stream and nothing is lost."""
import base64
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from conftest import free_port, run_edgeship, wait_for
from edgeship.plugins.outputs.websocket import accept_key, upgrade_request

pytestmark = pytest.mark.e2e

HERE = os.path.dirname(os.path.abspath(__file__))
# Fluent Bit 5.1.1's upgrade request for Uri ws/in and Header X-Token abc (port masked; its
# key is always the RFC's sample nonce).
FLUENT_BIT_REQUEST = ("GET /ws/in HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\nContent-Length: 0\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\nX-Token: abc\r\n"
                      "Connection: keep-alive\r\n\r\n")
# The payloads of its frames (unmasked), one per chunk, for two flushes of RECORD at
# 1700000000.000000005: Format json_lines (text frames) and msgpack (which it marked text).
RECORD = '{"log":"hi \\u00e9","n":1}'
FLUENT_BIT_JSON_LINES = b'{"date":1700000000.0,"log":"hi \\u00e9","n":1}\n'
FLUENT_BIT_MSGPACK = (b"\x92\x92\xd7\x00eS\xf1\x00\x00\x00\x00\x05\x80\x82\xa3log\xa5hi "
                      b"\xc3\xa9\xa1n\x01")


class Server:
    def __init__(self, tmp_path, port=None):
        self.port = port or free_port()
        self.records = tmp_path / "received.jsonl"
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "websocket_receiver.py"),
                                      str(self.port), str(self.records)],
                                     stdout=subprocess.PIPE)
        assert self.proc.stdout.readline() == b"listening\n"

    def entries(self):
        if not self.records.exists():
            return []
        return [json.loads(line) for line in self.records.read_text().splitlines()]

    def requests(self):
        return [e["request"] for e in self.entries() if "request" in e]

    def messages(self):
        return [(e["opcode"], base64.b64decode(e["payload"])) for e in self.entries()
                if "opcode" in e]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def servers():
    started = []
    yield started
    for server in started:
        server.kill()


def config(tmp_path, port, extra="", source=None):
    source = source or ("[INPUT]\n    Name dummy\n    Tag t\n    Dummy %s\n    Samples 2\n"
                        "    Fixed_Timestamp on\n    Start_time_sec 1700000000\n"
                        "    Start_time_nsec 5\n" % RECORD)
    path = tmp_path / "fluent-bit.conf"
    path.write_text("[SERVICE]\n    Flush 0.3\n    Log_File %s\n    Log_Level debug\n%s"
                    "[OUTPUT]\n    Name websocket\n    Match *\n    Host 127.0.0.1\n"
                    "    Port %d\n    Uri ws/in\n    Header X-Token abc\n%s"
                    % (tmp_path / "log", source, port, extra))
    return path


def _masked(request, port):
    request = request.replace("127.0.0.1:%d" % port, "127.0.0.1:PORT")
    return re.sub(r"Sec-WebSocket-Key: \S+", "Sec-WebSocket-Key: KEY", request)


@pytest.mark.parametrize("fmt, opcode, payload", [
    ("json_lines", 1, FLUENT_BIT_JSON_LINES),
    ("msgpack", 2, FLUENT_BIT_MSGPACK),       # Fluent Bit: opcode 1, refused by the server
])
def test_upgrade_and_messages_as_fluent_bit_sends_them(spawn, tmp_path, servers, fmt, opcode,
                                                       payload):
    server = Server(tmp_path)
    servers.append(server)
    spawn(["-c", str(config(tmp_path, server.port, "    Format %s\n" % fmt))])
    wait_for(lambda: len(server.messages()) >= 2, timeout=30)
    assert server.messages() == [(opcode, payload)] * 2
    requests = server.requests()
    assert len(requests) == 1                             # one kept connection
    assert _masked(requests[0], server.port) == _masked(FLUENT_BIT_REQUEST, server.port)


def test_a_killed_server_loses_nothing_and_the_output_reconnects(spawn, tmp_path, servers):
    server = Server(tmp_path)
    servers.append(server)
    lines = tmp_path / "in.log"
    lines.write_text("".join('{"n":%d}\n' % n for n in range(50)))     # lines, as "log"
    source = ("[INPUT]\n    Name tail\n    Path %s\n    Read_from_Head on\n"
              "    Refresh_Interval 1\n" % lines)
    spawn(["-c", str(config(tmp_path, server.port, "    Format json_lines\n"
                                                   "    json_date_key false\n"
                                                   "    Retry_Limit no_limits\n",
                            source))])

    def received():
        return {json.loads(json.loads(line)["log"])["n"] for _, payload in server.messages()
                for line in payload.decode().splitlines()}

    wait_for(lambda: len(received()) == 50, timeout=30)
    log = tmp_path / "log"
    sent = log.read_text().count("waiting for the pong")
    # The server stops reading: the next frame is written into its socket (delivered, to
    # Fluent Bit) but never read; then it is killed, and that frame with it.
    server.proc.send_signal(signal.SIGSTOP)
    with lines.open("a") as f:
        f.write("".join('{"n":%d}\n' % n for n in range(50, 100)))
    wait_for(lambda: log.read_text().count("waiting for the pong") > sent, timeout=30)
    server.kill()
    wait_for(lambda: "could not deliver" in log.read_text(), timeout=30)
    with lines.open("a") as f:                      # more while it is down
        f.write("".join('{"n":%d}\n' % n for n in range(100, 150)))
    restarted = Server(tmp_path, server.port)         # the same port, the same record file
    servers.append(restarted)
    wait_for(lambda: received() == set(range(150)), timeout=60)
    assert len(restarted.requests()) >= 2             # a new connection, upgraded again


def test_the_upgrade_request_and_accept_key():
    assert upgrade_request("/x", "h:80", "K", [("A", "b")]) == (
        b"GET /x HTTP/1.1\r\nHost: h:80\r\nContent-Length: 0\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: K\r\nSec-WebSocket-Version: 13\r\n"
        b"A: b\r\nConnection: keep-alive\r\n\r\n")
    # RFC 6455's example
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_an_unknown_format_is_msgpack_with_a_warning(tmp_path):
    proc = run_edgeship(["--dry-run", "-c", str(config(tmp_path, 9, "    Format xml\n"))])
    assert proc.returncode == 0
    assert "unrecognized 'format' option 'xml'. Using 'msgpack'" in \
        (tmp_path / "log").read_text() + proc.stderr
