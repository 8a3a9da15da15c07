"""splunk output: Splunk HTTP Event Collector (out_splunk).

Kept from Fluent Bit 5.1.1 (reference §6): ``POST /services/collector/event`` (with
``?auto_extract_timestamp=true`` and no ``time`` under Auto_Extract_Timestamp); headers
User-Agent, Authorization (basic from http_User, which wins, else ``Splunk <Splunk_Token>``;
one of them is required), X-Splunk-Request-Channel (``Channel``), Content-Encoding, and no
Content-Type; the body one JSON object per record back to back: ``time`` (a double),
``host`` (``Event_Host``, a template), ``source``, ``sourcetype`` (``Event_Sourcetype_Key``'s
value first), ``index`` (``Event_Index_Key``'s first), ``fields`` (each ``Event_Field name
$accessor``), then ``event`` (the record, or the value at ``Event_Key``; a record without it
is dropped); values that render empty are left out. ``Splunk_Send_Raw``: the record (or the
Event_Key value as JSON) alone, each followed by a newline. Only 200 is OK; other 4xx but
408/429 ERROR; the rest RETRY. Workers 2 by default.

Differences: the ``hec_token`` record metadata of in_splunk and OpenTelemetry resource
fields are not read (edgeship records carry no metadata).
"""
from edgeship.codecs import formats
from edgeship.core import accessor
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import ERROR, OK, RETRY
from edgeship.net.http_client import address_options
from edgeship.plugins.outputs._http import USER_AGENT, HttpOutput

_MISSING = accessor.MISSING


def _text(value):
    return accessor.to_text(value, lambda v: formats.to_json(v).decode("ascii"))


class SplunkOutput(HttpOutput):
    name = "splunk"
    description = "Splunk HTTP Event Collector"
    workers = 2
    options = address_options(8088) + (
        Option("Splunk_Token", help="HEC token: Authorization: Splunk <token>"),
        Option("Splunk_Send_Raw", "bool", "off", help="send the records without the "
                                                     "time/event wrapper"),
        Option("Event_Key", help="record accessor of the value sent as the event"),
        Option("Event_Host", help="host of the events (a template)"),
        Option("Event_Source", help="source of the events"),
        Option("Event_Sourcetype", help="sourcetype of the events"),
        Option("Event_Sourcetype_Key", help="record accessor of the sourcetype"),
        Option("Event_Index", help="index of the events"),
        Option("Event_Index_Key", help="record accessor of the index"),
        Option("Event_Field", multiple=True, help="'name $accessor' added under fields"),
        Option("Auto_Extract_Timestamp", "bool", "off",
               help="let Splunk find the time in the event"),
        Option("Channel", help="X-Splunk-Request-Channel header"),
        Option("http_buffer_size", compat=True),
        Option("http_debug_bad_request", "bool", "off", compat=True),
    ) + HttpOutput.client_options

    def configure(self):
        conf = self.conf
        self.configure_client()
        if not conf["http_user"] and not conf["splunk_token"]:
            raise ConfigError("splunk: Splunk_Token or http_User is required",
                              key="splunk_token")
        self.headers = [USER_AGENT, self.auth or
                        ("Authorization", "Splunk " + conf["splunk_token"])]
        if conf["channel"]:
            self.headers.append(("X-Splunk-Request-Channel", conf["channel"]))
        self.uri = "/services/collector/event"
        if conf["auto_extract_timestamp"]:
            self.uri += "?auto_extract_timestamp=true"
        self.event_key = self._accessor("event_key")
        self.host = None
        if conf["event_host"]:
            try:
                self.host = formats.record_template(conf["event_host"])
            except ValueError as exc:
                raise ConfigError("splunk: %s" % exc, key="event_host")
        self.sourcetype_key = self._accessor("event_sourcetype_key")
        self.index_key = self._accessor("event_index_key")
        self.fields = []
        for entry in conf["event_field"]:
            name, _, pattern = entry.strip().partition(" ")
            if not pattern.strip():
                raise ConfigError("splunk: Event_Field needs 'name $accessor', got '%s'"
                                  % entry, key="event_field")
            self.fields.append((name, self._accessor("event_field", pattern.strip())))

    def _accessor(self, key, text=None):
        text = text or self.conf[key]
        if not text:
            return None
        try:
            return accessor.accessor(text)
        except ValueError as exc:
            raise ConfigError("splunk: %s" % exc, key=key)

    def _wrapped(self, tag, record, event):
        conf = self.conf
        out = {}
        if self.host is not None:
            out["host"] = self.host.render(record, tag)
        out["source"] = conf["event_source"]
        sourcetype = self.sourcetype_key.get(record) if self.sourcetype_key else None
        out["sourcetype"] = _text(sourcetype) if sourcetype is not None \
            else conf["event_sourcetype"]
        index = self.index_key.get(record) if self.index_key else None
        out["index"] = _text(index) if index is not None else conf["event_index"]
        out = {k: v for k, v in out.items() if v}
        if self.fields:
            fields = {}
            for name, acc in self.fields:
                value = acc.lookup(record)
                if value is not _MISSING:
                    fields[name] = value
            out["fields"] = fields
        out["event"] = event
        return out

    def body(self, chunk):
        send_raw = self.conf["splunk_send_raw"]
        times, values = [], []
        for time_ns, record in chunk.events():
            event = record
            if self.event_key is not None:
                event = self.event_key.lookup(record)
                if event is _MISSING or event == "":
                    continue
            times.append(time_ns)
            values.append(event if send_raw else self._wrapped(chunk.tag, record, event))
        parts = formats.json_batch(values)
        if send_raw:
            return b"".join(part + b"\n" for part in parts)
        if self.conf["auto_extract_timestamp"]:
            return b"".join(parts)
        return b"".join([b'{"time":' + formats.date_json(t) + b"," + part[1:]
                         for t, part in zip(times, parts)])

    def judge(self, status):
        if status == 200:
            return OK
        if 400 <= status < 500 and status not in (408, 429):
            return ERROR
        return RETRY

    async def flush(self, chunk):
        body = self.body(chunk)
        if not body:
            return OK
        headers = list(self.headers)
        body = self.encode_body(body, headers)
        headers.extend(self.config_headers)
        result, _ = await self.send("POST", self.uri, headers, body)
        return result


PLUGIN = SplunkOutput
