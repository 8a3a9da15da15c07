"""http output: each chunk as one HTTP request (out_http).

Kept from Fluent Bit 5.1.1: ``Format`` json (one array), json_lines (``application/x-ndjson``,
every line ends in a newline), json_stream (objects back to back) and msgpack (the chunk's
entries as they are); the date key first (``json_date_key``, ``false`` drops it;
``json_date_format``); headers in its order: Content-Type, the ``Header_Tag`` header,
Content-Encoding, Authorization, User-Agent, each ``Header``; ``Allow_Duplicated_Headers
false`` lets a later header replace an earlier one of the same name (case-insensitive) at
the end; a ``URI`` without a leading '/' gets one. 200-205 OK; 408, 429, 5xx and no answer
RETRY; other 4xx ERROR (dropped, logged with the body's first line).
``Body_Key`` + ``Headers_Key`` (both record accessors): one request per record, its body the
string at Body_Key and its headers the map at Headers_Key. ``aws_auth on`` signs each
request with SigV4 for ``aws_service`` (required then) in ``aws_region``
(``edgeship.net.aws``).

``Format gelf``: one GELF 1.1 JSON per record, each followed by a newline, in one request
(``application/json``; the ``gelf_*_key`` options name the record keys of GELF's fields;
codecs/gelf.py, shared with the gelf output).

Differences: with Body_Key, Fluent Bit reports only the last record's request (earlier
failures are lost); here any failure retries the chunk (records already accepted are sent
again, at-least-once). With Format gelf, a record GELF cannot carry (no short_message) makes
Fluent Bit drop the whole chunk; here that record is left out (counted in one error line per
chunk) and the others are sent.
"""
from edgeship.codecs import formats
from edgeship.codecs.gelf import GELF_KEY_OPTIONS, GelfEncoder
from edgeship.core import accessor
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import ERROR, OK, RETRY
from edgeship.net.aws import AWS_AUTH_OPTIONS
from edgeship.net.http_client import address_options
from edgeship.plugins.outputs._http import USER_AGENT, HttpOutput

CONTENT_TYPES = {"json": "application/json", "json_stream": "application/json",
                 "json_lines": "application/x-ndjson", "msgpack": "application/msgpack",
                 "gelf": "application/json"}


class HttpOutputPlugin(HttpOutput):
    name = "http"
    description = "HTTP POST/PUT of each chunk (JSON, JSON lines, msgpack, GELF)"
    workers = 2
    options = address_options(80) + (
        Option("URI", default="/", help="request path (and query)"),
        Option("http_Method", default="post", choices=("post", "put"), help="POST or PUT"),
        Option("Format", default="json",
               choices=("json", "json_lines", "json_stream", "msgpack", "gelf"),
               help="body format"),
        Option("json_date_key", default="date", help="key of the record time; false: none"),
        Option("json_date_format", default="double", choices=formats.DATE_FORMATS,
               help="format of the record time"),
        Option("Header_Tag", help="header whose value is the chunk's tag"),
        Option("Allow_Duplicated_Headers", "bool", "true",
               help="off: a later header replaces an earlier one of the same name"),
        Option("Log_Response_Payload", "bool", "true", compat=True),
        Option("http.response_timeout", "time", "60", compat=True,
               help="edgeship bounds every wait by net.io_timeout"),
        Option("Body_Key", help="record accessor of a string sent as the body of its own "
                                "request"),
        Option("Headers_Key", help="record accessor of a map of headers (with Body_Key)"),
        Option("aws_service", help="AWS service code signed with aws_auth"),
    ) + GELF_KEY_OPTIONS + AWS_AUTH_OPTIONS + HttpOutput.client_options

    def configure(self):
        conf = self.conf
        self.format = conf["format"]
        self.gelf = None
        if self.format == "gelf":
            self.gelf = GelfEncoder.from_conf(conf)
        self.configure_client()
        if conf["aws_auth"]:
            if not conf["aws_service"]:
                raise ConfigError("http: aws_auth needs aws_service", key="aws_service")
            self.sign_with_aws(conf["aws_region"], conf["aws_service"], conf["aws_profile"],
                               conf["aws_role_arn"], conf["aws_external_id"],
                               conf["aws_sts_endpoint"])
        uri = conf["uri"] or "/"
        self.uri = uri if uri.startswith("/") else "/" + uri
        self.method = conf["http_method"].upper()
        self.date_key = formats.date_key_option(conf["json_date_key"])
        self.date_format = conf["json_date_format"]
        self.body_key = self.headers_key = None
        if bool(conf["body_key"]) != bool(conf["headers_key"]):
            raise ConfigError("http: Body_Key and Headers_Key go together",
                              key="body_key" if conf["headers_key"] else "headers_key")
        if conf["body_key"]:
            try:
                self.body_key = accessor.accessor(conf["body_key"])
                self.headers_key = accessor.accessor(conf["headers_key"])
            except ValueError as exc:
                raise ConfigError("http: %s" % exc, key="body_key")
        self.reads_records = self.format != "msgpack" or self.body_key is not None

    def headers(self, tag, leading):
        """The request's own headers in Fluent Bit's order: ``leading`` (Content-Type, or a
        record's Headers_Key map), the Header_Tag header (gzip's is added by encode_body)."""
        headers = list(leading)
        if self.conf["header_tag"]:
            headers.append((self.conf["header_tag"], tag))
        return headers

    def _finish(self, headers):
        if self.auth:
            headers.append(self.auth)
        headers.append(USER_AGENT)
        headers.extend(self.config_headers)
        if not self.conf["allow_duplicated_headers"]:
            kept = []
            for name, value in headers:
                lower = name.lower()
                kept = [h for h in kept if h[0].lower() != lower]
                kept.append((name, value))
            headers = kept
        return headers

    async def flush(self, chunk):
        if self.body_key is not None:
            return await self._flush_per_record(chunk)
        if self.format == "msgpack":
            body = chunk.payload
        elif self.gelf is not None:
            body = self._gelf_body(chunk)
            if body is None:
                return ERROR
        else:
            body = formats.render_json(chunk.events(), self.format, self.date_key,
                                       self.date_format)
        headers = self.headers(chunk.tag, [("Content-Type", CONTENT_TYPES[self.format])])
        body = self.encode_body(body, headers)
        result, _ = await self.send(self.method, self.uri, self._finish(headers), body)
        return result

    def _gelf_body(self, chunk):
        """The GELF lines of the chunk's records GELF can carry (None when there is none);
        the others are said in one error line."""
        messages = self.gelf.logged_messages(chunk.tag, chunk.events(), self.log)
        if not messages:
            return None
        return b"".join([message + b"\n" for message in messages])

    async def _flush_per_record(self, chunk):
        outcome = OK
        skipped = 0
        for _time, record in chunk.events():
            body = self.body_key.get(record)
            record_headers = self.headers_key.get(record)
            if isinstance(body, str):
                body = body.encode("utf-8", "surrogateescape")
            if not isinstance(body, (bytes, bytearray)) or not isinstance(record_headers, dict):
                skipped += 1
                continue
            headers = self.headers(chunk.tag, [(str(k), accessor.to_text(v) or "")
                                               for k, v in record_headers.items()])
            body = self.encode_body(bytes(body), headers)
            result, _ = await self.send(self.method, self.uri, self._finish(headers), body)
            if result == RETRY:
                return RETRY
            if result == ERROR:
                outcome = ERROR
        if skipped:
            self.log.warn("%d record(s) without a string at %s and a map at %s were dropped",
                          skipped, self.conf["body_key"], self.conf["headers_key"])
        return outcome


PLUGIN = HttpOutputPlugin
