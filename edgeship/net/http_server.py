"""A small HTTP/1.1 server on the asyncio loop, parsed by h11: the one server behind the http
input, the monitoring API and prometheus_exporter.

``HttpServer(handler, host, port, ...)`` listens (with TLS when given an SSLContext from
``edgeship.net.tls``), reads each request with h11 (keep-alive, pipelined requests one after
the other, Content-Length and chunked bodies, ``Expect: 100-continue``) and awaits
``handler(Request) -> Response`` for it. Requests of one connection are answered in order;
connections run side by side.

What the handler never sees:
- a request h11 cannot parse: answered 400 (431 for headers over ``max_header_size``), then
  the connection is closed;
- a body over ``max_body`` bytes, declared or counted as it arrives: answered 413 and closed,
  so a sender cannot make the server hold more than ``max_body`` bytes per connection;
- a handler that raises: answered 500, logged, the connection stays up.

A connection idle for ``idle_timeout`` seconds (None: no limit) between or inside requests is
closed. ``close()`` stops listening and ends every connection, cancelling handlers in flight
(a request cut off that way was never answered, so an HTTP sender resends it).
"""
import asyncio
from http import HTTPStatus

import h11

_NO_BODY_STATUS = frozenset((204, 304))


class Request:
    """One request: ``method`` (str, upper case), ``path`` (str, the target before '?', not
    percent-decoded), ``query`` (str after '?', raw), ``headers`` (dict of lower-case name ->
    str value; a repeated header's values joined by ', '), ``body`` (bytes), ``peer``
    (the client's address, as the socket gives it)."""

    __slots__ = ("method", "path", "query", "headers", "body", "peer")

    def __init__(self, method, path, query, headers, body, peer=None):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.peer = peer

    def __repr__(self):
        return "Request(%s %s)" % (self.method, self.path)


class Response:
    """The handler's answer: ``status`` (int), ``headers`` (pairs of str), ``body`` (bytes).
    The server adds Content-Length (and Connection: close when it closes)."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status=200, headers=(), body=b""):
        self.status = status
        self.headers = list(headers)
        self.body = body

    @classmethod
    def text(cls, status, message):
        """A plain-text answer, as error answers are."""
        return cls(status, [("Content-Type", "text/plain")], message.encode("utf-8"))


class _Refused(Exception):
    """The request cannot reach the handler: answer ``status`` and close."""

    def __init__(self, status, message):
        Exception.__init__(self, message)
        self.status = status


class HttpServer:
    def __init__(self, handler, host, port, ssl=None, max_body=4 * 1024 * 1024,
                 read_size=64 * 1024, max_header_size=16 * 1024, idle_timeout=None,
                 backlog=128, reuse_port=False, log=None):
        self.handler = handler
        self.host = host
        self.port = port
        self.ssl = ssl
        self.max_body = max_body
        self.read_size = read_size
        self.max_header_size = max_header_size
        self.idle_timeout = idle_timeout
        self.backlog = backlog
        self.reuse_port = reuse_port
        self.log = log
        self.refused = 0          # requests answered 400/413/431 by the server itself
        self._server = None
        self._connections = set()  # the tasks serving connections

    async def start(self):
        """Listen; raises OSError when the address cannot be bound. With port 0 the bound
        port is in ``self.port`` afterwards."""
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, ssl=self.ssl, backlog=self.backlog,
            reuse_port=self.reuse_port or None)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self):
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections))
        await self._server.wait_closed()
        self._server = None

    # --------------------------------------------------------------------- one connection
    async def _serve(self, reader, writer):
        task = asyncio.current_task()
        self._connections.add(task)
        peer = writer.get_extra_info("peername")
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.max_header_size)
        try:
            while True:
                try:
                    request = await self._read_request(conn, reader, writer, peer)
                except _Refused as refused:
                    self.refused += 1
                    if self.log is not None:
                        self.log.warn("HTTP request from %s refused (%d): %s", _where(peer),
                                      refused.status, refused)
                    await self._answer(conn, writer, Response.text(
                        refused.status, "%s\n" % refused), close=True)
                    break
                if request is None:
                    break
                response = await self._respond(request)
                await self._answer(conn, writer, response,
                                   head=request.method == "HEAD")
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except (OSError, asyncio.TimeoutError, h11.LocalProtocolError) as exc:
            if self.log is not None:
                self.log.debug("HTTP connection from %s ended: %s", _where(peer), exc)
        except asyncio.CancelledError:
            pass    # close() ended it: the task is ours, nobody waits for its result
        finally:
            self._connections.discard(task)
            writer.close()

    async def _read_request(self, conn, reader, writer, peer):
        """The next whole request, or None when the client closed between requests."""
        start = None
        body = []
        size = 0
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise _Refused(exc.error_status_hint, "bad request: %s" % exc)
            if event is h11.NEED_DATA:
                if conn.they_are_waiting_for_100_continue:
                    writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
                data = await self._read(reader)
                conn.receive_data(data)
            elif type(event) is h11.Request:
                start = event
                declared = _header(event.headers, b"content-length")
                if declared is not None and int(declared) > self.max_body:
                    raise _Refused(413, "body of %s bytes is over the limit of %d"
                                   % (declared.decode(), self.max_body))
            elif type(event) is h11.Data:
                size += len(event.data)
                if size > self.max_body:
                    raise _Refused(413, "body over the limit of %d bytes" % self.max_body)
                body.append(event.data)
            elif type(event) is h11.EndOfMessage:
                target = start.target.decode("latin-1")
                path, _, query = target.partition("?")
                headers = {}
                for name, value in start.headers:
                    name = name.decode("latin-1")
                    value = value.decode("latin-1")
                    headers[name] = headers[name] + ", " + value if name in headers else value
                return Request(start.method.decode("ascii"), path, query, headers,
                               b"".join(body), peer)
            elif type(event) is h11.ConnectionClosed or event is h11.PAUSED:
                return None

    async def _read(self, reader):
        if self.idle_timeout is None:
            return await reader.read(self.read_size)
        return await asyncio.wait_for(reader.read(self.read_size), self.idle_timeout)

    async def _respond(self, request):
        try:
            return await self.handler(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self.log is not None:
                self.log.error("HTTP handler failed on %s %s: %r", request.method,
                               request.path, exc)
            return Response.text(500, "internal error\n")

    async def _answer(self, conn, writer, response, head=False, close=False):
        status = response.status
        headers = list(response.headers)
        body = response.body
        if status in _NO_BODY_STATUS:
            body = b""
        else:
            headers.append(("Content-Length", str(len(body))))
        if close:
            headers.append(("Connection", "close"))
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        data = conn.send(h11.Response(status_code=status, headers=headers, reason=reason))
        if body and not head:
            data += conn.send(h11.Data(data=body))
        data += conn.send(h11.EndOfMessage())
        writer.write(data)
        await writer.drain()


def _header(headers, name):
    for key, value in headers:
        if key == name:
            return value
    return None


def _where(peer):
    if isinstance(peer, tuple) and len(peer) >= 2:
        return "%s:%s" % (peer[0], peer[1])
    return str(peer)
