"""opentelemetry output: logs and metrics to an OpenTelemetry Collector over OTLP/HTTP
(out_opentelemetry).

Kept from Fluent Bit 5.1.1: its option names and defaults (Host 127.0.0.1, Port 80,
logs_uri /v1/logs, metrics_uri /v1/metrics, batch_size 1000, a URI without a leading '/'
gets one); each log chunk is ``POST <logs_uri>`` of ExportLogsServiceRequests of at most
``batch_size`` records, each metrics chunk one ``POST <metrics_uri>`` of every context in it
(the bodies are ``codecs.otlp``'s, byte-equal to Fluent Bit's); headers Content-Type
``application/x-protobuf``, Authorization (http_user), User-Agent ``Fluent-Bit``, each
``header``, Content-Encoding (``compress gzip`` or ``zstd``); ``add_label NAME VALUE`` adds an
attribute to every metric data point, before the series' labels (a static label, as there).
A 200-205 answer is delivered and logged at info with the answer's body
(``log_response_payload``), 429 and 502-504 are retried, what the server refuses (400 and the
other 4xx) is dropped and logged with its body; no answer is retried.

Needs the ``opentelemetry`` extra (opentelemetry-proto; cramjam for zstd), imported when the
output is configured: without it the config is refused at --dry-run, naming the extra.

Differences: every 5xx is retried (Fluent Bit drops the chunk on a 500, 501 or 505, as the OTLP
spec says; a server fault is not the records' fault). When one of a chunk's batches is
retried, the chunk is retried from its first batch (batches before it are sent again:
at-least-once), where Fluent Bit goes on and reports the last batch's result. ``grpc on`` is a
config error (edgeship has no gRPC client: point it at the Collector's OTLP/HTTP port, 4318);
``http2 on`` or ``force`` is accepted with a warning and HTTP/1.1 is spoken (the Collector's
OTLP/HTTP receiver takes both). edgeship keeps no per-record metadata (Fluent Bit's
``$otlp`` and the ``logs_*_metadata_key`` values come from an opentelemetry input it does not
have), so those options are accepted and have nothing to read: records are sent as Fluent
Bit sends records of a plain input. No trace or profile signal exists in edgeship:
``traces_uri`` is accepted and unused. ``aws_auth`` signs with SigV4 (``edgeship.net.aws``);
OAuth2 is not available.
"""
from edgeship.codecs import cmetrics
from edgeship.core import accessor
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import ERROR, LOGS, METRICS, OK, RETRY
from edgeship.net.aws import AWS_AUTH_OPTIONS
from edgeship.net.http_client import HTTP_CLIENT_OPTIONS, address_options, gzip_body
from edgeship.plugins.outputs._http import USER_AGENT, HttpOutput

DEFAULT_BATCH_SIZE = 1000
_HTTP2_WORDS = ("on", "off", "true", "false", "yes", "no", "force")
# Fluent Bit's record metadata keys: accepted, nothing to read here (see the docstring).
_METADATA_KEYS = (
    ("logs_metadata_key", "otlp"),
    ("logs_observed_timestamp_metadata_key", "$ObservedTimestamp"),
    ("logs_timestamp_metadata_key", "$Timestamp"),
    ("logs_severity_text_metadata_key", "$SeverityText"),
    ("logs_severity_number_metadata_key", "$SeverityNumber"),
    ("logs_trace_flags_metadata_key", "$TraceFlags"),
    ("logs_span_id_metadata_key", "$SpanId"),
    ("logs_trace_id_metadata_key", "$TraceId"),
    ("logs_attributes_metadata_key", "$Attributes"),
    ("logs_instrumentation_scope_metadata_key", "InstrumentationScope"),
    ("logs_resource_metadata_key", "Resource"),
)
# Record keys the log record's fields come from.
_MESSAGE_KEYS = (
    ("logs_severity_text_message_key", "$SeverityText", "severity text"),
    ("logs_severity_number_message_key", "$SeverityNumber", "severity number (1-24)"),
    ("logs_trace_id_message_key", "$TraceId", "trace id (16 bytes or 32 hex digits)"),
    ("logs_span_id_message_key", "$SpanId", "span id (8 bytes or 16 hex digits)"),
)


def _uri(text):
    return text if text.startswith("/") else "/" + text


class OpenTelemetry(HttpOutput):
    name = "opentelemetry"
    description = "OpenTelemetry (OTLP/HTTP, protobuf)"
    signals = (LOGS, METRICS)
    options = address_options(80) + (
        Option("compress", choices=("gzip", "zstd"), help="body compression"),
        Option("logs_uri", default="/v1/logs", help="request path of the logs"),
        Option("metrics_uri", default="/v1/metrics", help="request path of the metrics"),
        Option("traces_uri", default="/v1/traces", compat=True),
        Option("profiles_uri", default="/v1development/profiles", compat=True),
        Option("grpc_logs_uri", default="/opentelemetry.proto.collector.logs.v1.LogsService"
               "/Export", compat=True),
        Option("grpc_metrics_uri", default="/opentelemetry.proto.collector.metrics.v1."
               "MetricsService/Export", compat=True),
        Option("grpc_traces_uri", default="/opentelemetry.proto.collector.trace.v1."
               "TraceService/Export", compat=True),
        Option("grpc_profiles_uri", default="/opentelemetry.proto.collector.profiles."
               "v1experimental.ProfilesService/Export", compat=True),
        Option("grpc", "bool", "off", help="OTLP over gRPC (not available in edgeship)"),
        Option("http2", default="off", choices=_HTTP2_WORDS,
               help="HTTP/2 (edgeship speaks HTTP/1.1: on and force warn)"),
        Option("add_label", multiple=True,
               help="'NAME VALUE' attribute added to every metric data point"),
        Option("batch_size", "int", str(DEFAULT_BATCH_SIZE),
               help="log records per request at most (0 or less: %d)" % DEFAULT_BATCH_SIZE),
        Option("logs_max_resources", "int", "0", min=0, compat=True),
        Option("logs_max_scopes", "int", "0", min=0, compat=True),
        Option("logs_body_key", multiple=True,
               help="record accessor of the log body, tried in order (default: $log, then "
                    "$message; none found: the whole record)"),
        Option("logs_body_key_attributes", "bool", "false",
               help="the record's other keys as attributes when a body key matched"),
        Option("log_response_payload", "bool", "true",
               help="log the server's answer body with its status"),
        Option("aws_service", default="logs", help="AWS service code signed with aws_auth"),
    ) + AWS_AUTH_OPTIONS + tuple(Option(name, default=default, compat=True) for name, default in _METADATA_KEYS) \
        + tuple(Option(name, default=default, help="record accessor of the log's " + what)
                for name, default, what in _MESSAGE_KEYS) \
        + tuple(o for o in HTTP_CLIENT_OPTIONS if o.name.lower() != "compress")

    def configure(self):
        conf = self.conf
        if conf["grpc"]:
            raise ConfigError("opentelemetry: grpc is not available in edgeship (no gRPC "
                              "client); send OTLP/HTTP instead (grpc off, the Collector's "
                              "port 4318)", key="grpc")
        try:    # imported here: a missing extra is a config error, not a traceback
            from edgeship.codecs import otlp
            if conf["compress"] == "zstd":
                import cramjam
                self.zstd = cramjam.zstd
        except ImportError as exc:
            raise ConfigError("opentelemetry needs the opentelemetry extra "
                              "(pip install 'edgeship[opentelemetry]'): %s" % exc)
        self.otlp = otlp
        if conf["http2"] in ("on", "true", "yes", "force"):
            self.log.warn("http2 %s: edgeship speaks HTTP/1.1 to the server", conf["http2"])
        self.configure_client()
        if conf["aws_auth"]:
            self.sign_with_aws(conf["aws_region"], conf["aws_service"], conf["aws_profile"],
                               conf["aws_role_arn"], conf["aws_external_id"],
                               conf["aws_sts_endpoint"])
        self.logs_uri = _uri(conf["logs_uri"])
        self.metrics_uri = _uri(conf["metrics_uri"])
        self.batch_size = conf["batch_size"] if conf["batch_size"] > 0 else DEFAULT_BATCH_SIZE
        self.labels = []
        for text in conf["add_label"]:
            parts = text.split()
            if len(parts) != 2:
                raise ConfigError("'add_label' expects a key and a value, e.g: 'add_label "
                                  "version 1.8.0'", key="add_label")
            self.labels.append((parts[0], parts[1]))
        body_keys = conf["logs_body_key"] or ["$log", "$message"]
        self.encoder = otlp.LogsEncoder(
            [self._accessor(text, "logs_body_key") for text in body_keys],
            conf["logs_body_key_attributes"],
            *[self._accessor(conf[name], name) for name, _, _ in _MESSAGE_KEYS])

    def gzip_wanted(self, compress):
        return compress == "gzip"     # zstd is the other choice the option takes

    def _accessor(self, text, key):
        try:
            found = accessor.accessor(text)
        except ValueError as exc:
            raise ConfigError("invalid record accessor '%s': %s" % (text, exc), key=key)
        if found is None:
            raise ConfigError("'%s' names no record key" % text, key=key)
        return found

    def judge(self, status):
        if 200 <= status <= 205:
            return OK
        return RETRY if status == 429 or status >= 500 else ERROR

    def report(self, result, response):
        label = self.client.label
        payload = response.body.decode("utf-8", "replace") \
            if self.conf["log_response_payload"] else ""
        if result == OK:
            # Fluent Bit shows a body of more than 2 bytes, right after the status.
            self.log.info("%s, HTTP status=%d%s", label, response.status,
                          payload if len(response.body) > 2 else "")
        elif payload:
            self.log.error("%s, HTTP status=%d\n%s", label, response.status, payload)
        else:
            self.log.error("%s, HTTP status=%d", label, response.status)

    async def _post(self, uri, body):
        headers = [("Content-Type", "application/x-protobuf")]
        if self.auth:
            headers.append(self.auth)
        headers.append(USER_AGENT)
        headers.extend(self.config_headers)
        if self.gzip:
            body = gzip_body(body)
            headers.append(("Content-Encoding", "gzip"))
        elif self.conf["compress"] == "zstd":
            body = bytes(self.zstd.compress(body))
            headers.append(("Content-Encoding", "zstd"))
        result, _ = await self.send("POST", uri, headers, body)
        return result

    async def flush(self, chunk):
        if chunk.signal == METRICS:
            return await self._flush_metrics(chunk)
        problems = set()
        bodies = self.encoder.requests(chunk.events(), self.batch_size, problems)
        if problems:
            self.log.warn("records of the chunk with an %s: left out of their log records",
                          " or ".join(sorted(problems)))
        refused = 0
        for body in bodies:
            result = await self._post(self.logs_uri, body)
            if result == RETRY:
                return RETRY
            if result == ERROR:     # what the server refused is dropped, the rest sent
                refused += 1
        return ERROR if bodies and refused == len(bodies) else OK

    async def _flush_metrics(self, chunk):
        try:
            contexts = cmetrics.decode(chunk.payload)
        except cmetrics.MetricsError as exc:
            self.log.error("Error decoding msgpack encoded context, dropped: %s", exc)
            return ERROR
        skipped = []
        body = self.otlp.metrics_request(contexts, self.labels, skipped)
        if skipped:
            self.log.warn("exponential histograms are not sent: %s", ", ".join(skipped))
        return await self._post(self.metrics_uri, body)


PLUGIN = OpenTelemetry
