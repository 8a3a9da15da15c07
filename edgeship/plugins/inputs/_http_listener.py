"""What the inputs that take HTTP requests (http, elasticsearch, splunk, opentelemetry,
prometheus_remote_write) share, on ``edgeship.net.http_server``: Fluent Bit's http_server
options, serving until stopped, compressed bodies (gzip; zstd and snappy where an input takes
them), 400 answers logged without flooding, and delivery that answers only once the records
or metrics are confirmed.

At-least-once for HTTP senders: ``deliver`` (records) and ``deliver_metrics`` return once
every output the data was routed to confirmed it (memory storage) or the spool holds it
(filesystem storage), through ``Ack`` as in_forward's ack; a request cut off by shutdown is
never answered, so the sender resends it. Fluent Bit answers as soon as the data is appended
to its in-memory chunk.
"""
import asyncio
import zlib

from edgeship.core import events as ev
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.ack import Ack
from edgeship.net.http_server import HttpServer, Response
from edgeship.net.tls import TLS_OPTIONS, tls_context
from edgeship.plugins.inputs._sockets import NET_OPTIONS, ListeningInput


class BodyTooLarge(Exception):
    pass


class BadBody(ValueError):
    """A body that does not decompress as its Content-Encoding says."""


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


SUCCESS_CODE_OPTION = Option("Successful_Response_Code", "int", "201",
                             help="status of a taken request: 200, 201 or 204")


def error(text, status=400):
    return Response(status, (), text.encode("utf-8"))


class HttpListener(ListeningInput):
    """A subclass declares ``http_server_options(PORT)`` among its options, calls
    ``configure_server()`` from configure() and answers requests in ``handle(request)``."""

    server = None
    # The Content-Encodings ``decoded_body`` undoes (zstd and snappy need cramjam).
    encodings = ("gzip",)

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
        """``Successful_Response_Code``: 200, 201 or 204; another is a warning at its
        config line (an error with --strict) and 201 is used, as Fluent Bit logs and uses."""
        code = self.conf["successful_response_code"]
        if code not in (200, 201, 204):
            self.context.tolerate(ConfigError(
                "%s: %d is not a supported response code (200, 201, 204): 201 is used"
                % (self.name, code), key="successful_response_code"))
            code = 201
        return code

    def refuse(self, request, answer, reason=None):
        """A 400 answer, logged (not more often than the log allows)."""
        self.refused += 1
        self.log.warn_often("%s %s answered 400: %s", request.method, request.path,
                            reason or answer.strip())
        return error(answer)

    def decoded_body(self, request):
        """The body, decompressed as ``Content-Encoding`` says when it names one of
        ``encodings`` (gzip: concatenated members too; snappy: raw, or framed when it starts
        with the stream identifier, as Fluent Bit tells them apart); BodyTooLarge past
        Buffer_Max_Size, BadBody when it does not decompress."""
        body = request.body
        encoding = request.headers.get("content-encoding", "").strip().lower()
        if encoding == "x-gzip":
            encoding = "gzip"
        if encoding not in self.encodings or not body:
            return body
        if encoding == "gzip":
            try:
                return self._gunzip(body)
            except (zlib.error, EOFError) as exc:
                raise BadBody(exc)
        import cramjam
        try:
            if encoding == "snappy" and body[:1] != b"\xff":
                if cramjam.snappy.decompress_raw_len(body) > self.max_body:
                    raise BodyTooLarge()
                return bytes(cramjam.snappy.decompress_raw(body))
            codec = cramjam.snappy if encoding == "snappy" else cramjam.zstd
            out = bytearray(self.max_body + 1)
            size = codec.decompress_into(body, out)
        except cramjam.DecompressionError as exc:
            if "whole buffer" in str(exc):          # it fills Buffer_Max_Size + 1
                raise BodyTooLarge()
            raise BadBody(exc)
        if size > self.max_body:
            raise BodyTooLarge()
        return bytes(out[:size])

    def _gunzip(self, body):
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

    def _confirmation(self):
        """(future, Ack): the future is done once the Ack fires."""
        confirmed = asyncio.get_running_loop().create_future()
        return confirmed, Ack(lambda: confirmed.done() or confirmed.set_result(None))

    async def deliver(self, batches, size, stamped=False):
        """Emit ``batches`` ({tag: [records]}, stamped now; with ``stamped``, {tag: [(time
        ns, record)]}) once there is room, and wait until every output confirmed them (or
        the spool holds them)."""
        await self.context.room()
        now = ev.now_ns()
        waits = []
        for tag, records in batches.items():
            confirmed, ack = self._confirmation()
            waits.append(confirmed)
            events = records if stamped else [(now, record) for record in records]
            self.context.emit(tag, events, size, ack)
            size = 0
        await asyncio.gather(*waits)

    async def deliver_metrics(self, tag, payload):
        """Emit encoded cmetrics contexts (one payload) once there is room, and wait until
        every output confirmed them (or the spool holds them)."""
        await self.context.room()
        confirmed, ack = self._confirmation()
        self.context.emit_metrics(tag, payload, ack)
        await confirmed
