"""splunk input: Splunk's HTTP Event Collector (HEC) endpoints, for senders such as Docker's
splunk logging driver and Splunk forwarders (in_splunk), on the http input's server
(``_http_listener``).

Kept from Fluent Bit 5.1.1 (answers and records checked on the real binary):
- Listens on 0.0.0.0:8088. ``POST /services/collector``, ``/services/collector/event`` (and
  ``/1.0``): JSON maps each a record, arrays of maps a record per map (``Content-Type:
  application/json``; ``text/plain`` is raw; another or none is JSON when the body starts
  with ``{``, else raw). ``POST /services/collector/raw`` (and ``/1.0``), which needs a
  Content-Type: the whole body is one record ``{"log": body}``. Records are stamped with the
  arrival time (a HEC ``time`` field stays in the record), under the input's Tag or
  ``Tag_Key``'s string value. Answers ``{"text":"Success","code":0}``; ``GET
  /services/collector/health`` ``{"text":"Success","code":200}``.
- ``Splunk_Token`` (a comma list): requests must carry ``Authorization: Splunk TOKEN`` (the
  token compared without case), else 401 ``Token is required`` (code 2) or ``Invalid
  authorization`` (3), or 403 ``Invalid token`` (4). With ``store_token_in_metadata off``
  the header's value goes into the record under ``Splunk_Token_Key`` (``@splunk_token``).
- ``Add_Remote_Addr``: ``Remote_Addr_Key`` (``remote_addr``) holds the first
  X-Forwarded-For address, else the peer as ``tcp://IP:PORT``.
- A body that does not parse is 400 ``Invalid data format`` (6); other paths 400 ``error:
  invalid HTTP endpoint``, other methods ``error: invalid HTTP method``. http_server.*
  options, TLS, gzip bodies.

Differences (README "Where edgeship differs"): the answer comes once the records are
confirmed (at-least-once, as the http input); values after an array in the body are kept
(Fluent Bit stops at the array and loses them while answering success); an array item that
is not a map is skipped and logged; an empty body is answered 400 ``No data`` (5) (Fluent
Bit sends no answer). edgeship records carry no metadata, so with ``store_token_in_metadata``
on (the default) the token is not kept.
"""

from edgeship.core.accessor import accessor
from edgeship.core.schema import Option
from edgeship.net.http_server import Response
from edgeship.plugins.inputs._http_listener import (BadBody, BodyTooLarge, HttpListener, error,
                                                    http_server_options)
from edgeship.plugins.inputs._sockets import JsonStream, source_address

DEFAULT_PORT = 8088
EVENT_PATHS = ("/services/collector", "/services/collector/event",
               "/services/collector/event/1.0")
RAW_PATHS = ("/services/collector/raw", "/services/collector/raw/1.0")
HEALTH_PATH = "/services/collector/health"


def _answer(status, text, code):
    return Response(status, [("Content-Type", "application/json")],
                    b'{"text":"%s","code":%d}' % (text.encode(), code))


SUCCESS = _answer(200, "Success", 0)
NO_DATA = _answer(400, "No data", 5)
INVALID_FORMAT = _answer(400, "Invalid data format", 6)


class SplunkInput(HttpListener):
    name = "splunk"
    description = "Input plugin for Splunk HEC payloads"
    options = http_server_options(DEFAULT_PORT) + (
        Option("Splunk_Token", help="accepted HEC tokens, comma separated (none: any)"),
        Option("Store_Token_In_Metadata", "bool", "true",
               help="keep the token in metadata (edgeship has none: off keeps it in the "
                    "record)"),
        Option("Splunk_Token_Key", default="@splunk_token",
               help="record key of the token with store_token_in_metadata off"),
        Option("Tag_Key", help="record key whose string value becomes the record's tag"),
        Option("Add_Remote_Addr", "bool", "false", help="add the sender's address"),
        Option("Remote_Addr_Key", default="remote_addr", help="key of that address"),
    )

    def configure(self):
        conf = self.conf
        self.configure_server()
        tokens = [t.strip() for t in (conf["splunk_token"] or "").split(",") if t.strip()]
        self.auth_headers = {("Splunk " + token).lower() for token in tokens}
        self.token_key = None if conf["store_token_in_metadata"] else conf["splunk_token_key"]
        key = conf["tag_key"]
        self.tag_key = accessor(key) if key else None
        self.remote_addr_key = conf["remote_addr_key"] if conf["add_remote_addr"] else None

    def _unauthorized(self, request):
        """The answer refusing ``request``'s credentials, or None when they are fine."""
        if not self.auth_headers:
            return None
        header = request.headers.get("authorization")
        if header is None:
            self.log.warn_often("missing credentials in request headers")
            return _answer(401, "Token is required", 2)
        if header.lower() in self.auth_headers:
            return None
        if header[:7].lower() == "splunk " and len(header) > 7:
            self.log.warn_often("wrong credentials in request headers")
            return _answer(403, "Invalid token", 4)
        self.log.warn_often("invalid authorization in request headers")
        return _answer(401, "Invalid authorization", 3)

    async def handle(self, request):
        if not request.path.startswith("/"):
            return self.refuse(request, "error: invalid request\n")
        path = request.path.lower()
        if request.method == "GET":
            if path == HEALTH_PATH:
                return _answer(200, "Success", 200)
            return self.refuse(request, "error: invalid HTTP endpoint\n")
        refusal = self._unauthorized(request)
        if refusal is not None:
            return refusal
        if request.method != "POST":
            return self.refuse(request, "error: invalid HTTP method\n")
        raw = path in RAW_PATHS
        if not raw and path not in EVENT_PATHS:
            return self.refuse(request, "error: invalid HTTP endpoint\n")
        content_type = request.headers.get("content-type")
        if raw and content_type is None:
            return self.refuse(request, "error: header 'Content-Type' is not set\n")
        try:
            body = self.decoded_body(request)
        except BodyTooLarge:
            return error("error: payload too large\n", 413)
        except BadBody as exc:
            self.log.warn_often("cannot decompress the body: %s", exc)
            return INVALID_FORMAT
        if not body:
            return NO_DATA
        kind = (content_type or "").strip().lower()
        raw = raw or kind == "text/plain" or (kind != "application/json"
                                              and not body.startswith(b"{"))
        if raw:
            records = [{"log": body.decode("utf-8", "replace")}]
        else:
            records = self._json_records(body)
            if records is None:
                return INVALID_FORMAT
        self._annotate(request, records, raw)
        await self.deliver(self.by_tag_key(records, self.tag_key), len(request.body))
        return SUCCESS

    def _json_records(self, body):
        stream = JsonStream(len(body) + 1)
        values = stream.values(body, final=True)
        if stream.invalid or stream.too_deep:
            self.log.warn_often("invalid JSON message, skipping: %r", stream.example)
            return None
        records, skipped = [], 0
        for value in values:
            for item in (value if type(value) is list else (value,)):
                if type(item) is dict:
                    records.append(item)
                else:
                    skipped += 1
        if skipped:
            self.log.warn_often("skipped %d JSON values that are not maps", skipped)
        return records or None

    def _annotate(self, request, records, raw):
        """The token and the sender's address, where Fluent Bit puts them: a raw record
        has the token before its log, a JSON record after its own keys."""
        token = request.headers.get("authorization") if self.token_key else None
        if token is not None and token[:7].lower() != "splunk ":
            token = None
        address = None
        if self.remote_addr_key:
            forwarded = request.headers.get("x-forwarded-for", "")
            address = (forwarded.split(",")[0].strip(" \t")
                       or source_address("tcp", request.peer))
        if raw and token is not None:
            records[0] = {self.token_key: token, "log": records[0]["log"]}
            token = None
        for record in records:
            if token is not None:
                record[self.token_key] = token
            if address:
                record[self.remote_addr_key] = address


PLUGIN = SplunkInput
