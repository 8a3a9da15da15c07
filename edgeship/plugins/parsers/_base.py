"""What every [PARSER] format shares: the common keys, time lookup, Types, decoders.

A parser module (json, regex, logfmt, ltsv) subclasses ``Parser`` and implements
``parse(text) -> (time_ns or None, record)`` or None when the text does not parse (the
caller then keeps the raw line). ``time_ns`` None means "no time in the text: use now".
Inputs parse a block of lines at once with ``parse_lines(lines, now_ns)``: one entry per
line, the event ``(time_ns, record)`` (``now_ns`` when the text has no time) or None. A
parser may override it with a faster loop giving the same events; ``as_rendered`` says the
caller hands the events on unchanged, so it may return them as ``formats.RenderedEvents``
(the json parser does).

Fluent Bit behaviour kept here (src/flb_parser*.c, 5.1.1):
- Time_Key (default ``time``) is only looked up when Time_Format is set.
- Types ``k:integer k:float k:bool k:hex k:string``: integer is C ``atoll`` ("12abc" -> 12,
  "x" -> 0), float is ``atof``, hex is ``strtoull(s, 16)``, bool takes a value starting
  with true/false (any case) and keeps any other value as the string, with a warning.
  An unknown type name means string. Types applies to regex, logfmt and ltsv, not json.
- Decode_Field / Decode_Field_As ``<json|escaped|escaped_utf8|mysql_quoted> <key>
  [try_next|do_next]``: the rules of one key run in config order; _As replaces the value
  in place, Decode_Field appends the keys of a decoded JSON map to the record.
- A key written twice in one record keeps the last value, at the later position.

Difference: a time before 1970 or past 2106 (Time_Strict off gives year 1900 to a text it
cannot read) is handled as a time that does not parse, with its warning; Fluent Bit loses the
record ("error packing event").
"""

from edgeship.core.errors import ConfigError
from edgeship.core.events import in_range
from edgeship.core.schema import Option, Schema
from edgeship.codecs.cnumbers import strtod, strtoll, strtoull
from edgeship.codecs.strptime import TimeFormat

COMMON = (
    Option("Name", help="parser name, referenced by Parser keys", required=True),
    Option("Format", help="json, regex, logfmt or ltsv", required=True),
    Option("Time_Key", default="time", help="field holding the record time"),
    Option("Time_Format", help="strptime format of Time_Key, plus %L for fractions"),
    Option("Time_Keep", "bool", "false", help="keep Time_Key in the record"),
    Option("Time_Strict", "bool", "true",
           help="off: accept a time that only partly matches Time_Format"),
    Option("Time_Offset", help="fixed UTC offset (+0200) for times without a zone"),
    Option("Time_System_Timezone", "bool", "false",
           help="read times without a zone in the local time zone"),
    Option("Time_Zone", help="IANA zone (Europe/Paris) for times without a zone"),
    Option("Types", help="space separated key:type (integer, float, bool, hex, string)"),
    Option("Decode_Field", multiple=True,
           help="<decoder> <key> [try_next|do_next]: merge a decoded JSON map into the record"),
    Option("Decode_Field_As", multiple=True,
           help="<decoder> <key> [try_next|do_next]: replace the value with its decoding"),
    Option("Skip_Empty_Values", "bool", "true", help="regex: drop empty captures"),
)

class Parser:
    format = ""
    options = ()

    @classmethod
    def schema(cls):
        return Schema("parser", COMMON + tuple(cls.options))

    def __init__(self, context, conf):
        """``context``: the plugin context it was built through (``edgeship.engine.context``);
        it logs through ``context.log``."""
        self.context = context
        self.log = context.log
        self.conf = conf
        self.name = conf["name"]
        self.failed = 0          # texts that did not parse
        self.time_failed = 0     # times that did not parse
        self.time_key = conf.get("time_key") or "time"
        self.time_keep = conf.get("time_keep", False)
        self.time_format = None
        fmt = conf.get("time_format")
        if conf.get("time_zone") and not fmt:
            raise ConfigError("[parser:%s] time_zone requires time_format" % self.name,
                              key="time_zone")
        if fmt:
            try:
                self.time_format = TimeFormat(fmt, conf.get("time_offset"),
                                              conf.get("time_system_timezone", False),
                                              conf.get("time_zone"),
                                              conf.get("time_strict", True))
            except ValueError as exc:
                raise ConfigError("[parser:%s] %s" % (self.name, exc), key="time_format")
        # Time_Key is only looked up when Time_Format is set.
        self.time_field = self.time_key if self.time_format is not None else None
        self.types = parse_types(conf.get("types"))
        # Decode_Field and Decode_Field_As lines form one list of rules, in config order.
        rules = [(key == "decode_field_as", value, entry)
                 for key, value, entry in getattr(conf, "ordered", ())
                 if key in ("decode_field", "decode_field_as")]
        self.decoders = Decoders.from_conf(rules, self.name)

    def parse(self, text):
        raise NotImplementedError

    def parse_lines(self, lines, now_ns, as_rendered=False):
        """The event of each line, ``now_ns`` standing in for a missing time, or None for a
        line that does not parse."""
        parse = self.parse
        events = []
        for text in lines:
            result = parse(text)
            if result is not None and result[0] is None:
                result = (now_ns, result[1])
            events.append(result)
        return events

    def fields_event(self, fields):
        """logfmt and ltsv: the event of a text's (key, value) fields, in text order.

        Time_Key is parsed (a time that does not parse fails the text), Types applied to
        the other fields, then the decoders. A value of None fails the text where it stands
        (logfmt_no_bare_keys); so does a text left without any field.
        """
        record = {}
        time_ns = None
        time_field = self.time_field
        types = self.types
        for key, value in fields:
            if value is None:
                self.failed += 1
                return None
            if key == time_field and isinstance(value, str) and value:
                time_ns = self.lookup_time_or_fail(value)
                if time_ns is None:
                    return None
                if not self.time_keep:
                    continue
            if types and key in types:
                value = self.cast(key, value if isinstance(value, str) else "")
            put(record, key, value)
        if not record:
            # Fluent Bit counts the fields it will write: a text holding only a time that
            # is not kept does not parse either.
            self.failed += 1
            return None
        if self.decoders is not None:
            record = self.decoders.apply(record)
        return time_ns, record

    def _parse_time(self, value):
        """Nanoseconds of a Time_Key value, or None. A time an event cannot carry (before
        1970 or past 2106, see ``events.in_range``) counts as one that does not parse:
        Time_Strict off makes of an unreadable text such a time (year 1900, as Fluent Bit's
        zeroed ``struct tm``), with which Fluent Bit loses the record."""
        result = self.time_format.parse(value)
        if result is None or in_range(result):
            return result
        return None

    def lookup_time(self, value):
        """Nanoseconds of a Time_Key value, or None (with Fluent Bit's warning)."""
        result = self.time_format.parse(value)      # _parse_time, inlined: once per record
        if result is not None and in_range(result):
            return result
        self.time_failed += 1
        self.log.warn_often("invalid time format %s for '%s'", self.time_format.fmt,
                            value[:254])
        return None

    def lookup_time_or_fail(self, value):
        """logfmt and ltsv: a time that does not parse fails the whole text."""
        result = self._parse_time(value)
        if result is None:
            self.time_failed += 1
            self.failed += 1
            self.log.error_often("Invalid time format %s", self.time_format.fmt)
        return result

    def cast(self, key, value):
        """Apply Types to one string value."""
        kind = self.types.get(key)
        if kind is None:
            return value
        converted = CASTS[kind](value)
        if converted is None:
            self.log.warn_often("key=%s cast error. save as string.", key)
            return value
        return converted


def put(record, key, value):
    """Set ``key``; a repeated key keeps the last value, at the later position."""
    if key in record:
        del record[key]
    record[key] = value


# ------------------------------------------------------------------------------ Types
def parse_types(text):
    types = {}
    for item in (text or "").split(" "):
        key, colon, kind = item.partition(":")
        if not colon:
            continue
        kind = kind.lower()
        types.setdefault(key, kind if kind in CASTS else "string")
    return types


def to_c_hex(text):
    return strtoull(text, 16)


def to_c_bool(text):
    low = text[:5].lower()
    if low.startswith("true"):
        return True
    if low == "false":
        return False
    return None


# atoll, atof and strtoull(16), as flb_parser.c converts Types (codecs/cnumbers).
CASTS = {"integer": strtoll, "float": strtod, "hex": to_c_hex, "bool": to_c_bool,
         "string": lambda text: text}


# ------------------------------------------------------------------------------ escapes
_SIMPLE_ESCAPES = {"n": "\n", "a": "\a", "b": "\b", "t": "\t", "v": "\v", "f": "\f",
                   "r": "\r", "\\": "\\"}


def unescape_simple(text):
    """flb_unescape_string: \\n \\t \\r ... become control characters, \\\\ a backslash,
    and any other escaped character stands for itself."""
    if "\\" not in text:
        return text
    out = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 < n:
                nxt = text[i + 1]
                out.append(_SIMPLE_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


_C_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "a": "\a",
              '"': '"', "\\": "\\", "/": "/", "'": "'"}
_HEX_DIGITS = "0123456789abcdefABCDEF"


def unescape_c(text, keep_quotes=False):
    """flb_unescape_string_utf8: JSON and C escapes, octal, \\xHH, \\uHHHH, \\UHHHHHHHH.

    ``keep_quotes`` (the escaped_utf8 decoder) leaves \\" \\' \\\\ and \\/ untouched. A code
    point Python cannot hold in a str (a lone surrogate, > U+10FFFF) becomes U+FFFD.
    """
    if "\\" not in text:
        return text
    out = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c != "\\" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1]
        if keep_quotes and nxt in "\"'\\/":
            out.append(c + nxt)
            i += 2
        elif nxt in _C_ESCAPES:
            out.append(_C_ESCAPES[nxt])
            i += 2
        elif "0" <= nxt <= "7":
            j = i + 1
            while j < n and j < i + 4 and "0" <= text[j] <= "7":
                j += 1
            out.append(_code_point(int(text[i + 1:j], 8)))
            i = j
        elif nxt in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[nxt]
            j = i + 2
            while j < n and j < i + 2 + width and text[j] in _HEX_DIGITS:
                j += 1
            out.append(_code_point(int(text[i + 2:j], 16)) if j > i + 2 else nxt)
            i = j
        else:
            out.append(nxt)
            i += 2
    return "".join(out)


def _code_point(value):
    if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
        return "\ufffd"
    return chr(value)


_MYSQL_ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}


def unescape_mysql(text):
    """A MySQL quoted literal: '...' or "..." with backslash escapes and doubled quotes."""
    if len(text) < 2 or text[0] not in "'\"" or text[-1] != text[0]:
        return text
    quote = text[0]
    body = text[1:-1]
    out = []
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c == "\\" and i + 1 < n:
            nxt = body[i + 1]
            out.append(_MYSQL_ESCAPES.get(nxt, nxt))
            i += 2
        elif c == quote and i + 1 < n and body[i + 1] == quote:
            out.append(quote)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


# ------------------------------------------------------------------------------ decoders
def _decode_json(value):
    from edgeship.codecs.untrusted import loads_object
    unescaped = unescape_simple(value)
    if unescaped.startswith("{"):
        decoded = loads_object(unescaped)
        if decoded is not None:
            return decoded
    # Not in Fluent Bit: a value that is already proper JSON (escaped quotes inside its
    # strings) would be broken by the unescaping above; decode it as it is.
    if value is not unescaped and value.startswith("{"):
        return loads_object(value)
    return None


_BACKENDS = {
    "json": _decode_json,
    "escaped": unescape_simple,
    "escaped_utf8": lambda value: unescape_c(value, keep_quotes=True),
    "mysql_quoted": unescape_mysql,
}
_ACTIONS = ("try_next", "do_next")


class _Rule:
    __slots__ = ("replace", "backend", "action")

    def __init__(self, replace, backend, action):
        self.replace = replace
        self.backend = backend
        self.action = action


class Decoders:
    """The Decode_Field(_As) rules of one parser, grouped by key in first-seen order."""

    def __init__(self, by_key):
        self.by_key = by_key

    @classmethod
    def from_conf(cls, entries, parser_name):
        by_key = {}
        for replace, value, entry in entries:
            words = value.split()
            option = "decode_field_as" if replace else "decode_field"
            if len(words) < 2:
                raise ConfigError("[parser:%s] invalid number of parameters in decoder"
                                  % parser_name, entry.file, entry.line, option)
            backend = _BACKENDS.get(words[0].lower())
            if backend is None:
                raise ConfigError("[parser:%s] field decoder '%s' unknown (use json, escaped, "
                                  "escaped_utf8 or mysql_quoted)" % (parser_name, words[0]),
                                  entry.file, entry.line, option)
            action = words[2].lower() if len(words) > 2 else ""
            by_key.setdefault(words[1], []).append(
                _Rule(replace, backend, action if action in _ACTIONS else ""))
        return cls(by_key) if by_key else None

    def apply(self, record):
        """Decode the fields of ``record`` that have rules; returns the record to keep."""
        extra = None
        for key, value in list(record.items()):
            rules = self.by_key.get(key)
            if rules is None or not isinstance(value, str):
                continue
            data = value
            replaced = decoded_as_object = False
            merged = None
            for rule in rules:
                if not rule.replace and rule.action == "do_next" and merged is not None:
                    continue
                if decoded_as_object:
                    continue
                result = rule.backend(data)
                if result is None:
                    if rule.action:
                        continue
                    break
                if rule.replace:
                    data = result
                    replaced = True
                    decoded_as_object = not isinstance(result, str)
                elif isinstance(result, dict):
                    merged = result
                if rule.action != "do_next":
                    break
            if replaced:
                record[key] = data
            if merged:
                extra = merged if extra is None else _merge(extra, merged)
        if extra:
            for key, value in extra.items():
                put(record, key, value)
        return record


def _merge(first, second):
    for key, value in second.items():
        put(first, key, value)
    return first
