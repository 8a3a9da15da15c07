"""Prometheus remote write 1.0 (``WriteRequest`` protobuf) of cmetrics contexts, as
cmetrics' prometheus_remote_write encoder builds it (Fluent Bit 5.1.1).

The messages (Prometheus' remote.proto/types.proto: WriteRequest, TimeSeries, Label, Sample)
are declared here as a descriptor, so the protobuf library encodes them without generated
code or protoc; the body is then raw snappy (cramjam) or gzip.

Kept: one TimeSeries per series with one Sample (value, time in ms); labels ``__name__``
first, then the static labels (``add_label``, in order), then the series' labels in its
family's key order; series by type as the context holds them (counters, gauges, untyped,
summaries, histograms); a summary as ``_count``, ``_sum`` then one series per quantile
(``quantile`` as ``%.17g``), a histogram as ``_count``, ``_sum`` then ``_bucket`` per bound
and ``+Inf`` (``le`` as ``%.17g``); series whose time is over an hour old are left out; no
metadata; the WriteRequests of several contexts are concatenated (a valid protobuf merge).
"""
from edgeship.codecs import cmetrics

_HOUR_NS = 3600 * 1000000000


def _message_classes():
    """WriteRequest's class, built once from a descriptor."""
    from google.protobuf import descriptor_pb2, descriptor_pool
    try:
        from google.protobuf.message_factory import GetMessageClass
    except ImportError:             # protobuf before 4.21
        from google.protobuf.message_factory import MessageFactory
        GetMessageClass = MessageFactory().GetPrototype
    f = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="edgeship/remote_write.proto",
                                               package="prometheus", syntax="proto3")

    def message(name, fields):
        msg = proto.message_type.add(name=name)
        for number, (field, kind, label, type_name) in enumerate(fields, 1):
            msg.field.add(name=field, number=number, type=kind, label=label,
                          type_name=type_name)

    optional, repeated = f.LABEL_OPTIONAL, f.LABEL_REPEATED
    message("Label", [("name", f.TYPE_STRING, optional, None),
                      ("value", f.TYPE_STRING, optional, None)])
    message("Sample", [("value", f.TYPE_DOUBLE, optional, None),
                       ("timestamp", f.TYPE_INT64, optional, None)])
    message("TimeSeries", [("labels", f.TYPE_MESSAGE, repeated, ".prometheus.Label"),
                           ("samples", f.TYPE_MESSAGE, repeated, ".prometheus.Sample")])
    message("WriteRequest", [("timeseries", f.TYPE_MESSAGE, repeated,
                              ".prometheus.TimeSeries")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return GetMessageClass(pool.FindMessageTypeByName("prometheus.WriteRequest"))


_WRITE_REQUEST = []


def _write_request_class():
    if not _WRITE_REQUEST:
        _WRITE_REQUEST.append(_message_classes())
    return _WRITE_REQUEST[0]


def _samples(family, series, static):
    """``(name suffix, extra label pairs, value)`` of one series, in cmetrics' order."""
    pairs = static + list(zip(family["meta"]["labels"], series.get("labels", [])))
    if "histogram" in series:
        histogram = series["histogram"]
        out = [("_count", pairs, float(histogram["count"])),
               ("_sum", pairs, histogram["sum"])]
        bounds = ["%.17g" % b for b in family["meta"].get("buckets", [])] + ["+Inf"]
        out += [("_bucket", pairs + [("le", bound)], float(count))
                for bound, count in zip(bounds, histogram["buckets"])]
        return out
    if "summary" in series:
        summary = series["summary"]
        out = [("_count", pairs, float(summary["count"])),
               ("_sum", pairs, cmetrics.bits_double(summary["sum"]))]
        if summary["quantiles_set"]:
            out += [("", pairs + [("quantile", "%.17g" % q)], cmetrics.bits_double(bits))
                    for q, bits in zip(family["meta"].get("quantiles", []),
                                       summary["quantiles"])]
        return out
    return [("", pairs, series.get("value", 0.0))]


def encode(contexts, static_labels, now_ns):
    """The serialized WriteRequest(s) of ``contexts`` (bytes, not compressed)."""
    write_request = _write_request_class()
    parts = []
    for context in contexts:
        request = write_request()
        static = [tuple(p) for p in context["meta"].get("processing", {})
                  .get("static_labels", [])] + list(static_labels)
        for family in context["metrics"]:
            name = cmetrics.fqname(family["meta"]["opts"])
            for series in family["values"]:
                if now_ns - series["ts"] > _HOUR_NS:
                    continue
                for suffix, pairs, value in _samples(family, series, static):
                    ts = request.timeseries.add()
                    ts.labels.add(name="__name__", value=name + suffix)
                    for key, label in pairs:
                        ts.labels.add(name=key, value=label if label is not None else "")
                    ts.samples.add(value=value, timestamp=series["ts"] // 1000000)
        parts.append(request.SerializeToString())
    return b"".join(parts)


def decode(data):
    """A WriteRequest's series as ``[(labels pairs, [(value, ms)])]`` (tests, tools)."""
    request = _write_request_class()()
    request.ParseFromString(data)
    return [([(l.name, l.value) for l in ts.labels],
             [(s.value, s.timestamp) for s in ts.samples]) for ts in request.timeseries]
