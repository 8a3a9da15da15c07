"""prometheus_scrape input: scrapes an exporter's /metrics and emits what it serves as a
metrics signal (in_prometheus_scrape).

Every ``scrape_interval`` (default 10 s; the first scrape at start) one ``GET
<metrics_path>`` on ``host:port`` (TLS, basic auth or a bearer token as options say); a 200
answer is parsed by prometheus_client's text-format parser (the ``prometheus_scrape`` extra)
and becomes one cmetrics context, as Fluent Bit's decoder builds it
(``codecs.prometheus_text``), every series stamped with the scrape's time.
Another status, a body over ``buffer_max_size`` or text that does not parse is logged and
that scrape skipped; the input carries on.
"""
import asyncio
import time

from edgeship.codecs import prometheus_text
from edgeship.core.schema import Option
from edgeship.engine.plugin import Input
from edgeship.net.http_client import (HTTP_CLIENT_OPTIONS, HttpClient, HttpError, basic_auth)

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
        prometheus_text.require_parser("prometheus_scrape")
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
            ctx = prometheus_text.decode(response.body.decode("utf-8", "replace"),
                                         time.time_ns())
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
