"""kubernetes_events input: the cluster's Event objects from the API server, LIST then WATCH
(in_kubernetes_events).

Kept from Fluent Bit 5.1.1:
- ``kube_url`` (https://kubernetes.default.svc), ``kube_ca_file``/``kube_ca_path``,
  ``tls.verify``, ``tls.vhost``, ``kube_token_file`` sent as ``Authorization: Bearer``, read
  again once older than ``kube_token_ttl`` (10m): edgeship/net/kubernetes.py.
- ``GET /api/v1/events`` (``/api/v1/namespaces/<kube_namespace>/events``; ``?`` ends it when
  there is a namespace and no limit), paged with ``?limit=<kube_request_limit>`` and
  ``?continue=<token>&limit=N`` until the list has no ``continue``; then ``GET ...?watch=1&
  resourceVersion=<the list's>&timeoutSeconds=<kube_watch_timeout>`` (10m; 0: none), read as
  JSON lines ``{"type", "object"}``. When the watch ends (closed, failed, an answer other
  than 200, an ``ERROR`` event such as 410 Gone), the next round, ``interval_sec`` +
  ``interval_nsec`` (0.5 s) later, lists again; a failed list is tried again each interval.
- A record is the whole Event object, stamped with its ``lastTimestamp``, else
  ``firstTimestamp``, else ``metadata.creationTimestamp`` (second precision, exactly
  ``YYYY-MM-DDTHH:MM:SSZ``; ``eventTime`` is not read). Listed objects count as ADDED; only
  ADDED and MODIFIED are emitted (DELETED, BOOKMARK are not). An object stamped more than
  ``kube_retention_time`` (1h) ago is skipped; one without a resourceVersion or a timestamp
  is skipped and logged.
- Duplicates: without ``db``, an object whose resourceVersion is not above the highest seen
  (the list's, then each watched event's) is skipped, so a re-list emits only what is new.
  With ``db``, an object whose ``metadata.uid`` is in the DB is skipped (so a MODIFIED event
  of a uid already sent is not emitted again), whatever its resourceVersion. The DB is
  Fluent Bit's table ``in_kubernetes_events (id, uid, resourceVersion, created)``, created the
  event's time in ns, rows older than the retention time deleted; ``db.sync`` (normal),
  ``db.locking``, ``db.journal_mode`` (wal) as in tail. A Fluent Bit DB file works as it is.

Differences (README "Where edgeship differs"):
- A uid is written to the DB only once every output confirmed its record (at-least-once: a
  crash before that sends it again after the restart); Fluent Bit writes it before the
  record is even buffered. Until then it is held in memory so that neither a re-list nor the
  watch emits it twice. Old rows are deleted before each list and at most once a minute
  after (Fluent Bit every interval).
- An object that has a resourceVersion but no uid is deduplicated like the others (Fluent
  Bit emits it on every re-list); an ``ERROR`` watch event ends the watch at once (Fluent Bit
  reads on until the server closes it); a malformed line or object is logged once per read
  and the rest of the read is still taken (Fluent Bit stops at it).
- Requests are bounded by ``net.kubernetes.NET_TIMEOUT``; the watch read by
  ``kube_watch_timeout`` + NET_TIMEOUT, or an hour with 0 (Fluent Bit: none). A DB that cannot
  be opened is logged and the input goes on without it (Fluent Bit refuses to start).
  Repeated identical failures are logged once, then at debug level. ``Connection:
  keep-alive`` is sent (Fluent Bit sends no Connection header; both keep the connection).
"""
import asyncio
import calendar
import re
import time
from urllib.parse import quote

from edgeship.codecs import untrusted
from edgeship.core import events as ev
from edgeship.core.errors import ConfigError
from edgeship.core.framing import SeparatorFrames
from edgeship.core.schema import Option
from edgeship.engine.ack import Ack
from edgeship.engine.plugin import Input
from edgeship.net.http_client import HttpError
from edgeship.net.kubernetes import NET_TIMEOUT, SERVICE_ACCOUNT, ApiClient, FetchError
from edgeship.plugins.inputs._interval import interval_options, interval_seconds

CREATE = ("CREATE TABLE IF NOT EXISTS in_kubernetes_events ("
          "  id              INTEGER PRIMARY KEY,"
          "  uid             TEXT NOT NULL,"
          "  resourceVersion INTEGER NOT NULL,"
          "  created         INTEGER NOT NULL"
          ");")
# An Event list page or watch line is a few KB; this bounds a runaway one.
MAX_ANSWER = 64 * 1024 * 1024
MAX_LINE = 4 * 1024 * 1024
# The watch read's bound when kube_watch_timeout is 0 (the API server's own watch timeout
# is 30 to 60 minutes).
UNBOUNDED_WATCH = 3600
CLEANUP_EVERY = 60
UID_QUERY_SIZE = 500        # under SQLite's smallest limit on bound parameters
_STAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z\Z")
_DIGITS = re.compile(r"\d{1,20}\Z")


class _WatchEnded(Exception):
    """The watch stream ended; the message says how (logged at info)."""


def _stamp_ns(obj, key):
    value = obj.get(key)
    if not isinstance(value, str):
        return None
    found = _STAMP.match(value)
    if found is None:
        return None
    try:
        seconds = calendar.timegm(tuple(int(part) for part in found.groups()))
    except (ValueError, OverflowError):
        return None
    return seconds * 1000000000


def event_time(obj, metadata):
    """lastTimestamp, else firstTimestamp, else metadata.creationTimestamp, in ns; None."""
    for holder, key in ((obj, "lastTimestamp"), (obj, "firstTimestamp"),
                        (metadata, "creationTimestamp")):
        stamp = _stamp_ns(holder, key)
        if stamp is not None:
            return stamp
    return None


def resource_version(metadata):
    """``metadata.resourceVersion`` as Fluent Bit reads it (digits, or a non-negative
    integer); None otherwise."""
    value = metadata.get("resourceVersion")
    if isinstance(value, str):
        return int(value) if _DIGITS.match(value) and int(value) < 1 << 64 else None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 64:
        return value
    return None


class KubernetesEvents(Input):
    name = "kubernetes_events"
    description = "Kubernetes Events"
    options = (
        Option("kube_url", default="https://kubernetes.default.svc",
               help="API server, http[s]://host[:port]"),
    ) + interval_options("0", "500000000") + (
        Option("kube_watch_timeout", "time", "10m",
               help="watch duration asked of the server (0: none)"),
        Option("tls.debug", "int", "0", compat=True),
        Option("tls.verify", "bool", "true", help="verify the API server's certificate"),
        Option("tls.vhost", help="TLS server name (default: the host)"),
        Option("kube_ca_file", default=SERVICE_ACCOUNT + "ca.crt", help="CA of the API server"),
        Option("kube_ca_path", help="directory of CA certificates"),
        Option("kube_token_file", default=SERVICE_ACCOUNT + "token",
               help="bearer token for the API server"),
        Option("kube_token_ttl", "time", "10m", help="read the token file again after this"),
        Option("kube_request_limit", "int", "0", min=0,
               help="events per LIST page (0: one page)"),
        Option("kube_retention_time", "time", "1h", help="skip events older than this"),
        Option("kube_namespace", help="only this namespace's events (default: all)"),
        Option("db", help="SQLite file of the event uids already delivered"),
        Option("db.sync", default="normal", choices=("extra", "full", "normal", "off"),
               help="SQLite synchronous mode of the DB"),
        Option("db.locking", "bool", "false", help="lock the DB for this process only"),
        Option("db.journal_mode", default="wal",
               choices=("delete", "truncate", "persist", "memory", "wal", "off"),
               help="SQLite journal mode of the DB"),
    )

    def configure(self):
        conf = self.conf
        try:
            self.server = ApiClient(conf, self.log, self.context.config_dir,
                                    max_response=MAX_ANSWER, close=False)
        except ValueError as exc:
            raise ConfigError(str(exc), key="kube_url")
        host, port, https = self.server.api
        self.log.info("API server: %s://%s:%d", "https" if https else "http", host, port)
        path = "/api/v1/events"
        if conf["kube_namespace"] is not None:
            path = "/api/v1/namespaces/%s/events" % quote(conf["kube_namespace"], safe="")
        self.path = path
        self.watch_timeout = int(conf["kube_watch_timeout"])
        self.retention_ns = int(conf["kube_retention_time"] * 1000000000)
        self.db = None
        self.last_version = 0       # highest resourceVersion seen (dedup without a DB)
        self.pending = {}           # uid -> (resourceVersion, time): emitted, not confirmed
        self.cleaned_at = 0.0
        self.failures = self.log.failure_streak()
        self._task = None

    def summary(self):
        host, port, https = self.server.api
        return "kube_url=%s://%s:%d path=%s" % ("https" if https else "http", host, port,
                                                self.path)

    # ------------------------------------------------------------------ the loop
    async def run(self):
        if self.conf["db"] and self.db is None:
            self._open_db()
        self._task = asyncio.ensure_future(self._follow())
        try:
            await self._task
        except asyncio.CancelledError:
            if not self.stopping:
                raise
        finally:
            self._task = None
            self.server.close()

    def stop(self):
        Input.stop(self)
        if self._task is not None:
            self._task.cancel()

    def close(self):
        if self.db is not None:
            self.db.close()
            self.db = None

    async def _follow(self):
        period = interval_seconds(self.conf)
        while not self.stopping:
            try:
                version = await self._list()
                await self._watch(version)
            except FetchError as exc:
                self.failures.failed(str(exc))
            except _WatchEnded as exc:
                self.log.info("%s; listing again", exc)
            await asyncio.sleep(period)

    async def _list(self):
        """Every page of the list, emitted page by page; the list's resourceVersion."""
        self._cleanup(force=True)
        limit = self.conf["kube_request_limit"]
        token = None
        while True:
            await self.context.room()
            if token is None and not limit and self.conf["kube_namespace"] is None:
                path = self.path
            else:
                query = ""
                if limit:
                    if token is not None:
                        query = "continue=%s&" % quote(token, safe="")
                    query += "limit=%d" % limit
                path = "%s?%s" % (self.path, query)
            page = await self.server.get_json(path)
            items = page.get("items") if isinstance(page, dict) else None
            metadata = page.get("metadata") if isinstance(page, dict) else None
            if not isinstance(items, list) or not isinstance(metadata, dict):
                raise FetchError("GET %s: not an EventList (items and metadata)" % path)
            version = resource_version(metadata)
            if version is None:
                raise FetchError("GET %s: cannot find EventList resourceVersion" % path)
            token = metadata.get("continue")
            self._take(items, 0, watching=False)
            if not isinstance(token, str) or not token:
                break
        self.last_version = max(self.last_version, version)
        return version

    async def _watch(self, version):
        path = "%s?watch=1&resourceVersion=%d" % (self.path, version)
        if self.watch_timeout > 0:
            path += "&timeoutSeconds=%d" % self.watch_timeout
        self.log.info("Requesting %s", path)
        headers = await self.server.headers()
        idle = (self.watch_timeout or UNBOUNDED_WATCH) + NET_TIMEOUT
        upstream = self.server.upstream()
        try:
            response = await upstream.stream("GET", path, headers, idle)
        except HttpError as exc:
            raise FetchError("watch: kube api upstream connection error (%s): %s"
                             % (upstream.label, exc))
        try:
            if response.status != 200:
                body = b""
                try:
                    body = await response.read()
                except HttpError:
                    pass
                raise FetchError("events watch failure, http_status=%d payload=%s"
                                 % (response.status, body[:200].decode("utf-8", "replace")))
            self.failures.recovered()
            await self._read_watch(response)
        finally:
            response.close()

    async def _read_watch(self, response):
        lines = SeparatorFrames(b"\n", MAX_LINE, alternatives=(b"\r",))
        while True:
            await self.context.room()
            try:
                data = await response.read()
            except HttpError as exc:
                raise _WatchEnded("kubernetes chunked stream error: %s" % exc)
            if not data:
                raise _WatchEnded("kubernetes stream closed by api server")
            pieces = lines.receive(data).events
            if lines.split:
                self.log.warn("a watch line over %d bytes was dropped", MAX_LINE)
                lines.split = 0
            if pieces:
                error = self._take_lines(pieces)
                if error is not None:
                    raise _WatchEnded("watch ERROR event: %s" % error)

    def _take_lines(self, lines):
        """Emit the ADDED/MODIFIED objects of watch ``lines``; the text of an ERROR event's
        object, None when there is none."""
        objects = []
        bad = 0
        error = None
        size = 0
        for line in lines:
            try:
                watched = untrusted.loads(line)
            except ValueError:
                bad += 1
                continue
            kind = watched.get("type") if isinstance(watched, dict) else None
            obj = watched.get("object") if isinstance(watched, dict) else None
            if not isinstance(kind, str) or not isinstance(obj, dict):
                bad += 1
                continue
            if kind == "ERROR":
                error = "%s %s" % (obj.get("code", ""), obj.get("message", ""))
                break
            if kind in ("ADDED", "MODIFIED"):
                objects.append(obj)
                size += len(line)
        if bad:
            self.log.warn("%d watch line(s) without a JSON {type, object} skipped", bad)
        if objects:
            self._take(objects, size, watching=True)
        return error

    # ------------------------------------------------------------------ records
    def _take(self, objects, size, watching):
        """Emit ``objects`` (Event objects in order) but the old, the seen and the broken ones.
        ``watching``: each one's resourceVersion raises the highest seen at once."""
        horizon = ev.now_ns() - self.retention_ns
        known = self._known_uids(objects) if self.db is not None else set()
        events = []
        rows = []
        broken = 0
        for obj in objects:
            metadata = obj.get("metadata") if isinstance(obj, dict) else None
            if not isinstance(metadata, dict):
                broken += 1
                continue
            version = resource_version(metadata)
            stamp = event_time(obj, metadata)
            if version is None or stamp is None:
                broken += 1
                continue
            if self._keep(metadata, version, stamp, horizon, known, rows):
                events.append((stamp, obj))
            if watching and version > self.last_version:
                self.last_version = version
        if broken:
            self.log.error("%d event(s) without a resourceVersion or a timestamp skipped",
                           broken)
        if not events:
            return
        if not rows:
            self.context.emit(self.tag, events, size)
            return
        for uid, version, stamp in rows:
            self.pending[uid] = (version, stamp)
        self.context.emit(self.tag, events, size, Ack(lambda: self._confirmed(rows)))

    def _keep(self, metadata, version, stamp, horizon, known, rows):
        if stamp < horizon:
            return False
        uid = metadata.get("uid")
        if self.db is not None and isinstance(uid, str):
            if uid in known or uid in self.pending:
                return False
            known.add(uid)
            rows.append((uid, version, stamp))
            return True
        return not (self.last_version and version <= self.last_version)

    # ------------------------------------------------------------------ the DB
    def _open_db(self):
        from edgeship.plugins.inputs.tail.db import Error, connect
        conf = self.conf
        try:
            self.db = connect(conf["db"], CREATE, conf["db.sync"], conf["db.locking"],
                              conf["db.journal_mode"])
        except Error as exc:
            self.log.error("could not open/create database %s: %s; going on without it",
                           conf["db"], exc)

    def _known_uids(self, objects):
        """The uids of ``objects`` that the DB holds (one query per UID_QUERY_SIZE)."""
        from edgeship.plugins.inputs.tail.db import Error
        uids = []
        for obj in objects:
            metadata = obj.get("metadata") if isinstance(obj, dict) else None
            uid = metadata.get("uid") if isinstance(metadata, dict) else None
            if isinstance(uid, str):
                uids.append(uid)
        known = set()
        try:
            for start in range(0, len(uids), UID_QUERY_SIZE):
                part = uids[start:start + UID_QUERY_SIZE]
                known.update(row[0] for row in self.db.execute(
                    "SELECT uid FROM in_kubernetes_events WHERE uid IN (%s)"
                    % ",".join("?" * len(part)), part))
        except Error as exc:
            self.log.error("db: reading uids failed: %s", exc)
        return known

    def _confirmed(self, rows):
        """Every output has the records: their uids go to the DB, in one transaction."""
        from edgeship.plugins.inputs.tail.db import Error
        for uid, _, _ in rows:
            self.pending.pop(uid, None)
        if self.db is None:
            return
        try:
            with self.db:
                self.db.execute("BEGIN")
                self.db.executemany("INSERT INTO in_kubernetes_events (uid, resourceVersion, "
                                    "created) VALUES (?, ?, ?)", rows)
        except Error as exc:
            self.log.error("db: saving %d event uid(s) failed: %s", len(rows), exc)
        self._cleanup()

    def _cleanup(self, force=False):
        """Delete the rows older than the retention time."""
        from edgeship.plugins.inputs.tail.db import Error
        now = time.monotonic()
        if self.db is None or not force and now - self.cleaned_at < CLEANUP_EVERY:
            return
        self.cleaned_at = now
        try:
            self.db.execute("DELETE FROM in_kubernetes_events WHERE created <= ?",
                            (ev.now_ns() - self.retention_ns,))
        except Error as exc:
            self.log.error("db: deleting old event uids failed: %s", exc)


PLUGIN = KubernetesEvents
