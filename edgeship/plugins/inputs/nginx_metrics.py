"""nginx_metrics input: NGINX's status as a metrics signal, from the stub_status page of NGINX
OSS or the NGINX Plus REST API (in_nginx_exporter_metrics).

Kept from Fluent Bit 5.1.1 (names, help texts, types, labels, values and timing checked on
the binary against a real nginx and a stand-in for the Plus API):
- Every ``scrape_interval`` (5 s; the first one interval after start) the plugin reads
  ``host:port`` (localhost:80; port 0 is 80), with TLS when ``tls`` is on, and emits its
  whole metrics context as one chunk, whatever the scrape gave. Each request goes on a new
  connection, closed after the answer (nginx counts one accepted connection per request, as
  it does for Fluent Bit); only ``200`` with a body counts as an answer.
- ``nginx_plus off``: ``GET <status_url>`` (/status), the stub_status page parsed as
  Fluent Bit parses it (the text up to a NUL, its first four non-empty lines scanned as its
  ``sscanf`` formats do: ``Active connections: N``, a line not read, `` N N N`` for
  accepts, handled and requests, ``Reading: N Writing: N Waiting: N``), into the counters
  ``nginx_connections_accepted``, ``nginx_connections_handled``,
  ``nginx_http_requests_total`` and the gauges ``nginx_connections_active|reading|writing|
  waiting``. ``nginx_up`` is set only when the state changes: 1 at the first good scrape, 0
  at the first failed one after it; before any good scrape every series is 0 stamped 0
  (so ``nginx_up 0`` while nginx was never reached), and after a failure the others keep
  their last values and stamps.
- ``nginx_plus on`` (the default): ``GET <status_url>/`` lists the API versions and the
  highest (at least 1) is used: ``<status_url>/<v>/connections``, ``/ssl``,
  ``/http/requests``, ``/http/server_zones``, ``/http/location_zones`` (version 5 and up),
  ``/http/upstreams``, ``/stream/server_zones``, ``/stream/upstreams``, in that order, the
  first failure ending the scrape (what was read before it stays set). ``nginxplus_up`` is
  set at every scrape. A key is read when it is the start of a field name, as Fluent Bit's
  ``strncmp`` does (so the API's ``keepalive`` fills ``nginxplus_upstream_keepalives``);
  response classes are the keys of three characters ending in ``xx``; a peer without a
  ``server`` is skipped with a warning; every peer gets its limit and timing gauges (0 when
  the API gives no value: ``limit`` is never in the API, which says ``max_conns``).

Differences (README "Where edgeship differs"):
- Failures are logged once, then at debug level until a scrape succeeds (Fluent Bit logs
  every interval). A request is bounded by ``net.connect_timeout`` and ``net.io_timeout``
  (Fluent Bit applies none of the input's ``net.*`` options); ``net.keepalive*`` are
  accepted with no effect (Fluent Bit never keeps the connection either; edgeship says so
  with ``Connection: close``, Fluent Bit sends no Connection header). A page may be up to
  the HTTP client's bound (8 MB): Fluent Bit's client gives up past 4 KB, so a Plus API page
  of a few upstream peers fails its scrape. ``scrape_interval`` may be a fraction.
- Plus mode, where Fluent Bit's values are wrong: a field that is not a number is not read
  (Fluent Bit reads a float's bits, a string's length as an integer) except a peer's
  ``state``, mapped as nginx-prometheus-exporter does (up 1, draining 2, down 3, unavail 4,
  checking 5, unhealthy 6; Fluent Bit: the length of the word); the peers' ``header_time``,
  ``response_time``, ``connect_time``, ``first_byte_time`` and ``limit`` hold the API's
  values (Fluent Bit sets them back to 0 at each field after theirs, so they are 0 unless
  last); ``nginxplus_upstream_server_responses`` has its ``code``, ``upstream`` and
  ``server`` label values in their places (Fluent Bit puts the upstream under ``code``, the
  server under ``upstream`` and the class under ``server``); the location zones' discarded
  requests are ``nginxplus_location_zone_discarded`` and the stream zones' sent bytes
  ``nginxplus_stream_server_zone_sent`` (Fluent Bit names them ``nginxplus_server_zone_
  discarded`` and ``nginxplus_server_zone_sent``, twice the same name in one exposition,
  which Prometheus refuses). A page that is not the JSON the API documents (an array of
  versions, an object) fails the scrape, ``nginxplus_up 0`` (Fluent Bit logs it, skips the
  page and reports 1); so does a versions page that cannot be read (Fluent Bit goes on with
  version 1).
"""
import re
import time

from edgeship.codecs import cmetrics, untrusted
from edgeship.core.schema import Option
from edgeship.net.http_client import HTTP_CLIENT_OPTIONS, HttpClient, HttpError
from edgeship.plugins.inputs._interval import IntervalInput

C, G = cmetrics.COUNTER, cmetrics.GAUGE
UP_HELP = ("Shows the status of the last metric scrape: 1 for a successful scrape and 0 for "
           "a failed one")
# Fluent Bit opens a connection per request and closes it after the answer.
HEADERS = (("Connection", "close"),)
_NO_EFFECT = ("net.keepalive", "net.keepalive_idle_timeout", "net.keepalive_max_recycle")
NET_TLS_OPTIONS = tuple(
    Option(o.name, o.kind, o.default, compat=True) if o.key in _NO_EFFECT else o
    for o in HTTP_CLIENT_OPTIONS if o.key.startswith(("net.", "tls")))

# ----------------------------------------------------------------------- stub_status
# stub_status' families in Fluent Bit's creation order: (key, kind, subsystem, name, help).
STUB_FAMILIES = (
    ("accepts", C, "connections", "accepted", "Accepted client connections"),
    ("active", G, "connections", "active", "active client connections"),
    ("handled", C, "connections", "handled", "Handled client connections"),
    ("reading", G, "connections", "reading", "reading client connections"),
    ("writing", G, "connections", "writing", "writing client connections"),
    ("waiting", G, "connections", "waiting", "waiting client connections"),
    ("requests", C, "http", "requests_total", "Total http requests"),
    ("up", G, "", "up", UP_HELP),
)
_WS = "[ \t\n\v\f\r]*"          # a blank in a scanf format: any C whitespace, or none
_NUM = "[ \t\n\v\f\r]*([0-9]+)"   # %lu
_ACTIVE = re.compile("Active" + _WS + "connections:" + _NUM)
_COUNTS = re.compile(_NUM + "[ \t\n\v\f\r]" + _NUM + "[ \t\n\v\f\r]" + _NUM)
_STATES = re.compile("Reading:" + _NUM + _WS + "Writing:" + _NUM + _WS + "Waiting:" + _NUM)
_ULONG_MAX = (1 << 64) - 1


def parse_stub_status(body):
    """{accepts, handled, requests, active, reading, writing, waiting} of a stub_status page
    (bytes), or None when it is not one: Fluent Bit's rules (the text up to a NUL, split at
    newlines, empty lines skipped, the first, third and fourth lines scanned)."""
    text = body.split(b"\0", 1)[0].decode("latin-1")
    lines = [line for line in text.split("\n") if line][:4]
    if len(lines) < 4:
        return None
    found = [_ACTIVE.match(lines[0]), _COUNTS.match(lines[2]), _STATES.match(lines[3])]
    if None in found:
        return None
    numbers = [min(int(n), _ULONG_MAX) for match in found for n in match.groups()]
    return dict(zip(("active", "accepts", "handled", "requests", "reading", "writing",
                     "waiting"), numbers))


# ----------------------------------------------------------------------- NGINX Plus
# Plus families in Fluent Bit's creation order: (key, kind, subsystem, name, help, labels).
# Two differ from Fluent Bit: it names location_zone.discarded "server_zone_discarded" and
# stream_server_zone.sent "server_zone_sent".
_ZONE = ("server_zone",)
_LOCATION = ("location_zone",)
_PEER = ("upstream", "server")
PLUS_FAMILIES = (
    ("up", G, "", "up", UP_HELP, ()),
    ("connections.accepted", C, "connections", "accepted", "NGINX Plus Total Connections", ()),
    ("connections.dropped", C, "connections", "dropped", "NGINX Plus Total Connections", ()),
    ("connections.active", C, "connections", "active", "NGINX Plus Total Connections", ()),
    ("connections.idle", C, "connections", "idle", "NGINX Plus Total Connections", ()),
    ("ssl.handshakes", C, "ssl", "handshakes", "NGINX Plus Total Connections", ()),
    ("ssl.handshakes_failed", C, "ssl", "handshakes_failed", "NGINX Plus Total Connections",
     ()),
    ("ssl.session_reuses", C, "ssl", "session_reuses", "NGINX Plus Total Connections", ()),
    ("requests.total", C, "http_requests", "total", "NGINX Plus Total Connections", ()),
    ("requests.current", C, "http_requests", "current", "NGINX Plus Total Connections", ()),
    ("server_zone.discarded", C, "server_zone", "discarded", "NGINX Server Zone discarded",
     _ZONE),
    ("server_zone.processing", C, "server_zone", "processing", "NGINX Server Zone processing",
     _ZONE),
    ("server_zone.received", C, "server_zone", "received", "NGINX Server Zone received",
     _ZONE),
    ("server_zone.requests", C, "server_zone", "requests", "NGINX Server Zone requests",
     _ZONE),
    ("server_zone.responses", C, "server_zone", "responses", "NGINX Server Zone responses",
     ("server_zone", "code")),
    ("server_zone.sent", C, "server_zone", "sent", "NGINX Server Zone sent", _ZONE),
    ("location_zone.discarded", C, "location_zone", "discarded", "NGINX Server Zone discarded",
     _LOCATION),
    ("location_zone.received", C, "location_zone", "received", "NGINX Server Zone received",
     _LOCATION),
    ("location_zone.requests", C, "location_zone", "requests", "NGINX Server Zone requests",
     _LOCATION),
    ("location_zone.responses", C, "location_zone", "responses",
     "NGINX Server Zone responses", ("location_zone", "code")),
    ("location_zone.sent", C, "location_zone", "sent", "NGINX Server Zone sent", _LOCATION),
    ("upstream.keepalives", G, "upstream", "keepalives", "NGINX Upstream Keepalives",
     ("upstream",)),
    ("upstream.zombies", G, "upstream", "zombies", "NGINX Upstream Zombies", ("upstream",)),
    ("upstream_server.active", G, "upstream_server", "active", "NGINX Upstream Active", _PEER),
    ("upstream_server.fails", C, "upstream_server", "fails", "NGINX Upstream Fails", _PEER),
    ("upstream_server.header_time", G, "upstream_server", "header_time",
     "NGINX Upstream Header Time", _PEER),
    ("upstream_server.limit", G, "upstream_server", "limit", "NGINX Upstream Limit", _PEER),
    ("upstream_server.received", C, "upstream_server", "received", "NGINX Upstream Received",
     _PEER),
    ("upstream_server.requests", C, "upstream_server", "requests", "NGINX Upstream Requests",
     _PEER),
    ("upstream_server.responses", C, "upstream_server", "responses",
     "NGINX Upstream Responses", ("code", "upstream", "server")),
    ("upstream_server.response_time", G, "upstream_server", "response_time",
     "NGINX Upstream Response Time", _PEER),
    ("upstream_server.sent", C, "upstream_server", "sent", "NGINX Upstream Sent", _PEER),
    ("upstream_server.state", G, "upstream_server", "state", "NGINX Upstream State", _PEER),
    ("upstream_server.unavail", C, "upstream_server", "unavail", "NGINX Upstream Unavailable",
     _PEER),
    ("stream_server_zone.connections", C, "stream_server_zone", "connections",
     "NGINX Stream Server Zone connections", _ZONE),
    ("stream_server_zone.discarded", C, "stream_server_zone", "discarded",
     "NGINX Stream Server Zone discarded", _ZONE),
    ("stream_server_zone.processing", C, "stream_server_zone", "processing",
     "NGINX Stream Server Zone processing", _ZONE),
    ("stream_server_zone.received", C, "stream_server_zone", "received",
     "NGINX Stream Server Zone received", _ZONE),
    ("stream_server_zone.sent", C, "stream_server_zone", "sent",
     "NGINX Stream Server Zone sent", _ZONE),
    ("stream_server_zone.sessions", C, "stream_server_zone", "sessions",
     "NGINX Stream Server Zone Sessions", ("server_zone", "code")),
    ("stream_upstream.zombies", G, "stream_upstream", "zombies", "NGINX Upstream Zombies",
     ("upstream",)),
    ("stream_upstream_server.active", G, "stream_upstream_server", "active",
     "NGINX Upstream Active", _PEER),
    ("stream_upstream_server.fails", C, "stream_upstream_server", "fails",
     "NGINX Upstream Fails", _PEER),
    ("stream_upstream_server.limit", G, "stream_upstream_server", "limit",
     "NGINX Upstream Limit", _PEER),
    ("stream_upstream_server.received", C, "stream_upstream_server", "received",
     "NGINX Upstream Received", _PEER),
    ("stream_upstream_server.connect_time", G, "stream_upstream_server", "connect_time",
     "NGINX Upstream Header Time", _PEER),
    ("stream_upstream_server.first_byte_time", G, "stream_upstream_server", "first_byte_time",
     "NGINX Upstream Header Time", _PEER),
    ("stream_upstream_server.connections", C, "stream_upstream_server", "connections",
     "NGINX Upstream Requests", _PEER),
    ("stream_upstream_server.response_time", G, "stream_upstream_server", "response_time",
     "NGINX Upstream Response Time", _PEER),
    ("stream_upstream_server.sent", C, "stream_upstream_server", "sent", "NGINX Upstream Sent",
     _PEER),
    ("stream_upstream_server.state", G, "stream_upstream_server", "state",
     "NGINX Upstream State", _PEER),
    ("stream_upstream_server.unavail", C, "stream_upstream_server", "unavail",
     "NGINX Upstream Unavailable", _PEER),
)

# The fields each page (or zone, upstream, peer) is read for, in Fluent Bit's order of tests.
_CONNECTION_FIELDS = ("accepted", "dropped", "active", "idle")
_SSL_FIELDS = ("handshakes", "handshakes_failed", "session_reuses")
_REQUEST_FIELDS = ("total", "current")
_SERVER_ZONE_FIELDS = ("processing", "requests", "discarded", "received", "sent", "responses")
_LOCATION_ZONE_FIELDS = ("requests", "discarded", "received", "sent", "responses")
_STREAM_ZONE_FIELDS = ("connections", "processing", "discarded", "received", "sent",
                       "sessions")
_UPSTREAM_FIELDS = ("keepalives", "zombies", "peers")
_STREAM_UPSTREAM_FIELDS = ("zombies", "peers")
_PEER_FIELDS = ("active", "fails", "header_time", "limit", "received", "requests",
                "responses", "response_time", "sent", "state", "unavail")
_STREAM_PEER_FIELDS = ("active", "fails", "limit", "received", "connect_time",
                       "first_byte_time", "connections", "response_time", "sent", "state",
                       "unavail")
# Set to 0 for every peer before its fields are read.
_PEER_ZEROED = ("limit", "header_time", "response_time")
_STREAM_PEER_ZEROED = ("limit", "response_time", "connect_time", "first_byte_time")
# A peer's state as nginx-prometheus-exporter reports it.
PEER_STATES = {"up": 1, "draining": 2, "down": 3, "unavail": 4, "checking": 5,
               "unhealthy": 6}


def field(key, names):
    """The first of ``names`` that ``key`` starts (Fluent Bit compares a key with
    ``strncmp(key, name, len(key))``), or None."""
    for name in names:
        if name.startswith(key):
            return name
    return None


def number(value):
    """A JSON number as a float, None for anything else."""
    if type(value) in (int, float):
        return float(value)
    return None


def _classes(value):
    """(class, count) of a responses/sessions map: keys of three characters ending in xx."""
    if type(value) is not dict:
        return
    for code, count in value.items():
        count = number(count)
        if len(code) == 3 and code[1:] == "xx" and count is not None:
            yield code, count


class _Failed(Exception):
    """The scrape failed: the message to log."""


class NginxMetrics(IntervalInput):
    name = "nginx_metrics"
    description = "Nginx status metrics"
    options = (
        Option("Host", default="localhost", help="host of nginx"),
        Option("Port", "int", "80", min=0, max=65535, help="port of nginx (0: 80)"),
        Option("Listen", compat=True),
        Option("Status_URL", default="/status",
               help="path of the stub_status page, or of the NGINX Plus API"),
        Option("Scrape_Interval", "time", "5", above=0, help="seconds between scrapes"),
        Option("Nginx_Plus", "bool", "true",
               help="read the NGINX Plus API instead of stub_status"),
    ) + NET_TLS_OPTIONS

    def configure(self):
        conf = self.conf
        self.client = HttpClient(conf, port=conf["port"] or 80)
        self.url = conf["status_url"]
        self.plus = conf["nginx_plus"]
        self.metrics = cmetrics.Context()
        rows = PLUS_FAMILIES if self.plus else [row + ((),) for row in STUB_FAMILIES]
        ns = "nginxplus" if self.plus else "nginx"
        self.families = {}
        for key, kind, subsystem, name, desc, labels in rows:
            family = self.metrics.family(kind, ns, subsystem, name, desc, labels)
            if not labels:
                family.set(0, ts=0)        # cmetrics packs an unset static series so
            self.families[key] = family
        self.up = False
        self.failures = self.log.failure_streak()
        self.warned = set()
        if self.plus:
            self.log.info("nginx-plus mode on")

    @property
    def period(self):
        return self.conf["scrape_interval"]

    # ------------------------------------------------------------------ scraping
    async def tick(self):
        now = time.time_ns()
        try:
            if self.plus:
                await self._scrape_plus(now)
            else:
                await self._scrape_stub(now)
        except _Failed as exc:
            self.failures.failed(str(exc))
            if self.plus:
                self.families["up"].set(0, ts=now)
            elif self.up:
                self.families["up"].set(0, ts=now)
                self.up = False
        else:
            if self.failures.recovered():
                self.log.info("%s answers again", self.client.label)
            if self.plus or not self.up:
                self.families["up"].set(1, ts=now)
                self.up = True
        self.context.emit_metrics(self.tag, self.metrics.encode())

    def _warn_once(self, message):
        if message not in self.warned:
            self.warned.add(message)
            self.log.warn("%s", message)

    async def _get(self, uri):
        """The body of the 200 answer to ``GET uri``; _Failed for anything else."""
        where = "%s%s" % (self.client.label, uri)
        try:
            response = await self.client.request("GET", uri, list(HEADERS), b"")
        except HttpError as exc:
            raise _Failed("could not read %s: %s" % (where, exc))
        if response.truncated:
            raise _Failed("%s: an answer over %d bytes" % (where, self.client.max_response))
        if response.status != 200:
            raise _Failed("http status code error: [%s] %d" % (where, response.status))
        if not response.body:
            raise _Failed("empty response from %s" % where)
        return response.body

    async def _scrape_stub(self, now):
        status = parse_stub_status(await self._get(self.url))
        if status is None:
            raise _Failed("unable to parse stub status response from %s%s"
                          % (self.client.label, self.url))
        for key, value in status.items():
            self.families[key].set(value, ts=now)

    async def _json(self, uri, kind):
        body = await self._get(uri)
        try:
            value = untrusted.loads(body)
        except ValueError:
            raise _Failed("invalid JSON message from %s%s" % (self.client.label, uri))
        if type(value) is not kind:
            raise _Failed("%s%s: not a JSON %s" % (self.client.label, uri,
                                                  "array" if kind is list else "object"))
        return value

    async def _scrape_plus(self, now):
        versions = await self._json(self.url + "/", list)
        version = max([1] + [v for v in versions if type(v) is int])
        base = "%s/%d" % (self.url, version)
        self._flat(await self._json(base + "/connections", dict), "connections",
                   _CONNECTION_FIELDS, now)
        self._flat(await self._json(base + "/ssl", dict), "ssl", _SSL_FIELDS, now)
        self._flat(await self._json(base + "/http/requests", dict), "requests",
                   _REQUEST_FIELDS, now)
        pages = [("/http/server_zones", self._zone, ("server_zone", _SERVER_ZONE_FIELDS)),
                 ("/http/location_zones", self._zone, ("location_zone",
                                                       _LOCATION_ZONE_FIELDS)),
                 ("/http/upstreams", self._upstream, ("upstream", _UPSTREAM_FIELDS,
                                                      "upstream_server", _PEER_FIELDS,
                                                      _PEER_ZEROED)),
                 ("/stream/server_zones", self._zone, ("stream_server_zone",
                                                       _STREAM_ZONE_FIELDS)),
                 ("/stream/upstreams", self._upstream, ("stream_upstream",
                                                        _STREAM_UPSTREAM_FIELDS,
                                                        "stream_upstream_server",
                                                        _STREAM_PEER_FIELDS,
                                                        _STREAM_PEER_ZEROED))]
        if version < 5:
            del pages[1]
        for path, read, how in pages:
            table = await self._json(base + path, dict)
            for name, value in table.items():
                if type(value) is dict:
                    read(name, value, now, *how)

    def _set(self, key, value, labels, now):
        value = number(value)
        if value is not None:
            self.families[key].set(value, labels, ts=now)

    def _flat(self, document, prefix, fields, now):
        for key, value in document.items():
            name = field(key, fields)
            if name is not None:
                self._set("%s.%s" % (prefix, name), value, (), now)

    def _zone(self, zone, document, now, prefix, fields):
        for key, value in document.items():
            name = field(key, fields)
            if name in ("responses", "sessions"):
                for code, count in _classes(value):
                    self.families["%s.%s" % (prefix, name)].set(count, (zone, code), ts=now)
            elif name is not None:
                self._set("%s.%s" % (prefix, name), value, (zone,), now)

    def _upstream(self, upstream, document, now, prefix, fields, peer_prefix, peer_fields,
                  zeroed):
        for key, value in document.items():
            name = field(key, fields)
            if name == "peers":
                for peer in value if type(value) is list else ():
                    if type(peer) is dict:
                        self._peer(upstream, peer, now, peer_prefix, peer_fields, zeroed)
            elif name is not None:
                self._set("%s.%s" % (prefix, name), value, (upstream,), now)

    def _peer(self, upstream, peer, now, prefix, fields, zeroed):
        server = next((v for k, v in peer.items() if field(k, ("server",))), None)
        if type(server) is not str:
            self._warn_once("no server for %s %s" % (prefix.replace("_server", ""),
                                                     upstream))
            return
        labels = (upstream, server)
        for name in zeroed:
            self.families["%s.%s" % (prefix, name)].set(0, labels, ts=now)
        for key, value in peer.items():
            name = field(key, fields)
            if name == "responses":
                for code, count in _classes(value):
                    self.families[prefix + ".responses"].set(count, (code, upstream, server),
                                                             ts=now)
            elif name == "state" and type(value) is str:
                self._set(prefix + ".state", PEER_STATES.get(value), labels, now)
            elif name is not None:
                self._set("%s.%s" % (prefix, name), value, labels, now)

    def close(self):
        self.client.close()


PLUGIN = NginxMetrics
