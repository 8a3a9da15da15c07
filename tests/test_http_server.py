"""edgeship.net.http_server: a real server on a loopback port (its loop in a thread), spoken to
by http.client and raw sockets: keep-alive, chunked bodies, 100-continue, the body limit
(413), bad requests (400), a failing handler (500), TLS."""
import asyncio
import http.client
import socket
import ssl
import threading

import pytest

from edgeship.net.http_server import HttpServer, Response
from edgeship.net.tls import tls_context
from mosquitto import Certs


class Running:
    """An HttpServer serving on its own loop in a thread; ``requests`` holds what the
    handler saw."""

    def __init__(self, handler=None, **options):
        self.requests = []
        self.handler = handler or self.echo
        self.loop = asyncio.new_event_loop()
        self.server = None
        self.options = options
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        assert started.wait(10)

    async def echo(self, request):
        return Response(200, [("Content-Type", "text/plain")],
                        b"%s %s %s %d" % (request.method.encode(), request.path.encode(),
                                          request.query.encode(), len(request.body)))

    async def _handle(self, request):
        self.requests.append(request)
        return await self.handler(request)

    def _run(self, started):
        asyncio.set_event_loop(self.loop)

        async def start():
            self.server = HttpServer(self._handle, "127.0.0.1", 0, **self.options)
            await self.server.start()

        self.loop.run_until_complete(start())
        started.set()
        self.loop.run_forever()

    @property
    def port(self):
        return self.server.port

    def stop(self):
        if self.loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def running():
    servers = []

    def start(handler=None, **options):
        server = Running(handler, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _raw(port, data, read_until_close=True):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return received
            received += chunk


def test_requests_on_one_keep_alive_connection_reach_the_handler(running):
    server = running()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/app.log?x=1&y=2", body=b'{"a":1}',
                 headers={"Content-Type": "application/json", "X-Twice": "a"})
    first = conn.getresponse()
    assert (first.status, first.read()) == (200, b"POST /app.log x=1&y=2 7")
    conn.request("GET", "/")
    second = conn.getresponse()
    assert (second.status, second.read()) == (200, b"GET /  0")
    conn.close()
    request = server.requests[0]
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-twice"] == "a"
    assert request.body == b'{"a":1}'
    assert request.peer[0] == "127.0.0.1"
    # the same socket carried both
    assert server.requests[1].peer == request.peer


def test_a_chunked_body_is_joined(running):
    server = running()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/t", body=iter([b"hello ", b"chunked ", b"world"]),
                 encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
    assert conn.getresponse().read() == b"POST /t  19"
    assert server.requests[0].body == b"hello chunked world"


def test_pipelined_requests_are_answered_in_order(running):
    server = running()
    data = _raw(server.port, b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
                             b"GET /two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert data.index(b"GET /one") < data.index(b"GET /two")
    assert data.count(b"HTTP/1.1 200 OK") == 2


def test_expect_100_continue_gets_its_interim_answer(running):
    server = running()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 100 ")
        sock.sendall(b"body")
        assert b"POST /c  4" in sock.recv(1000)


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(running):
    server = running(max_body=100)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/big", body=b"x" * 101)
    response = conn.getresponse()
    assert response.status == 413
    assert response.getheader("Connection") == "close"
    assert server.requests == []
    assert server.server.refused == 1
    # a body at the limit passes
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/ok", body=b"x" * 100)
    assert conn.getresponse().status == 200


def test_a_chunked_body_growing_over_the_limit_is_refused(running):
    server = running(max_body=100)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/big", body=iter([b"x" * 60, b"x" * 60]), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked"})
    assert conn.getresponse().status == 413
    assert server.requests == []


@pytest.mark.parametrize("garbage", [
    b"this is not http\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
])
def test_a_bad_request_is_answered_400_and_closed(running, garbage):
    server = running()
    data = _raw(server.port, garbage)
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert server.requests == []
    # the server still serves others
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/after")
    assert conn.getresponse().status == 200


def test_headers_over_the_limit_are_refused(running):
    server = running(max_header_size=1024)
    # still unfinished past the limit (h11 bounds what it holds while waiting for the end)
    data = _raw(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2000)
    assert data.startswith(b"HTTP/1.1 431 ")


def test_a_failing_handler_answers_500_and_the_connection_stays(running):
    async def handler(request):
        if request.path == "/fail":
            raise RuntimeError("boom")
        return Response(204)

    server = running(handler)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/fail")
    response = conn.getresponse()
    assert response.status == 500
    response.read()
    conn.request("GET", "/fine")
    response = conn.getresponse()
    assert (response.status, response.read()) == (204, b"")
    assert response.getheader("Content-Length") is None


def test_head_gets_headers_without_the_body(running):
    server = running()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("HEAD", "/h")
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Length") == str(len(b"HEAD /h  0"))
    assert response.read() == b""


def test_an_idle_connection_is_closed(running):
    server = running(idle_timeout=0.2)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")     # headers never finished
        assert sock.recv(100) == b""                        # closed by the server


def test_close_ends_a_handler_in_flight(running):
    entered = threading.Event()

    async def handler(request):
        entered.set()
        await asyncio.sleep(3600)

    server = running(handler)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert entered.wait(10)
        server.stop()
        assert sock.recv(100) == b""        # closed, never answered


def test_tls(running, tmp_path):
    certs = Certs(str(tmp_path))
    ctx = tls_context({"tls": True, "tls.crt_file": certs.server_crt,
                       "tls.key_file": certs.server_key}, server=True)
    server = running(ssl=ctx)
    client = ssl.create_default_context(cafile=certs.ca)
    conn = http.client.HTTPSConnection("localhost", server.port, context=client, timeout=10)
    conn.request("POST", "/secure", body=b"abc")
    assert conn.getresponse().read() == b"POST /secure  3"


def test_a_port_in_use_raises_oserror():
    async def main():
        first = HttpServer(None, "127.0.0.1", 0)
        await first.start()
        try:
            with pytest.raises(OSError):
                await HttpServer(None, "127.0.0.1", first.port).start()
        finally:
            await first.close()

    asyncio.run(main())
