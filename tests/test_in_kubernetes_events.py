"""kubernetes_events input: a real edgeship child reading a stand-in Kubernetes API server, an
HTTPS server in the test that answers ``GET /api/v1/events`` (and the namespaced path) as the
API server documents it: an EventList with its resourceVersion, paged with ``limit`` and
``continue``; ``?watch=1`` a chunked stream of ``{"type", "object"}`` JSON lines that the test
feeds and ends, or 410 Gone when told. Records, paths and headers are checked against what
Fluent Bit 5.1.1 sent and emitted from the same server."""
import http.server
import json
import queue
import sqlite3
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import free_port, run_edgeship, wait_for
from listener import Listener, section
from mosquitto import Certs

pytestmark = pytest.mark.e2e


def stamp(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def event(n, age, version, **fields):
    """An Event as the API server returns it, ``age`` seconds old."""
    now = int(time.time())
    obj = {"kind": "Event", "apiVersion": "v1",
           "metadata": {"name": "pod-%d.17a" % n, "namespace": "shop", "uid": "uid-%d" % n,
                        "resourceVersion": str(version),
                        "creationTimestamp": stamp(now - age)},
           "involvedObject": {"kind": "Pod", "name": "pod-%d" % n, "namespace": "shop"},
           "reason": "Started", "message": "Started container %d" % n,
           "firstTimestamp": stamp(now - age - 5), "lastTimestamp": stamp(now - age),
           "count": 1, "type": "Normal"}
    obj.update(fields)
    return obj


def seconds_of(obj, key):
    holder = obj["metadata"] if key == "creationTimestamp" else obj
    return "%d.000000000" % time.mktime(time.strptime(holder[key] + "UTC",
                                                      "%Y-%m-%dT%H:%M:%SZ%Z"))


class ApiServer:
    """The events endpoints over HTTPS. ``events`` and ``version`` are what a LIST returns;
    each watch gets the lines ``feed`` is given until ``end_watch``; ``gone`` answers the
    next watch request with 410. ``requests``: (path, headers) in order."""

    def __init__(self, certs, port=0):
        self.certs = certs
        self.events = []
        self.version = 1000
        self.requests = []
        self.gone = False
        self.watches = []           # one queue per watch request
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append((self.path, list(self.headers.items())))
                query = parse_qs(urlsplit(self.path).query)
                if "watch" in query:
                    self.watch()
                else:
                    self.send_json(200, server.page(query))

            def send_json(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def watch(self):
                if server.gone:
                    server.gone = False
                    self.send_json(410, {"kind": "Status", "status": "Failure",
                                         "reason": "Expired", "code": 410})
                    return
                lines = queue.Queue()
                server.watches.append(lines)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while True:
                    line = lines.get()
                    if line is None:
                        self.wfile.write(b"0\r\n\r\n")
                        return
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                    self.wfile.flush()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = self.certs.server_context().wrap_socket(self.httpd.socket,
                                                                    server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def page(self, query):
        start = int(query.get("continue", ["0"])[0])
        limit = int(query.get("limit", ["0"])[0]) or len(self.events)
        metadata = {"resourceVersion": str(self.version)}
        if start + limit < len(self.events):
            metadata["continue"] = str(start + limit)
        return {"kind": "EventList", "apiVersion": "v1", "metadata": metadata,
                "items": self.events[start:start + limit]}

    def paths(self):
        return [path for path, _ in self.requests]

    def feed(self, kind, obj):
        self.watches[-1].put((json.dumps({"type": kind, "object": obj}) + "\n").encode())

    def end_watch(self):
        self.watches[-1].put(None)

    def close(self):
        for lines in self.watches:
            lines.put(None)
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def api(tmp_path):
    server = ApiServer(Certs(str(tmp_path / "certs")))
    (tmp_path / "token").write_text("test-token\n")
    yield server
    server.close()


def start(spawn, tmp_path, api, out="out", extra="", **keys):
    """edgeship reading ``api`` (None: ``keys`` say where) into the file output under
    ``tmp_path/out``."""
    input_keys = {"Name": "kubernetes_events", "Tag": "k8s",
                  "kube_token_file": tmp_path / "token"}
    if api is not None:
        input_keys.update({"kube_url": "https://127.0.0.1:%d" % api.port,
                           "kube_ca_file": api.certs.ca})
    input_keys.update(keys)
    folder = tmp_path / out
    folder.mkdir(exist_ok=True)
    return Listener(spawn, folder, input_keys, wait=False, extra=extra)


def watch_count(api):
    return sum("watch=1" in path for path in api.paths())


def test_listed_events_in_order_then_watched_ones(spawn, tmp_path, api):
    old = event(1, 7200, 101)                                   # past the 1h retention
    second = event(2, 60, 102)
    no_last = event(3, 30, 103, lastTimestamp=None)             # stamped by firstTimestamp
    only_created = event(4, 20, 104, lastTimestamp=None, firstTimestamp=None)
    # A fraction of a second is not Fluent Bit's format: firstTimestamp stamps it.
    fraction = event(5, 10, 105, lastTimestamp="2024-05-01T10:00:00.5Z")
    no_version = event(6, 10, 106)
    del no_version["metadata"]["resourceVersion"]
    api.events = [old, second, no_last, only_created, fraction, no_version]
    api.version = 190
    listener = start(spawn, tmp_path, api, kube_request_limit="2")
    wait_for(lambda: watch_count(api) == 1)
    assert api.paths() == ["/api/v1/events?limit=2", "/api/v1/events?continue=2&limit=2",
                           "/api/v1/events?continue=4&limit=2",
                           "/api/v1/events?watch=1&resourceVersion=190&timeoutSeconds=600"]
    for _, headers in api.requests:
        assert ("Authorization", "Bearer test-token") in headers
        assert ("User-Agent", "Fluent-Bit") in headers
    assert listener.wait_records(4) == [second, no_last, only_created, fraction]
    events = listener.events()
    assert [stamp_text for _, stamp_text, _ in events] == [
        seconds_of(second, "lastTimestamp"), seconds_of(no_last, "firstTimestamp"),
        seconds_of(only_created, "creationTimestamp"), seconds_of(fraction, "firstTimestamp")]
    assert {tag for tag, _, _ in events} == {"k8s"}
    assert "1 event(s) without a resourceVersion or a timestamp skipped" in listener.log()

    added = event(10, 0, 200)
    last = event(13, 0, 203)
    modified = dict(added, count=2, metadata=dict(added["metadata"], resourceVersion="201"))
    api.feed("ADDED", added)
    api.feed("DELETED", event(11, 0, 202))
    api.feed("MODIFIED", modified)
    api.feed("ADDED", event(12, 0, 150))        # not above the highest seen: a duplicate
    api.feed("ADDED", last)
    assert listener.wait_records(7)[4:] == [added, modified, last]


def test_a_closed_watch_or_410_gone_lists_again_without_sending_twice(spawn, tmp_path, api):
    api.events = [event(1, 60, 101), event(2, 50, 102)]
    api.version = 102
    listener = start(spawn, tmp_path, api, kube_token_ttl="1")
    wait_for(lambda: watch_count(api) == 1)
    assert listener.wait_records(2) == api.events
    third = event(3, 40, 103)
    api.feed("ADDED", third)
    listener.wait_records(3)
    # The server ends the watch; a new event came meanwhile; the token was renewed.
    (tmp_path / "token").write_text("renewed-token")
    api.events.append(event(4, 30, 104))
    api.version = 104
    api.gone = True                             # the next watch is answered 410 Gone
    api.end_watch()
    wait_for(lambda: watch_count(api) == 3)     # list, 410, list again, watch
    assert api.paths()[1:] == ["/api/v1/events?watch=1&resourceVersion=102&timeoutSeconds=600",
                               "/api/v1/events",
                               "/api/v1/events?watch=1&resourceVersion=104&timeoutSeconds=600",
                               "/api/v1/events",
                               "/api/v1/events?watch=1&resourceVersion=104&timeoutSeconds=600"]
    assert ("Authorization", "Bearer renewed-token") in api.requests[-1][1]
    assert "http_status=410" in listener.log()
    # An ERROR event (the resourceVersion expired) ends the watch: listed again.
    api.events.append(event(5, 20, 105))
    api.version = 105
    api.feed("ERROR", {"kind": "Status", "code": 410, "reason": "Expired",
                       "message": "too old resource version"})
    wait_for(lambda: watch_count(api) == 4)
    sixth = event(6, 10, 106)
    api.feed("ADDED", sixth)
    assert listener.wait_records(6) == api.events[:2] + [third] + api.events[2:] + [sixth]
    assert "too old resource version" in listener.log()


def test_namespace_path_and_plain_http(spawn, tmp_path):
    got = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            got.append(self.path)
            body = json.dumps({"kind": "EventList", "metadata": {"resourceVersion": "7"},
                               "items": []}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    (tmp_path / "token").write_text("t")
    try:
        start(spawn, tmp_path, None, kube_url="http://127.0.0.1:%d" % httpd.server_address[1],
              kube_namespace="shop", kube_watch_timeout="0")
        wait_for(lambda: len(got) >= 2)
        assert got[:2] == ["/api/v1/namespaces/shop/events?",
                           "/api/v1/namespaces/shop/events?watch=1&resourceVersion=7"]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_server_down_at_start_is_tried_each_interval_and_logged_once(spawn, tmp_path):
    certs = Certs(str(tmp_path / "certs"))
    port = free_port()
    (tmp_path / "token").write_text("test-token")
    listener = start(spawn, tmp_path, None, kube_url="https://127.0.0.1:%d" % port,
                     kube_ca_file=certs.ca)
    # Log_Level debug: the repeats of the failure are there, at debug level.
    wait_for(lambda: listener.log().count("kube api upstream connection error") >= 3)
    log = listener.log()
    assert [line for line in log.splitlines()
            if "kube api upstream connection error" in line and "[error]" in line] \
        == [line for line in log.splitlines() if "upstream connection error" in line][:1]
    api = ApiServer(certs, port)
    try:
        api.events = [event(1, 60, 101)]
        assert listener.wait_records(1) == api.events
    finally:
        api.close()


def test_a_missing_token_file_sends_no_request(spawn, tmp_path, api):
    listener = start(spawn, tmp_path, api, kube_token_file=tmp_path / "missing")
    wait_for(lambda: "failed to refresh token" in listener.log())
    (tmp_path / "missing").write_text("late-token")
    wait_for(lambda: watch_count(api) == 1)
    assert all(("Authorization", "Bearer late-token") in headers for _, headers in api.requests)


def db_uids(path):
    conn = sqlite3.connect(str(path))
    try:
        return sorted(row[0] for row in conn.execute("SELECT uid FROM in_kubernetes_events"))
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def test_a_restart_with_db_does_not_emit_again(spawn, tmp_path, api):
    db = tmp_path / "events.db"
    api.events = [event(1, 60, 101), event(2, 50, 102)]
    api.version = 102
    first = start(spawn, tmp_path, api, out="first", db=db)
    wait_for(lambda: watch_count(api) == 1)
    assert first.wait_records(2) == api.events
    third = event(3, 40, 103)
    api.feed("ADDED", third)
    first.wait_records(3)
    wait_for(lambda: db_uids(db) == ["uid-1", "uid-2", "uid-3"])
    first.child.kill()
    # Fluent Bit's uid rule: a MODIFIED event of a uid already sent is not sent again.
    fourth, fifth = event(4, 30, 105), event(5, 20, 106)
    api.events += [third, dict(event(2, 50, 104), count=2), fourth]
    api.version = 105
    second = start(spawn, tmp_path, api, out="second", db=db)
    wait_for(lambda: watch_count(api) == 2)
    api.feed("ADDED", fifth)
    assert second.wait_records(2) == [fourth, fifth]
    conn = sqlite3.connect(str(db))
    columns = [row[1] for row in conn.execute("PRAGMA table_info(in_kubernetes_events)")]
    conn.close()
    assert columns == ["id", "uid", "resourceVersion", "created"]


def test_uids_are_saved_only_once_delivered(spawn, tmp_path, api):
    """At-least-once: records one output never confirmed are sent again after a SIGKILL."""
    db = tmp_path / "events.db"
    api.events = [event(1, 60, 101), event(2, 50, 102)]
    api.version = 102
    # Besides the file output, a forward output to a port nobody listens on.
    never = section("OUTPUT", {"Name": "forward", "Match": "*", "Host": "127.0.0.1",
                               "Port": "1", "Retry_Limit": "no_limits"})
    first = start(spawn, tmp_path, api, out="first", extra=never, db=db)
    assert first.wait_records(2) == api.events        # the file output has them...
    wait_for(lambda: watch_count(api) == 1)
    first.child.kill()
    assert db_uids(db) == []                          # ...but forward never confirmed
    second = start(spawn, tmp_path, api, out="second", db=db)
    assert second.wait_records(2) == api.events
    wait_for(lambda: db_uids(db) == ["uid-1", "uid-2"])


def test_dry_run_and_config_errors(tmp_path):
    conf = tmp_path / "fluent-bit.conf"
    base = ("[INPUT]\n    Name kubernetes_events\n    kube_namespace kube-system\n"
            "    db %s\n    db.sync full\n    db.locking on\n    db.journal_mode delete\n"
            "    kube_request_limit 500\n    kube_retention_time 2h\n    tls.verify off\n"
            "[OUTPUT]\n    Name null\n    Match *\n" % (tmp_path / "k.db"))
    conf.write_text(base)
    proc = run_edgeship(["--dry-run", "-c", str(conf)])
    assert proc.returncode == 0, proc.stderr
    conf.write_text(base.replace("kube_namespace kube-system", "kube_url ftp://x"))
    proc = run_edgeship(["--dry-run", "-c", str(conf)])
    assert proc.returncode != 0
    assert "Kube_URL must start with http:// or https://" in proc.stderr
    conf.write_text(base.replace("db.sync full", "db.sync sometimes"))
    proc = run_edgeship(["--dry-run", "-c", str(conf)])
    assert proc.returncode != 0 and "db.sync" in proc.stderr
