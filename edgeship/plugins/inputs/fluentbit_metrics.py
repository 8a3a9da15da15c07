"""fluentbit_metrics input: edgeship's own counters as a metrics signal, under Fluent Bit's
internal metric names (in_fluentbit_metrics; the families: ``codecs.engine_metrics``).

Fluent Bit 5.1.1 behaviour kept: every ``scrape_interval`` (default 2 s; the first scrape one
interval after start) ``fluentbit_input_metrics_scrapes_total`` of this input goes up and a
fresh context is emitted as one metrics chunk (one record of its size); with
``scrape_on_start`` and an interval over 2 s, one more scrape 5 s after start.
"""
import asyncio
import time

from edgeship.codecs import engine_metrics
from edgeship.core import VERSION
from edgeship.core.schema import Option
from edgeship.plugins.inputs._interval import IntervalInput


class FluentbitMetrics(IntervalInput):
    name = "fluentbit_metrics"
    description = "Fluent Bit internal metrics"
    options = (
        Option("scrape_interval", "time", "2", above=0,
               help="seconds between the metrics chunks this input emits"),
        Option("scrape_on_start", "bool", "false",
               help="one more scrape 5 s after start (when scrape_interval is over 2 s)"),
    )

    @property
    def period(self):
        return self.conf["scrape_interval"]

    def start(self):
        if self.conf["scrape_on_start"] and self.period > 2:
            asyncio.get_running_loop().call_later(5, self._scrape)

    def _scrape(self):
        if self.stopping:
            return
        self.context.count("metrics_scrapes")
        snapshot = self.context.engine_metrics()
        snapshot["version"] = VERSION
        payload = engine_metrics.context_of(snapshot, time.time_ns()).encode()
        if payload is not None:
            self.context.emit_metrics(self.tag, payload)

    async def tick(self):
        self._scrape()


PLUGIN = FluentbitMetrics
