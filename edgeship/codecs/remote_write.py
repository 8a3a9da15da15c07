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
from edgeship.codecs.msgpack import RAW_BYTES

_HOUR_NS = 3600 * 1000000000


def _utf8(text):
    """A label's bytes by the packer's rule (raw bytes an input kept go out as they were)."""
    return text.encode("utf-8", RAW_BYTES)


def _message_classes():
    """WriteRequest's class, built once from a descriptor: Prometheus' remote write 1.0
    messages as cmetrics declares them; their strings are declared as bytes (the same on the
    wire), so a sender's invalid UTF-8 is ours to judge (protobuf-c never checks it)."""
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
        """``fields``: (name, number, type, repeated, message type or oneof name)."""
        msg = proto.message_type.add(name=name)
        oneofs = []
        for field, number, kind, repeated, extra in fields:
            entry = msg.field.add(name=field, number=number, type=kind,
                                  label=f.LABEL_REPEATED if repeated else f.LABEL_OPTIONAL)
            if kind == f.TYPE_MESSAGE:
                entry.type_name = ".prometheus." + extra
            elif extra:
                if extra not in oneofs:
                    oneofs.append(extra)
                    msg.oneof_decl.add(name=extra)
                entry.oneof_index = oneofs.index(extra)

    one, many = False, True
    message("Label", [("name", 1, f.TYPE_BYTES, one, None),
                      ("value", 2, f.TYPE_BYTES, one, None)])
    message("Sample", [("value", 1, f.TYPE_DOUBLE, one, None),
                       ("timestamp", 2, f.TYPE_INT64, one, None)])
    message("Exemplar", [("labels", 1, f.TYPE_MESSAGE, many, "Label"),
                         ("value", 2, f.TYPE_DOUBLE, one, None),
                         ("timestamp", 3, f.TYPE_INT64, one, None)])
    message("BucketSpan", [("offset", 1, f.TYPE_SINT32, one, None),
                           ("length", 2, f.TYPE_UINT32, one, None)])
    message("Histogram", [
        ("count_int", 1, f.TYPE_UINT64, one, "count"),
        ("count_float", 2, f.TYPE_DOUBLE, one, "count"),
        ("sum", 3, f.TYPE_DOUBLE, one, None),
        ("schema", 4, f.TYPE_SINT32, one, None),
        ("zero_threshold", 5, f.TYPE_DOUBLE, one, None),
        ("zero_count_int", 6, f.TYPE_UINT64, one, "zero_count"),
        ("zero_count_float", 7, f.TYPE_DOUBLE, one, "zero_count"),
        ("negative_spans", 8, f.TYPE_MESSAGE, many, "BucketSpan"),
        ("negative_deltas", 9, f.TYPE_SINT64, many, None),
        ("negative_counts", 10, f.TYPE_DOUBLE, many, None),
        ("positive_spans", 11, f.TYPE_MESSAGE, many, "BucketSpan"),
        ("positive_deltas", 12, f.TYPE_SINT64, many, None),
        ("positive_counts", 13, f.TYPE_DOUBLE, many, None),
        ("reset_hint", 14, f.TYPE_INT32, one, None),     # an enum on the wire
        ("timestamp", 15, f.TYPE_INT64, one, None)])
    message("TimeSeries", [("labels", 1, f.TYPE_MESSAGE, many, "Label"),
                           ("samples", 2, f.TYPE_MESSAGE, many, "Sample"),
                           ("exemplars", 3, f.TYPE_MESSAGE, many, "Exemplar"),
                           ("histograms", 4, f.TYPE_MESSAGE, many, "Histogram")])
    message("MetricMetadata", [("type", 1, f.TYPE_INT32, one, None),    # an enum
                               ("metric_family_name", 2, f.TYPE_BYTES, one, None),
                               ("help", 4, f.TYPE_BYTES, one, None),
                               ("unit", 5, f.TYPE_BYTES, one, None)])
    message("WriteRequest", [("timeseries", 1, f.TYPE_MESSAGE, many, "TimeSeries"),
                             ("metadata", 3, f.TYPE_MESSAGE, many, "MetricMetadata")])
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
                    ts.labels.add(name=b"__name__", value=_utf8(name + suffix))
                    for key, label in pairs:
                        ts.labels.add(name=_utf8(key),
                                      value=_utf8(label) if label is not None else b"")
                    ts.samples.add(value=value, timestamp=series["ts"] // 1000000)
        parts.append(request.SerializeToString())
    return b"".join(parts)


def decode(data):
    """A WriteRequest's series as ``[(labels pairs, [(value, ms)])]`` (tests, tools)."""
    request = _write_request_class()()
    request.ParseFromString(data)
    return [([(l.name.decode(), l.value.decode()) for l in ts.labels],
             [(s.value, s.timestamp) for s in ts.samples]) for ts in request.timeseries]


# --------------------------------------------------------------------------- decoding
class RemoteWriteError(ValueError):
    """A body that is not a WriteRequest."""


# MetricMetadata.type -> the cmetrics type cmetrics' decoder makes of it (none for the rest)
_KINDS = {0: cmetrics.UNTYPED, 1: cmetrics.COUNTER, 2: cmetrics.GAUGE, 3: cmetrics.HISTOGRAM}
_TYPE_NAMES = {4: "gaugehistogram", 5: "summary", 6: "info", 7: "stateset"}
_MAX_ARRAY = 65535         # the most entries cmetrics' msgpack decoder reads in an array
_U64 = (1 << 64) - 1


def _cstr(data):
    """protobuf-c's C string of bytes: up to the first NUL; invalid UTF-8 as U+FFFD."""
    end = data.find(b"\0")
    return (data if end < 0 else data[:end]).decode("utf-8", "replace")


def _count(value):
    """A double stored into cmetrics' uint64 bucket or count (C's truncation)."""
    return int(value) if 0 <= value < 18446744073709551616.0 else 0


def _labels(ts):
    """(keys, values) of a series as cmetrics' decoder maps them: every label (``__name__``
    too) a key in first-seen order, a repeated name keeping its last value; None when a
    label has no name."""
    found = {}
    for label in ts.labels:
        name = _cstr(label.name)
        if not name:
            return None
        found[name] = _cstr(label.value)
    return list(found), list(found.values())


def _bounds(point):
    """A native histogram's bucket bounds as cmetrics makes them: the bucket indexes its
    spans cover (the negative side when it has spans), no more than it has counts."""
    spans, counts = ((point.negative_spans, point.negative_counts) if point.negative_spans
                     else (point.positive_spans, point.positive_counts))
    bounds = []
    index = 0
    for span in spans:
        index += span.offset
        for _ in range(span.length):
            if len(bounds) >= len(counts):
                break
            bounds.append(float(index))
            index += 1
    return bounds


def _fill(family, kind, ts, values):
    """Add the series' samples (or histogram points) to ``family``; a reason when cmetrics
    would drop the family."""
    if len(values) > _MAX_ARRAY:
        return "more than %d labels" % _MAX_ARRAY
    if kind != cmetrics.HISTOGRAM:
        if len(ts.samples) > _MAX_ARRAY:
            return "more than %d samples" % _MAX_ARRAY
        for sample in ts.samples:
            family.append(values, (sample.timestamp * 1000000) & _U64, value=sample.value)
        return None
    size = len(family.map["meta"]["buckets"])
    for point in ts.histograms:
        counts = (point.negative_counts if point.negative_spans
                  else point.positive_counts if point.positive_spans else None)
        which = point.WhichOneof("count")
        if counts is None or which is None:
            return "a histogram point without %s" % ("spans" if counts is None else "count")
        buckets = [_count(c) for c in counts[:size]]
        buckets += [0] * (size + 1 - len(buckets))       # +Inf stays 0, as in cmetrics
        family.append(values, (point.timestamp * 1000000) & _U64,
                      histogram=(buckets, point.sum,
                                 _count(getattr(point, which))))
    return None


def to_contexts(data):
    """The cmetrics contexts of a serialized WriteRequest, as cmetrics' remote write decoder
    makes them (Fluent Bit's in_prometheus_remote_write), and the series left out:
    ``(contexts, [(name, reason)])``. RemoteWriteError when ``data`` does not parse.

    Every TimeSeries is a family of its own named by its ``__name__`` label (a series
    without one is left out silently): its type is a histogram when it carries native
    histograms, else the one its metadata (a ``metric_family_name`` of the same request)
    gives, gauge without; HELP is the metadata's, ``-`` without. Its label keys are all its
    labels, ``__name__`` included, and each sample is a series of its own (time ms -> ns),
    hash 0. Families that cmetrics refuses are left out with a reason: a label without a
    name, no name or no HELP text, a summary/info/stateset/gaugehistogram type, a native
    histogram point without spans or count. A context holds at most 65535 families (what
    cmetrics' decoder reads back); more make several contexts."""
    request = _write_request_class()()
    try:
        request.ParseFromString(data)
    except Exception as exc:        # google.protobuf.message.DecodeError and kin
        raise RemoteWriteError("not a WriteRequest: %s" % exc)
    metadata = {}
    for entry in request.metadata:
        metadata.setdefault(_cstr(entry.metric_family_name), entry)
    contexts = [cmetrics.Context()]
    skipped = []
    for ts in request.timeseries:
        name = None
        for label in ts.labels:
            if _cstr(label.name)[:8] == "__name__":
                name = _cstr(label.value)
                break
        if name is None:
            continue
        entry = metadata.get(name)
        desc = _cstr(entry.help) if entry is not None else "-"
        if ts.histograms:
            kind = cmetrics.HISTOGRAM
        else:
            kind = _KINDS.get(entry.type) if entry is not None else cmetrics.GAUGE
        if kind is None:
            skipped.append((name, "type %s is not supported"
                            % _TYPE_NAMES.get(entry.type, entry.type)))
            continue
        if not name or not desc:
            skipped.append((name, "no name" if not name else "no HELP text"))
            continue
        labels = _labels(ts) if ts.samples or ts.histograms else ([], [])
        if labels is None:
            skipped.append((name, "a label without a name"))
            continue
        bounds = _bounds(ts.histograms[0]) if kind == cmetrics.HISTOGRAM else None
        if bounds == []:
            skipped.append((name, "a histogram without buckets"))
            continue
        context = contexts[-1]
        if len(context.families) >= _MAX_ARRAY:
            context = cmetrics.Context()
            contexts.append(context)
        family = context.family(kind, "", "", name, desc, labels[0], bounds=bounds)
        reason = _fill(family, kind, ts, labels[1])
        if reason is not None:
            context.families.pop()
            skipped.append((name, reason))
    return contexts, skipped
