"""Prometheus text exposition to a cmetrics context, as Fluent Bit's decoder
(cmt_decode_prometheus) builds it, for the inputs that read that text (prometheus_scrape,
prometheus_textfile).

The text is parsed by prometheus_client's parser (the ``prometheus_scrape`` extra). A
family's name is split at its first two ``_`` into namespace, subsystem and name
(``demo_requests_total``: demo, requests, total); counters, gauges, untyped, summaries
(quantiles) and histograms (bounds without +Inf, cumulative counts) keep their label keys in
the order of the first sample; a family without HELP has the description " ".
"""
from edgeship.codecs import cmetrics
from edgeship.core.errors import ConfigError

_KINDS = {"counter": cmetrics.COUNTER, "gauge": cmetrics.GAUGE, "unknown": cmetrics.UNTYPED,
          "untyped": cmetrics.UNTYPED, "summary": cmetrics.SUMMARY,
          "histogram": cmetrics.HISTOGRAM}


def _split_name(name):
    parts = name.split("_", 2)
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return parts[0], "", parts[1]
    return "", "", name


def require_parser(plugin):
    """Checked at configure time: a missing extra is a config error, not a traceback."""
    try:
        import prometheus_client.parser  # noqa: F401
    except ImportError as exc:
        raise ConfigError("%s needs the prometheus_scrape extra (pip install "
                          "'edgeship[prometheus_scrape]'): %s" % (plugin, exc))


def decode(text, now_ns):
    """The cmetrics Context of a Prometheus text exposition, every series stamped
    ``now_ns`` (ValueError when it does not parse)."""
    from prometheus_client.parser import text_string_to_metric_families
    ctx = cmetrics.Context()
    for family in text_string_to_metric_families(text):
        kind = _KINDS.get(family.type)
        if kind is None or not family.samples:
            continue
        desc = family.documentation or " "
        if kind in (cmetrics.COUNTER, cmetrics.GAUGE, cmetrics.UNTYPED):
            # The sample's own name (a counter's family name lost its _total).
            ns, ss, name = _split_name(family.samples[0].name)
            keys = list(family.samples[0].labels)
            target = ctx.family(kind, ns, ss, name, desc, keys)
            for sample in family.samples:
                target.set(sample.value, [sample.labels.get(k, "") for k in keys], now_ns)
        elif kind == cmetrics.HISTOGRAM:
            _histogram(ctx, family, desc, now_ns)
        else:
            _summary(ctx, family, desc, now_ns)
    return ctx


def _grouped(family, special):
    """Series of a histogram/summary: {label values: {"parts": ..., "sum", "count"}}, with
    the label keys (without ``special``) of the first sample."""
    keys = [k for k in family.samples[0].labels if k != special]
    series = {}
    for sample in family.samples:
        values = tuple(sample.labels.get(k, "") for k in keys)
        entry = series.setdefault(values, {"parts": [], "sum": 0.0, "count": 0})
        if sample.name.endswith("_sum"):
            entry["sum"] = sample.value
        elif sample.name.endswith("_count"):
            entry["count"] = sample.value
        elif special in sample.labels:
            entry["parts"].append((sample.labels[special], sample.value))
    return keys, series


def _histogram(ctx, family, desc, now_ns):
    keys, series = _grouped(family, "le")
    first = next(iter(series.values()))
    bounds = [float(le) for le, _ in first["parts"] if le != "+Inf"]
    ns, ss, name = _split_name(family.name)
    target = ctx.family(cmetrics.HISTOGRAM, ns, ss, name, desc, keys, bounds=bounds)
    for values, entry in series.items():
        counts = [count for _, count in entry["parts"]]
        target.set_histogram(counts, entry["sum"], entry["count"], list(values), now_ns)


def _summary(ctx, family, desc, now_ns):
    keys, series = _grouped(family, "quantile")
    first = next(iter(series.values()))
    quantiles = [float(q) for q, _ in first["parts"]]
    ns, ss, name = _split_name(family.name)
    target = ctx.family(cmetrics.SUMMARY, ns, ss, name, desc, keys, bounds=quantiles)
    for values, entry in series.items():
        target.set_summary([v for _, v in entry["parts"]], entry["sum"], entry["count"],
                           list(values), now_ns)
