"""prometheus_exporter output: serves the metrics it receives on /metrics for Prometheus to
scrape (out_prometheus_exporter).

Kept from Fluent Bit 5.1.1: metrics only (logs routed here are never delivered to it); each
flush replaces the text of its source and ``GET /metrics`` answers every source's latest text
back to back (``text/plain; version=0.0.4``; empty before the first metrics); the text is
cmetrics' Prometheus encoding (``codecs.cmetrics.render_prometheus``), every context of a
chunk; ``add_label KEY VALUE`` (repeatable) puts static labels first on every sample;
``add_timestamp`` writes each series' time in ms; ``GET /`` answers ``Fluent Bit Prometheus
Exporter``, any other path 404; listens on 0.0.0.0:2021 by default. Nothing expires.

Difference: Fluent Bit keys a source by its input instance; an edgeship chunk carries its tag,
so the source here is the tag (two inputs under one tag share one entry; give them their own
tags, as is usual).
"""
from edgeship.codecs import cmetrics
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import ERROR, METRICS, OK, Output
from edgeship.net.http_server import HttpServer, Response

_CONTENT_TYPE = ("Content-Type", "text/plain; version=0.0.4")
_SERVER = ("Server", "Fluent Bit")


class PrometheusExporter(Output):
    name = "prometheus_exporter"
    description = "Prometheus Exporter"
    signals = (METRICS,)
    options = (
        Option("Host", default="0.0.0.0", help="address to listen on"),
        Option("Port", "int", "2021", min=0, max=65535, help="TCP port to listen on"),
        Option("add_label", multiple=True, help="'KEY VALUE' label added to every sample"),
        Option("add_timestamp", "bool", "false", help="write each sample's time (ms)"),
    )

    def configure(self):
        self.labels = []
        for text in self.conf["add_label"]:
            parts = text.split()
            if len(parts) != 2:
                raise ConfigError("'add_label' expects a key and a value, e.g: "
                                  "'add_label version 1.8.0'", key="add_label")
            self.labels.append((parts[0], parts[1]))
        self.texts = {}         # source (tag) -> its latest text
        self.server = HttpServer(self._answer, self.conf["host"], self.conf["port"],
                                 max_body=64 * 1024, idle_timeout=60, log=self.log)

    async def start(self):
        await self.server.start()
        self.log.info("listening iface=%s tcp_port=%d", self.conf["host"], self.server.port)

    async def _answer(self, request):
        if request.path == "/metrics":
            body = "".join(self.texts.values()).encode("utf-8")
            return Response(200, [_SERVER, _CONTENT_TYPE], body)
        if request.path == "/":
            return Response(200, [_SERVER], b"Fluent Bit Prometheus Exporter\n")
        return Response(404, [_SERVER], b"")

    async def flush(self, chunk):
        try:
            contexts = cmetrics.decode(chunk.payload)
        except cmetrics.MetricsError as exc:
            self.log.error("metrics chunk (tag %s) cannot be read: %s", chunk.tag, exc)
            return ERROR
        for context in contexts:
            cmetrics.add_static_labels(context, self.labels)
        self.texts[chunk.tag] = cmetrics.render_prometheus(contexts,
                                                           self.conf["add_timestamp"])
        return OK

    async def stop(self):
        await self.server.close()


PLUGIN = PrometheusExporter
