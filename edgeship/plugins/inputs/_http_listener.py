"""What the inputs that take HTTP requests (http, elasticsearch, splunk, opentelemetry) share, on
``edgeship.net.http_server``: Fluent Bit's http_server options, serving until stopped, gzip
bodies, 400 answers logged without flooding, and delivery that answers only once the records
are confirmed.

At-least-once for HTTP senders: ``deliver`` returns once every output the records were routed
to confirmed them (memory storage) or the spool holds them (filesystem storage), through
``Ack`` as in_forward's ack; a request cut off by shutdown is never answered, so the sender
resends it. Fluent Bit answers as soon as the records are appended to its in-memory chunk.
"""
import asyncio
import zlib

from edgeship.core import events as ev
from edgeship.core.schema import Option
from edgeship.engine.ack import Ack
from edgeship.net.http_server import HttpServer, Response
from edgeship.net.tls import TLS_OPTIONS, tls_context
from edgeship.plugins.inputs._sockets import NET_OPTIONS, ListeningInput


class BodyTooLarge(Exception):
    pass


def http_server_options(port):
    """Listen/Port and Fluent Bit's http_server.* keys (with their old names)."""
    return (
        Option("Listen", default="0.0.0.0", aliases=("host",), help="address to listen on"),
        Option("Port", "int", str(port), min=0, max=65535, help="TCP port"),
        Option("http_server.buffer_max_size", "size", "4M", aliases=("buffer_max_size",),
               help="largest request body, also once decompressed (413 beyond)"),
        Option("http_server.buffer_chunk_size", "size", "512K",
               aliases=("buffer_chunk_size",), help="bytes read at a time"),
        Option("http_server.idle_timeout", "time", "10s",
               help="close a connection idle this long"),
        Option("http_server.http2", "bool", "on", aliases=("http2",), compat=True,
               help="edgeship speaks HTTP/1.1"),
        Option("http_server.max_connections", "size", "0", aliases=("max_connections",),
               compat=True),
        Option("http_server.workers", "int", "1", aliases=("workers",), compat=True),
        Option("http_server.ingress_queue_event_limit", "int", compat=True),
        Option("http_server.ingress_queue_byte_limit", "size", compat=True),
    ) + NET_OPTIONS + TLS_OPTIONS


SUCCESS_CODE_OPTION = Option("Successful_Response_Code", "int", "201", help="200, 201 or 204")


def error(text, status=400):
    return Response(status, (), text.encode("utf-8"))


class HttpListener(ListeningInput):
    """A subclass declares ``http_server_options(PORT)`` among its options, calls
    ``configure_server()`` from configure() and answers requests in ``handle(request)``."""

    server = None

    def configure_server(self):
        self.max_body = self.conf["http_server.buffer_max_size"]
        self.ssl_ctx = tls_context(self.conf, server=True)
        self.refused = 0         # requests answered 400

    async def handle(self, request):
        raise NotImplementedError

    async def run(self):
        conf = self.conf
        self.server = HttpServer(
            self.handle, conf["listen"], conf["port"], ssl=self.ssl_ctx,
            max_body=self.max_body, read_size=conf["http_server.buffer_chunk_size"],
            idle_timeout=conf["http_server.idle_timeout"] or None,
            backlog=conf["net.backlog"], reuse_port=conf["net.share_port"], log=self.log)
        try:
            await self.server.start()
        except OSError as exc:
            self.log.error("could not listen on %s:%s: %s", conf["listen"], conf["port"], exc)
            return
        self.log.info("listening on %s:%s", conf["listen"], self.server.port)
        try:
            await self.until_stopped()
        finally:
            await self.server.close()

    def configured_success_code(self):
        """``Successful_Response_Code``: 200, 201 or 204; another is logged and 201 used."""
        code = self.conf["successful_response_code"]
        if code not in (200, 201, 204):
            self.log.error("%d is not supported response code. Use default 201", code)
            code = 201
        return code

    def refuse(self, request, answer, reason=None):
        """A 400 answer, logged (not more often than the log allows)."""
        self.refused += 1
        self.log.warn_often("%s %s answered 400: %s", request.method, request.path,
                            reason or answer.strip())
        return error(answer)

    def decoded_body(self, request):
        """The body, gunzipped when ``Content-Encoding: gzip`` says so (concatenated
        members too); BodyTooLarge past Buffer_Max_Size, zlib.error or EOFError when it does
        not decompress."""
        body = request.body
        encoding = request.headers.get("content-encoding", "").strip().lower()
        if encoding not in ("gzip", "x-gzip") or not body:
            return body
        parts = []
        size = 0
        while body:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            part = inflater.decompress(body, self.max_body + 1 - size)
            size += len(part)
            if size > self.max_body or inflater.unconsumed_tail:
                raise BodyTooLarge()
            if not inflater.eof:
                raise EOFError("truncated gzip body")
            parts.append(part)
            body = inflater.unused_data       # concatenated gzip members
        return b"".join(parts)

    def by_tag_key(self, records, tag_key):
        """{tag: records}: the input's Tag, or the string value ``tag_key`` (an Accessor
        or None) finds in a record."""
        if tag_key is None:
            return {self.tag: records}
        batches = {}
        for record in records:
            value = tag_key.lookup(record)
            batches.setdefault(value if isinstance(value, str) else self.tag,
                               []).append(record)
        return batches

    async def deliver(self, batches, size, stamped=False):
        """Emit ``batches`` ({tag: [records]}, stamped now; with ``stamped``, {tag: [(time
        ns, record)]}) once there is room, and wait until every output confirmed them (or
        the spool holds them)."""
        await self.context.room()
        now = ev.now_ns()
        waits = []
        for tag, records in batches.items():
            events = records if stamped else [(now, record) for record in records]
            self.context.emit(tag, events, size, self._confirmation(waits))
            size = 0
        await asyncio.gather(*waits)

    async def deliver_metrics(self, tag, payloads):
        """Emit encoded metrics contexts once there is room, and wait until every output
        confirmed them (or the spool holds them)."""
        await self.context.room()
        waits = []
        for payload in payloads:
            self.context.emit_metrics(tag, payload, self._confirmation(waits))
        await asyncio.gather(*waits)

    @staticmethod
    def _confirmation(waits):
        """An Ack that resolves a future appended to ``waits``."""
        confirmed = asyncio.get_running_loop().create_future()
        waits.append(confirmed)
        return Ack(lambda: confirmed.done() or confirmed.set_result(None))
