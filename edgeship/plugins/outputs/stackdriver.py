"""stackdriver output: Google Cloud Logging, ``entries:write`` (out_stackdriver).

Kept from Fluent Bit 5.1.1 (checked on the binary, tests/data/stackdriver):
- Auth: a service account (``google_service_credentials``, else the file named by
  ``GOOGLE_APPLICATION_CREDENTIALS`` or ``GOOGLE_SERVICE_CREDENTIALS``, else
  ``service_account_email``/``service_account_secret``) signs a JWT for the
  ``logging.write`` scope (``edgeship.net.gcp``); without a private key the token, the
  project id, and for resources other than generic_* the zone and instance id, come from the
  metadata server (``metadata_server``, ``$METADATA_SERVER``, default
  ``http://metadata.google.internal``), for the account ``default`` unless an e-mail is given.
- Each chunk is one ``POST /v2/entries:write`` to ``cloud_logging_base_url`` (default
  ``https://logging.googleapis.com``), User-Agent ``Fluent-Bit`` (or ``stackdriver_agent``),
  Content-Type ``application/json``, Authorization, gzip with ``compress gzip``. The body:
  ``{"partialSuccess":true,"resource":{"type":<resource>,"labels":{...}},"entries":[...]}``;
  resource labels by type: global ``project_id``; generic_node ``node_id``, ``project_id``,
  ``location``, ``namespace``; generic_task ``job``, ``task_id``, ``project_id``,
  ``location``, ``namespace``; gce_instance ``project_id``, ``zone``, ``instance_id``;
  k8s_cluster ``project_id``, ``location``, ``cluster_name``; k8s_container, k8s_pod and
  k8s_node those three and ``namespace_name``, ``pod_name``, ``container_name`` /
  ``node_name`` from the chunk's local resource id (the first record's
  ``logging.googleapis.com/local_resource_id``, else the tag): the named groups of
  ``custom_k8s_regex`` found in the tag, else in the id, after ``tag_prefix`` (default
  ``<resource>.``), else the id's parts (``k8s_container.<namespace>.<pod>.<container>``,
  ``k8s_pod.<namespace>.<pod>``, ``k8s_node.<node>``). A k8s entry's log name is its
  ``stream`` (stdout/stderr) when it has one. ``resource_labels label=value,...`` (a value
  ``$accessor`` read in the chunk's first record, a string or left out with a warning) are
  the resource's labels instead, ``project_id`` last (a ``project_id`` there is ignored), when
  they name every label the
  resource needs (cluster_name and location for k8s, the generic ones' config keys), or it
  needs none; else they are warned about and not used. Without them, the ``labels`` map of
  the first ``logging.googleapis.com/monitored_resource`` map in the chunk's records (its
  string values) are the resource's labels.
- Each entry, in this order: ``severity`` (the ``severity_key`` value, default
  ``logging.googleapis.com/severity``, a name such as ``ERROR``/``warn``/``E`` as its number),
  ``trace`` (``trace_key``; ``projects/<project>/traces/<trace>`` with
  ``autoformat_stackdriver_trace``), ``spanId``, ``traceSampled`` (boolean), ``insertId``
  (``logging.googleapis.com/insertId``), ``operation`` (id, producer, first, last),
  ``sourceLocation`` (file, line, function), ``httpRequest`` (latency when it reads as
  ``<n>s``, requestMethod, requestUrl, userAgent, remoteIp, serverIp, referer, protocol,
  requestSize, responseSize, status, cacheFillBytes, cacheLookup, cacheHit,
  cacheValidatedWithOriginServer) from the ``logging.googleapis.com/operation``,
  ``logging.googleapis.com/sourceLocation`` and ``http_request_key`` maps (every sub-field
  written, defaults for the missing; unknown sub-fields stay under the key in jsonPayload),
  ``labels`` (the record's ``labels_key`` map, then
  ``labels k=v,...``), ``jsonPayload`` (the record without those keys, the project/log
  name keys, ``stream``, and a ``timestamp`` ``{seconds, nanos}`` map or
  ``timestampSeconds``/``timestampNanos`` pair, which set the time) or ``textPayload`` (the
  ``text_payload_key`` string when it is all that is left), ``logName``
  (``projects/<project_id_key value or export_to_project_id or project>/logs/<log_name_key
  value or tag>``), ``timestamp`` (``%Y-%m-%dT%H:%M:%S.nnnnnnnnnZ``).
- 200 OK; other 4xx ERROR (logged with the answer); 5xx or no answer RETRY.

Differences:
- An ``http://`` cloud_logging_base_url without a ``tls`` key is sent in plain HTTP (Fluent
  Bit's tls is on whatever the scheme).
- A 401 forgets the token and RETRYs, as do 408 and 429 (quota): Fluent Bit drops the chunk
  on every 4xx. A record with an insertId that is not a non-empty string is sent without
  one (the key stays in jsonPayload); Fluent Bit drops the record. A labels_key value that is
  not a map stays in jsonPayload; Fluent Bit fails the whole chunk, retried for ever.
- The metadata server is asked when the first chunk is sent (the chunk is retried while it
  does not answer); Fluent Bit asks at start and stops without an answer.
- The special keys are matched with their exact names (Fluent Bit reads them whatever their
  case but removes them from the payload only with the exact name).
- A k8s chunk whose labels cannot be found is dropped and logged (ERROR); Fluent Bit retries
  it for ever. An unknown resource type is a config error (Fluent Bit retries every chunk).
- httpRequest's ``cacheHit`` is the record's (Fluent Bit writes cacheLookup's value there).
- Not in edgeship: ``test_log_entry_format`` (accepted and not used).
"""
import os
import re
import time
from urllib.parse import urlsplit

from edgeship.codecs import formats
from edgeship.core import accessor
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import ERROR, OK, RETRY
from edgeship.net import gcp
from edgeship.net.http_client import TLS_ON_NET_OPTIONS, HttpClient
from edgeship.plugins.outputs._http import USER_AGENT, HttpOutput
from edgeship.text import onigmo

SCOPE = "https://www.googleapis.com/auth/logging.write"
BASE_URL = "https://logging.googleapis.com"
WRITE_URI = "/v2/entries:write"
METADATA_SERVER = "http://metadata.google.internal"
_PREFIX = "logging.googleapis.com/"
_MAX_SECONDS = 253402300799        # 9999-12-31T23:59:59Z
_INT_TEXT = re.compile(r"[ \t\n\r\f\v]*[+-]?[0-9]+\Z")
_LATENCY = re.compile(r"\s*\d+(.\d+)?\s*s\s*\Z", re.ASCII)
# The record maps that become an entry's fields: (entry field, record key or the option
# naming it, sub-fields (name, kind, default) in Fluent Bit's order).
_STRUCTURED = (
    ("operation", _PREFIX + "operation", (("id", "str", ""), ("producer", "str", ""),
                                          ("first", "bool", False), ("last", "bool", False))),
    ("sourceLocation", _PREFIX + "sourceLocation", (("file", "str", ""), ("line", "int", 0),
                                                    ("function", "str", ""))),
    ("httpRequest", "http_request_key", tuple(
        (name, "str", "") for name in ("requestMethod", "requestUrl", "userAgent", "remoteIp",
                                       "serverIp", "referer", "protocol")) + tuple(
        (name, "int", 0) for name in ("requestSize", "responseSize", "status",
                                      "cacheFillBytes")) + tuple(
        (name, "bool", False) for name in ("cacheLookup", "cacheHit",
                                           "cacheValidatedWithOriginServer"))),
)
INSERT_ID_KEY = _PREFIX + "insertId"
MONITORED_RESOURCE_KEY = _PREFIX + "monitored_resource"
# Always taken out of jsonPayload, with the configured special keys.
_ALWAYS_REMOVED = (MONITORED_RESOURCE_KEY, _PREFIX + "local_resource_id", "stream")
_SEVERITIES = {}
for _number, _names in ((800, "EMERGENCY EMERG"), (700, "A ALERT"),
                        (600, "C F CRIT FATAL CRITICAL"), (500, "E ERR ERROR SEVERE"),
                        (400, "W WARN WARNING"), (300, "N NOTICE"), (200, "I INFO"),
                        (100, "D DEBUG TRACE TRACE_INT FINE FINER FINEST CONFIG"),
                        (0, "DEFAULT")):
    for _name in _names.split():
        _SEVERITIES[_name] = _number
_RESOURCE_LABELS = {
    "global": (("project_id", "project"),),
    "generic_node": (("node_id", "node_id"), ("project_id", "project"),
                     ("location", "location"), ("namespace", "namespace")),
    "generic_task": (("job", "job"), ("task_id", "task_id"), ("project_id", "project"),
                     ("location", "location"), ("namespace", "namespace")),
    "gce_instance": (("project_id", "project"), ("zone", "zone"),
                     ("instance_id", "instance_id")),
    "k8s_cluster": (("project_id", "project"), ("location", "k8s_cluster_location"),
                    ("cluster_name", "k8s_cluster_name")),
}
_K8S = ("project_id", "project"), ("location", "k8s_cluster_location"), \
    ("cluster_name", "k8s_cluster_name")
# The k8s resources whose labels come from each chunk's local_resource_id: its labels, and
# how many '.'-separated parts the id has (the type first).
_LOCAL_RESOURCES = {
    "k8s_container": (("namespace_name", "pod_name", "container_name"), 4),
    "k8s_pod": (("namespace_name", "pod_name"), 3),
    "k8s_node": (("node_name",), 2),
}
for _type, (_names, _) in _LOCAL_RESOURCES.items():
    _RESOURCE_LABELS[_type] = _K8S + tuple((name, name) for name in _names)
LOCAL_RESOURCE_ID_KEY = _PREFIX + "local_resource_id"
DEFAULT_K8S_REGEX = (r"(?<pod_name>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9]([-a-z0-9]*"
                     r"[a-z0-9])?)*)_(?<namespace_name>[^_]+)_(?<container_name>.+)-"
                     r"(?<docker_id>[a-z0-9]{64})\.log$")
_REQUIRED = {
    "generic_node": ("location", "namespace", "node_id"),
    "generic_task": ("location", "namespace", "job", "task_id"),
}
# The labels resource_labels must name to be used, by resource (the k8s ones: cluster).
_REQUIRED_LABELS = dict(_REQUIRED)
for _type in ("k8s_cluster",) + tuple(_LOCAL_RESOURCES):
    _REQUIRED[_type] = ("k8s_cluster_name", "k8s_cluster_location")
    _REQUIRED_LABELS[_type] = ("cluster_name", "location")


def _time_override(record):
    """``(seconds, nanos, keys)`` from a ``timestamp`` {seconds, nanos} map or the
    ``timestampSeconds``/``timestampNanos`` pair, or None. Seconds 0 (also what cannot be
    read, or is past the year 9999) keep the record's time; the keys go all the same."""
    stamp = record.get("timestamp")
    if isinstance(stamp, dict) and "seconds" in stamp and "nanos" in stamp:
        found = stamp["seconds"], stamp["nanos"], ("timestamp",)
    elif "timestampSeconds" in record and "timestampNanos" in record:
        found = record["timestampSeconds"], record["timestampNanos"], \
            ("timestampSeconds", "timestampNanos")
    else:
        return None
    seconds, nanos = _time_part(found[0]), _time_part(found[1])
    if seconds > _MAX_SECONDS or nanos >= formats.NS:
        seconds = 0
    return seconds, nanos, found[2]


def _monitored_labels(events):
    """The string labels of the first record's ``logging.googleapis.com/monitored_resource``
    map that has a non-empty ``labels`` map, or None."""
    for _, record in events:
        resource = record.get(MONITORED_RESOURCE_KEY)
        if isinstance(resource, dict) and isinstance(resource.get("labels"), dict) \
                and resource["labels"]:
            return {k: v for k, v in resource["labels"].items() if isinstance(v, str)}
    return None


def _pairs(items, key):
    """``[(name, value)]`` of ``name=value`` items (both trimmed, neither empty)."""
    pairs = []
    for item in items or ():
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise ConfigError("stackdriver: invalid key value pair on '%s'" % item, key=key)
        pairs.append((name, value))
    return pairs


def _int64(value, default):
    """A sub-field's integer: a non-negative integer, or a string strtoll reads whole."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 <= value < 1 << 64 else default
    if isinstance(value, str) and _INT_TEXT.match(value):
        number = int(value)
        return number if -(1 << 63) <= number < 1 << 63 else default
    return default


def _latency(value):
    """httpRequest.latency: ``<seconds>s``, its digits, '.' and 's' kept."""
    if not isinstance(value, str) or len(value) > 32 or not _LATENCY.match(value):
        return None
    return "".join(ch for ch in value if ch in "0123456789.s")


def _sub_fields(value, fields):
    """``(entry field, extra)`` of an operation/sourceLocation/httpRequest map: each known
    sub-field of the right type, else its default; the unknown ones apart."""
    out = {}
    for name, kind, default in fields:
        found = value.get(name, default)
        if kind == "int":
            out[name] = _int64(found, default)
        elif kind == "bool":
            out[name] = found if isinstance(found, bool) else default
        else:
            out[name] = found if isinstance(found, str) else default
    known = set(out)
    return out, {k: v for k, v in value.items() if k not in known}


def _time_part(value):
    """A timestamp part as Fluent Bit reads it: a non-negative integer or a string of
    digits; anything else 0."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit() and value.isascii() and len(value) < 20:
        return int(value)
    return 0


def _timestamp(time_ns):
    sec, nsec = divmod(time_ns, formats.NS)
    return "%s.%09dZ" % (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)), nsec)


class StackdriverOutput(HttpOutput):
    name = "stackdriver"
    description = "Google Cloud Logging"
    options = gcp.CREDENTIAL_OPTIONS + (
        Option("metadata_server", help="metadata server URL (default $METADATA_SERVER or "
                                       "http://metadata.google.internal)"),
        Option("export_to_project_id", help="project the logs are written to (default: the "
                                            "credentials' project)"),
        Option("project_id_key", default=_PREFIX + "projectId",
               help="record key whose value is the project of its log name"),
        Option("resource", default="global", help="monitored resource type"),
        Option("severity_key", default=_PREFIX + "severity", help="record key of the severity"),
        Option("autoformat_stackdriver_trace", "bool", "false",
               help="write trace as projects/<project>/traces/<trace>"),
        Option("trace_key", default=_PREFIX + "trace", help="record key of the trace"),
        Option("span_id_key", default=_PREFIX + "spanId", help="record key of the span id"),
        Option("trace_sampled_key", default=_PREFIX + "traceSampled",
               help="record key of traceSampled"),
        Option("log_name_key", default=_PREFIX + "logName",
               help="record key of the log name (default: the tag)"),
        Option("http_request_key", default=_PREFIX + "http_request",
               help="record key of a map sent as the entry's httpRequest"),
        Option("k8s_cluster_name", help="k8s_cluster resource: cluster name"),
        Option("k8s_cluster_location", help="k8s_cluster resource: cluster location"),
        Option("location", help="generic_node/generic_task resource: location"),
        Option("namespace", help="generic_node/generic_task resource: namespace"),
        Option("node_id", help="generic_node resource: node id"),
        Option("job", help="generic_task resource: job"),
        Option("task_id", help="generic_task resource: task id"),
        Option("compress", help="gzip: compress the request body"),
        Option("labels", "list", help="labels of every entry, key=value,..."),
        Option("labels_key", default=_PREFIX + "labels", help="record key of a labels map"),
        Option("tag_prefix", help="k8s resources: the tag's prefix before the local resource "
                                  "id (default '<resource>.')"),
        Option("stackdriver_agent", help="User-Agent (default Fluent-Bit)"),
        Option("custom_k8s_regex",
               help="k8s resources: regex with named groups pod_name, namespace_name, "
                    "container_name, node_name, matched on the tag after tag_prefix "
                    "(default: Fluent Bit's, for <pod>_<namespace>_<container>-<id>.log)"),
        Option("resource_labels", "list",
               help="the resource's labels, label=value or label=$record_accessor (of the "
                    "chunk's first record); project_id is added"),
        Option("text_payload_key", help="record key sent as textPayload when it is alone"),
        Option("test_log_entry_format", "bool", "false", compat=True),
        Option("cloud_logging_base_url", help="Cloud Logging API URL (default "
                                              "https://logging.googleapis.com)"),
    ) + tuple(Option("tls", "bool", help="use TLS (default: on, off for an http:// "
                                         "cloud_logging_base_url)") if o.key == "tls" else o
              for o in TLS_ON_NET_OPTIONS)

    def configure(self):
        conf = self.conf
        resource = conf["resource"]
        if resource not in _RESOURCE_LABELS:
            raise ConfigError("stackdriver: unsupported resource type '%s'" % resource,
                              key="resource")
        self.resource_labels = self._resource_labels(resource)
        for key in () if self.resource_labels else _REQUIRED.get(resource, ()):
            if not conf[key]:
                raise ConfigError("stackdriver: resource %s needs '%s'" % (resource, key),
                                  key=key)
        self.labels = dict(_pairs(conf["labels"], "labels"))
        account = gcp.service_account(conf, ("GOOGLE_APPLICATION_CREDENTIALS",
                                             "GOOGLE_SERVICE_CREDENTIALS"))
        email = account.get("client_email")
        if account.get("private_key") and not email:
            raise ConfigError("stackdriver: client_email is not defined",
                              key="service_account_email")
        self.metadata = None
        self.project = account.get("project_id")
        if account.get("private_key"):
            if not self.project:
                raise ConfigError("stackdriver: property 'project_id' is not set (not in the "
                                  "credentials)", key="google_service_credentials")
            self.token = gcp.AccessToken(conf, account, SCOPE)
        else:
            self.metadata = gcp.MetadataServer(conf, conf["metadata_server"] or os.environ.get(
                "METADATA_SERVER") or METADATA_SERVER)
            self.token = gcp.MetadataToken(self.metadata, email or "default")
            self.project = None      # the metadata server's, asked with the first chunk
        self.zone = self.instance_id = None
        self._configure_client(conf["cloud_logging_base_url"] or BASE_URL)
        self.gzip = (conf["compress"] or "").strip().lower() == "gzip"
        agent = conf["stackdriver_agent"]
        self.headers = [("User-Agent", agent) if agent else USER_AGENT,
                        ("Content-Type", "application/json")]
        self.removed = frozenset(_ALWAYS_REMOVED + tuple(
            conf[key] for key in ("project_id_key", "labels_key", "severity_key", "trace_key",
                                  "span_id_key", "trace_sampled_key", "log_name_key")))
        self.resource = None
        self.structured = tuple((field, conf[key] if key == "http_request_key" else key, subs)
                                for field, key, subs in _STRUCTURED)
        self.local = _LOCAL_RESOURCES.get(resource)
        if self.local is not None:
            self.tag_prefix = conf["tag_prefix"] or resource + "."
            try:
                self.k8s_regex = onigmo.compile_onigmo(conf["custom_k8s_regex"]
                                                       or DEFAULT_K8S_REGEX)
            except ValueError as exc:
                raise ConfigError("stackdriver: custom_k8s_regex: %s" % exc,
                                  key="custom_k8s_regex")

    def _resource_labels(self, resource):
        """``[(label, accessor or None, text)]`` of resource_labels when they are used: they
        name every label the resource needs (or it needs none)."""
        pairs = _pairs(self.conf["resource_labels"], "resource_labels")
        if not pairs:
            return None
        missing = [label for label in _REQUIRED_LABELS.get(resource, ())
                   if label not in dict(pairs)]
        if missing:
            self.log.warn("labels set in resource_labels will not be applied, as the required "
                          "resource label [%s] is missing", missing[0])
            return None
        labels = []
        for label, text in pairs:
            if label == "project_id":
                continue      # always the project's, added last
            found = None
            if text.startswith("$"):
                try:
                    found = accessor.accessor(text)
                except ValueError as exc:
                    raise ConfigError("stackdriver: resource_labels: %s" % exc,
                                      key="resource_labels")
            labels.append((label, found, text))
        return labels

    def _labels_of(self, record):
        """The resource_labels of a chunk whose first record is ``record``."""
        labels = {}
        for label, found, text in self.resource_labels:
            if found is None:
                labels[label] = text
                continue
            value = found.lookup(record)
            if isinstance(value, str):
                labels[label] = value
            else:
                self.log.warn("failed to find a corresponding entry for resource label entry "
                              "[%s=%s]", label, text)
        labels["project_id"] = self.project
        return labels

    def _configure_client(self, url):
        try:
            parts = urlsplit(url.rstrip("/"))
            port = parts.port
        except ValueError as exc:
            raise ConfigError("stackdriver: bad cloud_logging_base_url '%s': %s" % (url, exc),
                              key="cloud_logging_base_url")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("stackdriver: cloud_logging_base_url must be http(s)://host"
                              "[:port][/path], got '%s'" % url, key="cloud_logging_base_url")
        https = parts.scheme == "https"
        tls = https if self.conf["tls"] is None else self.conf["tls"]
        self.client = HttpClient(dict(self.conf, tls=tls), parts.hostname,
                                 port or (443 if https else 80))
        self.uri = parts.path + WRITE_URI

    def summary(self):
        return "%s%s resource=%s" % (self.client.label, self.uri, self.conf["resource"])

    async def _resource(self):
        """The resource's type and fixed labels, once the project (and zone, instance) are
        known."""
        if self.metadata is not None and self.project is None:
            self.project = await self.metadata.text("/computeMetadata/v1/project/project-id")
            if not self.conf["resource"].startswith("generic_"):
                zone = await self.metadata.text("/computeMetadata/v1/instance/zone")
                parts = zone.split("/", 3)
                if len(parts) != 4:
                    raise gcp.TokenError("wrong format of zone response '%s'" % zone)
                self.zone = parts[3]
                self.instance_id = await self.metadata.text("/computeMetadata/v1/instance/id")
        conf = self.conf
        values = {"project": self.project, "zone": self.zone,
                  "instance_id": self.instance_id}
        labels = {}
        for label, source in _RESOURCE_LABELS[conf["resource"]]:
            if self.local is not None and source in self.local[0]:
                continue     # from each chunk's local_resource_id
            value = values[source] if source in values else conf[source]
            if value:
                labels[label] = value
        self.export_project = conf["export_to_project_id"] or self.project
        return {"type": conf["resource"], "labels": labels}

    def _local_labels(self, chunk):
        """The labels a k8s resource takes from the chunk's local_resource_id (the first
        record's ``logging.googleapis.com/local_resource_id``, else the tag): the named groups
        of custom_k8s_regex on the tag, else on the id, after tag_prefix; else the id's
        '.'-separated parts. None when neither gives them."""
        tag, prefix = chunk.tag, self.tag_prefix
        events = chunk.events()
        local_id = events[0][1].get(LOCAL_RESOURCE_ID_KEY) if events else None
        if not isinstance(local_id, str):
            local_id = tag
        match = None
        if len(tag) <= len(prefix) or tag.startswith(prefix):
            match = self.k8s_regex.search(tag[len(prefix):])
        if match is None and len(local_id) >= len(prefix):
            match = self.k8s_regex.search(local_id[len(prefix):])
        names, parts = self.local
        if match is not None:
            found = match.groupdict()
            return {name: found[name] for name in names if found.get(name)}
        if local_id[:len(prefix)].lower() != prefix.lower():
            return None
        # The prefix's own dots do not split (k8s_container.ns.pod.container).
        pieces = (local_id[:len(prefix) - 1].replace(".", "_") +
                  local_id[len(prefix) - 1:]).split(".", parts - 1)
        if len(pieces) != parts or not all(pieces[1:]):
            return None
        return dict(zip(names, pieces[1:]))

    def _entry(self, time_ns, record, tag, problems):
        conf = self.conf
        entry = {}
        severity = record.get(conf["severity_key"])
        if isinstance(severity, str) and severity.upper() in _SEVERITIES:
            entry["severity"] = _SEVERITIES[severity.upper()]
        trace = record.get(conf["trace_key"])
        if isinstance(trace, str):
            entry["trace"] = "projects/%s/traces/%s" % (self.project, trace) \
                if conf["autoformat_stackdriver_trace"] else trace
        span = record.get(conf["span_id_key"])
        if isinstance(span, str):
            entry["spanId"] = span
        sampled = record.get(conf["trace_sampled_key"])
        if isinstance(sampled, bool):
            entry["traceSampled"] = sampled
        skipped = set()
        if INSERT_ID_KEY in record:
            insert_id = record[INSERT_ID_KEY]
            if isinstance(insert_id, str) and insert_id:
                entry["insertId"] = insert_id
                skipped.add(INSERT_ID_KEY)
            else:
                problems[0] += 1
        kept = {}       # a structured key's unknown sub-fields, left in jsonPayload
        for field, key, subs in self.structured:
            value = record.get(key)
            if isinstance(value, dict):
                entry[field], extra = _sub_fields(value, subs)
                skipped.add(key)
                if field == "httpRequest":
                    latency = _latency(value.get("latency"))
                    extra.pop("latency", None)
                    if latency:
                        entry[field] = dict(latency=latency, **entry[field])
                if extra:
                    kept[key] = extra
        payload_labels = record.get(conf["labels_key"])
        keep_labels = payload_labels is not None and not isinstance(payload_labels, dict)
        if keep_labels:
            problems[1] += 1
        if isinstance(payload_labels, dict) and payload_labels or self.labels:
            labels = dict(payload_labels) if isinstance(payload_labels, dict) else {}
            labels.update(self.labels)
            entry["labels"] = labels
        override = _time_override(record)
        if override is not None:
            seconds, nanos, keys = override
            skipped.update(keys)
            if seconds:
                time_ns = seconds * formats.NS + nanos
        removed = self.removed
        payload = {k: kept.get(k, v) for k, v in record.items()
                   if k in kept or k not in skipped and (
                       k not in removed or (keep_labels and k == conf["labels_key"]))}
        text_key = conf["text_payload_key"]
        if text_key and len(payload) == 1 and isinstance(payload.get(text_key), str):
            entry["textPayload"] = payload[text_key]
        else:
            entry["jsonPayload"] = payload
        project = record.get(conf["project_id_key"])
        log_name = record.get(conf["log_name_key"])
        if self.local is not None and not isinstance(log_name, str) \
                and record.get("stream") in ("stdout", "stderr"):
            log_name = record["stream"]
        entry["logName"] = "projects/%s/logs/%s" % (
            project if isinstance(project, str) else self.export_project,
            log_name if isinstance(log_name, str) else tag)
        entry["timestamp"] = _timestamp(time_ns)
        return entry

    def body(self, chunk, head):
        problems = [0, 0]
        entries = [self._entry(t, record, chunk.tag, problems) for t, record in chunk.events()]
        if problems[0]:
            self.log.warn("%d records have an insertId that is not a non-empty string: sent "
                          "without one", problems[0])
        if problems[1]:
            self.log.warn("%d records have a %s that is not a map: kept in jsonPayload",
                          problems[1], self.conf["labels_key"])
        return head + b",".join(formats.json_batch(entries)) + b"]}"

    def judge(self, status):
        if status == 200:
            return OK
        if 400 <= status < 500 and status not in (401, 408, 429):
            return ERROR
        return RETRY

    async def flush(self, chunk):
        try:
            if self.resource is None:
                self.resource = await self._resource()
            authorization = await self.token.header()
        except gcp.TokenError as exc:
            self.log.error("cannot retrieve oauth2 token: %s", exc)
            return RETRY
        resource = self.resource
        events = chunk.events()
        monitored = None if self.resource_labels is not None else _monitored_labels(events)
        if self.resource_labels is not None:
            resource = {"type": resource["type"],
                        "labels": self._labels_of(events[0][1] if events else {})}
        elif monitored is not None:
            resource = {"type": resource["type"], "labels": monitored}
        elif self.local is not None:
            labels = self._local_labels(chunk)
            if labels is None:
                self.log.error("cannot extract the %s resource labels from the tag '%s' or the "
                               "local_resource_id: the chunk is dropped", self.conf["resource"],
                               chunk.tag)
                return ERROR
            resource = {"type": resource["type"], "labels": dict(resource["labels"], **labels)}
        head = b'{"partialSuccess":true,"resource":' + formats.to_json(resource) + \
            b',"entries":['
        headers = self.headers + [("Authorization", authorization)]
        body = self.encode_body(self.body(chunk, head), headers)
        result, response = await self.send("POST", self.uri, headers, body)
        if response is not None and response.status == 401:
            self.token.forget()
        return result

    async def stop(self):
        await HttpOutput.stop(self)
        self.token.close()
        if self.metadata is not None:
            self.metadata.close()


PLUGIN = StackdriverOutput
