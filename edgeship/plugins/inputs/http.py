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

At-least-once for HTTP senders: the success answer is sent only once the records are
confirmed (``_http_listener.HttpListener.deliver``).

Differences (README "Where edgeship differs"): in an array, items that are not maps are
skipped and logged, the maps around them kept (Fluent Bit stops at the first one and loses
the rest while answering success); a bad request is answered once (Fluent Bit writes a
second 400 after its first for a missing Content-Type, another Content-Type or an empty
body); the answers carry no ``server: Fluent Bit`` headers. Not supported: OAuth2 JWT
validation (``oauth2.*``, Fluent Bit's 401) and HTTP/2.
"""
import re
import time
from urllib.parse import parse_qsl

from edgeship.core.accessor import accessor
from edgeship.core.schema import Option
from edgeship.net.http_server import Response
from edgeship.plugins.inputs._http_listener import (SUCCESS_CODE_OPTION, BadBody,
                                                    BodyTooLarge, HttpListener,
                                                    http_server_options)
from edgeship.plugins.inputs._sockets import JsonStream

DEFAULT_PORT = 9880
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.]")


def sanitize_tag(text):
    return _TAG_UNSAFE.sub("_", text)


class HttpInput(HttpListener):
    name = "http"
    description = "HTTP"
    options = http_server_options(DEFAULT_PORT) + (
        Option("Add_Remote_Addr", "bool", "false",
               help="add the first X-Forwarded-For address to each record"),
        Option("Remote_Addr_Key", default="REMOTE_ADDR", help="key of that address"),
        Option("Success_Header", multiple=True,
               help="'Name value' header added to success answers (repeatable)"),
        Option("Tag_Key", help="record key whose string value becomes the record's tag"),
        SUCCESS_CODE_OPTION,
        Option("Enable_Health_Endpoint", "bool", "false", help="answer GET /health"),
    )

    def configure(self):
        conf = self.conf
        self.configure_server()
        self.success_code = self.configured_success_code()
        self.success_headers = []
        for item in conf["success_header"]:
            name, _, value = item.strip().partition(" ")
            self.success_headers.append((name, value.strip()))
        key = conf["tag_key"]
        self.tag_key = accessor(key if key.startswith("$") else "$" + key) if key else None
        self.remote_addr_key = conf["remote_addr_key"] if conf["add_remote_addr"] else None

    # ------------------------------------------------------------------ one request
    async def handle(self, request):
        if not request.path.startswith("/"):
            return self.refuse(request, "error: invalid request\n")
        if request.method == "GET" and request.path == "/health" \
                and self.conf["enable_health_endpoint"]:
            return Response(200, [("Content-Type", "application/json")], _health())
        if request.method != "POST":
            return self.refuse(request, "error: invalid HTTP method\n")
        content_type = request.headers.get("content-type")
        if content_type is None:
            return self.refuse(request, "error: header 'Content-Type' is not set\n")
        mime = content_type.split(";", 1)[0].strip().lower()
        if mime not in ("application/json", "application/x-www-form-urlencoded"):
            return self.refuse(request, "error: invalid 'Content-Type'\n")
        try:
            body = self.decoded_body(request)
        except BodyTooLarge:
            return Response(413, (), b"error: payload too large\n")
        except BadBody as exc:
            return self.refuse(request, "error: unable to process records\n",
                               "cannot decompress the body: %s" % exc)
        if not body:
            return self.refuse(request, "error: no payload found\n")
        if mime == "application/json":
            records, problem = self._json_records(body)
        else:
            records, problem = self._form_record(body), None
        if not records:
            return self.refuse(request, "error: unable to process records\n", problem)
        await self.deliver(self._batches(request, records), len(request.body))
        return Response(self.success_code, self.success_headers)

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

    def _batches(self, request, records):
        """{tag: records}: the URL path's tag, or Tag_Key's."""
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
            batches.setdefault(tag, []).append(record)
        return batches


def _health():
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    return ('{\n  "status": "ok",\n  "message": "I can only show you the door. You\'re the '
            'one that has to walk through it.",\n  "timestamp": "%s.%09dZ"\n}\n'
            % (stamp, int(now * 1e9) % 1000000000)).encode("utf-8")


PLUGIN = HttpInput
