"""A stand-in for the NGINX Plus REST API (ngx_http_api_module) on a free loopback port, for the
nginx_metrics input's Plus mode: ``GET /api/`` lists the API versions, ``GET /api/<v>/...``
serves the documents NGINX documents for connections, ssl, http/requests, http/server_zones,
http/location_zones, http/upstreams, stream/server_zones and stream/upstreams (field names and
shapes as in https://nginx.org/en/docs/http/ngx_http_api_module.html; values fixed, so a test
knows what to expect). Every request path is kept; ``pages`` can be changed while it runs.

    plus = PlusApi().start()
    plus.pages["/api/9/http/upstreams"] = (200, b"not json")
    plus.paths                          # ["/api/", "/api/9/connections", ...]
"""
import http.server
import json
import threading

from conftest import free_port

VERSIONS = [1, 2, 3, 4, 5, 6, 7, 8, 9]


def _responses(r1, r2, r3, r4, r5, codes):
    return {"1xx": r1, "2xx": r2, "3xx": r3, "4xx": r4, "5xx": r5, "codes": codes,
            "total": r1 + r2 + r3 + r4 + r5}


def _health():
    return {"checks": 2620, "fails": 0, "unhealthy": 0, "last_passed": True}


DOCUMENTS = {
    "connections": {"accepted": 4968119, "dropped": 3, "active": 5, "idle": 117},
    "ssl": {"handshakes": 79572, "handshakes_failed": 21025, "session_reuses": 15762,
            "no_common_protocol": 4, "no_common_cipher": 2, "handshake_timeout": 0,
            "peer_rejected_cert": 0},
    "http/requests": {"total": 10624511, "current": 4},
    "http/server_zones": {
        "site1": {"processing": 2, "requests": 736395,
                  "responses": _responses(0, 727290, 4614, 934, 1535,
                                          {"200": 727270, "301": 4614, "404": 930,
                                           "503": 1535}),
                  "discarded": 2020, "received": 180157219, "sent": 20183175459,
                  "ssl": {"handshakes": 65432, "handshakes_failed": 421,
                          "session_reuses": 4645}},
        "site2": {"processing": 1, "requests": 185307,
                  "responses": _responses(0, 112674, 45383, 2504, 0,
                                          {"200": 112674, "302": 45383, "404": 2504}),
                  "discarded": 2746, "received": 51575327, "sent": 2983241510},
    },
    "http/location_zones": {
        "site1_api": {"requests": 736395,
                      "responses": _responses(0, 727290, 4614, 934, 1535, {"200": 727290}),
                      "discarded": 2020, "received": 180157219, "sent": 20183175459},
    },
    "http/upstreams": {
        "trac-backend": {
            "peers": [
                {"id": 0, "server": "10.0.0.1:8088", "name": "10.0.0.1:8088",
                 "backup": False, "weight": 5, "state": "up", "active": 2,
                 "requests": 667231, "header_time": 20, "response_time": 36,
                 "responses": _responses(0, 666310, 0, 915, 6, {"200": 666310}),
                 "sent": 251946292, "received": 19222475454, "fails": 1, "unavail": 0,
                 "health_checks": _health(), "downtime": 0,
                 "selected": "2022-06-28T15:01:25Z"},
                {"id": 1, "server": "10.0.0.2:8088", "name": "10.0.0.2:8088",
                 "backup": True, "weight": 1, "state": "unhealthy", "active": 0,
                 "requests": 0, "responses": _responses(0, 0, 0, 0, 0, {}),
                 "sent": 0, "received": 0, "fails": 0, "unavail": 0,
                 "health_checks": _health(), "downtime": 2033, "downstart":
                 "2022-06-28T11:09:21.602Z", "selected": "2022-06-28T11:09:21Z"},
            ],
            "keepalive": 3, "zombies": 1, "zone": "trac-backend"},
    },
    "stream/server_zones": {
        "mysql-frontend": {"processing": 2, "connections": 270925,
                           "sessions": {"2xx": 155564, "4xx": 0, "5xx": 12,
                                        "total": 155576},
                           "discarded": 7, "received": 28988975, "sent": 3879346317},
    },
    "stream/upstreams": {
        "mysql_backends": {
            "peers": [
                {"id": 0, "server": "10.0.0.1:12345", "name": "10.0.0.1:12345",
                 "backup": False, "weight": 5, "state": "up", "active": 1, "max_conns": 30,
                 "connections": 1231, "connect_time": 3, "first_byte_time": 4,
                 "response_time": 5, "sent": 251946292, "received": 19222475454,
                 "fails": 2, "unavail": 0, "health_checks": _health(), "downtime": 0,
                 "selected": "2022-06-28T15:01:25Z"},
            ],
            "zombies": 0, "zone": "mysql_backends"},
    },
}


def pages(prefix="/api", version=9):
    """Every page the stand-in serves by path: (status, body)."""
    served = {prefix + "/": (200, json.dumps(VERSIONS).encode())}
    for name, document in DOCUMENTS.items():
        served["%s/%d/%s" % (prefix, version, name)] = (200, json.dumps(document).encode())
    return served


class PlusApi:
    def __init__(self, prefix="/api", version=9):
        self.port = free_port()
        self.pages = pages(prefix, version)
        self.paths = []
        self.server = None

    def start(self):
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                api.paths.append(self.path)
                status, body = api.pages.get(
                    self.path, (404, b'{"error":{"status":404,"text":"path not found",'
                                     b'"code":"PathNotFound"}}'))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None   # a client gone mid-answer
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
