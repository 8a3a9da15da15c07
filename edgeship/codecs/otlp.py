"""OTLP (OpenTelemetry protocol) bodies: log records and cmetrics contexts encoded as Fluent
Bit 5.1.1's opentelemetry output builds them (out_opentelemetry's logs encoder and cmetrics'
``cmt_encode_opentelemetry``), and decoded as its opentelemetry input reads them
(``parse_request``, ``log_events``, ``metrics_contexts``; rules in that input's docstring).
The messages are opentelemetry-proto's generated classes; this module is imported only by
the plugins that need it (its import costs RAM).

Logs (``LogsEncoder``): one ExportLogsServiceRequest per batch, one ResourceLogs with an
empty Resource and one ScopeLogs with an empty InstrumentationScope (what Fluent Bit sets for
records that did not come from an OTLP source). Each LogRecord:
- ``body``: the value of the first ``logs_body_key`` accessor found in the record (default
  ``$log`` then ``$message``), else the whole record as a KeyValueList;
- ``attributes``: with ``logs_body_key_attributes``, the other keys of the record when a body
  key matched;
- ``time_unix_nano``: the record's time; ``observed_time_unix_nano`` is left 0, as there;
- ``severity_text`` (a string), ``severity_number`` (an integer 1-24), ``trace_id`` (16
  bytes or 32 hex digits), ``span_id`` (8 bytes or 16 hex digits) from the record keys named
  by the ``logs_*_message_key`` options; a value of another form is left out (a trace or
  span id with a warning, once per batch).
Values map as Fluent Bit maps msgpack: str -> string, bool -> bool, int -> int (an
unsigned above 2^63-1 wraps, as its cast does), float -> double, None -> an empty AnyValue,
bytes -> bytes, list -> ArrayValue, dict -> KeyValueList.

Metrics (``metrics_request``): one ResourceMetrics per context (no Resource), one ScopeMetrics
(no scope), one Metric per family with series, in the context's order (counters, gauges,
untyped, summaries, histograms): name (the full name), description, unit; a counter is a Sum
(monotonic, its aggregation type as the temporality: cumulative for every edgeship input), a
gauge or untyped a Gauge, a summary a Summary (count, sum, quantiles when set), a histogram a
Histogram (count, sum, bucket counts as cmetrics holds them, i.e. cumulative, the explicit
bounds, its aggregation type as temporality: unspecified for cmetrics histograms). A data
point's attributes are the static labels (add_label) first, then the series' labels in the
family's key order (a label without value left out); its time is the series' time, its
start time the series' ``start_ts`` or 0; a value stored as int64/uint64 is ``as_int`` (a
uint64 above 2^63-1 ``as_double``), else ``as_double``.

Differences: a string with invalid UTF-8 is sent with U+FFFD in place of the bad bytes (Fluent
Bit sends the bytes, which an OTLP receiver refuses with the whole request); a string holding
NUL is sent whole (Fluent Bit cuts it there); a map key that is not a string is sent as its
text; a value of no msgpack type is sent as its text (Fluent Bit fails the whole chunk and
retries it forever). Exponential histograms are not encoded (no edgeship input makes them):
they are left out, named by the caller in a warning.
"""
import base64
import binascii

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import \
    ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (Gauge, Histogram, HistogramDataPoint,
                                                        Metric, NumberDataPoint,
                                                        ResourceMetrics, ScopeMetrics, Sum,
                                                        Summary, SummaryDataPoint)

from edgeship.codecs import cmetrics, untrusted
from edgeship.core.accessor import MISSING

_INT64_MAX = (1 << 63) - 1
_TWO_64 = 1 << 64


def _text(value):
    """A str a protobuf string field takes: bytes kept as surrogate escapes (invalid
    UTF-8 in a record) become U+FFFD."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _key(key):
    if isinstance(key, str):
        return _text(key)
    if isinstance(key, bytes):
        return key.decode("utf-8", "replace")
    return str(key)


def fill(target, value):
    """Set the AnyValue ``target`` to a record value (in place: building messages and then
    copying them into their parent costs four times as much)."""
    if isinstance(value, str):
        target.string_value = _text(value)
    elif isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value - _TWO_64 if value > _INT64_MAX else value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, dict):
        target.kvlist_value.SetInParent()
        fill_pairs(target.kvlist_value.values, value)
    elif isinstance(value, (list, tuple)):
        target.array_value.SetInParent()
        values = target.array_value.values
        for item in value:
            fill(values.add(), item)
    elif value is None:
        target.SetInParent()        # an empty AnyValue, as Fluent Bit's nil
    elif isinstance(value, (bytes, bytearray)):
        target.bytes_value = bytes(value)
    else:
        target.string_value = _text(str(value))


def fill_pairs(target, mapping):
    """Append a KeyValue to the repeated field ``target`` per item of ``mapping``."""
    for key, value in mapping.items():
        pair = target.add()
        pair.key = _key(key)
        fill(pair.value, value)


def _id(value, size):
    """``size`` bytes from bytes of that size or twice as many hex digits, else None."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value) if len(value) == size else None
    if isinstance(value, str) and len(value) == 2 * size:
        try:
            return binascii.unhexlify(value)
        except (binascii.Error, ValueError):
            return None
    return None


def _without(value, steps):
    """``value`` (a map or an array) without the item at ``steps``; where the path reaches a
    value that is no container, that value is the one left out (as an accessor reads it)."""
    step, rest = steps[0], steps[1:]
    if isinstance(value, dict) and step in value:
        copy = dict(value)
        if rest and isinstance(copy[step], (dict, list)):
            copy[step] = _without(copy[step], rest)
        else:
            del copy[step]
        return copy
    if isinstance(value, list) and isinstance(step, int) and step < len(value):
        copy = list(value)
        if rest and isinstance(copy[step], (dict, list)):
            copy[step] = _without(copy[step], rest)
        else:
            del copy[step]
        return copy
    return value


class LogsEncoder:
    """ExportLogsServiceRequest bodies of log events, with the output's key options.

    ``body_keys``: accessors tried in order for the body; ``body_key_attributes``: the other
    keys become attributes when one matched; ``severity_text``, ``severity_number``,
    ``trace_id``, ``span_id``: accessors of the record keys those fields come from."""

    def __init__(self, body_keys, body_key_attributes, severity_text, severity_number,
                 trace_id, span_id):
        self.body_keys = body_keys
        self.body_key_attributes = body_key_attributes
        self.severity_text = severity_text
        self.severity_number = severity_number
        self.trace_id = trace_id
        self.span_id = span_id

    def _body(self, target, record):
        """Fill the body AnyValue; the accessor that matched, or None (the whole record)."""
        for acc in self.body_keys:
            value = acc.lookup(record)
            if value is not MISSING:
                fill(target, value)
                return acc
        fill(target, record)
        return None

    def _rest(self, record, acc):
        """The record without the value ``acc`` found (copied along the path: records are
        shared with the other outputs)."""
        return _without(record, (acc.key,) + acc.path)

    def _log_record(self, log, time_ns, record, problems):
        log.time_unix_nano = time_ns
        matched = self._body(log.body, record)
        if self.body_key_attributes and matched is not None:
            fill_pairs(log.attributes, self._rest(record, matched))
        number = self.severity_number.lookup(record)
        if type(number) is int and 1 <= number <= 24:
            log.severity_number = number
        text = self.severity_text.lookup(record)
        if isinstance(text, str):
            log.severity_text = _text(text)
        for field, acc, size in (("trace_id", self.trace_id, 16), ("span_id", self.span_id, 8)):
            value = acc.lookup(record)
            if value is not MISSING:
                found = _id(value, size)
                if found is None:
                    problems.add("invalid " + field)
                else:
                    setattr(log, field, found)

    def requests(self, events, batch_size, problems):
        """Serialized ExportLogsServiceRequests of ``events`` (``(time_ns, record)``), at most
        ``batch_size`` records each; ``problems`` collects what was left out."""
        bodies = []
        for start in range(0, len(events), batch_size):
            request = ExportLogsServiceRequest()
            resource = request.resource_logs.add()
            resource.resource.SetInParent()
            scope = resource.scope_logs.add()
            scope.scope.SetInParent()
            logs = scope.log_records
            for time_ns, record in events[start:start + batch_size]:
                self._log_record(logs.add(), time_ns, record, problems)
            bodies.append(request.SerializeToString())
        return bodies


def _number_point(series, attributes):
    point = NumberDataPoint(attributes=attributes, time_unix_nano=series["ts"],
                            start_time_unix_nano=series.get("start_ts", 0))
    kind = series.get("value_type")
    if kind == cmetrics.VALUE_INT64 and "value_int64" in series:
        point.as_int = series["value_int64"]
    elif kind == cmetrics.VALUE_UINT64 and "value_uint64" in series:
        value = series["value_uint64"]
        if value <= _INT64_MAX:
            point.as_int = value
        else:
            point.as_double = float(value)
    else:
        point.as_double = series["value"]
    return point


def _metric(family, static, skipped):
    meta = family["meta"]
    kind = meta["type"]
    if kind == cmetrics.EXP_HISTOGRAM:
        skipped.append(cmetrics.fqname(meta["opts"]))
        return None
    opts = meta["opts"]
    metric = Metric(name=_text(cmetrics.fqname(opts)), description=_text(opts["desc"]),
                    unit=_text(opts["unit"]))
    keys = meta.get("labels", [])
    temporality = meta.get("aggregation_type", 0)
    points = []
    for series in family["values"]:
        attributes = [KeyValue(key=_text(k), value=AnyValue(string_value=_text(v)))
                      for k, v in static]
        attributes += [KeyValue(key=_text(k), value=AnyValue(string_value=_text(v)))
                       for k, v in zip(keys, series.get("labels", [])) if v is not None]
        if kind == cmetrics.HISTOGRAM:
            histogram = series["histogram"]
            points.append(HistogramDataPoint(
                attributes=attributes, time_unix_nano=series["ts"],
                start_time_unix_nano=series.get("start_ts", 0), count=histogram["count"],
                sum=histogram["sum"], bucket_counts=histogram["buckets"],
                explicit_bounds=meta.get("buckets", [])))
        elif kind == cmetrics.SUMMARY:
            summary = series["summary"]
            point = SummaryDataPoint(
                attributes=attributes, time_unix_nano=series["ts"],
                start_time_unix_nano=series.get("start_ts", 0), count=summary["count"],
                sum=cmetrics.bits_double(summary["sum"]))
            if summary["quantiles_set"]:
                for quantile, bits in zip(meta.get("quantiles", []), summary["quantiles"]):
                    point.quantile_values.add(quantile=quantile,
                                              value=cmetrics.bits_double(bits))
            points.append(point)
        else:
            points.append(_number_point(series, attributes))
    if kind == cmetrics.COUNTER:
        metric.sum.CopyFrom(Sum(data_points=points, aggregation_temporality=temporality,
                                is_monotonic=True))
    elif kind == cmetrics.HISTOGRAM:
        metric.histogram.CopyFrom(Histogram(data_points=points,
                                            aggregation_temporality=temporality))
    elif kind == cmetrics.SUMMARY:
        metric.summary.CopyFrom(Summary(data_points=points))
    else:
        metric.gauge.CopyFrom(Gauge(data_points=points))
    return metric


def metrics_request(contexts, labels, skipped):
    """The serialized ExportMetricsServiceRequest of cmetrics ``contexts``; ``labels``
    ([(name, value)], add_label) follow each context's static labels; the names of the
    families left out are appended to ``skipped``."""
    resources = []
    for context in contexts:
        static = [tuple(pair) for pair in context["meta"].get("processing", {})
                  .get("static_labels", [])] + list(labels)
        metrics = []
        for family in context["metrics"]:
            if family["values"]:
                metric = _metric(family, static, skipped)
                if metric is not None:
                    metrics.append(metric)
        resources.append(ResourceMetrics(scope_metrics=[ScopeMetrics(metrics=metrics)]))
    return ExportMetricsServiceRequest(resource_metrics=resources).SerializeToString()


# --------------------------------------------------------------------------- decoding
class OtlpError(ValueError):
    """A request body that is not the OTLP message its endpoint takes."""


def _hex_ids_to_base64(value):
    """OTLP/JSON writes trace and span ids as hex where protobuf's JSON mapping reads
    base64: convert them in place (an id that is not hex is an OtlpError, as there). The
    document is ``untrusted.loads``'s, nested at most 64 deep."""
    if type(value) is dict:
        for key, item in value.items():
            if key in _ID_KEYS and type(item) is str:
                try:
                    value[key] = base64.b64encode(binascii.unhexlify(item)).decode()
                except (binascii.Error, ValueError):
                    raise OtlpError("%s is not hex: %r" % (key, item[:40]))
            elif type(item) in (dict, list):
                _hex_ids_to_base64(item)
    elif type(value) is list:
        for item in value:
            if type(item) in (dict, list):
                _hex_ids_to_base64(item)


_ID_KEYS = frozenset(("traceId", "spanId", "trace_id", "span_id"))
_REQUESTS = {"logs": ExportLogsServiceRequest, "metrics": ExportMetricsServiceRequest}


def parse_request(signal, body, json):
    """The Export{Logs,Metrics}ServiceRequest of an OTLP/HTTP body, protobuf or (``json``)
    OTLP/JSON; OtlpError when it is not one."""
    request = _REQUESTS[signal]()
    try:
        if json:
            document = untrusted.loads(body)
            if type(document) is not dict:
                raise OtlpError("not a JSON object")
            _hex_ids_to_base64(document)
            json_format.ParseDict(document, request, ignore_unknown_fields=True)
        else:
            request.ParseFromString(body)
    except OtlpError:
        raise
    except (DecodeError, json_format.ParseError, ValueError, TypeError,
            RecursionError) as exc:     # ValueError: untrusted's not JSON or too deep
        raise OtlpError(str(exc) or type(exc).__name__)
    return request


def value_of(any_value):
    """A record value from an AnyValue, as Fluent Bit packs one (unset: None). Nesting is
    bounded before: protobuf's decoder refuses messages nested over 100 deep (two per
    value level), ``untrusted.loads`` JSON over 64."""
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "kvlist_value":
        return {pair.key: value_of(pair.value) for pair in any_value.kvlist_value.values}
    if kind == "array_value":
        return [value_of(item) for item in any_value.array_value.values]
    if kind == "string_value_strindex":     # profiles only
        return None
    return getattr(any_value, kind)


def log_events(request, body_key, now_ns, unset_body_empty):
    """[(time ns, record)] of every LogRecord, as in_opentelemetry makes them: a kvlist body
    is the record (without ``body_key``), any other body ``{body_key or "log": value}``; the
    time is the record's, else its observed time, else ``now_ns``. A record without body is
    ``{}`` with ``unset_body_empty`` (Fluent Bit's JSON path), else ``{"log": None}``."""
    key = body_key or "log"
    events = []
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for log in scope_logs.log_records:
                if not log.HasField("body"):
                    record = {} if unset_body_empty else {key: None}
                elif body_key is None and log.body.WhichOneof("value") == "kvlist_value":
                    record = value_of(log.body)
                else:
                    record = {key: value_of(log.body)}
                events.append((log.time_unix_nano or log.observed_time_unix_nano or now_ns,
                               record))
    return events


def _label_text(any_value):
    """A data point attribute as a label value, as cmetrics' decoder writes it."""
    kind = any_value.WhichOneof("value")
    if kind == "string_value":
        return any_value.string_value
    if kind == "bytes_value":
        return any_value.bytes_value.decode("utf-8", "replace")
    if kind == "bool_value":
        return "1" if any_value.bool_value else "0"
    if kind == "int_value":
        return str(any_value.int_value)
    if kind == "double_value":
        return "%.17g" % any_value.double_value
    return None


_TEMPORALITY = {1: cmetrics.AGGREGATION_DELTA, 2: cmetrics.AGGREGATION_CUMULATIVE}


def _family(context, metric, kind, points, bounds=None):
    keys = []
    for point in points:
        for pair in point.attributes:
            if not pair.key:
                raise OtlpError("a data point attribute of %s has no key" % metric.name)
            if pair.key not in keys:
                keys.append(pair.key)
    family = context.family(kind, "", "", metric.name, metric.description or "-", keys,
                            metric.unit, bounds)
    return family, keys


def _labels(point, keys):
    if not point.attributes:
        return ()
    given = {pair.key: _label_text(pair.value) for pair in point.attributes}
    return [given.get(key) for key in keys]


def _add_metric(context, metric):
    """The family of one OTLP metric, as cmetrics' decoder makes it: a sum is a counter
    (its temporality kept), a gauge a gauge, a histogram and a summary take their bounds
    and quantiles from their first data point. Returns the name of a metric left out
    (exponential histograms), else None."""
    kind = metric.WhichOneof("data")
    if kind in ("sum", "gauge"):
        points = getattr(metric, kind).data_points
        family, keys = _family(context, metric, cmetrics.COUNTER if kind == "sum"
                               else cmetrics.GAUGE, points)
        if kind == "sum":
            family.map["meta"]["aggregation_type"] = _TEMPORALITY.get(
                metric.sum.aggregation_temporality, cmetrics.AGGREGATION_UNSPECIFIED)
        for point in points:
            which = point.WhichOneof("value")
            if which is None:
                raise OtlpError("a data point of %s has no value" % metric.name)
            value = getattr(point, which)
            if which == "as_int" and kind == "sum" and metric.sum.is_monotonic and value < 0:
                value, which = 0.0, "as_double"     # a monotonic counter never goes below 0
            family.set(value, _labels(point, keys), point.time_unix_nano,
                       point.start_time_unix_nano, int64=which == "as_int")
    elif kind == "histogram":
        points = metric.histogram.data_points
        bounds = list(points[0].explicit_bounds) if points else []
        family, keys = _family(context, metric, cmetrics.HISTOGRAM, points, bounds)
        family.map["meta"]["aggregation_type"] = _TEMPORALITY.get(
            metric.histogram.aggregation_temporality, cmetrics.AGGREGATION_UNSPECIFIED)
        for point in points:
            counts = list(point.bucket_counts)
            if len(counts) > len(bounds) + 1:
                raise OtlpError("%s: more bucket counts than bounds" % metric.name)
            counts += [0] * (len(bounds) + 1 - len(counts))
            family.set_histogram(counts, point.sum, point.count, _labels(point, keys),
                                 point.time_unix_nano, point.start_time_unix_nano)
    elif kind == "summary":
        points = metric.summary.data_points
        quantiles = [q.quantile for q in points[0].quantile_values] if points else []
        family, keys = _family(context, metric, cmetrics.SUMMARY, points, quantiles)
        for point in points:
            values = [q.value for q in point.quantile_values][:len(quantiles)]
            values += [0.0] * (len(quantiles) - len(values))
            family.set_summary(values, point.sum, point.count, _labels(point, keys),
                               point.time_unix_nano, point.start_time_unix_nano)
    elif kind is None:
        raise OtlpError("metric %s has no data" % metric.name)
    else:
        return metric.name
    return None


def metrics_contexts(request, skipped):
    """The encoded cmetrics contexts of an ExportMetricsServiceRequest, one per ScopeMetrics
    with series; the names of the metrics left out are appended to ``skipped``."""
    payloads = []
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            context = cmetrics.Context()
            for metric in scope_metrics.metrics:
                left_out = _add_metric(context, metric)
                if left_out is not None:
                    skipped.append(left_out)
            payload = context.encode()
            if payload is not None:
                payloads.append(payload)
    return payloads
