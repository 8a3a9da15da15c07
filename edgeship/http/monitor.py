"""The monitoring HTTP server (``HTTP_Server On``, ``HTTP_Listen``, ``HTTP_Port``; ``-H -L -P``):
Fluent Bit's endpoints with its status codes, content types and JSON/text shapes.

    /                              build information
    /api/v1/uptime                 uptime since the last (re)load
    /api/v1/metrics                JSON counters per input, filter, output
    /api/v1/metrics/prometheus     the same as old-style Prometheus text
    /api/v2/metrics                cmetrics text
    /api/v2/metrics/prometheus     Prometheus text of the v2 families
    /api/v1/storage                chunks (storage.metrics On)
    /api/v1/health                 ok / error (Health_Check On)
    /api/v2/health                 the health state as JSON
    /api/v2/reload                 GET: reloads done; POST/PUT: reload (Hot_Reload On)
    /api/v1/plugins                the plugins edgeship has

Kept from Fluent Bit: exact paths (a query string is ignored, a trailing slash is 404),
404 with an empty body, any method on the read-only endpoints, 405 with ``Allow`` on
/api/v2/reload for other methods, the health rule (errors and failed retries of the outputs
in the last HC_Period one-second samples, unhealthy when either is *over* its limit; the
window survives a reload). Differences: metrics are computed when asked, so they answer at
once instead of 404 for the first second (storage: five); a POST/PUT without a
Content-Length is answered (Fluent Bit drops the connection and does nothing); the server
keeps listening through a reload (restarted only when its address changes); the "/"
endpoint says edgeship's version too.
"""
import asyncio
import json
import socket
import time

from edgeship import __version__
from edgeship.codecs import cmetrics, engine_metrics
from edgeship.http import metrics
from edgeship.net.http_server import HttpServer, Response

JSON = [("Content-Type", "application/json")]
PROMETHEUS = [("Content-Type", "text/plain; version=0.0.4")]


async def follow(supervisor, current):
    """The monitor the current configuration asks for: ``current`` when its address is the
    same, a new one (``current`` closed) when it changed, None when HTTP_Server is off."""
    service = supervisor.engine.service
    wanted = (service["http_listen"], service["http_port"]) if service["http_server"] else None
    if current is not None:
        if current.address == wanted:
            return current
        await current.close()
    if wanted is None:
        return None
    monitor = Monitor(supervisor, *wanted)
    try:
        await monitor.start()
    except OSError as exc:
        supervisor.log.child("http_server").error(
            "could not bind address %s:%s (%s): the monitoring API is off", wanted[0],
            wanted[1], exc.strerror or exc)
        return None
    return monitor


class Health:
    """Fluent Bit's health window: one sample of the outputs' total errors and failed
    retries per second, at most HC_Period of them."""

    def __init__(self):
        self.samples = []

    def sample(self, errors, retries_failed, period):
        self.samples.append((errors, retries_failed))
        del self.samples[:-max(1, period)]

    def state(self, errors, retries_failed, service):
        """(healthy, errors in the period, failed retries in the period)."""
        if not self.samples:
            return True, 0, 0
        first_errors, first_failed = self.samples[0]
        in_errors = errors - first_errors
        in_failed = retries_failed - first_failed
        healthy = (in_errors <= service["hc_errors_count"] and
                   in_failed <= service["hc_retry_failure_count"])
        return healthy, in_errors, in_failed


class Monitor:
    def __init__(self, supervisor, host, port):
        self.supervisor = supervisor
        self.address = (host, port)
        self.log = supervisor.log.child("http_server")
        self.server = HttpServer(self.handle, host, port, max_body=64 * 1024,
                                 idle_timeout=60.0, log=self.log)
        self.health = Health()
        self.hostname = socket.gethostname()
        self._sampler = None
        self.routes = {
            "/": self.root,
            "/api/v1/uptime": self.uptime,
            "/api/v1/metrics": self.metrics_v1,
            "/api/v1/metrics/prometheus": self.prometheus_v1,
            "/api/v2/metrics": self.metrics_v2,
            "/api/v2/metrics/prometheus": self.prometheus_v2,
            "/api/v1/storage": self.storage,
            "/api/v1/health": self.health_v1,
            "/api/v2/health": self.health_v2,
            "/api/v2/reload": self.reload,
            "/api/v1/plugins": self.plugins,
        }

    @property
    def port(self):
        return self.server.port

    async def start(self):
        await self.server.start()
        self.log.info("listen iface=%s tcp_port=%s", self.address[0], self.server.port)
        self._sampler = asyncio.ensure_future(self._sample_loop())

    async def close(self):
        if self._sampler is not None:
            self._sampler.cancel()
            await asyncio.gather(self._sampler, return_exceptions=True)
        await self.server.close()

    # ------------------------------------------------------------------ health
    def totals(self):
        """The outputs' errors and failed retries since the process started (carried
        through reloads)."""
        errors, failed = self.supervisor.carried
        for out in self.supervisor.engine.outputs:
            errors += out.errors
            failed += out.retries_failed
        return errors, failed

    async def _sample_loop(self):
        while True:
            await asyncio.sleep(1.0)
            service = self.supervisor.engine.service
            if service["health_check"]:
                self.health.sample(*self.totals(), period=service["hc_period"])

    # ------------------------------------------------------------------ requests
    async def handle(self, request):
        route = self.routes.get(request.path)
        if route is None:
            return Response(404)
        return route(request)

    @property
    def engine(self):
        return self.supervisor.engine

    def _uptime(self):
        return int(time.time() - self.engine.started_at)

    @staticmethod
    def _json(value, status=200):
        return Response(status, JSON, json.dumps(value, separators=(",", ":")).encode())

    def root(self, request):
        return self._json({"fluent-bit": {"version": metrics.FLUENT_BIT_VERSION,
                                          "edition": "Community", "flags": []},
                           "edgeship": {"version": __version__}})

    def uptime(self, request):
        seconds = self._uptime()
        days, rest = divmod(seconds, 86400)
        hours, rest = divmod(rest, 3600)
        minutes, secs = divmod(rest, 60)
        parts = ["%d %s%s" % (n, unit, "s" if n > 1 else "")
                 for n, unit in ((days, "day"), (hours, "hour"), (minutes, "minute"),
                                 (secs, "second"))]
        text = "Fluent Bit has been running:  %s, %s, %s and %s" % tuple(parts)
        return self._json({"uptime_sec": seconds, "uptime_hr": text})

    def metrics_v1(self, request):
        return self._json(metrics.v1(self.engine))

    def prometheus_v1(self, request):
        text = metrics.v1_prometheus(metrics.v1(self.engine), self._uptime(),
                                     int(self.engine.process_started_at))
        return Response(200, PROMETHEUS, text.encode())

    def _context(self):
        snapshot = self.engine.metrics_snapshot()
        snapshot["version"] = __version__
        return engine_metrics.context_of(snapshot, time.time_ns()).to_map()

    def metrics_v2(self, request):
        return Response(200, (), cmetrics.render_text([self._context()]).encode())

    def prometheus_v2(self, request):
        return Response(200, PROMETHEUS,
                        cmetrics.render_prometheus([self._context()]).encode())

    def storage(self, request):
        if not self.engine.service["storage.metrics"]:
            return Response(404)
        return self._json(metrics.storage(self.engine))

    def _health(self):
        service = self.engine.service
        errors, failed = self.totals()
        healthy, in_errors, in_failed = self.health.state(errors, failed, service)
        if not service["health_check"]:
            healthy, in_errors, in_failed = True, 0, 0
        return healthy, {"status": "ok" if healthy else "error", "errors": in_errors,
                         "retries_failed": in_failed,
                         "error_limit": service["hc_errors_count"],
                         "retry_failure_limit": service["hc_retry_failure_count"],
                         "period_limit": service["hc_period"]}

    def health_v1(self, request):
        if not self.engine.service["health_check"]:
            return Response(404)
        healthy, _state = self._health()
        return Response(200, (), b"ok\n") if healthy else Response(500, (), b"error\n")

    def health_v2(self, request):
        healthy, state = self._health()
        return self._json(state, 200 if healthy else 500)

    def reload(self, request):
        if request.method == "GET":
            return self._json({"hot_reload_count": self.supervisor.reload_count})
        if request.method not in ("POST", "PUT"):
            return Response(405, [("Allow", "GET, POST, PUT")])
        if not self.engine.service["hot_reload"]:
            return self._json({"reload": "not enabled", "status": -1})
        if not self.supervisor.request_reload():
            return self._json({"reload": "in progress", "status": -2}, 400)
        return self._json({"reload": "done", "status": 0})

    def plugins(self, request):
        from edgeship import plugins
        return self._json({"plugins": {kind + "s": plugins.names(kind)
                                       for kind in ("input", "filter", "output")}})
