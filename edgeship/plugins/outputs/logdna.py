"""logdna output: records to LogDNA / Mezmo's ingestion API (out_logdna).

Kept from Fluent Bit 5.1.1 (the request checked byte for byte on the real binary): one POST
per chunk over TLS to ``logdna_host`` (logs.logdna.com) : ``logdna_port`` (443)
``logdna_endpoint`` (/logs/ingest) ``?hostname=H&mac=M&ip=I&now=UNIX_TIME&tags=T``, the
Host header without its port, ``Authorization: Basic`` of ``api_key`` (required) and an
empty password, ``Content-Type: application/json; charset=UTF-8``. The body is
``{"lines": [...]}``, one object per record: its ``level`` (from ``level`` or
``severity``), ``meta``, ``file``, ``app`` and ``hostname`` keys in the record's order (the
first of each), then ``file`` from the option and ``app`` (``Fluent Bit``) and ``hostname``
(the option, else $HOSTNAME, else ``unknown``) where the record has none, ``timestamp``
(whole seconds) and ``line``, the record's JSON (without those promoted keys with
``exclude_promoted_keys``). ``tags`` is a comma list, each URI-encoded as Fluent Bit does
(letters, digits and ``?&-_.~/=`` kept). A 200-205 answer is delivered (logged at info with
its body, as there); another status or no answer is retried.
"""
import os
import time

from edgeship.codecs import formats
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.net.http_client import HTTP_CLIENT_OPTIONS, HttpClient, basic_auth
from edgeship.plugins.outputs._http import USER_AGENT, HttpOutput, retry_unless_success

PROMOTED = ("meta", "level", "severity", "file", "app", "hostname")
_URI_KEPT = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                      b"?&-_.~/=")
# Fluent Bit's logdna takes only its own keys and the networking and TLS ones (TLS is
# always on).
_NOT_LOGDNA = ("http_user", "http_passwd", "header", "compress", "proxy")


def uri_encode(text):
    """flb_uri_encode: every byte but letters, digits and ``?&-_.~/=`` as %XX."""
    return "".join(chr(b) if b in _URI_KEPT else "%%%02X" % b for b in text.encode("utf-8"))


class LogdnaOutput(HttpOutput):
    name = "logdna"
    description = "LogDNA"
    success_logged_at_info = True
    options = (
        Option("logdna_host", default="logs.logdna.com", help="ingestion host"),
        Option("logdna_port", "int", "443", min=1, max=65535, help="ingestion port"),
        Option("logdna_endpoint", default="/logs/ingest", help="ingestion path"),
        Option("api_key", help="ingestion key (required)"),
        Option("hostname", help="host name sent (default: $HOSTNAME, else unknown)"),
        Option("mac", default="", help="MAC address sent"),
        Option("ip", default="", help="IP address sent"),
        Option("tags", "list", "", help="tags, comma separated"),
        Option("file", help="file name of records that have none"),
        Option("app", default="Fluent Bit", help="app name of records that have none"),
        Option("exclude_promoted_keys", "bool", "false",
               help="leave the promoted keys out of each line"),
    ) + tuple(o for o in HTTP_CLIENT_OPTIONS if o.key not in _NOT_LOGDNA)

    def configure(self):
        conf = self.conf
        if not conf["api_key"]:
            raise ConfigError("logdna: no `api_key` was set, this is a mandatory property",
                              key="api_key")
        self.hostname = conf["hostname"] or os.environ.get("HOSTNAME") or "unknown"
        self.client = HttpClient(dict(conf, tls=True), conf["logdna_host"],
                                 conf["logdna_port"])
        self.client.host_header = self.client.host     # flb_http_strip_port_from_host
        self.uri_head = "%s?hostname=%s&mac=%s&ip=%s&now=" % (
            conf["logdna_endpoint"], self.hostname, conf["mac"], conf["ip"])
        self.uri_tail = "&tags=" + ",".join(uri_encode(tag) for tag in conf["tags"])
        self.headers = [USER_AGENT, ("Content-Type", "application/json; charset=UTF-8"),
                        ("Authorization", basic_auth(conf["api_key"], ""))]

    def summary(self):
        return "hostname=%s" % self.hostname

    def _line(self, time_ns, record):
        conf = self.conf
        entry = {}
        for key, value in record.items():
            name = "level" if key == "severity" else key
            if key in PROMOTED and name not in entry:
                entry[name] = value
        if "file" not in entry and conf["file"]:
            entry["file"] = conf["file"]
        entry.setdefault("app", conf["app"])
        entry.setdefault("hostname", self.hostname)
        entry["timestamp"] = time_ns // 1000000000
        if conf["exclude_promoted_keys"]:
            record = {k: v for k, v in record.items() if k not in PROMOTED}
        return entry, record

    def body(self, chunk):
        lines = [self._line(t, record) for t, record in chunk.events()]
        texts = formats.json_batch([record for _, record in lines])
        for (entry, _), text in zip(lines, texts):
            entry["line"] = text.decode("utf-8", "surrogateescape")
        return formats.to_json({"lines": [entry for entry, _ in lines]})

    judge = staticmethod(retry_unless_success)

    async def flush(self, chunk):
        uri = "%s%d%s" % (self.uri_head, int(time.time()), self.uri_tail)
        result, _ = await self.send("POST", uri, list(self.headers), self.body(chunk))
        return result


PLUGIN = LogdnaOutput
