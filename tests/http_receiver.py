"""A recording HTTP/1.1 receiver on loopback for the HTTP output tests: real sockets, every
request kept as received (head bytes, body), answers chosen per request by the test, as
the real services document them (Elasticsearch bulk, Loki push, Splunk HEC, Datadog intake).

``answer(request, index)`` returns the response bytes, or one of ``CLOSE`` (close without
answering), ``("slow", seconds, bytes)`` (answer late).
"""
import gzip
import json
import socket
import ssl
import subprocess
import threading
import time

CLOSE = "close"


def response(status=200, body=b'{"status":"ok"}', reason=None, content_type="application/json",
             extra=()):
    reason = reason or {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request",
                        403: "Forbidden", 429: "Too Many Requests",
                        500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "X")
    if isinstance(body, str):
        body = body.encode()
    head = ["HTTP/1.1 %d %s" % (status, reason), "Content-Type: %s" % content_type,
            "Content-Length: %d" % len(body)] + list(extra)
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Request:
    def __init__(self, connection, head, body):
        self.connection = connection
        self.head_raw = head
        self.body = body
        lines = head.decode("latin-1").split("\r\n")
        self.method, self.path, self.http_version = lines[0].split(" ")
        self.headers = [tuple(line.split(": ", 1)) for line in lines[1:] if line]

    def header(self, name):
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def text(self):
        body = self.body
        if self.header("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return body.decode("utf-8")

    def json_lines(self):
        return [json.loads(line) for line in self.text().splitlines() if line]


def self_signed_certificate(folder):
    """(certificate, key) paths of a new self-signed EC certificate for 127.0.0.1."""
    cert, key = folder / "receiver.crt", folder / "receiver.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


class Receiver:
    """``tls``: (certificate, key) paths to answer over TLS."""

    def __init__(self, answer=None, port=0, tls=None):
        self.answer = answer or (lambda request, index: response())
        self.requests = []
        self.connections = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(16)
        self.closed = False
        self.tls = None
        if tls is not None:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(str(tls[0]), str(tls[1]))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                number = self.connections
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn, number):
        buffer = b""
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                head += b"\r\n\r\n"
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                while len(buffer) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                body, buffer = buffer[:length], buffer[length:]
                request = Request(number, head, body)
                with self.lock:
                    index = len(self.requests)
                    self.requests.append(request)
                answer = self.answer(request, index)
                if answer == CLOSE:
                    return
                if isinstance(answer, tuple):
                    _, delay, answer = answer
                    time.sleep(delay)
                conn.sendall(answer)
        except OSError:
            return
        finally:
            conn.close()

    def close(self):
        self.closed = True
        self.sock.close()
