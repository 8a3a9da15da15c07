"""opentelemetry input: OTLP/HTTP logs and metrics from OpenTelemetry SDKs and Collectors
(in_opentelemetry), on the http input's server (``_http_listener``); the messages are decoded
by ``codecs.otlp`` (the ``opentelemetry`` extra).

Kept from Fluent Bit 5.1.1 (records, metrics and answers checked on the real binary):
- Listens on 0.0.0.0:4318. ``POST /v1/logs``, ``/v1/metrics``, ``/v1/traces``; bodies in
  protobuf (``application/x-protobuf``, ``application/protobuf``) or OTLP/JSON
  (``application/json``, which must start with ``{``; a logs or traces body without
  Content-Type is read as JSON); gzip, zstd and snappy bodies (``Content-Encoding``).
- The tag is the input's ``Tag`` when set, else ``v1_logs`` / ``v1_metrics`` /
  ``v1_traces`` (``tag_from_uri``, on by default), else the instance name.
- Logs: one record per LogRecord. A ``kvlistValue`` body is the record; any other body is
  ``{"log": value}`` (``logs_body_key`` names that key, and then wraps a kvlist too). The
  time is the record's ``timeUnixNano``, else ``observedTimeUnixNano``, else the arrival
  time. Bytes stay bytes, an unset value is null; a record without body is ``{"log": null}``
  in protobuf and ``{}`` in JSON.
- Metrics: cmetrics contexts as cmetrics' OTLP decoder makes them, one per ScopeMetrics: a
  Sum is a counter (its temporality kept), a Gauge a gauge, Histogram and Summary take the
  bounds and quantiles of their first data point; data point attributes are labels (in
  order of first appearance; a label a point lacks has no value, and the renderings leave
  it out), ``as_int`` values stay integers, start times are kept.
- Traces with ``raw_traces on`` and a JSON body: the body's JSON object is one record, or
  ``{"trace": body}`` when it is not one, stamped with the arrival time.
- Answers: ``successful_response_code`` (201; 200 or 204) with no body; ``400 invalid
  request: deserialisation error`` for a body that does not decode, ``404 error: invalid
  endpoint``, ``400 error: invalid HTTP method``, ``400 error: invalid content-length``.

At-least-once for OTLP exporters: the success answer is sent only once the records or
metrics are confirmed (``HttpListener.deliver``); Fluent Bit answers once they are in its
in-memory chunk, so a crash loses what it acknowledged.

Differences (README "Where edgeship differs"): edgeship chunks carry no metadata, so the
resource, scope and per-record OTLP fields (attributes, severity, trace and span ids: Fluent
Bit's ``__internal__`` group and ``logs_metadata_key`` metadata) are not kept, and resource
attributes are not carried with metrics; traces are not carried (edgeship has no traces
signal): without ``raw_traces`` a traces request is answered ``501`` so the exporter reports
it instead of it being dropped behind a success; exponential histograms are left out with a
warning (a context with them is still delivered); a log record with a bytes body in JSON is
taken (Fluent Bit refuses the whole request); bodies nested deeper than 64 levels are
refused with 400. OTLP/gRPC needs HTTP/2, which edgeship's server does not speak: its paths
answer 404 and a warning says to use OTLP/HTTP (port 4318).
"""
from edgeship.codecs import untrusted
from edgeship.core import events as ev
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.net.http_server import Response
from edgeship.plugins.inputs._http_listener import (SUCCESS_CODE_OPTION, BadBody,
                                                    BodyTooLarge, HttpListener, error,
                                                    http_server_options)

DEFAULT_PORT = 4318
SIGNALS = {"/v1/logs": "logs", "/v1/metrics": "metrics", "/v1/traces": "traces"}
DESERIALISATION_ERROR = "invalid request: deserialisation error\n"
TRACES_UNSUPPORTED = error("error: edgeship does not carry traces (raw_traces on takes "
                           "OTLP/JSON traces as records)\n", 501)


def _mime(content_type):
    return content_type.split(";", 1)[0].strip().lower() if content_type else None


class OpenTelemetryInput(HttpListener):
    name = "opentelemetry"
    description = "OpenTelemetry"
    encodings = ("gzip", "zstd", "snappy")     # cramjam comes with the opentelemetry extra
    options = http_server_options(DEFAULT_PORT) + (
        Option("Tag_From_Uri", "bool", "true",
               help="tag records v1_logs, v1_metrics or v1_traces when Tag is not set"),
        SUCCESS_CODE_OPTION,
        Option("Logs_Body_Key", help="key of a log body that is not a kvlist (default: log)"),
        Option("Raw_Traces", "bool", "false",
               help="take OTLP/JSON traces as records, the body's object each"),
        Option("Logs_Metadata_Key", default="otlp", compat=True,
               help="edgeship records carry no metadata"),
        Option("Tag_Key", compat=True, help="unused, as in Fluent Bit"),
        Option("Profiles_Support", "bool", "false", compat=True,
               help="edgeship takes no profiles"),
        Option("Encode_Profiles_As_Log", "bool", "false", compat=True),
    )

    def configure(self):
        try:    # imported here: a missing extra is a config error, not a traceback
            from edgeship.codecs import otlp
        except ImportError as exc:
            raise ConfigError("opentelemetry needs the opentelemetry extra "
                              "(pip install 'edgeship[opentelemetry]'): %s" % exc)
        self.otlp = otlp
        self.configure_server()
        self.success = Response(self.configured_success_code(), ())
        self.body_key = self.conf["logs_body_key"] or None
        explicit = self.conf.get("tag")
        self.tags = {signal: explicit or ("v1_" + signal if self.conf["tag_from_uri"]
                                          else self.tag)
                     for signal in SIGNALS.values()}

    async def handle(self, request):
        if not request.path.startswith("/"):
            return self.refuse(request, "error: invalid request\n")
        signal = SIGNALS.get(request.path)
        if signal is None:
            if request.path.startswith("/opentelemetry.proto.collector."):
                self.log.warn_often("OTLP/gRPC request refused: edgeship speaks OTLP/HTTP "
                                    "(POST /v1/logs, /v1/metrics; port 4318)")
            return error("error: invalid endpoint\n", 404)
        if request.method != "POST":
            return self.refuse(request, "error: invalid HTTP method\n")
        if not request.body:
            return self.refuse(request, "error: invalid content-length\n")
        try:
            body = self.decoded_body(request)
        except BodyTooLarge:
            return error("error: payload too large\n", 413)
        except BadBody as exc:
            return self.refuse(request, DESERIALISATION_ERROR,
                               "cannot decompress the body: %s" % exc)
        mime = _mime(request.headers.get("content-type"))
        if mime is None and signal != "metrics":
            mime = "application/json"
        if mime == "application/json":
            if not body.lstrip().startswith(b"{"):
                return self.refuse(request, DESERIALISATION_ERROR, "Invalid JSON payload")
        elif mime not in ("application/x-protobuf", "application/protobuf"):
            return self.refuse(request, DESERIALISATION_ERROR,
                               "Unsupported content type %s" % mime)
        json = mime == "application/json"
        if signal == "traces":
            if not (json and self.conf["raw_traces"]):
                self.log.warn_often("traces request refused: edgeship carries logs and "
                                    "metrics (raw_traces on takes OTLP/JSON traces as "
                                    "records)")
                return TRACES_UNSUPPORTED
            await self.deliver({self.tags[signal]: [self._raw_trace(body)]}, len(body))
            return self.success
        try:
            message = self.otlp.parse_request(signal, body, json)
            if signal == "logs":
                events = self.otlp.log_events(message, self.body_key, ev.now_ns(), json)
            else:
                skipped = []
                payloads = self.otlp.metrics_contexts(message, skipped)
        except self.otlp.OtlpError as exc:
            return self.refuse(request, DESERIALISATION_ERROR, "%s: %s" % (signal, exc))
        if signal == "logs":
            if events:
                await self.deliver({self.tags[signal]: events}, len(body), stamped=True)
        else:
            if skipped:
                self.log.warn_often("left out %d exponential histograms (%s): edgeship "
                                    "does not carry them", len(skipped),
                                    ", ".join(skipped[:5]))
            if payloads:
                await self.deliver_metrics(self.tags[signal], b"".join(payloads))
        return self.success

    def _raw_trace(self, body):
        try:
            value = untrusted.loads(body)
        except ValueError:
            value = None
        if type(value) is dict:
            return value
        return {"trace": body.decode("utf-8", "replace")}


PLUGIN = OpenTelemetryInput
