"""A real edgeship child with one listening input (tcp, udp, syslog, http) writing what it
receives with the file output (out_file format) and its log to a file, for the network
input tests."""
import http.client
import json
import os

from conftest import accepts_connections, wait_for


def section(kind, keys):
    lines = ["[%s]" % kind] + ["    %s %s" % (k, v) for k, v in keys.items() if v is not None]
    return "\n".join(lines) + "\n"


class Listener:
    """edgeship running ``input_keys`` into a file output. ``events()``: (tag, sec.nsec
    text, record) of every record written so far; ``log()``: the log so far."""

    def __init__(self, spawn, tmp_path, input_keys, parsers=None, wait=True, extra=""):
        self.folder = tmp_path
        self.out = tmp_path / "out"
        self.log_path = tmp_path / "edgeship.log"
        conf = section("SERVICE", {"Flush": "0.1", "Grace": "1", "Log_Level": "debug",
                                   "Log_File": self.log_path, "Parsers_File": parsers})
        conf += section("INPUT", input_keys)
        conf += extra
        conf += section("OUTPUT", {"Name": "file", "Match": "*", "Path": self.out,
                                   "Mkdir": "on", "Format": "out_file"})
        self.conf = tmp_path / "edgeship.conf"
        self.conf.write_text(conf)
        self.child = spawn(["-c", str(self.conf)])
        if not wait:
            return
        if input_keys.get("Path"):
            wait_for(lambda: os.path.exists(input_keys["Path"]) or self._died())
        elif input_keys["Name"] in ("udp", "statsd", "collectd") or input_keys.get("Mode") == "udp":
            wait_for(lambda: "listening on" in self.log() or self._died())
        else:
            wait_for(lambda: accepts_connections(int(input_keys["Port"])) or self._died())
        assert self.child.proc.poll() is None, self.log()

    def _died(self):
        return self.child.proc.poll() is not None

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def events(self, by_time=False):
        """``by_time``: in time order (the file output writes a file per tag); else file by
        file, each in the order written."""
        found = []
        if not self.out.exists():
            return found
        for name in sorted(os.listdir(self.out)):
            with open(self.out / name, encoding="utf-8") as f:
                for line in f:
                    if not line.endswith("\n"):
                        break       # still being written
                    tag, _, rest = line.rstrip("\n").partition(": [")
                    stamp, _, record = rest[:-1].partition(", ")
                    found.append((tag, stamp, json.loads(record)))
        if by_time:
            found.sort(key=lambda event: tuple(map(int, event[1].split("."))))
        return found

    def records(self, by_time=False):
        return [event[2] for event in self.events(by_time)]

    def wait_records(self, count, timeout=20, by_time=False):
        """The records once at least ``count`` arrived."""
        return wait_for(lambda: len(self.records()) >= count and self.records(by_time),
                        timeout)


def http_request(port, method, path, body=None, headers=None):
    """(status, Content-Type, body) of one request to a listening input on 127.0.0.1."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        conn.close()
