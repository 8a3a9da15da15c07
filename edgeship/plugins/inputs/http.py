"""http input: records POSTed over HTTP (in_http), on ``edgeship.net.http_server``.

Fluent Bit behaviour kept (5.1.1):
- Listens on 0.0.0.0:9880; only ``POST`` (``GET /health`` too with
  ``Enable_Health_Endpoint``); anything else is ``400 error: invalid HTTP method``.
- The tag is the URL path without its leading ``/`` and query, every character but
  ``[A-Za-z0-9_.]`` replaced by ``_`` (``/my-app/v1?q=1`` -> ``my_app_v1``); ``/`` gives the
  input's Tag. ``Tag_Key`` takes a record's tag from that key when it holds a string.
- ``Content-Type: application/json`` (parameters allowed): a map is a record, an array of
  maps a record each, concatenated or newline-separated values each theirs;
  ``application/x-www-form-urlencoded``: one record of strings. ``Content-Encoding: gzip``
  bodies are decompressed (an unknown encoding is read as it is).
- Answers: ``Successful_Response_Code`` (201; 200 and 204 allowed, another is logged and 201
  used) with ``Success_Header`` headers; 400 with Fluent Bit's texts for a missing or other
  Content-Type, an empty body, or a body that makes no record
  (``error: unable to process records``).
- ``Add_Remote_Addr`` adds ``Remote_Addr_Key`` (``REMOTE_ADDR``) from the first
  X-Forwarded-For address, only when that header is present. All records of a request share
  its arrival time.
- ``Buffer_Max_Size`` (``http_server.buffer_max_size``, 4M) bounds a body, also once
  decompressed: a larger one is answered 413. TLS with the ``tls.*`` keys.

At-least-once for HTTP senders: the success answer is sent only once every output the
records were routed to confirmed them (memory storage) or the spool holds them (filesystem
storage), through ``Ack`` as in_forward's ack; a request cut off by shutdown is never
answered, so the sender resends it. Fluent Bit answers as soon as the records are appended
to its in-memory chunk.

Differences (README "Where edgeship differs"): in an array, items that are not maps are
skipped and logged, the maps around them kept (Fluent Bit stops at the first one and loses
the rest while answering success); a bad request is answered once (Fluent Bit writes a
second 400 after its first for a missing Content-Type, another Content-Type or an empty
body); the answers carry no ``server: Fluent Bit`` headers. Not supported: OAuth2 JWT
validation (``oauth2.*``, Fluent Bit's 401) and HTTP/2.
"""
import asyncio
import re
import time
import zlib
from urllib.parse import parse_qsl

from edgeship.core import events as ev
from edgeship.core.accessor import accessor
from edgeship.core.schema import Option
from edgeship.engine.ack import Ack
from edgeship.net.http_server import HttpServer, Response
from edgeship.net.tls import TLS_OPTIONS, tls_context
from edgeship.plugins.inputs._sockets import NET_OPTIONS, JsonStream, ListeningInput

DEFAULT_PORT = 9880
SUCCESS_CODES = (200, 201, 204)
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.]")


class _BodyTooLarge(Exception):
    pass


def sanitize_tag(text):
    return _TAG_UNSAFE.sub("_", text)


def _error(text):
    return Response(400, (), text.encode("utf-8"))


class HttpInput(ListeningInput):
    name = "http"
    description = "HTTP"
    options = (
        Option("Listen", default="0.0.0.0", aliases=("host",), help="address to listen on"),
        Option("Port", "int", str(DEFAULT_PORT), min=0, max=65535, help="TCP port"),
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
        Option("Add_Remote_Addr", "bool", "false",
               help="add the first X-Forwarded-For address to each record"),
        Option("Remote_Addr_Key", default="REMOTE_ADDR", help="key of that address"),
        Option("Success_Header", multiple=True,
               help="'Name value' header added to success answers (repeatable)"),
        Option("Tag_Key", help="record key whose string value becomes the record's tag"),
        Option("Successful_Response_Code", "int", "201", help="200, 201 or 204"),
        Option("Enable_Health_Endpoint", "bool", "false", help="answer GET /health"),
    ) + NET_OPTIONS + TLS_OPTIONS

    def configure(self):
        conf = self.conf
        self.max_body = conf["http_server.buffer_max_size"]
        self.success_code = conf["successful_response_code"]
        if self.success_code not in SUCCESS_CODES:
            self.log.error("%d is not supported response code. Use default 201",
                           self.success_code)
            self.success_code = 201
        self.success_headers = []
        for item in conf["success_header"]:
            name, _, value = item.strip().partition(" ")
            self.success_headers.append((name, value.strip()))
        key = conf["tag_key"]
        self.tag_key = accessor(key if key.startswith("$") else "$" + key) if key else None
        self.remote_addr_key = conf["remote_addr_key"] if conf["add_remote_addr"] else None
        self.ssl_ctx = tls_context(conf, server=True)
        self.refused = 0         # requests answered 400
        self.server = None

    async def run(self):
        conf = self.conf
        self.server = HttpServer(
            self._handle, conf["listen"], conf["port"], ssl=self.ssl_ctx,
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

    # ------------------------------------------------------------------ one request
    async def _handle(self, request):
        if not request.path.startswith("/"):
            return self._refuse(request, "error: invalid request\n")
        if request.method == "GET" and request.path == "/health" \
                and self.conf["enable_health_endpoint"]:
            return Response(200, [("Content-Type", "application/json")], _health())
        if request.method != "POST":
            return self._refuse(request, "error: invalid HTTP method\n")
        content_type = request.headers.get("content-type")
        if content_type is None:
            return self._refuse(request, "error: header 'Content-Type' is not set\n")
        mime = content_type.split(";", 1)[0].strip().lower()
        if mime not in ("application/json", "application/x-www-form-urlencoded"):
            return self._refuse(request, "error: invalid 'Content-Type'\n")
        try:
            body = self._decoded_body(request)
        except _BodyTooLarge:
            return Response(413, (), b"error: payload too large\n")
        except (zlib.error, EOFError) as exc:
            return self._refuse(request, "error: unable to process records\n",
                                "cannot decompress the body: %s" % exc)
        if not body:
            return self._refuse(request, "error: no payload found\n")
        if mime == "application/json":
            records, problem = self._json_records(body)
        else:
            records, problem = self._form_record(body), None
        if not records:
            return self._refuse(request, "error: unable to process records\n", problem)
        await self.context.room()
        await self._deliver(request, records)
        return Response(self.success_code, self.success_headers)

    def _refuse(self, request, answer, reason=None):
        self.refused += 1
        self.log.warn_often("%s %s answered 400: %s", request.method, request.path,
                            reason or answer.strip())
        return _error(answer)

    def _decoded_body(self, request):
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
                raise _BodyTooLarge()
            if not inflater.eof:
                raise EOFError("truncated gzip body")
            parts.append(part)
            body = inflater.unused_data       # concatenated gzip members
        return b"".join(parts)

    def _json_records(self, body):
        """(records, why none could be made)."""
        stream = JsonStream(len(body) + 1)
        values = stream.values(body, final=True)
        if stream.invalid or stream.too_deep:
            return [], "invalid or too deep JSON: %r" % stream.example
        records = []
        skipped = 0
        for value in values:
            if type(value) is dict:
                records.append(value)
            elif type(value) is list:
                for item in value:
                    if type(item) is dict:
                        records.append(item)
                    else:
                        skipped += 1
            else:
                return [], "a JSON value that is neither a map nor an array: %r" % (value,)
        if skipped:
            self.log.warn_often("skipped %d array items that are not maps", skipped)
        return records, None if records else "no map in the body"

    @staticmethod
    def _form_record(body):
        text = body.decode("utf-8", "replace")
        return [dict(parse_qsl(text, keep_blank_values=True, errors="replace"))]

    async def _deliver(self, request, records):
        """Emit the records (one batch per tag) and wait until every output confirmed
        them (or the spool holds them)."""
        now = ev.now_ns()
        path_tag = sanitize_tag(request.path[1:]) if len(request.path) > 1 else self.tag
        remote_addr = None
        if self.remote_addr_key:
            forwarded = request.headers.get("x-forwarded-for")
            if forwarded:
                remote_addr = forwarded.split(",")[0].strip()
        batches = {}
        tag_key = self.tag_key
        for record in records:
            if remote_addr:
                record[self.remote_addr_key] = remote_addr
            tag = path_tag
            if tag_key is not None:
                value = tag_key.lookup(record)
                if isinstance(value, str):
                    tag = sanitize_tag(value)
            batches.setdefault(tag, []).append((now, record))
        loop = asyncio.get_running_loop()
        waits = []
        size = len(request.body)
        for tag, events in batches.items():
            confirmed = loop.create_future()
            waits.append(confirmed)
            ack = Ack(lambda done=confirmed: done.done() or done.set_result(None))
            self.context.emit(tag, events, size, ack)
            size = 0
        await asyncio.gather(*waits)


def _health():
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    return ('{\n  "status": "ok",\n  "message": "I can only show you the door. You\'re the '
            'one that has to walk through it.",\n  "timestamp": "%s.%09dZ"\n}\n'
            % (stamp, int(now * 1e9) % 1000000000)).encode("utf-8")


PLUGIN = HttpInput
