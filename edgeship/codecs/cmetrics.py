"""Metrics as Fluent Bit carries them: cmetrics contexts (cmetrics 2.2.1, msgpack format 2).

A metrics chunk holds one or more contexts packed back to back; a context is the msgpack map
Fluent Bit's ``cmt_encode_msgpack_create`` writes, and edgeship keeps it as that very map (a
``dict`` in the encoder's key order), so decoding and packing it again gives the same bytes:

    {"meta": {"cmetrics": {}, "external": {}, "processing": {"static_labels": [[k, v]...]}},
     "metrics": [family...]}         counters, gauges, untyped, summaries, histograms
    family = {"meta": {"ver": 2, "type": T, "opts": {"ns", "ss", "name", "desc", "unit"},
                       "labels": [keys], ("buckets" | "quantiles": [float]),
                       ("aggregation_type": 2 for counters, 0 for histograms)},
              "values": [series...]}  the static series first, then by creation
    series = {"ts": ns, ("value": float | "histogram": {...} | "summary": {...}),
              ("labels": [values]), "hash": XXH3-64 of fqname + label values, 0 if static}

A histogram series holds cumulative bucket counts (one more than the bounds: the last is
+Inf), a float sum and a count; a summary series holds the IEEE-754 bit patterns of its
quantile values and of its sum, as cmetrics stores them.

``Context`` builds one (inputs), ``decode`` reads contexts with cmetrics' decoder rules (a
receiver of a forward frame), and the renderings are Fluent Bit's: ``render_text`` (the
stdout output, ``cmt_encode_text``), ``render_prometheus`` (prometheus_exporter and the
monitoring API), ``render_influx`` (the influxdb output).
"""
import struct
import time

import msgpack
import xxhash

from edgeship.codecs.msgpack import packb

COUNTER, GAUGE, HISTOGRAM, SUMMARY, UNTYPED, EXP_HISTOGRAM = range(6)
TYPE_NAMES = {COUNTER: "counter", GAUGE: "gauge", HISTOGRAM: "histogram",
              SUMMARY: "summary", UNTYPED: "untyped", EXP_HISTOGRAM: "histogram"}
# The order of families in a packed context, and in the text renderings (untyped last).
_PACKED_ORDER = (COUNTER, GAUGE, UNTYPED, SUMMARY, HISTOGRAM, EXP_HISTOGRAM)
_TEXT_ORDER = (COUNTER, GAUGE, SUMMARY, HISTOGRAM, EXP_HISTOGRAM, UNTYPED)
VERSION = 2
AGGREGATION_UNSPECIFIED, AGGREGATION_DELTA, AGGREGATION_CUMULATIVE = 0, 1, 2
VALUE_INT64, VALUE_UINT64 = 1, 2        # a series' value_type


class MetricsError(ValueError):
    """Bytes that are not a context cmetrics' decoder would take."""


# --------------------------------------------------------------------------- building
def double_bits(value):
    """A float as the uint64 of its IEEE-754 bits (how a summary stores its values)."""
    return struct.unpack("<Q", struct.pack("<d", value))[0]


def bits_double(bits):
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def fqname(opts):
    return "_".join([part for part in (opts["ns"], opts["ss"], opts["name"]) if part])


def _series_hash(name, label_values):
    digest = xxhash.xxh3_64()
    digest.update(name.encode())
    for value in label_values:
        digest.update(b"_NULL_" if value is None else value.encode())
    return digest.intdigest()


class Family:
    """One metric family of a ``Context``: set its series by label values."""

    def __init__(self, kind, ns, ss, name, desc, label_keys=(), unit="", bounds=None):
        meta = {"ver": VERSION, "type": kind,
                "opts": {"ns": ns, "ss": ss, "name": name, "desc": desc, "unit": unit},
                "labels": list(label_keys)}
        if kind == HISTOGRAM:
            meta["buckets"] = [float(b) for b in bounds]
        elif kind == SUMMARY:
            meta["quantiles"] = [float(q) for q in bounds]
        if kind == COUNTER:
            meta["aggregation_type"] = AGGREGATION_CUMULATIVE
        elif kind == HISTOGRAM:
            meta["aggregation_type"] = 0
        self.kind = kind
        self.name = fqname(meta["opts"])
        self.map = {"meta": meta, "values": []}
        self._series = {}

    def _at(self, labels, ts, start_ts=None):
        labels = tuple(labels)
        series = self._series.get(labels)
        if series is None:
            series = {"ts": 0}
            self._series[labels] = series
            if labels:
                self.map["values"].append(series)
            else:                                   # the static series comes first
                self.map["values"].insert(0, series)
        series["ts"] = time.time_ns() if ts is None else ts
        if start_ts:
            series["start_ts"] = start_ts
        return series, labels

    def _close(self, series, labels):
        # "labels" and "hash" end the map, whatever was set before.
        series.pop("labels", None)
        series.pop("hash", None)
        if labels:
            series["labels"] = list(labels)
            series["hash"] = _series_hash(self.name, labels)
        else:
            series["hash"] = 0

    def set(self, value, labels=(), ts=None, start_ts=None, int64=False):
        """A counter, gauge or untyped value; ``int64`` keeps an integer as cmetrics'
        int64 value type (an OTLP ``as_int``) beside its float."""
        series, labels = self._at(labels, ts, start_ts)
        series["value"] = float(value)
        if int64:
            series["value_type"] = VALUE_INT64
            series["value_int64"] = int(value)
        self._close(series, labels)

    def expire(self, before):
        """Drop the series last set before ``before`` (ns), as cmt_expire does: what an
        input did not see in its last pass (a process that ended)."""
        values = self.map["values"]
        if all(series["ts"] >= before for series in values):
            return
        self.map["values"] = [series for series in values if series["ts"] >= before]
        self._series = {labels: series for labels, series in self._series.items()
                        if series["ts"] >= before}

    def set_histogram(self, bucket_counts, total, count, labels=(), ts=None, start_ts=None):
        """Counts per bound then +Inf (cumulative, as inputs build them; an OTLP sender's
        as it sent them), the sum of observations, their count."""
        series, labels = self._at(labels, ts, start_ts)
        series["histogram"] = {"buckets": [int(c) for c in bucket_counts],
                               "sum": float(total), "count": int(count)}
        self._close(series, labels)

    def set_summary(self, quantile_values, total, count, labels=(), ts=None, start_ts=None):
        series, labels = self._at(labels, ts, start_ts)
        series["summary"] = {"quantiles_set": 1 if quantile_values else 0,
                             "quantiles": [double_bits(float(v)) for v in quantile_values],
                             "count": int(count), "sum": double_bits(float(total))}
        self._close(series, labels)

    def append(self, labels, ts, value=None, histogram=None):
        """A new series even when one has these labels, with hash 0: how cmetrics' remote
        write decoder adds each sample. ``histogram``: (bucket counts, sum, count)."""
        series = {"ts": ts}
        if histogram is None:
            series["value"] = float(value)
        else:
            buckets, total, count = histogram
            series["histogram"] = {"buckets": buckets, "sum": float(total), "count": count}
        if labels:
            series["labels"] = list(labels)
        series["hash"] = 0
        self.map["values"].append(series)


class Context:
    """A cmetrics context an input builds: ``family(...)`` then ``Family.set``; ``encode()``
    gives its bytes (None when no family has a series: Fluent Bit drops an empty context)."""

    def __init__(self, static_labels=()):
        self.families = []
        self.static_labels = [[k, v] for k, v in static_labels]

    def family(self, kind, ns, ss, name, desc, label_keys=(), unit="", bounds=None):
        family = Family(kind, ns, ss, name, desc, label_keys, unit, bounds)
        self.families.append(family)
        return family

    def counter(self, *args, **kw):
        return self.family(COUNTER, *args, **kw)

    def gauge(self, *args, **kw):
        return self.family(GAUGE, *args, **kw)

    def untyped(self, *args, **kw):
        return self.family(UNTYPED, *args, **kw)

    def expire(self, before):
        """cmt_expire: every family drops the series last set before ``before`` (ns)."""
        for family in self.families:
            family.expire(before)

    def to_map(self):
        ordered = [f.map for kind in _PACKED_ORDER for f in self.families if f.kind == kind]
        return {"meta": {"cmetrics": {}, "external": {},
                         "processing": {"static_labels": self.static_labels}},
                "metrics": ordered}

    def encode(self):
        if not any(f.map["values"] for f in self.families):
            return None
        return packb(self.to_map())


# --------------------------------------------------------------------------- decoding
_CONTEXT_KEYS = ("meta", "metrics")
_META_KEYS = ("cmetrics", "external", "processing")
_FAMILY_META_KEYS = ("ver", "type", "opts", "labels", "buckets", "quantiles",
                     "aggregation_type")
_OPTS_KEYS = ("ns", "ss", "name", "desc", "unit")
_SERIES_KEYS = ("ts", "start_ts", "value", "value_type", "value_int64", "value_uint64",
                "histogram", "summary", "exp_histogram", "labels", "hash")
_MAX_MAP = 10            # cmetrics refuses a bigger map (corrupt)
_MAX_ARRAY = 65535


def _check_map(obj, keys, what):
    if type(obj) is not dict:
        raise MetricsError("%s is not a map" % what)
    if len(obj) > _MAX_MAP and what != "metadata":
        raise MetricsError("%s has more than %d entries" % (what, _MAX_MAP))
    for key in obj:
        if key not in keys:
            raise MetricsError("unexpected key %r in %s" % (key, what))


def _check_array(obj, what):
    if type(obj) is not list:
        raise MetricsError("%s is not an array" % what)
    if len(obj) > _MAX_ARRAY:
        raise MetricsError("%s has more than %d entries" % (what, _MAX_ARRAY))


def _uint(value, what):
    if type(value) is not int or value < 0:
        raise MetricsError("%s is not an unsigned integer" % what)


def _text(value, what):
    if type(value) is not str or "\0" in value:
        raise MetricsError("%s is not a string" % what)


def _floats(values, what):
    _check_array(values, what)
    for value in values:
        if type(value) is not float:
            raise MetricsError("%s holds a value that is not a double" % what)


def _check_family(family):
    _check_map(family, ("meta", "values"), "metric")
    meta = family.get("meta")
    _check_map(meta, _FAMILY_META_KEYS, "metric meta")
    if meta.get("ver") != VERSION:
        raise MetricsError("version %r is not %d" % (meta.get("ver"), VERSION))
    kind = meta.get("type")
    if type(kind) is not int or not 0 <= kind <= EXP_HISTOGRAM:
        raise MetricsError("metric type %r is unknown" % (kind,))
    opts = meta.get("opts")
    _check_map(opts, _OPTS_KEYS, "metric opts")
    for key in _OPTS_KEYS:
        _text(opts.get(key), "opts." + key)
    labels = meta.get("labels", [])
    _check_array(labels, "label keys")
    for key in labels:
        _text(key, "label key")
    for key in ("buckets", "quantiles"):
        if key in meta:
            _floats(meta[key], key)
    if meta.get("aggregation_type", 0) not in (0, 1, 2):
        raise MetricsError("aggregation type %r is unknown" % (meta["aggregation_type"],))
    values = family.get("values", [])
    _check_array(values, "values")
    for series in values:
        _check_map(series, _SERIES_KEYS, "series")
        _uint(series.get("ts"), "ts")
        _uint(series.get("hash", 0), "hash")
        if "value" in series and type(series["value"]) is not float:
            raise MetricsError("value is not a double")
        for value in series.get("labels", []):
            if value is not None:
                _text(value, "label value")
        histogram = series.get("histogram")
        if histogram is not None:
            _check_map(histogram, ("buckets", "sum", "count"), "histogram")
            _check_array(histogram.get("buckets"), "histogram buckets")
            for count in histogram["buckets"]:
                _uint(count, "bucket count")
            if type(histogram.get("sum")) is not float:
                raise MetricsError("histogram sum is not a double")
            _uint(histogram.get("count"), "histogram count")
        summary = series.get("summary")
        if summary is not None:
            _check_map(summary, ("quantiles_set", "quantiles", "count", "sum"), "summary")
            _check_array(summary.get("quantiles"), "summary quantiles")
            for bits in summary["quantiles"] + [summary.get("count"), summary.get("sum"),
                                                summary.get("quantiles_set")]:
                _uint(bits, "summary field")


def check(context):
    """Raise MetricsError unless ``context`` is a map cmetrics' decoder takes."""
    _check_map(context, _CONTEXT_KEYS, "context")
    meta = context.get("meta", {})
    _check_map(meta, _META_KEYS, "metadata")
    metrics = context.get("metrics")
    _check_array(metrics, "metrics")
    for family in metrics:
        _check_family(family)


def decode(data, first_only=False):
    """The contexts packed in ``data``, each checked (MetricsError at the first bad one).
    ``first_only``: only the first, as Fluent Bit's in_forward and influxdb read a chunk."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, max_buffer_size=len(data) or 1)
    unpacker.feed(data)
    contexts = []
    try:
        for context in unpacker:
            check(context)
            contexts.append(context)
            if first_only:
                break
    except MetricsError:
        raise
    except Exception as exc:                       # malformed or cut msgpack
        raise MetricsError("invalid msgpack: %s" % exc)
    if not contexts:
        raise MetricsError("no context")
    return contexts


def is_empty(context):
    return not any(family["values"] for family in context["metrics"])


def add_static_labels(context, pairs):
    """Labels every series of ``context`` gets first (prometheus_exporter's add_label)."""
    static = context["meta"].setdefault("processing", {}).setdefault("static_labels", [])
    static.extend([[k, v] for k, v in pairs])


# --------------------------------------------------------------------------- renderings
def _families(contexts, order):
    for kind in order:
        for context in contexts:
            static = [tuple(p) for p in context["meta"].get("processing", {})
                      .get("static_labels", [])]
            for family in context["metrics"]:
                if family["meta"]["type"] == kind:
                    yield family, static


def _g17(value):
    return "%.17g" % value


def _bound(value):
    """How the Prometheus text writes an ``le``/``quantile``: ``%g`` when it reads back the
    same, else ``%.17g``, with ``.0`` when it has neither a point nor an exponent."""
    text = "%g" % value
    if float(text) != value:
        text = "%.17g" % value
    if "." not in text and "e" not in text and "inf" not in text and "nan" not in text:
        text += ".0"
    return text


def _escape_label(value):
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels_text(pairs):
    if not pairs:
        return ""
    return "{%s}" % ",".join(['%s="%s"' % (k, _escape_label(v)) for k, v in pairs])


def _series_pairs(family, series, static):
    """The labels a rendering writes: a label without value is left out, as every cmetrics
    encoder leaves it out."""
    return static + [(key, value) for key, value
                     in zip(family["meta"]["labels"], series.get("labels", []))
                     if value is not None]


def render_prometheus(contexts, add_timestamp=False):
    """Prometheus text format 0.0.4, as cmt_encode_prometheus writes it."""
    out = []
    for family, static in _families(contexts, _TEXT_ORDER):
        values = family["values"]
        if not values:
            continue
        meta = family["meta"]
        name = fqname(meta["opts"])
        desc = meta["opts"]["desc"]
        if desc == " ":
            out.append("# HELP %s\n" % name)
        else:
            out.append("# HELP %s %s\n" % (name, desc.replace("\\", "\\\\")
                                                .replace("\n", "\\n")))
        out.append("# TYPE %s %s\n" % (name, TYPE_NAMES[meta["type"]]))
        for series in values:
            pairs = _series_pairs(family, series, static)
            stamp = " %d" % (series["ts"] // 1000000) if add_timestamp else ""
            if "histogram" in series:
                histogram = series["histogram"]
                bounds = [_bound(b) for b in meta.get("buckets", [])] + ["+Inf"]
                for bound, count in zip(bounds, histogram["buckets"]):
                    out.append("%s_bucket%s %d%s\n" % (
                        name, _labels_text([("le", bound)] + pairs), count, stamp))
                out.append("%s_sum%s %s%s\n" % (name, _labels_text(pairs),
                                                _g17(histogram["sum"]), stamp))
                out.append("%s_count%s %d%s\n" % (name, _labels_text(pairs),
                                                  histogram["count"], stamp))
            elif "summary" in series:
                summary = series["summary"]
                if summary["quantiles_set"]:
                    for q, bits in zip(meta.get("quantiles", []), summary["quantiles"]):
                        out.append("%s%s %s%s\n" % (
                            name, _labels_text([("quantile", _bound(q))] + pairs),
                            _g17(bits_double(bits)), stamp))
                out.append("%s_sum%s %s%s\n" % (name, _labels_text(pairs),
                                                _g17(bits_double(summary["sum"])), stamp))
                out.append("%s_count%s %d%s\n" % (name, _labels_text(pairs),
                                                  summary["count"], stamp))
            else:
                out.append("%s%s %s%s\n" % (name, _labels_text(pairs),
                                            _g17(series.get("value", 0.0)), stamp))
    return "".join(out)


def _utc(ns):
    seconds, fraction = divmod(ns, 1000000000)
    return "%s.%09dZ" % (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)), fraction)


def render_text(contexts):
    """One line per series, as cmt_encode_text writes it (the stdout output)."""
    out = []
    for family, static in _families(contexts, _TEXT_ORDER):
        meta = family["meta"]
        name = fqname(meta["opts"])
        for series in family["values"]:
            pairs = _series_pairs(family, series, static)
            head = "%s %s%s = " % (_utc(series["ts"]), name, _labels_text(pairs))
            if "histogram" in series:
                histogram = series["histogram"]
                bounds = ["%g" % b for b in meta.get("buckets", [])] + ["+Inf"]
                buckets = ", ".join(["%s=%d" % (b, c)
                                     for b, c in zip(bounds, histogram["buckets"])])
                out.append("%s{ buckets = { %s }, sum=%s, count=%d }\n" % (
                    head, buckets, "%g" % histogram["sum"], histogram["count"]))
            elif "summary" in series:
                summary = series["summary"]
                quantiles = ", ".join(["%g=%g" % (q, bits_double(bits)) for q, bits
                                       in zip(meta.get("quantiles", []), summary["quantiles"])])
                out.append("%s{ quantiles = { %s }, sum=%g, count=%d }\n" % (
                    head, quantiles, bits_double(summary["sum"]), summary["count"]))
            else:
                out.append("%s%s\n" % (head, _g17(series.get("value", 0.0))))
    return "".join(out)


def _escape_influx(value):
    return (value.replace("\\", "\\\\").replace(" ", "\\ ").replace(",", "\\,")
            .replace("=", "\\="))


def render_influx(contexts):
    """Influx line protocol, as cmt_encode_influx writes it: the measurement is ns(_ss),
    labels are tags, the family's name part is the field, then the series' own time."""
    out = []
    for family, static in _families(contexts, _TEXT_ORDER):
        meta = family["meta"]
        opts = meta["opts"]
        measurement = opts["ns"] + ("_" + opts["ss"] if opts["ns"] and opts["ss"] else "")
        for series in family["values"]:
            tags = "".join([",%s=%s" % (_escape_influx(k), _escape_influx(v or ""))
                            for k, v in _series_pairs(family, series, static)])
            if "histogram" in series:
                histogram = series["histogram"]
                bounds = ["%g" % b for b in meta.get("buckets", [])] + ["+Inf"]
                fields = ",".join(["%s=%d" % (b, c)
                                   for b, c in zip(bounds, histogram["buckets"])])
                fields += ",sum=%s,count=%d" % (_g17(histogram["sum"]), histogram["count"])
            elif "summary" in series:
                summary = series["summary"]
                if not summary["quantiles_set"]:
                    continue
                fields = ",".join(["%g=%s" % (q, _g17(bits_double(bits))) for q, bits
                                   in zip(meta.get("quantiles", []), summary["quantiles"])])
                fields += ",sum=%s,count=%d" % (_g17(bits_double(summary["sum"])),
                                                summary["count"])
            else:
                fields = "%s=%s" % (_escape_influx(opts["name"]),
                                    _g17(series.get("value", 0.0)))
            out.append("%s%s %s %d\n" % (_escape_influx(measurement), tags, fields,
                                         series["ts"]))
    return "".join(out)
