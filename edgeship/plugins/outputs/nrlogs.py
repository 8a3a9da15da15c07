"""nrlogs output: New Relic's Log API (out_nrlogs).

Kept from Fluent Bit 5.1.1 (checked on the binary, tests/data/nrlogs): ``base_uri`` (default
``https://log-api.newrelic.com/log/v1``) gives host, port (80 for http, 443 for https when
none is given) and path; ``api_key`` or ``license_key`` is required (a config error naming
``api_key`` without either); ``compress`` is ``gzip`` by default, a false value sends plain
JSON and any other value is warned about and sends plain JSON. Headers User-Agent
``Fluent-Bit``, ``X-License-Key`` (license_key, which wins) or ``X-Insert-Key`` (api_key),
Content-Type ``application/json``, Content-Encoding ``gzip``. The body: one JSON array holding
one object, ``common.attributes.plugin`` (type ``Fluent Bit``, version ``5.1.1``) and ``logs``,
one object per record: ``timestamp`` (milliseconds, truncated), ``message`` (the value of the
record's ``log`` key, else of its ``message`` key; absent when it has neither) and
``attributes`` (the other keys, in order; with both keys, ``message`` stays an attribute).
200-205 OK; any other status, 4xx included, or no answer RETRY (the Retry_Limit then drops).
TLS is on by default (``tls off`` turns it off).

Difference: a ``http://`` base_uri without a ``tls`` key is sent in plain HTTP; Fluent Bit
speaks TLS to it (its ``tls`` defaults on whatever the scheme), which a plain server never
answers, so the chunk waits until it times out.
"""
from edgeship.codecs import formats
from edgeship.core import FLUENT_BIT_VERSION
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.net.http_client import HTTP_CLIENT_OPTIONS, HttpClient, split_url
from edgeship.plugins.outputs._http import USER_AGENT, HttpOutput, retry_unless_success

DEFAULT_BASE_URI = "https://log-api.newrelic.com/log/v1"
# The 'common' part of every body: Fluent Bit names itself and its version.
COMMON = {"attributes": {"plugin": {"type": "Fluent Bit", "version": FLUENT_BIT_VERSION}}}
_FALSE = ("false", "off", "no", "0")
_MS = 1000000
# Fluent Bit's nrlogs has no Header, Proxy, http_User or compress of the other HTTP outputs
# (compress is its own, gzip by default); its tls defaults on (None here: by the scheme).
_NOT_NRLOGS = ("http_user", "http_passwd", "header", "compress", "proxy", "tls")


def _split_base_uri(text):
    """``(https, host, port, path)`` of a base_uri; ConfigError naming it when unusable."""
    try:
        return split_url(text, default_https=False)
    except ValueError as exc:
        raise ConfigError("nrlogs: base_uri must be http(s)://host[:port][/path], got '%s' "
                          "(%s)" % (text, exc), key="base_uri")


def log_entry(time_ns, record):
    """The Log API object of one record (Fluent Bit's package_record)."""
    entry = {"timestamp": time_ns // _MS}
    # 'log' wins over 'message'; only the key that became the message leaves the attributes.
    moved = "log" if "log" in record else ("message" if "message" in record else None)
    if moved is None:
        entry["attributes"] = record
        return entry
    entry["message"] = record[moved]
    entry["attributes"] = {k: v for k, v in record.items() if k != moved}
    return entry


class NrlogsOutput(HttpOutput):
    name = "nrlogs"
    description = "New Relic Log API"
    options = (
        Option("base_uri", default=DEFAULT_BASE_URI, help="Log API URL"),
        Option("api_key", help="New Relic API (insert) key: X-Insert-Key"),
        Option("license_key", help="New Relic license key: X-License-Key (wins over api_key)"),
        Option("compress", default="gzip", help="gzip (default) or off"),
        Option("tls", "bool", help="use TLS (default: on, off for an http:// base_uri)"),
    ) + tuple(o for o in HTTP_CLIENT_OPTIONS if o.key not in _NOT_NRLOGS)

    def configure(self):
        conf = self.conf
        if not conf["api_key"] and not conf["license_key"]:
            raise ConfigError("nrlogs: no 'api_key' or 'license_key' was configured",
                              key="api_key")
        https, host, port, self.uri = _split_base_uri(conf["base_uri"])
        client_conf = dict(conf, tls=https if conf["tls"] is None else conf["tls"])
        self.client = HttpClient(client_conf, host, port)
        compress = (conf["compress"] or "").strip().lower()
        self.gzip = compress == "gzip"
        if not self.gzip and compress not in _FALSE:
            self.log.warn("unknown compress encoding value '%s', payload compression has "
                             "been disabled", conf["compress"])
        key = (("X-License-Key", conf["license_key"]) if conf["license_key"]
               else ("X-Insert-Key", conf["api_key"]))
        self.headers = [USER_AGENT, key, ("Content-Type", "application/json")]

    def body(self, chunk):
        logs = [log_entry(time_ns, record) for time_ns, record in chunk.events()]
        return formats.to_json([{"common": COMMON, "logs": logs}])

    judge = staticmethod(retry_unless_success)

    async def flush(self, chunk):
        headers = list(self.headers)
        body = self.encode_body(self.body(chunk), headers)
        result, _ = await self.send("POST", self.uri, headers, body)
        return result


PLUGIN = NrlogsOutput
