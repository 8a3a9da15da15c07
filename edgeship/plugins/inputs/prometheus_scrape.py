"""prometheus_scrape input: scrapes an exporter's /metrics and emits what it serves as a
metrics signal (in_prometheus_scrape).

Every ``scrape_interval`` (default 10 s; the first scrape at start) one ``GET
<metrics_path>`` on ``host:port`` (TLS, basic auth or a bearer token as options say); a 200
answer is parsed by prometheus_client's text-format parser (the ``prometheus_scrape`` extra)
and becomes one cmetrics context, as Fluent Bit's decoder builds it: a family's name split at
its first two ``_`` into namespace, subsystem and name (``demo_requests_total``: demo,
requests, total); counters, gauges, untyped, summaries (quantiles) and histograms (bounds
without +Inf, cumulative counts) with their label keys in the order of the first sample; a
family without HELP has the description " "; every series stamped with the scrape's time.
Another status, a body over ``buffer_max_size`` or text that does not parse is logged and
that scrape skipped; the input carries on.
"""
import asyncio
import time

from edgeship.codecs import cmetrics
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import Input
from edgeship.net.http_client import (HTTP_CLIENT_OPTIONS, HttpClient, HttpError, basic_auth)

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


def context_of(text, now_ns):
    """The cmetrics Context of a Prometheus text exposition (ValueError when it does not
    parse)."""
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


class PrometheusScrape(Input):
    name = "prometheus_scrape"
    description = "Scrape metrics from a Prometheus exporter"
    options = (
        Option("Host", default="localhost", help="host of the exporter"),
        Option("Port", "int", "80", min=1, max=65535, help="port of the exporter"),
        Option("metrics_path", default="/metrics", help="path of its metrics page"),
        Option("scrape_interval", "time", "10", above=0, help="seconds between scrapes"),
        Option("buffer_max_size", "size", "10M", help="the largest page read"),
        Option("bearer_token", help="token sent as 'Authorization: Bearer'"),
    ) + HTTP_CLIENT_OPTIONS

    def configure(self):
        try:    # checked now: a missing extra is a config error, not a traceback
            import prometheus_client.parser  # noqa: F401
        except ImportError as exc:
            raise ConfigError("prometheus_scrape needs the prometheus_scrape extra "
                              "(pip install 'edgeship[prometheus_scrape]'): %s" % exc)
        conf = self.conf
        self.client = HttpClient(conf)
        self.headers = [("User-Agent", "Fluent-Bit")]
        if conf["http_user"]:
            self.headers.append(("Authorization", basic_auth(conf["http_user"],
                                                             conf["http_passwd"])))
        elif conf["bearer_token"]:
            self.headers.append(("Authorization", "Bearer " + conf["bearer_token"]))

    async def _scrape(self):
        try:
            response = await self.client.request("GET", self.conf["metrics_path"],
                                                 self.headers, b"")
        except HttpError as exc:
            self.log.error("could not scrape %s: %s", self.client.label, exc)
            return
        if response.status != 200:
            self.log.error("%s answered HTTP status=%d", self.client.label, response.status)
            return
        if len(response.body) > self.conf["buffer_max_size"]:
            self.log.error("%s: a page of %d bytes is over buffer_max_size", self.client.label,
                           len(response.body))
            return
        try:
            ctx = context_of(response.body.decode("utf-8", "replace"), time.time_ns())
        except ValueError as exc:
            self.log.error("%s: the page does not parse: %s", self.client.label, exc)
            return
        payload = ctx.encode()
        if payload is not None:
            self.context.emit_metrics(self.tag, payload)

    async def run(self):
        interval = self.conf["scrape_interval"]
        try:
            while not self.stopping:
                await self._scrape()
                await asyncio.sleep(interval)
        finally:
            self.client.close()


PLUGIN = PrometheusScrape
