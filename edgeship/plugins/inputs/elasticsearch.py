"""elasticsearch input: Elasticsearch's Bulk API, for senders such as Beats and Logstash
(in_elasticsearch), on the HTTP server the http input uses (``_http_listener``).

Kept from Fluent Bit 5.1.1 (answers checked on the real binary):
- Listens on 0.0.0.0:9200. ``POST /_bulk`` with ``Content-Type`` application/x-ndjson or
  application/json takes NDJSON action/document pairs: an ``index`` or ``create`` pair
  becomes the record ``{Meta_Key: action line, ...document}`` (``Meta_Key`` ``@meta``), all
  stamped with the request's arrival, under the input's Tag or ``Tag_Key``'s string value;
  ``update`` (and its document) is answered 403 forbidden and ``delete`` 404 not_found,
  neither making a record; another action is answered 400 bad_request and ends the request.
  The answer is 200 ``{"errors":BOOL,"items":[...]}`` (errors true when an item is 4xx).
- ``GET /`` answers a version document (``Version``, 8.0.0), ``GET /_nodes/http`` a sniffer
  document naming ``Hostname`` (localhost) and the port, any other GET and PUT ``{}``, HEAD
  200; other paths of POST ``error: invalid HTTP endpoint`` and other methods ``error:
  invalid HTTP method``, both 400, as the missing or other Content-Type and empty body.
- http_server.* options, TLS, gzip bodies.

Differences (README "Where edgeship differs"): the answer comes once the records are
confirmed (at-least-once; Fluent Bit answers once they are in memory); a body that is not
JSON, or whose last action has no document, is answered 400 ``error: invalid bulk payload``
with nothing ingested (Fluent Bit sends no answer at all and keeps what came before it); the
cluster and node names of the sniffer document are random letters of their lengths
(Fluent Bit's overrun into each other).
"""
import os

from edgeship.codecs import formats
from edgeship.core.accessor import accessor
from edgeship.core.schema import Option
from edgeship.net.http_server import Response
from edgeship.plugins.inputs._http_listener import (BadBody, BodyTooLarge, HttpListener, error,
                                                    http_server_options)
from edgeship.plugins.inputs._sockets import JsonStream

DEFAULT_PORT = 9200
JSON = [("Content-Type", "application/json")]
_ALPHANUMERIC = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ITEM = {"index": b'{"index":{"status":201,"result":"created"}}',
         "create": b'{"create":{"status":201,"result":"created"}}',
         "update": b'{"update":{"status":403,"result":"forbidden"}}',
         "delete": b'{"delete":{"status":404,"result":"not_found"}}'}
_UNKNOWN = b'{"unknown":{"status":400,"result":"bad_request"}}'


class BulkError(ValueError):
    pass


def _random_name(length, alphabet):
    return "".join(alphabet[byte % len(alphabet)] for byte in os.urandom(length))


def bulk_records(values, meta_key):
    """(records, answer items) of the decoded NDJSON values of a bulk body; BulkError when
    they are not action/document pairs."""
    records, items = [], []
    index = 0
    while index < len(values):
        action = values[index]
        if type(action) is not dict or not action:
            raise BulkError("meta information line is missing")
        name = next(iter(action))
        if name == "delete":
            items.append(_ITEM[name])
            index += 1
            continue
        if name not in _ITEM:
            items.append(_UNKNOWN)
            break
        if index + 1 >= len(values) or type(values[index + 1]) is not dict:
            raise BulkError("the %s action at line %d has no document" % (name, index + 1))
        items.append(_ITEM[name])
        if name != "update":
            record = {meta_key: action}
            record.update(values[index + 1])
            records.append(record)
        index += 2
    return records, items


class ElasticsearchInput(HttpListener):
    name = "elasticsearch"
    description = "HTTP Endpoints for Elasticsearch (Bulk API)"
    options = http_server_options(DEFAULT_PORT) + (
        Option("Tag_Key", help="record key whose string value becomes the record's tag"),
        Option("Meta_Key", default="@meta", help="key of the bulk action line"),
        Option("Hostname", default="localhost", help="host name in the sniffer answer"),
        Option("Version", default="8.0.0", help="Elasticsearch version answered"),
    )

    def configure(self):
        conf = self.conf
        self.configure_server()
        key = conf["tag_key"]
        self.tag_key = accessor(key) if key else None
        self.version = formats.to_json({"version": {"number": conf["version"],
                                                    "build_flavor": "Fluent Bit OSS"},
                                        "tagline": "Fluent Bit's Bulk API compatible "
                                                   "endpoint"})
        self.cluster_name = _random_name(16, _ALPHANUMERIC)
        self.node_name = _random_name(12, _ALPHANUMERIC[:36])

    def _nodes(self):
        return formats.to_json({
            "_nodes": {"total": 1, "successful": 1, "failed": 0},
            "nodes": {self.cluster_name: {
                "name": self.node_name, "version": "8.0.0",
                "http": {"publish_address": "%s:%s" % (self.conf["hostname"],
                                                       self.server.port),
                         "max_content_length_in_bytes": self.max_body}}}})

    async def handle(self, request):
        if not request.path.startswith("/"):
            return self.refuse(request, "error: invalid request\n")
        method = request.method
        if method == "HEAD":
            return Response(200)
        if method == "PUT":
            return Response(200, JSON, b"{}")
        if method == "GET":
            if request.path.startswith("/_nodes/http"):
                return Response(200, JSON, self._nodes())
            if request.path == "/":
                return Response(200, JSON, self.version)
            return Response(200, JSON, b"{}")
        if method != "POST":
            return self.refuse(request, "error: invalid HTTP method\n")
        if request.path != "/_bulk":
            return self.refuse(request, "error: invalid HTTP endpoint\n")
        content_type = request.headers.get("content-type")
        if content_type is None:
            return self.refuse(request, "error: header 'Content-Type' is not set\n")
        mime = content_type.split(";", 1)[0].strip().lower()
        if mime not in ("application/x-ndjson", "application/json"):
            return self.refuse(request, "error: invalid 'Content-Type'\n")
        try:
            body = self.decoded_body(request)
        except BodyTooLarge:
            return error("error: payload too large\n", 413)
        except BadBody as exc:
            return self.refuse(request, "error: invalid bulk payload\n",
                               "cannot decompress the body: %s" % exc)
        if not body:
            return self.refuse(request, "error: no payload found\n")
        stream = JsonStream(len(body) + 1)
        values = stream.values(body, final=True)
        if stream.invalid or stream.too_deep:
            return self.refuse(request, "error: invalid bulk payload\n",
                               "invalid or too deep JSON: %r" % stream.example)
        try:
            records, items = bulk_records(values, self.conf["meta_key"])
        except BulkError as exc:
            return self.refuse(request, "error: invalid bulk payload\n", str(exc))
        if records:
            await self.deliver(self.by_tag_key(records, self.tag_key), len(request.body))
        failed = any(b'"status":40' in item for item in items)
        answer = b"".join((b'{"errors":', b"true" if failed else b"false", b',"items":[',
                           b",".join(items), b"]}"))
        return Response(200, JSON, answer)


PLUGIN = ElasticsearchInput
