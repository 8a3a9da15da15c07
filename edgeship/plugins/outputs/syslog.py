"""syslog output: RFC 5424 or RFC 3164 messages over UDP, TCP or TLS (out_syslog).

Fluent Bit 5.1.1's behaviour kept, byte for byte:

* PRI = facility * 8 + severity. ``Syslog_Severity_Key``'s value: one digit 0-7 or a
  keyword (emerg alert crit err warning notice info debug, any case); ``Syslog_Facility_Key``'s:
  0-23 or a keyword (kern user ... local7); integers count as their digits; anything else
  falls back to ``Syslog_Severity_Preset`` (6) / ``Syslog_Facility_Preset`` (1).
* RFC 5424: ``<PRI>1 YYYY-MM-DDThh:mm:ss.uuuuuuZ HOST APP PROCID MSGID SD``, UTC, microseconds
  truncated, ``-`` for a missing field, host cut to 255 bytes, app 48, procid 128, msgid 32;
  then, only when there is a message, a space, the UTF-8 BOM and the message. SD: one
  ``[ID k="v" ...]`` per ``Syslog_SD_Key`` (repeatable) whose value is a map, in record order;
  IDs and names cut to 32 bytes (unless ``allow_longer_sd_id``), bytes RFC 5424 forbids there
  as ``_``; ``"``, ``\\`` and ``]`` escaped in values; nested maps and arrays left out.
* RFC 3164: ``<PRI>Mmm dd hh:mm:ss `` (day space-padded, UTC), ``HOST `` if known,
  ``APP[PROCID]: `` if APP is known, then the message.
* A message that starts with ``<`` is sent as it is, without a header.
* ``*_Key`` values are used when they are strings, numbers (``%f`` for floats) or booleans;
  ``*_Preset`` fill the fields whose key is missing.
* The whole message is cut to ``Syslog_MaxSize`` bytes (default 2048 for rfc5424, 1024 for
  rfc3164; possibly inside a UTF-8 sequence), then TCP/TLS add a ``\\n``
  (non-transparent framing, as Fluent Bit; receivers such as rsyslog's imtcp take it next to
  octet counting). UDP: one datagram per record.
* A connection failure or a write error is a RETRY. TCP has no application-level
  acknowledgement (nor in Fluent Bit): a flush is OK once every message is in the kernel on a
  live connection; UDP once every datagram was handed to ``send`` (edgeship/net/stream.py).

Differences: Fluent Bit logs ``invalid severity``/``invalid facility`` even for a keyword it
accepted (its loop never stops at a match), once per record; edgeship logs only values it
could not use, once per chunk with a count. ``Mode dtls`` is refused at start (Python has no
DTLS); Fluent Bit supports it.
"""
import re
import time

from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.net.stream import NET_OPTIONS, Sender
from edgeship.net.tls import TLS_OPTIONS, tls_context
from edgeship.plugins.outputs._stream import SenderOutput

NS = 1000000000
SEVERITIES = {b"emerg": 0, b"alert": 1, b"crit": 2, b"err": 3, b"warning": 4, b"notice": 5,
              b"info": 6, b"debug": 7}
FACILITIES = {b"kern": 0, b"user": 1, b"mail": 2, b"daemon": 3, b"auth": 4, b"syslog": 5,
              b"lpr": 6, b"news": 7, b"uucp": 8, b"cron": 9, b"authpriv": 10, b"ftp": 11,
              b"ntp": 12, b"security": 13, b"console": 14}
FACILITIES.update({b"local%d" % n: 16 + n for n in range(8)})
MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct",
          b"Nov", b"Dec")
BOM = b"\xef\xbb\xbf"
# SD-NAME: printable US-ASCII but '=', space, ']' and '"'; any other byte becomes '_'.
_SD_NAME = bytes(c if 33 <= c <= 126 and c not in b'=]"' else 95 for c in range(256))
_SD_VALUE_ESCAPE = re.compile(rb'(["\\\]])')
# (record field, option) for the header fields, in Fluent Bit's matching order.
_TEXT_FIELDS = ("hostname", "appname", "procid", "msgid", "message")


def _scalar(value):
    """The bytes a *_key option takes from a record value, or None for maps, arrays, null."""
    kind = type(value)
    if kind is str:
        return value.encode("utf-8", "surrogateescape")
    if kind is bool:
        return b"true" if value else b"false"
    if kind is int:
        return b"%d" % value
    if kind is float:
        return b"%f" % value
    if kind is bytes or kind is bytearray:
        return bytes(value)
    return None


def severity_of(value):
    """0-7 from a severity value (bytes), or None."""
    if len(value) == 1 and 48 <= value[0] <= 55:
        return value[0] - 48
    return SEVERITIES.get(value.lower())


def facility_of(value):
    """0-23 from a facility value (bytes), or None."""
    if len(value) == 1 and 48 <= value[0] <= 57:
        return value[0] - 48
    if len(value) == 2 and 48 <= value[0] <= 50 and 48 <= value[1] <= 57:
        number = (value[0] - 48) * 10 + value[1] - 48
        return number if number <= 23 else None
    return FACILITIES.get(value.lower())


class SyslogOutput(SenderOutput):
    name = "syslog"
    description = "Syslog"
    options = (
        Option("Host", default="127.0.0.1", help="host of the syslog server"),
        Option("Port", "int", "514", min=1, max=65535, help="port of the syslog server"),
        Option("Mode", default="udp", choices=("udp", "tcp", "tls", "dtls"),
               help="transport: udp, tcp or tls (tls turns TLS on)"),
        Option("Syslog_Format", default="rfc5424", choices=("rfc5424", "rfc3164"),
               help="message format"),
        Option("Syslog_MaxSize", "size", "0",
               help="bytes a message is cut to (0: 2048 for rfc5424, 1024 for rfc3164)"),
        Option("Syslog_Severity_Key", help="record key holding the severity (0-7 or keyword)"),
        Option("Syslog_Severity_Preset", "int", "6", min=0, max=7,
               help="severity when the record has none"),
        Option("Syslog_Facility_Key", help="record key holding the facility (0-23 or keyword)"),
        Option("Syslog_Facility_Preset", "int", "1", min=0, max=23,
               help="facility when the record has none"),
        Option("Syslog_Hostname_Key", help="record key holding the host name"),
        Option("Syslog_Hostname_Preset", help="host name when the record has none"),
        Option("Syslog_Appname_Key", help="record key holding the application name"),
        Option("Syslog_Appname_Preset", help="application name when the record has none"),
        Option("Syslog_Procid_Key", help="record key holding the process id"),
        Option("Syslog_Procid_Preset", help="process id when the record has none"),
        Option("Syslog_Msgid_Key", help="record key holding the message id"),
        Option("Syslog_Msgid_Preset", help="message id when the record has none"),
        Option("Syslog_SD_Key", multiple=True,
               help="record key whose map becomes an RFC 5424 structured data element"),
        Option("Syslog_Message_Key", help="record key holding the message"),
        Option("allow_longer_sd_id", "bool", "false",
               help="keep SD-IDs and names longer than RFC 5424's 32 characters"),
    ) + NET_OPTIONS + TLS_OPTIONS

    def configure(self):
        conf = self.conf
        mode = conf["mode"]
        if mode == "dtls":
            raise ConfigError("syslog: Mode dtls is not supported by edgeship (use tls or udp)",
                              key="mode")
        if mode == "udp" and conf["tls"]:
            raise ConfigError("syslog: Mode udp cannot be used with tls on", key="tls")
        self.rfc3164 = conf["syslog_format"] == "rfc3164"
        self.maxsize = conf["syslog_maxsize"] or (1024 if self.rfc3164 else 2048)
        self.newline = b"" if mode == "udp" else b"\n"
        self.allow_long_sd = conf["allow_longer_sd_id"]
        # record key -> field it fills; the first option naming a key wins, as Fluent Bit's
        # if/else chain does.
        self.keys = {}
        for field in ("severity", "facility") + _TEXT_FIELDS:
            key = conf["syslog_%s_key" % field]
            if key is not None and key not in self.keys:
                self.keys[key] = field
        self.sd_keys = set(conf["syslog_sd_key"])
        self.presets = {field: conf.get("syslog_%s_preset" % field)
                        for field in _TEXT_FIELDS[:4]}
        self.presets = {k: v.encode("utf-8", "surrogateescape")
                        for k, v in self.presets.items() if v is not None}
        self.severity_preset = conf["syslog_severity_preset"]
        self.facility_preset = conf["syslog_facility_preset"]
        ssl_ctx = None
        if mode == "tls" or conf["tls"]:
            tls_conf = dict(conf)
            tls_conf["tls"] = True
            ssl_ctx = tls_context(tls_conf, server=False)
        self.sender = Sender(conf, "udp" if mode == "udp" else "tcp", ssl_ctx)

    # ------------------------------------------------------------------ rendering
    def _sd_element(self, name, mapping):
        limit = None if self.allow_long_sd else 32
        parts = [b"[", name[:limit].translate(_SD_NAME)]
        for key, value in mapping.items():
            if type(key) is str:
                key = key.encode("utf-8", "surrogateescape")
            elif type(key) is not bytes:
                continue
            value = _scalar(value)
            if value is None:
                continue
            parts += (b" ", key[:limit].translate(_SD_NAME), b'="',
                      _SD_VALUE_ESCAPE.sub(rb"\\\1", value), b'"')
        parts.append(b"]")
        return b"".join(parts)

    def _fields(self, record, bad):
        """The header fields of ``record``: dict field -> bytes (severity/facility ints)."""
        fields = {}
        keys = self.keys
        sd = []
        for key, value in record.items():
            if type(value) is dict:
                if key in self.sd_keys:
                    sd.append(self._sd_element(key.encode("utf-8", "surrogateescape"), value))
                continue
            field = keys.get(key)
            if field is None or field in fields:
                continue
            value = _scalar(value)
            if value is None:
                continue
            if field == "severity":
                number = severity_of(value)
            elif field == "facility":
                number = facility_of(value)
            else:
                fields[field] = value
                continue
            if number is None:
                bad.append((field, value))
            else:
                fields[field] = number
        if sd:
            fields["sd"] = b"".join(sd)
        return fields

    def render(self, events):
        """The messages of ``events``, each cut to the maximum size and framed."""
        out = []
        bad = []
        presets = self.presets
        last_sec = stamp = None
        for time_ns, record in events:
            fields = self._fields(record, bad)
            message = fields.get("message")
            if message is not None and message[:1] == b"<":
                line = message
            else:
                for field, value in presets.items():
                    fields.setdefault(field, value)
                pri = (fields.get("facility", self.facility_preset) * 8
                       + fields.get("severity", self.severity_preset))
                sec, nsec = divmod(time_ns, NS)
                if sec != last_sec:
                    last_sec, stamp = sec, time.gmtime(sec)
                line = self._rfc3164(pri, stamp, fields) if self.rfc3164 \
                    else self._rfc5424(pri, stamp, nsec, fields)
            out.append(line[:self.maxsize] + self.newline)
        if bad:
            self.log.warn("%d records had a severity or facility that is neither 0-7/0-23 "
                          "nor a keyword (first: %s '%s'); the preset was used", len(bad),
                          bad[0][0], bad[0][1].decode("utf-8", "replace"))
        return out

    @staticmethod
    def _rfc5424(pri, tm, nsec, fields):
        get = fields.get
        head = b"<%d>1 %d-%02d-%02dT%02d:%02d:%02d.%06dZ " % (
            pri, tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
            nsec // 1000)
        parts = [head, get("hostname", b"-")[:255], b" ", get("appname", b"-")[:48], b" ",
                 get("procid", b"-")[:128], b" ", get("msgid", b"-")[:32], b" ",
                 get("sd", b"-")]
        if "message" in fields:
            parts += (b" ", BOM, fields["message"])
        return b"".join(parts)

    @staticmethod
    def _rfc3164(pri, tm, fields):
        parts = [b"<%d>%s %2d %02d:%02d:%02d " % (pri, MONTHS[tm.tm_mon - 1], tm.tm_mday,
                                                  tm.tm_hour, tm.tm_min, tm.tm_sec)]
        if "hostname" in fields:
            parts += (fields["hostname"], b" ")
        if "appname" in fields:
            parts.append(fields["appname"])
            if "procid" in fields:
                parts += (b"[", fields["procid"], b"]")
            parts.append(b": ")
        if "message" in fields:
            parts.append(fields["message"])
        return b"".join(parts)

    # ------------------------------------------------------------------ flush
    def payloads(self, chunk):
        return self.render(chunk.events())


PLUGIN = SyslogOutput
