"""td output: records to Treasure Data's import API (out_td).

Kept from Fluent Bit 5.1.1 (the request checked byte for byte on the real binary but for
the deflate stream, tests/test_out_td.py): ``API`` (the API key), ``Database`` and
``Table`` are required (the output cannot start without one); ``Region`` ``us`` (default:
api.treasuredata.com) or ``jp`` (api.treasuredata.co.jp), port 443, another region stops
the output from starting; ``Host``/``Port`` override them. One request per chunk, always
over TLS (Fluent Bit's td speaks TLS whatever ``tls`` says; ``tls.verify`` and the other
``tls.*`` keys apply): ``PUT /v3/table/import/DATABASE/TABLE/msgpack.gz`` with
``Authorization: TD1 API`` and ``Content-Type: application/gzip``, no User-Agent. The body
is gzip of the records as msgpack maps back to back, each with ``time`` (the record's whole
seconds, a 32-bit integer) first and then the record's own keys (a record's own ``time`` is
kept too, as a second key of that name). Only a 200 answer is delivered (logged at info,
``HTTP status 200 OK``); any other status (logged as a warning with the body's first line)
or no answer is retried.

Difference: the gzip member's deflate stream is zlib's (edgeship/net/http_client.py): the
same records, other compressed bytes.
"""
from edgeship.codecs.msgpack import map_body, map_header, packb
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import OK, RETRY
from edgeship.net.http_client import HTTP_CLIENT_OPTIONS, HttpClient, gzip_body
from edgeship.plugins.outputs._http import HttpOutput

REGIONS = {"us": "api.treasuredata.com", "jp": "api.treasuredata.co.jp"}
_TIME_KEY = packb("time")
_NS = 1000000000
# Fluent Bit's td takes only its own keys, Host/Port and the networking and TLS ones (TLS
# is always on).
_NOT_TD = ("http_user", "http_passwd", "header", "compress", "proxy")


def int32(value):
    """``value`` as C's cast to a 32-bit signed integer (msgpack_pack_int32 of a time_t)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def td_records(events):
    """The import body before gzip: one msgpack map per record, ``time`` first."""
    out = []
    for time_ns, record in events:
        out.append(map_header(len(record) + 1))
        out.append(_TIME_KEY)
        out.append(packb(int32(time_ns // _NS)))
        out.append(map_body(packb(record)))
    return b"".join(out)


class TdOutput(HttpOutput):
    name = "td"
    description = "Treasure Data"
    options = (
        Option("API", help="the API key (required)"),
        Option("Database", help="the database (required)"),
        Option("Table", help="the table (required)"),
        Option("Region", help="us (default) or jp: the API host"),
        Option("Host", help="API host (default: the Region's)"),
        Option("Port", "int", "443", min=1, max=65535, help="API port"),
        Option("tls", "bool", "on", help="always on: the import API is TLS only"),
    ) + tuple(o for o in HTTP_CLIENT_OPTIONS if o.key not in _NOT_TD + ("tls",))

    def configure(self):
        conf = self.conf
        for key, what in (("api", "API key value"), ("database", "Database name"),
                          ("table", "Table name")):
            if not conf[key]:
                raise ConfigError("td: error reading %s" % what, key=key)
        region = (conf["region"] or "us").lower()
        if region not in REGIONS:
            raise ConfigError("td: invalid region in configuration", key="region")
        self.client = HttpClient(dict(conf, tls=True), conf["host"] or REGIONS[region],
                                 conf["port"])
        self.uri = "/v3/table/import/%s/%s/msgpack.gz" % (conf["database"], conf["table"])
        self.headers = [("Authorization", "TD1 " + conf["api"]),
                        ("Content-Type", "application/gzip")]

    def summary(self):
        return "database='%s' table='%s'" % (self.conf["database"], self.conf["table"])

    @staticmethod
    def judge(status):
        return OK if status == 200 else RETRY

    def report(self, result, response):
        if result == OK:
            self.log.info("HTTP status 200 OK")
        else:
            self.log.warn("%s, HTTP status %d %s", self.client.label, response.status,
                          response.first_line())

    async def flush(self, chunk):
        body = gzip_body(td_records(chunk.events()))
        result, _ = await self.send("PUT", self.uri, list(self.headers), body)
        return result


PLUGIN = TdOutput
