"""loki output: Grafana Loki's push API, JSON (out_loki).

Kept from Fluent Bit 5.1.1 (reference §4): ``POST /loki/api/v1/push`` with
``{"streams":[{"stream":{labels},"values":[["<ns>","<line>"(,{metadata})],..]},..]}``;
headers User-Agent, Authorization (basic, or ``Bearer_Token``), each ``Header``,
Content-Type, Content-Encoding, ``X-Scope-OrgID`` (``Tenant_ID``, or per record with
``Tenant_ID_Key``: one request per tenant). ``Labels``: ``key=value``, ``key=$accessor`` or
a bare ``$accessor`` (the label named after its keys joined with '_'); ``Label_Keys``;
``Label_Map_Path`` (a JSON map whose string leaves name the label of the record path that
leads to them); ``Auto_Kubernetes_Labels``; no label at all gives ``job=fluent-bit``. Keys
read through an accessor (labels, Structured_Metadata) leave the line, as ``Remove_Keys``
do. ``Line_Format`` json (the record's JSON, as a string) or key_value (``k="v" n=1
map="map[k:v]" list="[a b]"``, strings unescaped); ``Drop_Single_Key`` on/raw;
``Structured_Metadata`` and ``Structured_Metadata_Map_Keys`` as a third value element.
200-205 OK; 400 ERROR ("Not retrying"); anything else RETRY, after a 5xx on a new
connection.

Differences: Fluent Bit sends one stream per record as soon as a label reads the record;
edgeship groups the records of a chunk per label set (streams in order of first appearance,
values in record order), the same entries in a smaller push. With Tenant_ID_Key, Fluent
Bit counts a chunk delivered when one tenant's request succeeded (the others are lost);
edgeship retries only the tenants that failed.
"""
import json

from edgeship.codecs import formats
from edgeship.core import accessor
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import ERROR, OK, RETRY
from edgeship.net.http_client import address_options
from edgeship.plugins.outputs._http import USER_AGENT, HttpOutput

DEFAULT_LABELS = (("job", "fluent-bit"),)
_REMEMBERED_CHUNKS = 256
_MISSING = accessor.MISSING


def _accessor(text, key):
    try:
        found = accessor.accessor(text)
    except ValueError as exc:
        raise ConfigError("loki: %s" % exc, key=key)
    if found is None:
        raise ConfigError("loki: '%s' names no record key" % text, key=key)
    return found


def _label_name(acc):
    return "_".join([acc.key] + [str(step) for step in acc.path])


def _pairs(entries, key):
    """[(name, static text or Accessor)] of a Labels-style list."""
    pairs = []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        if entry.startswith("$"):
            acc = _accessor(entry, key)
            pairs.append((_label_name(acc), acc))
            continue
        name, sep, value = entry.partition("=")
        if not sep or not name.strip():
            raise ConfigError("loki: '%s' is not key=value or $accessor" % entry, key=key)
        value = value.strip()
        pairs.append((name.strip(), _accessor(value, key) if value.startswith("$") else value))
    return pairs


def _without(record, acc):
    """``record`` without the value ``acc`` names (copied along the path, never changed)."""
    if acc.key not in record:
        return record
    out = dict(record)
    if not acc.path:
        del out[acc.key]
        return out
    parent = out[acc.key]
    chain = []
    for step in acc.path[:-1]:
        if isinstance(parent, dict) and step in parent:
            chain.append((parent, step))
            parent = parent[step]
        elif isinstance(parent, list) and isinstance(step, int) and step < len(parent):
            chain.append((parent, step))
            parent = parent[step]
        else:
            return record
    last = acc.path[-1]
    if isinstance(parent, dict) and last in parent:
        parent = dict(parent)
        del parent[last]
    elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
        parent = parent[:last] + parent[last + 1:]
    else:
        return record
    for holder, step in reversed(chain):
        holder = dict(holder) if isinstance(holder, dict) else list(holder)
        holder[step] = parent
        parent = holder
    out[acc.key] = parent
    return out


def _pairs_of(pairs, record, keep_empty):
    """``[(name, text)]`` of the configured ``(name, value or Accessor)`` pairs for
    ``record``: an accessor's value as text; a missing key is left out, an empty text too
    unless ``keep_empty``."""
    found_pairs = []
    for name, value in pairs:
        if isinstance(value, accessor.Accessor):
            found = value.lookup(record)
            if found is _MISSING:
                continue
            value = accessor.to_text(found, _map_text)
            if not value:
                if not keep_empty:
                    continue
                value = ""
        found_pairs.append((name, value))
    return found_pairs


def _map_pairs(found):
    """``[(key, text)]`` of a record's map (kubernetes labels, a metadata map)."""
    return [(str(k), accessor.to_text(v, _map_text) or "") for k, v in found.items()]


def key_value_text(value):
    """A value of a key_value line, as Fluent Bit writes it (strings quoted, unescaped)."""
    if isinstance(value, str):
        return '"' + value + '"'
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return "%d" % value
    if isinstance(value, float):
        return formats.json_float(value)
    if isinstance(value, list):
        return '"[' + " ".join([key_value_text(v) for v in value]) + ']"'
    if isinstance(value, dict):
        return '"map[' + " ".join(["%s:%s" % (k, key_value_text(v))
                                    for k, v in value.items() if isinstance(k, str)]) + ']"'
    if isinstance(value, (bytes, bytearray)):
        return '"' + bytes(value).decode("utf-8", "replace") + '"'
    return ""


def _map_text(value):
    return formats.to_json(value).decode("ascii")


def _escape_json_text(data):
    """JSON text (ASCII, no raw control characters) as the body of a JSON string."""
    return data.replace(b"\\", b"\\\\").replace(b'"', b'\\"')


class LokiOutput(HttpOutput):
    name = "loki"
    description = "Grafana Loki (push API, JSON)"
    options = address_options(3100) + (
        Option("URI", default="/loki/api/v1/push", help="push path"),
        Option("Tenant_ID", help="X-Scope-OrgID of every request"),
        Option("Tenant_ID_Key", help="record accessor of the tenant (one request each)"),
        Option("tenant_id_key_error_handling", default="partial_success", compat=True),
        Option("Labels", "list", help="labels: key=value, key=$accessor or $accessor"),
        Option("Label_Keys", "list", help="record accessors used as labels"),
        Option("Label_Map_Path", help="JSON file mapping record keys to label names"),
        Option("Auto_Kubernetes_Labels", "bool", "off",
               help="every kubernetes['labels'] entry becomes a label"),
        Option("Structured_Metadata", "list",
               help="structured metadata: key=value or key=$accessor"),
        Option("Structured_Metadata_Map_Keys", "list",
               help="accessors of maps whose entries become structured metadata"),
        Option("Remove_Keys", "list", help="record keys (accessors) left out of the line"),
        Option("Drop_Single_Key", default="off",
               help="on: a record of one key sends only its value; raw: a string unquoted"),
        Option("Line_Format", default="json", choices=("json", "key_value"),
               help="line as JSON or key=value pairs"),
        Option("Bearer_Token", help="Authorization: Bearer <token>"),
        Option("Buffer_Size", compat=True),
    ) + HttpOutput.client_options

    def configure(self):
        conf = self.conf
        self.configure_client()
        uri = conf["uri"] or "/"
        self.uri = uri if uri.startswith("/") else "/" + uri
        drop = (conf["drop_single_key"] or "off").strip().lower()
        if drop not in ("raw", "on", "true", "yes", "off", "false", "no"):
            raise ConfigError("loki: invalid Drop_Single_Key '%s'" % drop,
                              key="drop_single_key")
        self.drop_single = drop in ("raw", "on", "true", "yes")
        self.drop_raw = drop == "raw"
        self.key_value = conf["line_format"] == "key_value"
        labels = _pairs(conf["labels"] or [], "labels")
        labels += [(_label_name(acc), acc) for acc in
                   (_accessor(text, "label_keys") for text in conf["label_keys"] or [])]
        if conf["label_map_path"]:
            labels += self._label_map(conf["label_map_path"])
        self.labels = labels
        self.metadata = _pairs(conf["structured_metadata"] or [], "structured_metadata")
        self.metadata_maps = [_accessor(text, "structured_metadata_map_keys")
                              for text in conf["structured_metadata_map_keys"] or []]
        removed = [value for _, value in labels + self.metadata
                   if isinstance(value, accessor.Accessor)]
        removed += [_accessor(text if text.startswith("$") else "$" + text, "remove_keys")
                    for text in conf["remove_keys"] or []]
        self.removed = []
        for acc in removed:
            if (acc.key, acc.path) not in [(a.key, a.path) for a in self.removed]:
                self.removed.append(acc)
        self.static_labels = not self.metadata_maps and not conf["auto_kubernetes_labels"] \
            and all(not isinstance(v, accessor.Accessor) for _, v in labels)
        self.tenant_key = _accessor(conf["tenant_id_key"], "tenant_id_key") \
            if conf["tenant_id_key"] else None
        if conf["bearer_token"] and self.auth is None:
            self.auth = ("Authorization", "Bearer " + conf["bearer_token"])
        self.accepted = {}   # chunk.id -> tenants whose push was accepted

    def _label_map(self, path):
        try:
            with open(path, encoding="utf-8") as f:
                tree = json.load(f)
        except (OSError, ValueError) as exc:
            raise ConfigError("loki: cannot read Label_Map_Path '%s': %s" % (path, exc),
                              key="label_map_path")
        labels = []

        def walk(node, keys):
            if isinstance(node, str):
                labels.append((node, accessor.Accessor(keys[0], keys[1:])))
            elif isinstance(node, dict) and node:
                for key, value in node.items():
                    walk(value, keys + [key])
            else:
                raise ConfigError("loki: Label_Map_Path: values must be label names or maps",
                                  key="label_map_path")

        walk(tree, [])
        return labels

    # ------------------------------------------------------------------ body
    def _labels_of(self, record):
        labels = _pairs_of(self.labels, record, keep_empty=False)
        if self.conf["auto_kubernetes_labels"]:
            kube = record.get("kubernetes")
            kube_labels = kube.get("labels") if isinstance(kube, dict) else None
            if isinstance(kube_labels, dict):
                labels += _map_pairs(kube_labels)
        return tuple(labels) or DEFAULT_LABELS

    def _metadata_of(self, record):
        pairs = _pairs_of(self.metadata, record, keep_empty=True)
        for acc in self.metadata_maps:
            found = acc.get(record)
            if isinstance(found, dict):
                pairs += _map_pairs(found)
        return dict(pairs)

    def _line(self, record):
        """The line's JSON string text (bytes, quotes included)."""
        if self.drop_single and len(record) == 1:
            value = next(iter(record.values()))
            if isinstance(value, str) and (self.drop_raw or self.key_value):
                return formats.to_json(value)
            if self.key_value:
                return formats.to_json(key_value_text(value))
            return b'"' + _escape_json_text(formats.to_json(value)) + b'"'
        if self.key_value:
            return formats.to_json(" ".join(["%s=%s" % (k, key_value_text(v))
                                             for k, v in record.items()
                                             if isinstance(k, str)]))
        return None   # rendered in batch by _push

    def _push(self, events):
        """The push body of ``events`` (one tenant's records)."""
        streams = {}
        records = []
        for time_ns, record in events:
            labels = (tuple(self.labels) or DEFAULT_LABELS) if self.static_labels \
                else self._labels_of(record)
            for acc in self.removed:
                record = _without(record, acc)
            records.append(record)
            streams.setdefault(labels, []).append(len(records) - 1)
        lines = [self._line(r) for r in records]
        plain = [i for i, line in enumerate(lines) if line is None]
        if plain:
            for i, text in zip(plain, formats.json_batch([records[i] for i in plain])):
                lines[i] = b'"' + _escape_json_text(text) + b'"'
        metadata = [formats.to_json(self._metadata_of(events[i][1]))
                    for i in range(len(events))] if (self.metadata or self.metadata_maps) \
            else None
        out = []
        for labels, positions in streams.items():
            values = []
            for i in positions:
                value = b'["%d",' % events[i][0] + lines[i]
                if metadata is not None:
                    value += b"," + metadata[i]
                values.append(value + b"]")
            out.append(b'{"stream":' + formats.to_json(dict(labels)) + b',"values":['
                       + b",".join(values) + b"]}")
        return b'{"streams":[' + b",".join(out) + b"]}"

    # ------------------------------------------------------------------ flush
    def judge(self, status):
        if 200 <= status <= 205:
            return OK
        if status >= 500:
            self.client.close()   # as Fluent Bit: the retry goes on a new connection
        return ERROR if status == 400 else RETRY

    def _tenants(self, events):
        default = self.conf["tenant_id"] or None
        if self.tenant_key is None:
            return {default: events}
        groups = {}
        for event in events:
            value = self.tenant_key.get(event[1])
            tenant = accessor.to_text(value) if value is not None else None
            groups.setdefault(tenant or default, []).append(event)
        return groups

    async def flush(self, chunk):
        done = self.accepted.get(chunk.id, set())
        outcome = OK
        for tenant, events in self._tenants(chunk.events()).items():
            if tenant in done:
                continue
            headers = [USER_AGENT]
            if self.auth is not None:
                headers.append(self.auth)
            headers.extend(self.config_headers)
            headers.append(("Content-Type", "application/json"))
            body = self.encode_body(self._push(events), headers)
            if tenant is not None:
                headers.append(("X-Scope-OrgID", tenant))
            result, _ = await self.send("POST", self.uri, headers, body)
            if result == RETRY:
                outcome = RETRY
            elif result == OK or result == ERROR:
                done.add(tenant)
                if result == ERROR and outcome == OK:
                    outcome = ERROR
        if outcome == RETRY and len(done):
            self.accepted[chunk.id] = done
            while len(self.accepted) > _REMEMBERED_CHUNKS:
                self.accepted.pop(next(iter(self.accepted)))
        else:
            self.accepted.pop(chunk.id, None)
        return outcome


PLUGIN = LokiOutput
