"""The Elasticsearch ``_bulk`` output shared by es and opensearch (out_es, out_opensearch).

Kept from Fluent Bit 5.1.1 (reference §3): one ``POST <Path>/_bulk`` per chunk, NDJSON: per
record an action line ``{"<op>":{"_index":..,"_type":..,"_id":..}}`` (no ``_type`` with
Suppress_Type_Name) and the source, each ending in a newline; the source starts with
``Time_Key`` (always added: ``strftime(Time_Key_Format)`` + ``.mmmZ``, ``.nnnnnnnnnZ`` with
Time_Key_Nanos), then ``Tag_Key`` with Include_Tag_Key, then the record (Replace_Dots turns
'.' in keys into '_' at every level); Write_Operation create/index, update and upsert as
``update`` with ``{"doc":..}`` / ``{"doc_as_upsert":true,"doc":..}``; Logstash_Format index
``<prefix><separator><strftime(Logstash_DateFormat, record time)>`` with Logstash_Prefix_Key;
``Index`` through strftime at the current time; Generate_ID as a hash of the msgpack
source (es: MurmurHash3 x64-128, opensearch: XXH3-128); Id_Key's string value when it is
safe; headers Content-Type ``application/x-ndjson``, Authorization, User-Agent, Content-Encoding; Trace_Output prints
the body, Trace_Error logs the answer; any HTTP status but 200/201 is a RETRY.

A bulk answer with ``"errors":true`` is judged item by item, and here edgeship differs on
purpose: Fluent Bit's es calls the chunk delivered when one item succeeded (the failed ones
are lost) and retries a chunk whose items all answered 409; its opensearch resends the whole
chunk when one item failed (duplicating the others). edgeship remembers which records of the
chunk were accepted (2xx, or 409: the document already exists, e.g. sent before a lost
answer) and retries only the others, so nothing is lost or stored twice; a chunk whose items
were all accepted is OK. The first failed item's reason is logged once per chunk.
"""
import sys
import time

from edgeship.codecs import formats, untrusted
from edgeship.codecs.msgpack import packb
from edgeship.core import accessor
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option, to_size
from edgeship.engine.plugin import OK, RETRY
from edgeship.net.http_client import address_options
from edgeship.plugins.outputs._http import USER_AGENT, HttpOutput

CONTENT_TYPE = ("Content-Type", "application/x-ndjson")
# Chunks whose accepted records are remembered between retries; older ones are forgotten
# (their next retry then sends them whole again, at-least-once).
_REMEMBERED_CHUNKS = 256
_PREFIX_MAX = 128

BULK_OPTIONS = address_options(9200) + (
    Option("Index", default="fluent-bit", help="index name (strftime at the current time)"),
    Option("Type", default="_doc", help="document type (_type)"),
    Option("Suppress_Type_Name", "bool", "off", help="leave _type out (Elasticsearch 7+)"),
    Option("Logstash_Format", "bool", "off", help="index <prefix>-<date of the record>"),
    Option("Logstash_Prefix", default="logstash", help="index prefix with Logstash_Format"),
    Option("Logstash_Prefix_Separator", default="-", help="between prefix and date"),
    Option("Logstash_Prefix_Key", help="record accessor of a prefix taken from the record"),
    Option("Logstash_DateFormat", default="%Y.%m.%d", help="strftime of the index date"),
    Option("Time_Key", default="@timestamp", help="key of the record time in the source"),
    Option("Time_Key_Format", default="%Y-%m-%dT%H:%M:%S", help="strftime of Time_Key"),
    Option("Time_Key_Nanos", "bool", "off", help="nanoseconds instead of milliseconds"),
    Option("Include_Tag_Key", "bool", "off", help="add the tag to the source"),
    Option("Tag_Key", default="flb-key", help="key of the tag with Include_Tag_Key"),
    Option("Buffer_Size", default="512k",
           help="bytes of the answer read (false: all of it)"),
    Option("Path", default="", help="path before /_bulk (behind a reverse proxy)"),
    Option("Pipeline", help="ingest pipeline"),
    Option("Generate_ID", "bool", "off", help="_id from a hash of the source"),
    Option("Write_Operation", default="create", choices=("create", "index", "update", "upsert"),
           help="bulk action"),
    Option("Id_Key", help="record accessor of the _id"),
    Option("Replace_Dots", "bool", "off", help="'.' in keys becomes '_'"),
    Option("Current_Time_Index", "bool", "off", help="index date from the flush time"),
    Option("Trace_Output", "bool", "off", help="print each bulk body to stdout"),
    Option("Trace_Error", "bool", "off", help="log the answer of a failed bulk request"),
)


def _safe(value):
    """Fluent Bit's test of a value put in an action line: a string without '"', '\\' or
    control characters."""
    return isinstance(value, str) and '"' not in value and "\\" not in value \
        and not any(c < " " for c in value)


def _replace_dots(value):
    if isinstance(value, dict):
        return {(k.replace(".", "_") if isinstance(k, str) else k): _replace_dots(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_dots(v) for v in value]
    return value


class BulkOutput(HttpOutput):
    pipeline_sep = "?"          # opensearch: "/?"
    index_is_template = False   # opensearch: Index is a record-accessor template

    def configure(self):
        conf = self.conf
        self.configure_client(*self.cloud_address())
        self.operation = conf["write_operation"]
        if self.operation in ("update", "upsert") and not (conf["id_key"]
                                                            or conf["generate_id"]):
            raise ConfigError("%s: Write_Operation %s needs Id_Key or Generate_ID"
                              % (self.name, self.operation), key="write_operation")
        self.uri = (conf["path"] or "").rstrip("/") + "/_bulk"
        if conf["pipeline"]:
            self.uri += self.pipeline_sep + "pipeline=" + conf["pipeline"]
        self.time_key = conf["time_key"]
        self.time_format = conf["time_key_format"]
        self.nanos = conf["time_key_nanos"]
        self.tag_key = conf["tag_key"] if conf["include_tag_key"] else None
        self.id_key = self._accessor("id_key")
        self.prefix_key = self._accessor("logstash_prefix_key")
        self.index_template = None
        if self.index_is_template and "$" in conf["index"]:
            try:
                self.index_template = formats.record_template(conf["index"])
            except ValueError as exc:
                raise ConfigError("%s: Index: %s" % (self.name, exc), key="index")
        self.response_limit = self._buffer_size(conf["buffer_size"])
        self.accepted = {}   # chunk.id -> indexes of its records already accepted
        self._time_cache = (None, None)
        self.headers = [CONTENT_TYPE]
        if self.auth is not None:
            self.headers.append(self.auth)
        self.headers.append(USER_AGENT)
        self.headers.extend(self.config_headers)

    def cloud_address(self):
        return None, None

    def generated_id(self, source):
        """The Generate_ID ``_id`` of a source (a hash of its msgpack bytes)."""
        raise NotImplementedError

    def _accessor(self, key):
        if not self.conf[key]:
            return None
        try:
            return accessor.accessor(self.conf[key])
        except ValueError as exc:
            raise ConfigError("%s: %s" % (self.name, exc), key=key)

    def _buffer_size(self, text):
        if text.strip().lower() in ("false", "off", "0"):
            return None
        try:
            return to_size(text)
        except ValueError as exc:
            raise ConfigError("%s: Buffer_Size: %s" % (self.name, exc), key="buffer_size")

    # ------------------------------------------------------------------ body
    def _time_text(self, time_ns):
        sec, nsec = divmod(time_ns, formats.NS)
        cached_sec, day = self._time_cache
        if cached_sec != sec:
            day = time.strftime(self.time_format, time.gmtime(sec))
            self._time_cache = (sec, day)
        if self.nanos:
            return "%s.%09dZ" % (day, nsec)
        return "%s.%03dZ" % (day, nsec // 1000000)

    def _index_of(self, conf, time_ns, record, now):
        if conf["logstash_format"]:
            prefix = conf["logstash_prefix"]
            if self.prefix_key is not None:
                value = self.prefix_key.get(record)
                if _safe(value) and value:
                    prefix = value.encode("utf-8")[:_PREFIX_MAX].decode("utf-8", "ignore")
            when = now if conf["current_time_index"] else time_ns // formats.NS
            return prefix + conf["logstash_prefix_separator"] + time.strftime(
                conf["logstash_dateformat"], time.gmtime(when))
        if self.index_template is not None:
            rendered = self.index_template.render(record)
            return time.strftime(rendered, time.gmtime(now)) if _safe(rendered) \
                else conf["index"]
        return None

    def _action(self, index, doc_id):
        conf = self.conf
        op = "update" if self.operation in ("update", "upsert") else self.operation
        parts = ['{"%s":{"_index":' % op, formats.to_json(index).decode("ascii")]
        if not conf["suppress_type_name"]:
            parts.append(',"_type":' + formats.to_json(conf["type"]).decode("ascii"))
        if doc_id is not None:
            parts.append(',"_id":' + formats.to_json(doc_id).decode("ascii"))
        parts.append("}}")
        return "".join(parts).encode("ascii")

    def _source_head(self, time_ns, tag):
        """``{"<Time_Key>":"<time>"`` (and ``,"<Tag_Key>":"<tag>"``): the start of a source,
        spliced before the record's own JSON keys (a record key of the same name is sent as
        well, as Fluent Bit does)."""
        head = {self.time_key: self._time_text(time_ns)}
        if self.tag_key is not None:
            head[self.tag_key] = tag
        return formats.to_json(head)[:-1]

    def bulk_body(self, chunk, skip):
        """(body, positions of the records sent) for the records of ``chunk`` not in
        ``skip``."""
        conf = self.conf
        now = int(time.time())
        default_index = conf["index"]
        if "%" in default_index:
            default_index = time.strftime(default_index, time.gmtime(now))
        plain_action = self._action(default_index, None) + b"\n"
        per_record_index = conf["logstash_format"] or self.index_template is not None
        needs_id = self.id_key is not None or conf["generate_id"]
        wrap = {"update": b'{"doc":', "upsert": b'{"doc_as_upsert":true,"doc":'}.get(
            self.operation)
        records, times, actions, sent = [], [], [], []
        skipped = 0
        for position, (time_ns, record) in enumerate(chunk.events()):
            if position in skip:
                continue
            if conf["replace_dots"]:
                record = _replace_dots(record)
            action = plain_action
            if per_record_index or needs_id:
                index = self._index_of(conf, time_ns, record, now) if per_record_index \
                    else None
                doc_id = None
                if conf["generate_id"]:
                    source = {self.time_key: self._time_text(time_ns)}
                    if self.tag_key is not None:
                        source[self.tag_key] = chunk.tag
                    source.update(record)
                    doc_id = self.generated_id(packb(source))
                elif self.id_key is not None:
                    value = self.id_key.get(record)
                    doc_id = value if _safe(value) else None
                if doc_id is None and wrap is not None:
                    skipped += 1
                    continue
                if index is not None or doc_id is not None:
                    action = self._action(default_index if index is None else index,
                                          doc_id) + b"\n"
            records.append(record)
            times.append(time_ns)
            actions.append(action)
            sent.append(position)
        if skipped:
            self.log.warn("%d record(s) without a usable %s skipped (Write_Operation %s)",
                          skipped, conf["id_key"], self.operation)
        body = []
        last_ns = head = None
        for action, time_ns, part in zip(actions, times, formats.json_batch(records)):
            if time_ns != last_ns:   # records of a batch often share a time
                last_ns, head = time_ns, self._source_head(time_ns, chunk.tag)
            source = head + (b"}" if part == b"{}" else b"," + part[1:])
            if wrap is not None:
                source = wrap + source + b"}"
            body += (action, source, b"\n")
        return b"".join(body), sent

    # ------------------------------------------------------------------ answer
    def judge(self, status):
        return OK if status in (200, 201) else RETRY

    def _items(self, response):
        """(accepted positions in the request, first failure text) of a bulk answer, or
        None when the answer is not one."""
        body = response.body
        if self.response_limit is not None and len(body) > self.response_limit:
            body = body[:self.response_limit]
        try:
            answer = untrusted.loads(body)
        except ValueError:
            if b'"errors":false,"items":[' in body:
                return True, None
            return None
        if not isinstance(answer, dict) or "errors" not in answer:
            return None
        if answer["errors"] is False:
            return True, None
        items = answer.get("items")
        if not isinstance(items, list):
            return None
        accepted = set()
        reason = None
        for index, item in enumerate(items):
            result = next(iter(item.values()), None) if isinstance(item, dict) and item \
                else None
            status = result.get("status") if isinstance(result, dict) else None
            if isinstance(status, int) and (200 <= status < 300 or status == 409):
                accepted.add(index)
            elif reason is None:
                error = result.get("error") if isinstance(result, dict) else None
                if isinstance(error, dict):
                    reason = "status %s, %s: %s" % (status, error.get("type"),
                                                    error.get("reason"))
                else:
                    reason = "status %s" % (status,)
        return accepted, reason

    async def flush(self, chunk):
        skip = self.accepted.get(chunk.id, ())
        body, sent = self.bulk_body(chunk, skip)
        if not sent:
            self.accepted.pop(chunk.id, None)
            return OK
        if self.conf["trace_output"]:
            sys.stdout.buffer.write(body)
            sys.stdout.flush()
        headers = list(self.headers)
        if self.gzip:
            headers.insert(len(headers) - len(self.config_headers), ("Content-Encoding", "gzip"))
        payload = self.encode_body(body, []) if self.gzip else body
        result, response = await self.send("POST", self.uri, headers, payload)
        if result != OK:
            return result
        verdict = self._items(response)
        if verdict is None:
            self.log.error("%s, HTTP status=%d URI=%s: not a bulk answer: %s",
                           self.client.label, response.status, self.uri,
                           response.first_line())
            return RETRY
        accepted, reason = verdict
        if accepted is True or len(accepted) == len(sent):
            self.accepted.pop(chunk.id, None)
            return OK
        done = set(skip)
        done.update(sent[i] for i in accepted if i < len(sent))
        self.accepted[chunk.id] = done
        while len(self.accepted) > _REMEMBERED_CHUNKS:
            self.accepted.pop(next(iter(self.accepted)))
        self.log.error("%d of %d record(s) refused by the bulk request, retried: %s",
                       len(sent) - len(accepted), len(sent), reason)
        if self.conf["trace_error"]:
            self.log.error("error: Output\n%s", response.body.decode("utf-8", "replace"))
        return RETRY
