"""docker_events input: a real edgeship child reading a stand-in Docker daemon, a Unix socket
that answers ``GET /events`` as dockerd documents it (HTTP/1.0 200, then one JSON event per
line until it closes)."""
import json
import os
import socket
import threading

import pytest

from conftest import wait_for
from listener import Listener

pytestmark = pytest.mark.e2e


def event(n):
    return json.dumps({"status": "start", "id": "c%d" % n, "Type": "container",
                       "time": 1700000000 + n}, separators=(",", ":"))


class Dockerd:
    """Answers each connection's request, then sends what ``send`` is given."""

    HEAD = b"HTTP/1.0 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n\r\n"

    def __init__(self, path, status=b"200 OK"):
        self.path = str(path)
        self.status = status
        self.requests = []
        self.connections = []
        self.headed = set()
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(4)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(1024)
            self.requests.append(data)
            self.connections.append(conn)

    def send(self, data):
        """``data`` on the newest connection, after the answer's head the first time."""
        conn = self.connections[-1]
        if conn not in self.headed:
            self.headed.add(conn)
            data = self.HEAD.replace(b"200 OK", self.status) + data
        conn.sendall(data)

    def stop(self):
        self.server.close()
        for conn in self.connections:
            conn.close()
        os.unlink(self.path)


def start(spawn, tmp_path, **keys):
    input_keys = {"Name": "docker_events", "Unix_Path": tmp_path / "docker.sock",
                  "Tag": "docker", "reconnect.retry_interval": "1"}
    input_keys.update(keys)
    return Listener(spawn, tmp_path, input_keys, wait=False)


def test_each_event_line_is_one_record_however_the_reads_cut_them(spawn, tmp_path):
    dockerd = Dockerd(tmp_path / "docker.sock")
    listener = start(spawn, tmp_path)
    wait_for(lambda: dockerd.connections)
    assert dockerd.requests[0] == b"GET /events HTTP/1.0\r\n\r\n"
    # The first event comes with the answer's head, two come in one write, one in two.
    dockerd.send(("%s\n" % event(1)).encode())
    dockerd.send(("%s\n%s\n" % (event(2), event(3))).encode())
    fourth = ("%s\n" % event(4)).encode()
    dockerd.send(fourth[:10])
    assert listener.wait_records(3) == [{"message": "%s\n" % event(n)} for n in (1, 2, 3)]
    dockerd.send(fourth[10:])
    assert listener.wait_records(4)[-1] == {"message": "%s\n" % event(4)}
    dockerd.stop()


def test_a_restarted_daemon_is_read_again(spawn, tmp_path):
    dockerd = Dockerd(tmp_path / "docker.sock")
    listener = start(spawn, tmp_path)
    wait_for(lambda: dockerd.connections)
    dockerd.send(("%s\n" % event(1)).encode())
    listener.wait_records(1)
    dockerd.stop()                                    # dockerd goes away...
    wait_for(lambda: "EOF detected" in listener.log())
    dockerd = Dockerd(tmp_path / "docker.sock")       # ...and comes back
    wait_for(lambda: dockerd.connections, timeout=15)
    dockerd.send(("%s\n" % event(2)).encode())
    assert listener.wait_records(2)[-1] == {"message": "%s\n" % event(2)}
    dockerd.stop()


def test_a_daemon_not_up_yet_is_waited_for_then_given_up_on(spawn, tmp_path):
    listener = start(spawn, tmp_path, **{"reconnect.retry_limits": "30"})
    wait_for(lambda: "retry 1/30" in listener.log())
    dockerd = Dockerd(tmp_path / "docker.sock")
    wait_for(lambda: dockerd.connections, timeout=15)
    dockerd.send(("%s\n" % event(1)).encode())
    assert listener.wait_records(1) == [{"message": "%s\n" % event(1)}]
    dockerd.stop()
    other = tmp_path / "other"
    other.mkdir()
    gone = start(spawn, other, **{"reconnect.retry_limits": "1"})
    wait_for(lambda: "giving up after 2 attempt(s)" in gone.log(), timeout=15)


def test_a_refusing_daemon_and_a_parser(spawn, tmp_path):
    parsers = tmp_path / "parsers.conf"
    parsers.write_text("[PARSER]\n    Name docker_json\n    Format json\n")
    dockerd = Dockerd(tmp_path / "docker.sock")
    listener = Listener(spawn, tmp_path, {"Name": "docker_events", "Tag": "docker",
                                          "Unix_Path": tmp_path / "docker.sock",
                                          "Parser": "docker_json"},
                        parsers=parsers, wait=False)
    wait_for(lambda: dockerd.connections)
    dockerd.send(("%s\nnot json\n" % event(1)).encode())
    records = listener.wait_records(2)
    assert records[0] == json.loads(event(1))
    assert records[1] == {"message": "not json\n"}
    wait_for(lambda: "parser returned an error on 1 event(s)" in listener.log())
    dockerd.stop()


def test_an_answer_other_than_200_is_an_error(spawn, tmp_path):
    dockerd = Dockerd(tmp_path / "docker.sock", status=b"400 Bad Request")
    listener = start(spawn, tmp_path, **{"reconnect.retry_limits": "0"})
    wait_for(lambda: dockerd.connections)
    dockerd.send(b'{"message":"client version too old"}\n')
    wait_for(lambda: "400 Bad Request" in listener.log() and "giving up" in listener.log())
    assert listener.records() == []
    dockerd.stop()
