"""The one HTTP/1.1 client: the HTTP outputs (http, es, opensearch, loki, splunk, datadog) and
the kubernetes filter's API server and kubelet requests, the kubernetes_events input's LIST
and streamed WATCH (``stream``).

h11 does the protocol (request framing, response parsing, keep-alive rules); this module is
the socket glue on the asyncio loop. h11 was chosen because it is sans-IO (it never touches a
socket, so it runs on our loop with our timeouts and TLS), pure Python (a Pi needs no
compiler or wheel), small, and the well-kept reference of that style; aiohttp or httpx would
bring their own loop machinery, pools and several dependencies for one POST per chunk.

Kept from Fluent Bit (flb_http_client.c / flb_upstream.c):
- One request per flush, body never chunked: ``Host`` (``host:port``, the port left out only
  for TLS to 443), ``Content-Length``, the plugin's headers in its order, ``Connection:
  keep-alive`` last unless the plugin put its own ``Connection`` among them (kubernetes'
  ``close``: that connection is then not kept).
- Keep-alive pool per upstream: a flush takes an idle connection or opens one, so each of
  ``Workers`` flushes in flight has its own; a connection is given back only after a full
  response the server did not ask to close; ``net.keepalive_idle_timeout`` and
  ``net.keepalive_max_recycle`` retire old ones.
- ``Proxy http://host:port``: plain HTTP goes to the proxy with the absolute URI and
  ``Proxy-Connection: KeepAlive`` first; with TLS a ``CONNECT host:port`` tunnel is opened
  first. Credentials in the URL (``http://user:pass@host:port``) are sent as
  ``Proxy-Authorization: Basic``; Fluent Bit's http output takes ``user`` for the host.
- gzip bodies start with Fluent Bit's fixed header (mtime 0, OS 255).

Differences: Fluent Bit waits for a response as long as ``http.response_timeout`` (60 s) or
forever with ``net.io_timeout 0``; here every read and write is bounded by
``net.io_timeout`` or 60 s when it is 0, so a silent server never stalls an output. The gzip
member's deflate stream is zlib's, not miniz's: the same text, other compressed bytes.
"""
import asyncio
import base64
import contextlib
import socket
import struct
import time
import zlib
from urllib.parse import urlsplit

import h11

from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.net.stream import open_stream
from edgeship.net.tls import TLS_OPTIONS, tls_context

# Fluent Bit's http.response_timeout default: what net.io_timeout 0 means here.
DEFAULT_IO_TIMEOUT = 60.0
_READ_SIZE = 65536
# A response (status line, headers, body) is read up to this size by default; the rest is not
# read and the connection is closed (a bulk answer for a 256 KB chunk is well under it; a
# runaway server cannot fill the RAM).
MAX_RESPONSE = 8 * 1024 * 1024
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"

# The options every HTTP output has (besides its own Host/Port defaults): declared once here.
HTTP_CLIENT_OPTIONS = (
    Option("http_User", help="user name for HTTP basic authentication"),
    Option("http_Passwd", default="", help="password for HTTP basic authentication"),
    Option("Header", multiple=True, help="'Name value' header added to every request"),
    Option("compress", help="gzip: compress the request body"),
    Option("Proxy", help="HTTP proxy, http://[user:password@]host:port"),
    Option("net.connect_timeout", "time", "10", help="seconds to connect"),
    Option("net.connect_timeout_log_error", "bool", "on", compat=True),
    Option("net.io_timeout", "time", "0",
           help="seconds to write a request or wait for its response (0: %ds)"
           % DEFAULT_IO_TIMEOUT),
    Option("net.keepalive", "bool", "on", help="keep connections between flushes"),
    Option("net.keepalive_idle_timeout", "time", "30",
           help="close a kept connection idle this long"),
    Option("net.keepalive_max_recycle", "int", "2000",
           help="reconnect after this many requests on one connection"),
    Option("net.source_address", compat=True),
    Option("net.dns.mode", compat=True),
    Option("net.dns.resolver", compat=True),
    Option("net.tcp_keepalive", "bool", "off", help="TCP keepalive probes"),
) + TLS_OPTIONS


# The net.* and tls.* options of an output that speaks TLS by default and has none of the
# http output's Header/Proxy/http_User (Fluent Bit's FLB_IO_TLS cloud plugins: AWS, Azure,
# Google Cloud).
TLS_ON_NET_OPTIONS = tuple(
    Option("tls", "bool", "on", help="use TLS (on for the cloud service)") if o.key == "tls"
    else o for o in HTTP_CLIENT_OPTIONS if o.key.startswith(("net.", "tls")))

def address_options(port, host="127.0.0.1"):
    """The ``Host``/``Port`` options of an HTTP output, with its Fluent Bit defaults."""
    return (Option("Host", default=host, help="host of the server"),
            Option("Port", "int", str(port), min=1, max=65535, help="TCP port of the server"))


class HttpError(Exception):
    """The request got no complete response: refused, reset, timed out or malformed. The
    server may or may not have seen it (at-least-once: the caller retries)."""


class InvalidRequest(HttpError):
    """The request cannot be sent as it is (a header with a line break...): sending it again
    would fail again."""


class Response:
    __slots__ = ("status", "headers", "body", "truncated")

    def __init__(self, status, headers, body, truncated=False):
        self.status = status
        self.headers = headers   # [(lowercase name bytes, value bytes)]
        self.body = body
        self.truncated = truncated   # the response went over max_response: body is its head

    def first_line(self):
        """The body's first line, for a log message."""
        return self.body.split(b"\n", 1)[0].decode("utf-8", "replace").strip()


def gzip_body(data):
    """A gzip member as Fluent Bit writes it: fixed header (no name, mtime 0, OS 255)."""
    deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS, 9)
    return b"".join((_GZIP_HEADER, deflate.compress(data), deflate.flush(),
                     struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)))


def _bytes(text):
    return text.encode("utf-8", "surrogateescape") if isinstance(text, str) else bytes(text)


def gzip_option(value):
    """True for ``compress gzip``, False for none/false/off; ConfigError otherwise."""
    value = (value or "").strip().lower()
    if value == "gzip":
        return True
    if value in ("", "none", "false", "off"):
        return False
    raise ConfigError("compress: only gzip is supported, got '%s'" % value, key="compress")


def basic_auth(user, password):
    token = base64.b64encode(("%s:%s" % (user, password or "")).encode("utf-8"))
    return "Basic " + token.decode("ascii")


def parse_headers(entries, key="header"):
    """``[(name, value)]`` from ``Header`` entries ``'Name value'``; ConfigError without a
    value."""
    headers = []
    for entry in entries:
        name, _, value = entry.strip().partition(" ")
        if not name or not value.strip():
            raise ConfigError("Header needs 'Name value', got '%s'" % entry, key=key)
        headers.append((name, value.strip()))
    return headers


def split_url(url, default_https=True):
    """(https, host, port, path) of ``http(s)://host[:port][/path][?query]`` or a bare host
    (``default_https`` says which); ValueError for anything else."""
    if "://" not in url:
        url = ("https://" if default_https else "http://") + url
    parts = urlsplit(url.strip())
    port = parts.port           # ValueError for a bad port
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL: %s" % url)
    https = parts.scheme.lower() == "https"
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return https, parts.hostname, port or (443 if https else 80), path


def _parse_proxy(text):
    """(host, port, Proxy-Authorization value or None) of ``http://[user:pass@]host:port``."""
    if not text.startswith("http://"):
        raise ConfigError("Proxy must be http://host:port, got '%s'" % text, key="proxy")
    rest = text[len("http://"):].rstrip("/")
    auth = None
    if "@" in rest:
        cred, rest = rest.rsplit("@", 1)
        user, _, password = cred.partition(":")
        auth = basic_auth(user, password)
    host, _, port = rest.rpartition(":")
    if not host:
        host, port = rest, "80"
    try:
        port = int(port)
    except ValueError:
        raise ConfigError("Proxy: bad port in '%s'" % text, key="proxy")
    return host, port, auth


class _Connection:
    __slots__ = ("reader", "writer", "h11", "used", "last_use")

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)
        self.used = 0
        self.last_use = time.monotonic()

    def alive(self):
        return not (self.reader.at_eof() or self.writer.is_closing()
                    or self.reader.exception() is not None)

    def close(self):
        try:
            self.writer.close()
        except Exception:
            pass


async def _next_event(conn, timeout):
    """The connection's next h11 event, reading as needed, each read within ``timeout``."""
    while True:
        event = conn.h11.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.h11.receive_data(await asyncio.wait_for(conn.reader.read(_READ_SIZE), timeout))


class StreamedResponse:
    """A response read as it comes: ``status`` and ``headers`` (lowercase name bytes, value
    bytes) at once, then ``await read()`` for the next body bytes (b"" at its end)."""

    __slots__ = ("status", "headers", "_conn", "_idle_timeout")

    def __init__(self, conn, status, headers, idle_timeout):
        self.status = status
        self.headers = headers
        self._conn = conn
        self._idle_timeout = idle_timeout

    async def read(self):
        """The next body bytes, b"" once the body ended; HttpError when the connection
        failed, was cut mid-body or stayed silent ``idle_timeout`` seconds."""
        try:
            while True:
                event = await _next_event(self._conn, self._idle_timeout)
                if isinstance(event, h11.Data):
                    return bytes(event.data)
                if isinstance(event, h11.EndOfMessage):
                    return b""
                if isinstance(event, h11.ConnectionClosed):
                    raise HttpError("server closed the connection mid-response")
        except asyncio.TimeoutError:
            raise HttpError("nothing received for %ss" % self._idle_timeout)
        except (OSError, EOFError, h11.ProtocolError) as exc:
            raise HttpError(str(exc) or type(exc).__name__)

    def close(self):
        self._conn.close()


class HttpClient:
    """Requests to one upstream (``host:port``), over a pool of kept-alive connections.

    ``conf`` is the output's converted section (HTTP_CLIENT_OPTIONS and address_options);
    ``host``/``port`` override it (es Cloud_ID, datadog's port by TLS); ``max_response``
    bounds what is read of one response (MAX_RESPONSE when not given)."""

    def __init__(self, conf, host=None, port=None, max_response=None):
        self.host = host or conf["host"]
        self.port = port or conf["port"]
        self.ssl_ctx = tls_context(conf, server=False)
        self.vhost = conf.get("tls.vhost") or self.host
        self.connect_timeout = conf["net.connect_timeout"] or None
        self.io_timeout = conf["net.io_timeout"] or DEFAULT_IO_TIMEOUT
        self.keepalive = conf["net.keepalive"]
        self.idle_timeout = conf["net.keepalive_idle_timeout"]
        self.max_recycle = conf["net.keepalive_max_recycle"]
        self.tcp_keepalive = conf["net.tcp_keepalive"]
        self.proxy = _parse_proxy(conf["proxy"]) if conf.get("proxy") else None
        if self.ssl_ctx is not None and self.port == 443:
            self.host_header = self.host
        else:
            self.host_header = "%s:%s" % (self.host, self.port)
        self.label = "%s:%s" % (self.host, self.port)
        self.max_response = max_response or MAX_RESPONSE
        self.idle = []

    # ------------------------------------------------------------------ connections
    async def _open(self):
        ssl_ctx = self.ssl_ctx
        if self.proxy is not None and ssl_ctx is not None:
            host, port, tunnel = None, None, await self._tunnel()
        elif self.proxy is not None:
            host, port, tunnel, ssl_ctx = self.proxy[0], self.proxy[1], None, None
        else:
            host, port, tunnel = self.host, self.port, None
        stream = await open_stream(host, port, ssl_ctx, self.vhost,
                                   connect_timeout=self.connect_timeout,
                                   tcp_keepalive=self.tcp_keepalive, sock=tunnel)
        return _Connection(stream.reader, stream.writer)

    async def _tunnel(self):
        """A socket connected through the proxy's ``CONNECT`` to the server (for TLS)."""
        loop = asyncio.get_running_loop()
        proxy_host, proxy_port, auth = self.proxy
        infos = await loop.getaddrinfo(proxy_host, proxy_port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, address), self.connect_timeout)
            head = ("CONNECT %s:%s HTTP/1.1\r\nHost: %s:%s\r\nProxy-Connection: KeepAlive\r\n"
                    % (self.host, self.port, self.host, self.port))
            if auth:
                head += "Proxy-Authorization: %s\r\n" % auth
            await asyncio.wait_for(loop.sock_sendall(sock, (head + "\r\n").encode()),
                                   self.io_timeout)
            answer = b""
            while b"\r\n\r\n" not in answer:
                data = await asyncio.wait_for(loop.sock_recv(sock, 4096), self.io_timeout)
                if not data or len(answer) > 65536:
                    raise HttpError("proxy closed the connection during CONNECT")
                answer += data
            status = answer.split(b"\r\n", 1)[0].split(b" ")
            if len(status) < 2 or not status[1].startswith(b"2"):
                raise HttpError("proxy refused CONNECT: %s"
                                % answer.split(b"\r\n", 1)[0].decode("latin-1"))
        except BaseException:
            sock.close()
            raise
        return sock

    async def _connection(self):
        while self.idle:
            conn = self.idle.pop()
            if (conn.alive() and time.monotonic() - conn.last_use <= self.idle_timeout
                    and conn.used < self.max_recycle):
                return conn
            conn.close()
        return await self._open()

    # ------------------------------------------------------------------ requests
    def target(self, uri):
        """The request target of ``uri``: absolute through a plain HTTP proxy."""
        if self.proxy is not None and self.ssl_ctx is None:
            return "http://%s:%s%s" % (self.host, self.port, uri)
        return uri

    def _wire(self, headers, body):
        """The request's header lines: Host (the plugin's own when among ``headers``: azure_blob
        leaves the port out as flb_http_strip_port_from_host does), Content-Length and
        (unless among them) Connection around the plugin's ``headers``."""
        wire = []
        if self.proxy is not None and self.ssl_ctx is None:
            wire.append(("Proxy-Connection", "KeepAlive"))
            if self.proxy[2]:
                wire.append(("Proxy-Authorization", self.proxy[2]))
        host = self.host_header
        if any(name.lower() == "host" for name, _ in headers):   # the plugin's own, in place
            host = [value for name, value in headers if name.lower() == "host"][-1]
            headers = [pair for pair in headers if pair[0].lower() != "host"]
        wire += [("Host", host), ("Content-Length", str(len(body)))]
        wire.extend(headers)
        if not any(name.lower() == "connection" for name, _ in headers):
            wire.append(("Connection", "keep-alive"))
        return [(_bytes(name), _bytes(value)) for name, value in wire]

    async def request(self, method, uri, headers, body):
        """Send one request; the Response, or HttpError when none came back complete.

        ``headers`` are the plugin's own, in the order Fluent Bit sends them; Host,
        Content-Length and (unless among them) Connection are added around them."""
        wire = self._wire(headers, body)
        conn = None
        try:
            with self._failures():
                conn = await self._connection()
                response = await self._exchange(conn, method, self.target(uri), wire, body)
            conn.used += 1
            conn.last_use = time.monotonic()
            if self.keepalive and conn.h11.our_state is h11.DONE \
                    and conn.h11.their_state is h11.DONE:
                conn.h11.start_next_cycle()
                self.idle.append(conn)
                conn = None
            return response
        finally:
            if conn is not None:   # failed, cancelled, or not to be kept
                conn.close()

    @contextlib.contextmanager
    def _failures(self):
        """What an exchange raises, as the client's errors: HttpError when no answer came,
        InvalidRequest when h11 refused to send the request."""
        try:
            yield
        except asyncio.TimeoutError:
            raise HttpError("no answer within %ss" % self.io_timeout)
        except h11.LocalProtocolError as exc:
            raise InvalidRequest(str(exc))
        except (OSError, EOFError, h11.ProtocolError) as exc:
            raise HttpError(str(exc) or type(exc).__name__)

    async def _send(self, conn, method, target, headers, body):
        proto = conn.h11
        # h11 checks the request and keeps the connection's state; the head is written here
        # because h11 always puts Host first, and Fluent Bit puts Proxy-Connection before it.
        proto.send(h11.Request(method=method, target=target, headers=headers))
        proto.send(h11.Data(data=body))
        proto.send(h11.EndOfMessage())
        head = [b"%s %s HTTP/1.1\r\n" % (_bytes(method), _bytes(target))]
        head += [b"%s: %s\r\n" % pair for pair in headers]
        head += (b"\r\n", body)
        conn.writer.write(b"".join(head))
        await asyncio.wait_for(conn.writer.drain(), self.io_timeout)

    async def stream(self, method, uri, headers, idle_timeout):
        """Send one request and return once the response's head came: a StreamedResponse
        whose body is read as the server sends it (a Kubernetes watch), each read bounded
        by ``idle_timeout`` seconds. Its connection is never given back to the pool."""
        conn = None
        try:
            with self._failures():
                conn = await self._connection()
                await self._send(conn, method, self.target(uri), self._wire(headers, b""),
                                 b"")
                while True:
                    event = await _next_event(conn, self.io_timeout)
                    if isinstance(event, h11.Response):
                        response = StreamedResponse(conn, event.status_code,
                                                    list(event.headers), idle_timeout)
                        conn = None
                        return response
                    if isinstance(event, h11.ConnectionClosed):
                        raise HttpError("server closed the connection before answering")
        finally:
            if conn is not None:
                conn.close()

    async def _exchange(self, conn, method, target, headers, body):
        proto = conn.h11
        await self._send(conn, method, target, headers, body)
        deadline = time.monotonic() + self.io_timeout
        status = None
        response_headers = []
        parts = []
        received = 0
        cut = False
        while True:
            event = proto.next_event()
            if event is h11.NEED_DATA:
                if cut:   # h11 is not DONE: the connection is not reused
                    if status is None:
                        raise HttpError("response head over %d bytes" % self.max_response)
                    return Response(status, response_headers, b"".join(parts), True)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise asyncio.TimeoutError()
                chunk = await asyncio.wait_for(conn.reader.read(_READ_SIZE), left)
                if not chunk and status is None:
                    raise HttpError("server closed the connection before answering")
                if received + len(chunk) > self.max_response:
                    chunk = chunk[:self.max_response - received]
                    cut = True
                received += len(chunk)
                if chunk or not cut:   # b"" tells h11 the server closed
                    proto.receive_data(chunk)
            elif isinstance(event, h11.InformationalResponse):
                continue
            elif isinstance(event, h11.Response):
                status = event.status_code
                response_headers = list(event.headers)
            elif isinstance(event, h11.Data):
                parts.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return Response(status, response_headers, b"".join(parts))
            elif isinstance(event, h11.ConnectionClosed):
                raise HttpError("server closed the connection mid-response")

    def close(self):
        for conn in self.idle:
            conn.close()
        self.idle = []
