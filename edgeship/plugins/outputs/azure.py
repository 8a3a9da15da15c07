"""azure output: Azure Log Analytics, HTTP Data Collector API (out_azure).

Kept from Fluent Bit 5.1.1 (checked on the binary, tests/data/azure): ``Customer_ID`` (the
workspace id) and ``Shared_Key`` (its base64 key) are required; the host is
``<Customer_ID>.ods.opinsights.azure.com``, or ``Host`` with ``<Customer_ID>.`` put in front
unless it already holds the id; ``Port`` 443; TLS on by default (``tls off`` sends plain
HTTP). ``POST /api/logs?api-version=2016-04-01``, headers User-Agent ``Fluent-Bit``,
Log-Type (``Log_Type``, default ``fluentbit``), Content-Type ``application/json``, x-ms-date
(RFC 1123, now), time-generated-field (``Time_Key``, with ``Time_Generated on``) and
``Authorization: SharedKey <Customer_ID>:<signature>``, the signature being the base64
HMAC-SHA256, keyed with the decoded key, of ``POST\\n<body length>\\napplication/json\\n
x-ms-date:<date>\\n/api/logs``. The body: one JSON array, each record with ``Time_Key``
(default ``@timestamp``) first: the time as a double of seconds, or with ``Time_Generated
on`` as ``%Y-%m-%dT%H:%M:%S.mmmZ`` (milliseconds, truncated); a record key of the same name
follows it, as Fluent Bit writes it. The key is decoded as Fluent Bit's base64 does: spaces
only before a line end, at most two ``=`` and nothing after them, an incomplete last group
ignored; anything else stops the start (a warning in ``--dry-run``). 2xx OK, any other
status or no answer RETRY.

Difference: with ``Log_Type_Key`` (a record accessor, ``$kubernetes['namespace_name']``)
each record goes under its own log type (the key's value, else ``Log_Type``): one request
per log type, in the order they first appear. Fluent Bit sends the whole chunk under the
value of the last record that had one, so records land in another table. A value Azure
does not take as a Log-Type (letters, digits, '_', up to 100) is replaced by ``Log_Type``.
A chunk retried sends all its requests again.
"""
import string
import time

from edgeship.codecs import formats
from edgeship.core.errors import ConfigError, StartError
from edgeship.core.schema import Option
from edgeship.engine.plugin import OK, RETRY
from edgeship.net import azure
from edgeship.net.azure import decode_shared_key
from edgeship.net.http_client import TLS_ON_NET_OPTIONS, HttpClient
from edgeship.plugins.outputs._http import USER_AGENT, HttpOutput

DOMAIN = ".ods.opinsights.azure.com"
RESOURCE = "/api/logs"
URI = RESOURCE + "?api-version=2016-04-01"
# What Azure takes as a Log-Type: letters, digits and '_', up to 100 characters.
_LOG_TYPE_CHARS = frozenset(string.ascii_letters + string.digits + "_")


def signature(key, content_length, date):
    """The signature of Fluent Bit's (and Azure's) string to sign."""
    return azure.signature(key, "POST\n%d\napplication/json\nx-ms-date:%s\n%s"
                           % (content_length, date, RESOURCE))


def _iso_ms(time_ns):
    sec, nsec = divmod(time_ns, formats.NS)
    return b'"%s.%03dZ"' % (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)).encode(),
                           nsec // 1000000)


class AzureOutput(HttpOutput):
    name = "azure"
    description = "Azure Log Analytics (HTTP Data Collector API)"
    options = (
        Option("Customer_ID", help="workspace id (required)"),
        Option("Shared_Key", help="workspace primary or secondary key, base64 (required)"),
        Option("Log_Type", default="fluentbit", help="event type (the table, '_CL' added)"),
        Option("Log_Type_Key", help="record accessor whose value, when found, is the log type"),
        Option("Time_Key", default="@timestamp", help="key of the time in each record"),
        Option("Time_Generated", "bool", "false",
               help="time as ISO 8601, named in the time-generated-field header"),
        Option("Host", help="host (default <Customer_ID>.ods.opinsights.azure.com)"),
        Option("Port", "int", "443", min=1, max=65535, help="TCP port"),
    ) + TLS_ON_NET_OPTIONS

    def configure(self):
        conf = self.conf
        for key in ("customer_id", "shared_key"):
            if not conf[key]:
                raise ConfigError("azure: property '%s' is not defined" % key, key=key)
        try:
            self.key = decode_shared_key(conf["shared_key"])
        except ValueError as exc:
            raise StartError("azure: error decoding shared_key: %s" % exc, key="shared_key")
        self.customer_id = customer_id = conf["customer_id"]
        self.log_type_key = None
        if conf["log_type_key"]:
            try:
                self.log_type_key = formats.record_template(conf["log_type_key"])
            except ValueError as exc:
                raise ConfigError("azure: invalid log_type_key pattern '%s': %s"
                                  % (conf["log_type_key"], exc), key="log_type_key")
        host = conf["host"]
        if not host:
            host = customer_id + DOMAIN
        elif customer_id not in host:
            host = customer_id + ("" if host.startswith(".") else ".") + host
        self.client = HttpClient(conf, host, conf["port"])
        self.time_key = b"{" + formats.to_json(conf["time_key"]) + b":"
        self.headers = [USER_AGENT]

    def summary(self):
        return "customer_id=%s host=%s" % (self.customer_id, self.client.label)

    def _bodies(self, chunk):
        """``[(log type, JSON array)]``: one per log type, in the order they appear."""
        events = chunk.events()
        parts = formats.json_batch([record for _, record in events])
        stamp = _iso_ms if self.conf["time_generated"] else formats.date_json
        objects = [self.time_key + stamp(time_ns) + (b"}" if part == b"{}" else b"," + part[1:])
                   for (time_ns, _), part in zip(events, parts)]
        default = self.conf["log_type"]
        if self.log_type_key is None:
            return [(default, b"[" + b",".join(objects) + b"]")]
        groups = {}
        unmatched = 0
        for (_, record), obj in zip(events, objects):
            log_type = self.log_type_key.render(record, chunk.tag)
            if not log_type or len(log_type) > 100 or not _LOG_TYPE_CHARS.issuperset(log_type):
                unmatched += 1
                log_type = default
            groups.setdefault(log_type, []).append(obj)
        if unmatched:
            self.log.warn("log_type_key not found or not a valid Log-Type in %d records of "
                          "the chunk: sent as %s", unmatched, default)
        return [(name, b"[" + b",".join(objs) + b"]") for name, objs in groups.items()]

    def judge(self, status):
        return OK if 200 <= status <= 299 else RETRY

    async def flush(self, chunk):
        for log_type, body in self._bodies(chunk):
            date = azure.ms_date()
            headers = self.headers + [("Log-Type", log_type),
                                      ("Content-Type", "application/json"),
                                      ("x-ms-date", date)]
            if self.conf["time_generated"]:
                headers.append(("time-generated-field", self.conf["time_key"]))
            headers.append(("Authorization", "SharedKey %s:%s" % (
                self.customer_id, signature(self.key, len(body), date))))
            result, _ = await self.send("POST", URI, headers, body)
            if result != OK:
                return result
        return OK


PLUGIN = AzureOutput
