"""influxdb output: logs and metrics as InfluxDB line protocol over HTTP (out_influxdb).

Kept from Fluent Bit 5.1.1: ``POST /write?db=<Database>&precision=n`` (API v1), or with a
``Bucket`` ``POST /api/v2/write?org=<Org>&bucket=<Bucket>&precision=ns`` and ``HTTP_Token``
as ``Authorization: Token`` (it wins over basic auth); ``URI`` replaces path and query; no
Content-Type; headers Host, Content-Length, User-Agent, Authorization, ``HTTP_Header``,
Connection.
Logs: one line per record, lines joined by ``\\n`` with none after the last; the measurement
is the tag as it is; a sequence tag (``Sequence_Tag``, default ``_seq``, ``off`` for none)
counting records of this instance from 0 (past 99999 every record gets 1, as Fluent Bit's
counter does); ``Tag_Keys`` and, with ``Auto_Tags``, every string value become tags in record
order; the other keys are fields in record order (null, maps and arrays skipped): booleans
TRUE/FALSE, integers (``i`` with ``Add_Integer_Suffix``), doubles as ``%f``, strings
JSON-escaped then line-protocol escaped; a record sharing the previous one's time is moved
1 ns past the last time written. A record left with no field is skipped with a warning.
Metrics: the first cmetrics context of the chunk as cmetrics' influx encoder writes it
(``codecs.cmetrics.render_influx``).

Difference, for safety: Fluent Bit reports any HTTP status as delivered (a 500 or 503 from a
restarting InfluxDB drops the records); edgeship retries 5xx, 408 and 429 like the other HTTP
outputs, and drops only what InfluxDB refuses (other 4xx), logging the answer.
"""
from urllib.parse import quote

from edgeship.codecs import cmetrics, formats
from edgeship.core.schema import Option
from edgeship.engine.plugin import LOGS, METRICS, RETRY
from edgeship.net.http_client import address_options, parse_headers
from edgeship.plugins.outputs._http import USER_AGENT, HttpOutput

_SEQUENCE_LIMIT = 99999
_RENDERED_KEPT = 64


def _escape_key(text):
    return (text.replace("\\", "\\\\").replace(" ", "\\ ").replace(",", "\\,")
            .replace("=", "\\="))


def _json_escaped(text):
    """Fluent Bit's JSON escaping of a string, without the quotes."""
    return formats.to_json(text).decode("ascii")[1:-1]


def _field_string(text):
    return '"%s"' % _json_escaped(text).replace("\\", "\\\\").replace('"', '\\"')


class InfluxdbOutput(HttpOutput):
    name = "influxdb"
    description = "InfluxDB time series database (line protocol)"
    signals = (LOGS, METRICS)
    options = address_options(8086) + (
        Option("Database", default="fluentbit", help="database name (API v1)"),
        Option("Bucket", help="bucket name: use the API v2 write endpoint"),
        Option("Org", default="fluent", help="organization (API v2)"),
        Option("Sequence_Tag", default="_seq", help="name of the sequence tag; off: none"),
        Option("URI", help="request path and query, instead of the write endpoint"),
        Option("HTTP_Token", help="API v2 token (Authorization: Token)"),
        Option("HTTP_Header", multiple=True, help="'Name value' header added to requests"),
        Option("Auto_Tags", "bool", "false", help="every string value becomes a tag"),
        Option("Tag_Keys", help="keys whose values are tags (space separated)"),
        Option("Add_Integer_Suffix", "bool", "false", help="integers get the 'i' suffix"),
    ) + HttpOutput.client_options

    def configure(self):
        conf = self.conf
        self.configure_client()
        if conf["uri"]:
            self.uri = conf["uri"]
        elif conf["bucket"]:
            self.uri = "/api/v2/write?org=%s&bucket=%s&precision=ns" % (
                quote(conf["org"], safe=""), quote(conf["bucket"], safe=""))
        else:
            self.uri = "/write?db=%s&precision=n" % quote(conf["database"], safe="")
        sequence = conf["sequence_tag"]
        self.sequence_tag = None if sequence.lower() == "off" else _escape_key(sequence)
        self.sequence = 0
        # The last record time read and written, across flushes (the dedupe of equal times).
        self.previous_time = self.last_time = None
        # A retried chunk is sent as it was rendered: same sequence numbers, same times.
        self.rendered = {}
        self.tag_keys = set((conf["tag_keys"] or "").split())
        self.auto_tags = conf["auto_tags"]
        self.int_suffix = "i" if conf["add_integer_suffix"] else ""
        if conf["http_token"]:
            self.auth = ("Authorization", "Token " + conf["http_token"])
        self.config_headers = self.config_headers + parse_headers(conf["http_header"],
                                                                  "http_header")

    def _next_sequence(self):
        if self.sequence >= _SEQUENCE_LIMIT:
            return 1
        number = self.sequence
        self.sequence += 1
        return number

    def _line(self, measurement, time_ns, record):
        tags = [measurement]
        if self.sequence_tag is not None:
            tags.append("%s=%d" % (self.sequence_tag, self._next_sequence()))
        fields = []
        suffix = self.int_suffix
        for key, value in record.items():
            if not isinstance(key, str):
                key = str(key)
            kind = type(value)
            if kind is str and (self.auto_tags or key in self.tag_keys):
                tags.append("%s=%s" % (_escape_key(key), _escape_key(_json_escaped(value))))
            elif key in self.tag_keys and kind in (int, float):
                tags.append("%s=%s" % (_escape_key(key), value))
            elif kind is str:
                fields.append("%s=%s" % (_escape_key(key), _field_string(value)))
            elif kind is bool:
                fields.append("%s=%s" % (_escape_key(key), "TRUE" if value else "FALSE"))
            elif kind is int:
                fields.append("%s=%d%s" % (_escape_key(key), value, suffix))
            elif kind is float:
                fields.append("%s=%f" % (_escape_key(key), value))
            elif kind is bytes:
                fields.append("%s=%s" % (_escape_key(key), _field_string(
                    value.decode("utf-8", "surrogateescape"))))
        if not fields:
            return None
        return "%s %s %d" % (",".join(tags), ",".join(fields), time_ns)

    def render_logs(self, tag, events):
        lines = []
        skipped = 0
        for time_ns, record in events:
            written = time_ns
            if time_ns == self.previous_time:
                written = self.last_time + 1      # Fluent Bit's dedupe of equal times
            line = self._line(tag, written, record)
            if line is None:
                skipped += 1
                continue
            lines.append(line)
            self.previous_time, self.last_time = time_ns, written
        if skipped:
            self.log.warn("skip send record, since no record available or all fields are "
                          "tagged in record (%d records)", skipped)
        return "\n".join(lines).encode("utf-8", "surrogateescape")

    async def flush(self, chunk):
        body = self.rendered.get(chunk.id)
        if body is None:
            body = self.rendered[chunk.id] = self.render(chunk)
            if len(self.rendered) > _RENDERED_KEPT:    # chunks dropped while retried
                del self.rendered[next(iter(self.rendered))]
        headers = [USER_AGENT]
        if self.auth:
            headers.append(self.auth)
        headers.extend(self.config_headers)
        body = self.encode_body(body, headers)
        result, _ = await self.send("POST", self.uri, headers, body)
        if result != RETRY:
            del self.rendered[chunk.id]
        return result

    def render(self, chunk):
        if chunk.signal == METRICS:
            # Fluent Bit's influxdb reads the first context of a metrics chunk only.
            contexts = cmetrics.decode(chunk.payload, first_only=True)
            return cmetrics.render_influx(contexts).encode("utf-8")
        return self.render_logs(chunk.tag, chunk.events())


PLUGIN = InfluxdbOutput
