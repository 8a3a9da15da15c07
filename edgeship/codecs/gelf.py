"""GELF 1.1 messages exactly as Fluent Bit 5.1.1 writes them (``flb_msgpack_to_gelf``), for the
gelf output and the http output's ``Format gelf``.

Kept from Fluent Bit, byte for byte:

* Written by hand: ``{"version":"1.1"`` then ``, "key":value`` per field (a space after
  every comma, none after the colon), fields in record order.
* The record key named by the host key (default ``host``) becomes ``host``, the short
  message key (``short_message``) ``short_message``, the timestamp key (``timestamp``)
  ``timestamp``, the level key (``level``) ``level``, the full message key
  (``full_message``) ``full_message``, checked in that order; a key ``id`` is dropped; any
  other key gets a ``_`` prefix. Key bytes outside ``[A-Za-z0-9_.-]`` become ``_``.
* Values: strings JSON-escaped (``\\uXXXX`` for non-ASCII), integers in decimal, floats
  ``%f``, booleans as the strings ``"true"``/``"false"``, null left out; a map is flattened
  into ``_key_sub`` fields (an empty one gives nothing); an array becomes one string of its
  elements joined by ``", "`` (maps inside as ``k=v``).
* level: a non-negative integer is kept, ``"0"``..``"7"`` and the syslog keywords (emerg ..
  debug, any case) become 0-7, another string is kept (a warning); any other type fails.
* ``timestamp``: when no record key was mapped to it, the event time as
  ``<sec>.<msec>`` (truncated) last.
* A record without a short_message fails ("missing short_message key").

Differences (Fluent Bit's output there is not JSON): a string inside an array is escaped
as in any JSON string (Fluent Bit copies it raw, so a ``"`` in it breaks the message); a
float that is NaN or infinite is written ``null`` (Fluent Bit: ``nan``/``inf``).
"""
import math

from edgeship.codecs.formats import json_string
from edgeship.core.schema import Option

NS = 1000000000
_KEY_BYTES = bytes(c if (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or c in b"_.-")
                   else 95 for c in range(256))
LEVELS = {"emerg": 0, "alert": 1, "crit": 2, "err": 3, "warning": 4, "notice": 5, "info": 6,
          "debug": 7}


class GelfError(ValueError):
    """A record GELF cannot carry (no short_message, a level of the wrong type)."""


def _key(text):
    """A key with the bytes GELF does not allow in a field name replaced by ``_``."""
    if text.isascii() and text.replace("_", "a").replace(".", "a").replace("-", "a").isalnum():
        return text
    return text.encode("utf-8", "surrogateescape").translate(_KEY_BYTES).decode("ascii")


def _float(value):
    return "%f" % value if math.isfinite(value) else "null"


def _scalar(value):
    """The JSON text of a value outside an array, or None for null (left out)."""
    kind = type(value)
    if kind is str:
        return json_string(value)
    if kind is int:
        return str(value)
    if kind is bool:
        return '"true"' if value else '"false"'
    if kind is float:
        return _float(value)
    if value is None:
        return None
    if kind is bytes or kind is bytearray:
        return json_string(bytes(value).decode("utf-8", "surrogateescape"))
    return json_string(str(value))


def _element(value):
    """An array element's text inside the array's string (escaped, without quotes)."""
    kind = type(value)
    if kind is str:
        return json_string(value)[1:-1]
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return _float(value)
    if kind is list or kind is tuple:
        return ", ".join([_element(v) for v in value])
    if kind is dict:
        return _map_in_array(value, "")
    if kind is bytes or kind is bytearray:
        return json_string(bytes(value).decode("utf-8", "surrogateescape"))[1:-1]
    return json_string(str(value))[1:-1]


def _map_in_array(mapping, prefix):
    # Fluent Bit's walk: "k=v" pairs separated by a space (not before the first position),
    # a nested map continues with its keys prefixed, with no separator before it.
    out = []
    for position, (key, value) in enumerate(mapping.items()):
        if type(key) is not str:
            continue
        if type(value) is dict:
            out.append(_map_in_array(value, prefix + "_" + key if prefix else key))
            continue
        if position > 0:
            out.append(" ")
        out.append((_key(prefix) + "_" if prefix else "") + _key(key) + "=" + _element(value))
    return "".join(out)


def _flatten(out, mapping, prefix):
    """The fields of a map value under ``prefix`` (``_key``), nested maps recursively."""
    for key, value in mapping.items():
        if type(key) is not str:
            continue
        kind = type(value)
        if kind is dict:
            _flatten(out, value, prefix + "_" + key)
            continue
        if kind is list or kind is tuple:
            text = '"' + _element(value) + '"'
        elif value is None:
            text = "null"
        else:
            text = _scalar(value)
        out.append(', "' + _key(prefix) + "_" + _key(key) + '":' + text)


# The record keys of GELF's fields: the gelf output's options, and http's for Format gelf.
GELF_KEY_OPTIONS = (
    Option("Gelf_Short_Message_Key", help="record key of short_message (required in GELF; "
                                          "default short_message)"),
    Option("Gelf_Timestamp_Key", help="record key of timestamp (default: the event time)"),
    Option("Gelf_Host_Key", help="record key of host (default host)"),
    Option("Gelf_Full_Message_Key", help="record key of full_message (default full_message)"),
    Option("Gelf_Level_Key", help="record key of level, 0-7 or a syslog keyword (default "
                                  "level)"),
)


class GelfEncoder:
    """GELF messages of events, with the record keys that fill GELF's fields (None: the
    defaults). ``tag_key`` adds the tag to every record, last, under that key (the gelf
    output's Gelf_Tag_Key)."""

    def __init__(self, short_message_key=None, timestamp_key=None, host_key=None,
                 full_message_key=None, level_key=None, tag_key=None):
        self.roles = {}
        for role, key in (("host", host_key), ("short_message", short_message_key),
                          ("timestamp", timestamp_key), ("level", level_key),
                          ("full_message", full_message_key)):
            self.roles.setdefault(key or role, role)   # the first role a key has wins
        self.tag_key = tag_key

    @classmethod
    def from_conf(cls, conf):
        """The encoder of a plugin's GELF_KEY_OPTIONS (and Gelf_Tag_Key, where it has one)."""
        return cls(conf["gelf_short_message_key"], conf["gelf_timestamp_key"],
                   conf["gelf_host_key"], conf["gelf_full_message_key"],
                   conf["gelf_level_key"], conf.get("gelf_tag_key"))

    def _level(self, value, warnings):
        kind = type(value)
        if kind is int and value >= 0:
            if value > 7:
                warnings.append("level is %d, but should be in 0..7 or a syslog keyword" % value)
            return value
        if kind is str:
            if len(value) == 1 and "0" <= value <= "7":
                return int(value)
            level = LEVELS.get(value.lower()) if value.isascii() else None
            if level is None:
                warnings.append("level is '%s', but should be in 0..7 or a syslog keyword"
                                % value)
                return value
            return level
        raise GelfError("level must be a non-negative integer or a string")

    def message(self, time_ns, record, tag=None, warnings=None):
        """The GELF JSON (str) of one event; GelfError when it cannot be encoded."""
        if warnings is None:
            warnings = []
        out = ['{"version":"1.1"']
        found = set()
        roles = self.roles
        items = record.items()
        if self.tag_key is not None:
            items = list(items) + [(self.tag_key, tag)]
        for key, value in items:
            if type(key) is not str:
                if type(key) is not bytes:
                    continue
                key = key.decode("utf-8", "surrogateescape")
            role = roles.get(key)
            if role is not None:
                if role in found:
                    continue
                found.add(role)
                name = role
                if role == "level":
                    value = self._level(value, warnings)
            elif key == "id":
                continue
            else:
                name = "_" + _key(key)
            kind = type(value)
            if kind is dict:
                _flatten(out, value, name if role is None else "_" + role)
            elif kind is list or kind is tuple:
                out.append(', "' + name + '":"' + _element(value) + '"')
            else:
                text = _scalar(value)
                if text is not None:
                    out.append(', "' + name + '":' + text)
        if "timestamp" not in found:
            sec, nsec = divmod(time_ns, NS)
            out.append(', "timestamp":%d.%03d' % (sec, nsec // 1000000))
        if "short_message" not in found:
            raise GelfError("missing short_message key")
        out.append("}")
        return "".join(out)

    def messages(self, tag, events):
        """``(messages, errors, warnings)``: the GELF JSON (bytes) of every event that can be
        encoded, in order; why the others could not (one text each); the level warnings."""
        messages = []
        errors = []
        warnings = []
        for time_ns, record in events:
            try:
                messages.append(self.message(time_ns, record, tag, warnings).encode("ascii"))
            except GelfError as exc:
                errors.append(str(exc))
        return messages, errors, warnings

    def logged_messages(self, tag, events, log):
        """``messages`` of the events, the records left out and the level warnings said in
        one log line each (not one per record)."""
        messages, errors, warnings = self.messages(tag, events)
        if warnings:
            log.warn("%d records: %s", len(warnings), warnings[0])
        if errors:
            log.error("%d of %d records could not be encoded to GELF and are left out (%s)",
                      len(errors), len(events), errors[0])
        return messages
