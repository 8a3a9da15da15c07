"""websocket output: each chunk as one WebSocket message to a server (out_websocket).

Kept from Fluent Bit 5.1.1 (checked on the real binary, tests/test_out_websocket.py):
``Host`` (127.0.0.1) and ``Port`` (80), ``Uri`` (``/`` by default; a ``/`` is put in front
of one without it), ``tls on`` for wss. The connection opens with Fluent Bit's upgrade
request, header for header: ``GET URI HTTP/1.1``, ``Host: host:port``,
``Content-Length: 0``, ``Upgrade: websocket``, ``Connection: Upgrade``,
``Sec-WebSocket-Key``, ``Sec-WebSocket-Version: 13``, each ``Header Name value``, then
``Connection: keep-alive``; a server that does not answer 101 is retried. The connection is
kept between flushes (net.keepalive_idle_timeout closes one left idle; the next flush opens
and upgrades a new one). Each chunk is one masked frame (FIN set): ``Format`` msgpack (the
default: the chunk's bytes as they are), ``json`` (one array), ``json_lines`` or
``json_stream``, with the time under ``json_date_key`` (``date``) in ``json_date_format``
(``double``); an unknown Format is logged and msgpack is sent, an unknown date format is
logged and double is used, as there. A connection refused, closed or reset is retried on a
new connection.

Delivery: a chunk is OK once the server has read its frame, not once it is written: a ping
follows the frame and the chunk is confirmed by its pong (RFC 6455 servers must answer
pings, in order), so a server that dies with the frame unread (killed, restarted) gets the
chunk again on the next connection; no pong within net.io_timeout (or 30 s when 0) is a
RETRY. Fluent Bit counts a frame written into the socket as delivered and loses what the
server never read.

Framing is wsproto's (sans-IO, the h11 project's WebSocket library on h11, which edgeship
already uses): the frames, the masks, the server's pings and close. The upgrade request is
written here, header for header as Fluent Bit writes it (wsproto's handshake writes other
headers), and the answer is read with h11 and its ``Sec-WebSocket-Accept`` checked. The
connection is opened by ``edgeship.net.stream`` as every client connection.

Differences: the msgpack Format is sent in a binary frame (Fluent Bit marks it text, which
a conforming server refuses as invalid UTF-8 and closes: nothing is delivered); the
Sec-WebSocket-Key is random per connection and every frame's mask is random, as RFC 6455
requires (Fluent Bit sends the RFC's sample key and the mask 12 34 56 78 every time);
the server's answer must carry the right Sec-WebSocket-Accept; the server's pings are
answered, and its close retries the chunk on a new connection. Fluent Bit's idle rule (after
net.keepalive_idle_timeout - 5 s without a flush it retries the chunk to upgrade again) is
not kept: an idle connection is closed by the pool and the flush opens a new one.
``json_date_key false`` leaves the date out, as in the tcp output.
"""
import asyncio
import base64
import hashlib
import itertools
import os

import h11

from edgeship.codecs import formats
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import OK, RETRY, Output
from edgeship.net.http_client import parse_headers
from edgeship.net.stream import NET_OPTIONS, Pool, failure_text, open_stream
from edgeship.net.tls import TLS_OPTIONS, tls_context

JSON_FORMATS = ("json", "json_lines", "json_stream")
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# No pong within net.io_timeout, or this many seconds when it is 0 (Fluent Bit waits for
# nothing): the chunk is retried.
DEFAULT_PONG_TIMEOUT = 30.0
_READ_SIZE = 65536


def _wsproto():
    """wsproto, imported when a config names this output (the websocket extra)."""
    try:
        from wsproto import connection, events
    except ImportError as exc:
        raise ConfigError("websocket needs the websocket extra (pip install "
                          "'edgeship[websocket]'): %s" % exc, key="name")
    return connection, events


class WebSocketError(Exception):
    """The server refused the upgrade, closed the connection or broke the protocol."""


def accept_key(key):
    """The ``Sec-WebSocket-Accept`` a server answers to ``key`` (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest()).decode()


def upgrade_request(uri, host_header, key, headers):
    """Fluent Bit's upgrade request, header for header."""
    lines = ["GET %s HTTP/1.1" % uri, "Host: %s" % host_header, "Content-Length: 0",
             "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: %s" % key,
             "Sec-WebSocket-Version: 13"]
    lines += ["%s: %s" % (name, value) for name, value in headers]
    lines.append("Connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


class WsSession:
    """The WebSocket state of one connection: wsproto's, fed with what the server sent."""

    def __init__(self, trailing):
        connection, self.events = _wsproto()
        self.ws = connection.Connection(connection.ConnectionType.CLIENT,
                                        trailing_data=trailing)
        self.pings = itertools.count(1)

    def replies(self, pong_wanted=None):
        """Handle the server's events: the bytes to send back (pongs to its pings) and
        whether ``pong_wanted`` came. WebSocketError once the server closes (the connection
        is then dropped and the chunk retried on a new one)."""
        out = []
        got = False
        events = self.events
        for event in self.ws.events():
            if isinstance(event, events.Ping):
                out.append(self.ws.send(event.response()))
            elif isinstance(event, events.Pong):
                got = got or (pong_wanted is not None and bytes(event.payload) == pong_wanted)
            elif isinstance(event, events.CloseConnection):
                raise WebSocketError("the server closed the connection (%s %s)"
                                     % (event.code, event.reason or ""))
            # TextMessage/BytesMessage: a server's own messages mean nothing to an output.
        return b"".join(out), got


class WebsocketOutput(Output):
    name = "websocket"
    description = "Websocket"
    options = (
        Option("Host", default="127.0.0.1", help="host of the WebSocket server"),
        Option("Port", "int", "80", min=1, max=65535, help="port of the WebSocket server"),
        Option("Uri", help="path of the WebSocket endpoint (default: /)"),
        Option("Format", help="msgpack (default: the chunk as it is), json, json_lines or "
                              "json_stream"),
        Option("json_date_key", default="date",
               help="key of the record time in JSON formats; false/off/no leaves it out"),
        Option("json_date_format", default="double",
               help="time in JSON formats: double, epoch, epoch_ms, iso8601 or "
                    "java_sql_timestamp"),
        Option("Header", multiple=True, help="'Name value' header added to the upgrade "
                                             "request"),
    ) + NET_OPTIONS + TLS_OPTIONS

    def configure(self):
        conf = self.conf
        self.format = "msgpack"
        if conf["format"] is not None:
            chosen = conf["format"].strip().lower()
            if chosen in JSON_FORMATS or chosen == "msgpack":
                self.format = chosen
            else:
                self.context.tolerate(ConfigError(
                    "websocket: unrecognized 'format' option '%s'. Using 'msgpack'"
                    % conf["format"], key="format"))
        self.date_format = conf["json_date_format"].strip().lower()
        if self.date_format not in formats.DATE_FORMATS:
            self.context.tolerate(ConfigError(
                "websocket: unrecognized 'json_date_format' option '%s'. Using 'double'"
                % conf["json_date_format"], key="json_date_format"))
            self.date_format = "double"
        self.date_key = formats.date_key_option(conf["json_date_key"])
        self.reads_records = self.format != "msgpack"
        _connection, self.events = _wsproto()
        uri = conf["uri"] or "/"
        self.uri = uri if uri.startswith("/") else "/" + uri
        self.headers = parse_headers(conf["header"])
        self.ssl_ctx = tls_context(conf, server=False)
        host, port = conf["host"], conf["port"]
        self.host_header = host if (self.ssl_ctx is not None and port == 443) \
            else "%s:%s" % (host, port)
        self.label = "%s:%s%s" % (host, port, self.uri)
        self.timeout = conf["net.io_timeout"] or DEFAULT_PONG_TIMEOUT
        self.pool = Pool(self._open, conf)

    def summary(self):
        return "url=%s://%s%s format=%s" % ("wss" if self.ssl_ctx else "ws", self.host_header,
                                            self.uri, self.format)

    async def _open(self):
        conf = self.conf
        stream = await open_stream(conf["host"], conf["port"], self.ssl_ctx,
                                   conf.get("tls.vhost"),
                                   connect_timeout=conf["net.connect_timeout"],
                                   tcp_keepalive=conf["net.tcp_keepalive"])
        try:
            key = base64.b64encode(os.urandom(16)).decode("ascii")
            await stream.send(upgrade_request(self.uri, self.host_header, key, self.headers),
                              self.timeout)
            stream.session = WsSession(await self._upgraded(stream, key))
        except BaseException:
            stream.abort()
            raise
        self.log.debug("upgraded %s", self.label)
        return stream

    async def _upgraded(self, stream, key):
        """Read the server's answer to the upgrade; the bytes that followed it."""
        http = h11.Connection(h11.CLIENT)
        http.send(h11.Request(method="GET", target=self.uri,
                              headers=[("Host", self.host_header), ("Upgrade", "websocket"),
                                       ("Connection", "Upgrade")]))
        http.send(h11.EndOfMessage())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            try:
                event = http.next_event()
            except h11.RemoteProtocolError as exc:
                raise WebSocketError("bad answer to the upgrade: %s" % exc)
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(stream.reader.read(_READ_SIZE),
                                              max(deadline - loop.time(), 0.001))
                http.receive_data(data)
                continue
            if isinstance(event, h11.ConnectionClosed):
                raise WebSocketError("the server closed the connection during the upgrade")
            if isinstance(event, h11.InformationalResponse) and event.status_code == 101:
                answer = dict((k.lower(), v) for k, v in event.headers)
                if answer.get(b"sec-websocket-accept", b"").decode("latin-1") \
                        != accept_key(key):
                    raise WebSocketError("the server's Sec-WebSocket-Accept is wrong")
                return http.trailing_data[0]
            if isinstance(event, (h11.Response, h11.InformationalResponse)):
                raise WebSocketError("the server answered the upgrade with HTTP %d"
                                     % event.status_code)

    def message(self, chunk):
        if self.format == "msgpack":
            return self.events.BytesMessage(data=bytes(chunk.payload))
        text = formats.render_json(chunk.events(), self.format, self.date_key,
                                   self.date_format)
        return self.events.TextMessage(data=text.decode("utf-8", "surrogateescape"))

    async def _deliver(self, stream, message, count):
        """Send the chunk's frame and a ping; return once the ping's pong came."""
        session = stream.session
        ws = session.ws
        reply, _ = session.replies()      # what the server sent since the last flush
        ping = b"edgeship %d" % next(session.pings)
        await stream.send(reply + ws.send(message) + ws.send(self.events.Ping(payload=ping)),
                          self.timeout)
        self.log.debug("%d records sent to %s, waiting for the pong", count, self.label)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise asyncio.TimeoutError()
            data = await asyncio.wait_for(stream.reader.read(_READ_SIZE), left)
            if not data:
                raise WebSocketError("the server closed the connection before the pong")
            ws.receive_data(data)
            reply, got = session.replies(ping)
            if reply:
                await stream.send(reply, self.timeout)
            if got:
                return

    async def flush(self, chunk):
        message = self.message(chunk)
        stream = None
        try:
            stream = await self.pool.acquire()
            await self._deliver(stream, message, chunk.count)
        except (OSError, EOFError, asyncio.TimeoutError, WebSocketError) as exc:
            if stream is not None:
                stream.abort()
            self.log.error("could not deliver %d records to %s: %s", chunk.count, self.label,
                           failure_text(exc, self.timeout))
            return RETRY
        except BaseException:     # cancelled: the flush did not happen
            if stream is not None:
                stream.abort()
            raise
        self.pool.release(stream)
        return OK

    async def stop(self):
        self.pool.close()


PLUGIN = WebsocketOutput
