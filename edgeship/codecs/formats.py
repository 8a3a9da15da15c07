"""Record text exactly as Fluent Bit 5.1.1 writes it, rendered a batch at a time.

Two renderings exist in Fluent Bit and both are here:

* **JSON** (``flb_msgpack_to_json``): used by stdout ``json*``, file ``out_file`` and
  ``plain``, http, MQTT. Compact, no spaces; ``"``, ``\\``, ``\\n``, ``\\r``, ``\\t``, ``\\b``,
  ``\\f`` short escapes, other control characters and DEL as ``\\u00XX``; every non-ASCII
  character as ``\\uXXXX`` (lowercase hex, UTF-16 surrogate pairs above U+FFFF), or as its
  UTF-8 bytes under ``[SERVICE] json.escape_unicode off`` (``escape_unicode``); ``/`` is not
  escaped. Floats: ``%.1f`` when integral (``3.0``, ``1000.0``), else ``%.16g`` (``0.1``,
  ``1e-07``, ``6.02e+23``, ``123456789.1234568``). A duplicate key keeps its last value at
  its last position; a Python dict has no duplicates left.
* **msgpack print** (``msgpack_object_print``): used by stdout ``msgpack`` and file ``csv``,
  ``ltsv``, ``template``. Strings double-quoted with their raw bytes (no escaping at all),
  floats ``%f``, null ``nil``, arrays ``[1, "a"]``, maps ``{"k"=>"v"}``.

JSON goes through orjson, whose output already matches Fluent Bit's for ASCII text, integers
and structure; a few byte searches over the batch's text tell whether it holds something
orjson writes differently (a float, a non-ASCII character, DEL), and only then does the batch
take the slower exact path. Without orjson (an optional dependency) a pure-Python encoder
writes the same bytes, more slowly.

Deliberate differences from Fluent Bit (safe where it is not): NaN and infinities are
written as ``null`` (Fluent Bit writes ``nan``/``inf``, which is not JSON); a byte that is not
valid UTF-8 (kept by inputs as a surrogate escape) is written as ``\\ue0XX`` (Fluent Bit writes
the same private-use character U+E0XX unescaped); a non-string map key is written as a
string.
"""
import itertools
import operator
import re
import struct
import time

from json.encoder import encode_basestring as _escape_controls
from json.encoder import encode_basestring_ascii as _escape_ascii

from edgeship.core import accessor

try:
    import orjson
except ImportError:  # the "fast" extra is not installed
    orjson = None

NS = 1000000000

# ---------------------------------------------------------------------------------------------
# JSON



class _Raw:
    """Already rendered JSON text; stands in for orjson.Fragment when orjson is missing."""
    __slots__ = ("contents",)

    def __init__(self, contents):
        self.contents = contents


_Fragment = orjson.Fragment if orjson else _Raw
_TWO_63 = 9223372036854775808.0
_I64_MIN, _U64_MAX = -(1 << 63), (1 << 64) - 1
# A float in orjson's output: digits, then '.' and digits or 'e', '+'/'-' and digits, ended
# by the ',', '}' or ']' after a value: orjson 3.11.5 (the last for Python 3.9) writes
# 6.02e23, 3.13 writes 6.02e+23. Both patterns start with a literal, which the regex
# engine scans for quickly; '.' is first looked for with a byte search (memchr). Text inside
# a string rarely looks like a float value and then only costs the exact path.
_DOT_FLOAT = re.compile(rb"\.\d+(?:e[-+]?\d+)?[,}\]]")
_EXP_FLOAT = re.compile(rb"e[-+]?\d+[,}\]]")
_NON_ASCII = re.compile("[^\x00-\x7e]+")
# Batches are rendered by one orjson call on [r1, SEP, r2, SEP, ...]: orjson escapes every
# control character inside strings, so the raw NUL of the separator marks record boundaries.
_SEP = _Fragment("\x00")
_SPLIT = b",\x00,"


def json_float(value):
    """Fluent Bit's JSON text of a float: ``%.1f`` when integral, else ``%.16g``."""
    if value != value or value in (float("inf"), float("-inf")):
        return "null"
    if -_TWO_63 <= value < _TWO_63 and value == int(value):
        return "%.1f" % value
    return "%.16g" % value


# [SERVICE] json.escape_unicode: process-wide, as Fluent Bit's config->json_escape_unicode.
_unicode_escaped = True


def escape_unicode(on):
    """Write non-ASCII characters as ``\\uXXXX`` (on, the default) or as UTF-8 (off)."""
    global _unicode_escaped
    _unicode_escaped = bool(on)


def _quote(text):
    """The JSON string literal of ``text`` as the records' strings are written."""
    quoted = _escape_ascii(text) if _unicode_escaped else _escape_controls(text)
    return quoted.replace("\x7f", "\\u007f") if "\x7f" in quoted else quoted


def _escape_run(match):
    units = match.group().encode("utf-16-be", "surrogatepass")
    return "".join(["\\u%04x" % u for u in struct.unpack(">%dH" % (len(units) // 2), units)])


def _escape_non_ascii(data):
    """``\\uXXXX`` for every non-ASCII character of JSON bytes."""
    return _NON_ASCII.sub(_escape_run, data.decode("utf-8")).encode("ascii")


def _clean_str(text):
    """A string orjson can encode: surrogate escapes of raw bytes (b'\\xNN' decoded with
    surrogateescape) become U+E0NN as in Fluent Bit, other lone surrogates U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return "".join([
            c if not "\ud800" <= c <= "\udfff"
            else chr(0xE000 + ord(c) - 0xDC00) if "\udc80" <= c <= "\udcff" else "\ufffd"
            for c in text])


def json_string(text):
    """Fluent Bit's JSON text (str, quotes included) of one string, for a plugin that writes
    JSON by hand (GELF): the escapes of ``to_json``, without a batch around it."""
    return _escape_ascii(_clean_str(text)).replace("\x7f", "\\u007f")


def _text(text):
    """A string value: as is when plain ASCII, else its escaped JSON as a fragment (the json
    module's C escaper writes \\uXXXX in lowercase with surrogate pairs, as Fluent Bit)."""
    if text.isascii() and "\x7f" not in text:
        return text
    return _Fragment(_quote(_clean_str(text)))


def _exact(value):
    """A copy of ``value`` that orjson renders the Fluent Bit way: floats and non-ASCII
    strings as fragments in Fluent Bit's notation, bytes as text, integers beyond 64 bits as
    their digits, non-string keys as strings."""
    kind = type(value)
    if kind is dict:
        out = {}
        for key, item in value.items():  # the usual flat record without a call per value
            if type(key) is not str or not key.isascii():
                key = _key(key)
            kind = type(item)
            if kind is str:
                out[key] = _text(item)
            elif kind is float:
                out[key] = _Fragment(json_float(item))
            elif item is None or kind is bool or (kind is int and _I64_MIN <= item <= _U64_MAX):
                out[key] = item
            else:
                out[key] = _exact(item)
        return out
    if kind is str:
        return _text(value)
    if kind is float:
        return _Fragment(json_float(value))
    if kind is list or kind is tuple:
        return [_exact(v) for v in value]
    if value is None or kind is bool:
        return value
    if kind is int:
        return value if _I64_MIN <= value <= _U64_MAX else _Fragment(str(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _text(bytes(value).decode("utf-8", "surrogateescape"))
    for base in (str, float, int, dict, list, tuple):  # subclasses: as the base type
        if isinstance(value, base):
            return _exact(base(value))
    return _text(str(value))


def _key(key):
    """A map key as orjson accepts it (a str; non-ASCII keys are escaped afterwards)."""
    if type(key) is str:
        return _clean_str(key)
    if isinstance(key, (bytes, bytearray)):
        return _clean_str(bytes(key).decode("utf-8", "surrogateescape"))
    if key is None or isinstance(key, bool):
        return "null" if key is None else "true" if key else "false"
    return json_float(key) if isinstance(key, float) else _clean_str(str(key))


def _py_dumps(value):
    """JSON text of a value made by ``_exact`` (strings ASCII-escaped, floats as _Raw)."""
    kind = type(value)
    if kind is str:
        return _quote(value)
    if kind is dict:
        return "{" + ",".join([_quote(k) + ":" + _py_dumps(v)
                               for k, v in value.items()]) + "}"
    if kind is list:
        return "[" + ",".join([_py_dumps(v) for v in value]) + "]"
    if kind is _Raw:
        return value.contents
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    return str(value)


def _has_float(data):
    """Might orjson's text ``data`` hold a float (which Fluent Bit writes its own way)?"""
    return (b"." in data and _DOT_FLOAT.search(data) is not None) \
        or _EXP_FLOAT.search(data) is not None


def _dump_batch(values):
    count = len(values)
    mixed = [_SEP] * (2 * count - 1)
    mixed[::2] = values
    return orjson.dumps(mixed)


def _json_joined(values):
    """Fluent Bit's JSON text of every value of ``values`` (orjson needed) in one bytes object,
    ``[v1,\\x00,v2,\\x00,...]``: _SPLIT separates the values.

    The common case costs one orjson call for the whole batch and a few byte searches. A
    batch holding a float, a non-ASCII character or a type orjson refuses is rendered again
    on the exact path.
    """
    try:
        data = _dump_batch(values)
        exact = _has_float(data)
    except TypeError:  # bytes, a big int, a non-str key, a lone surrogate ...
        exact = True
    if exact or b"\x7f" in data or (_unicode_escaped and not data.isascii()):
        data = _dump_batch([_exact(v) for v in values])
        if not _unicode_escaped:
            data = data.replace(b"\x7f", b"\\u007f")  # in a key
        elif not data.isascii() or b"\x7f" in data:  # a non-ASCII key
            data = _escape_non_ascii(data)
    return data


def json_batch(values):
    """Fluent Bit's JSON text (bytes) of each value of ``values`` (records, usually)."""
    if not values:
        return []
    if orjson is None:
        return [_py_dumps(_exact(v)).encode() for v in values]
    return _json_joined(values)[1:-1].split(_SPLIT)


def _headed(events, body, needle, head_of, sep):
    """The records of ``body`` (their JSON text, ``needle`` between two), each after
    ``head_of(its time)``, joined by ``sep``. One head and one join per run of events at the
    same time (a block read from a file shares one), not a bytes object per record."""
    parts = body.split(needle)
    runs = []
    start = 0
    for time_ns, run in itertools.groupby([time_ns for time_ns, _ in events]):
        end = start + len(list(run))
        head = head_of(time_ns)
        runs.append(head + (sep + head).join(parts[start:end]))
        start = end
    return sep.join(runs)


def to_json(value):
    """Fluent Bit's JSON text (bytes) of one value: record, list, string or number."""
    return json_batch([value])[0]


def _map_text(value):
    return to_json(value).decode("ascii")


def record_template(text):
    """A record-accessor template (``edgeship.core.accessor.Template``) whose map values
    are rendered as Fluent Bit renders them there (flb_msgpack_to_json_str): the way every
    plugin builds one. ValueError for an invalid accessor."""
    return accessor.Template(text, map_text=_map_text)


# ---------------------------------------------------------------------------------------------
# JSON date key (json_date_key / json_date_format), shared by stdout, http and mqtt outputs

# Accepted json_date_format values (Fluent Bit's names and aliases), for Option(choices=...).
DATE_FORMATS = ("double", "epoch", "epoch_ms", "epoch_millis", "epoch_milliseconds",
                "iso8601", "java_sql_timestamp")
_DATE_ALIASES = {"epoch_millis": "epoch_ms", "epoch_milliseconds": "epoch_ms"}
# (day format, fraction format, nanoseconds per fraction unit); iso8601_ns is kafka's
# Timestamp_Format only, not a json_date_format.
_STRFTIME = {"iso8601": ("%Y-%m-%dT%H:%M:%S", ".%06dZ", 1000),
             "iso8601_ns": ("%Y-%m-%dT%H:%M:%S", ".%09dZ", 1),
             "java_sql_timestamp": ("%Y-%m-%d %H:%M:%S", ".%06d", 1000)}


def date_key_option(value):
    """The date key to add from a ``json_date_key`` setting: None when it is false/off/no
    (no date is added), else the key itself."""
    if value is None or value.strip().lower() in ("false", "off", "no"):
        return None
    return value


def date_json(time_ns, date_format="double"):
    """The JSON text (bytes) of an event time in ``date_format``.

    double              ``1711360801.5``: seconds as a float, ``%.16g`` (microseconds)
    epoch               ``1711360801``
    epoch_ms            ``1711360801500``
    iso8601             ``"2024-03-25T10:00:01.500000Z"``
    java_sql_timestamp  ``"2024-03-25 10:00:01.500000"``
    iso8601_ns          ``"2024-03-25T10:00:01.500000000Z"``
    """
    sec, nsec = divmod(time_ns, NS)
    date_format = _DATE_ALIASES.get(date_format, date_format)
    if date_format == "double":
        return json_float(sec + nsec / 1e9).encode()
    if date_format == "epoch":
        return b"%d" % sec
    if date_format == "epoch_ms":
        return b"%d" % (sec * 1000 + nsec // 1000000)
    if date_format in _STRFTIME:
        day, fraction, unit = _STRFTIME[date_format]
        text = time.strftime(day, time.gmtime(sec)) + fraction % (nsec // unit)
        return b'"' + text.encode() + b'"'
    raise ValueError("unknown json_date_format '%s'" % date_format)


def json_events(events, date_key=None, date_format="double"):
    """Fluent Bit's JSON object (bytes) of each event, the date first under ``date_key``
    (None: no date). As in Fluent Bit, a record that has a key named like ``date_key``
    keeps its own value and place."""
    parts = json_batch([record for _, record in events])
    if date_key is None:
        return parts
    return _dated_parts(events, parts, date_key, date_format)


def _dated_parts(events, parts, date_key, date_format):
    opening = b"{" + to_json(date_key) + b":"
    out = []
    last_ns = last_date = None
    for (time_ns, record), part in zip(events, parts):
        if date_key in record:
            out.append(part)
            continue
        if time_ns != last_ns:  # events of a batch often share a time
            last_ns, last_date = time_ns, date_json(time_ns, date_format)
        if len(part) == 2:  # "{}"
            out.append(opening + last_date + b"}")
        else:
            out.append(opening + last_date + b"," + part[1:])
    return out


def _joined_events(events, sep, date_key, date_format):
    """``sep.join(json_events(events, date_key, date_format))``, without a bytes object per
    record in the usual case."""
    records = [record for _, record in events]
    if orjson is None or not records:
        return sep.join(json_events(events, date_key, date_format))
    data = _json_joined(records)
    if date_key is None:
        return sep.join(data[1:-1].split(_SPLIT))  # faster than replace with this needle
    if {} in records or any(map(operator.contains, records, itertools.repeat(date_key))):
        # An empty record, or one with its own date: the per-record rules above.
        return sep.join(_dated_parts(events, data[1:-1].split(_SPLIT), date_key, date_format))
    opening = b"{" + to_json(date_key) + b":"
    # Each record's '{' makes way for the opening and the date: the needle takes it along.
    return _headed(events, data[2:-1], b",\x00,{",
                   lambda time_ns: opening + date_json(time_ns, date_format) + b",", sep)


_JSON_SEPARATORS = {"json": b",", "json_lines": b"\n", "json_stream": b""}


def render_json(events, json_format="json", date_key=None, date_format="double"):
    """A chunk in one of Fluent Bit's JSON output formats, as written by stdout/http:

    json         one array ``[{..},{..}]``
    json_lines   one object per line, each ending in a newline
    json_stream  the objects one after another, no separator
    """
    sep = _JSON_SEPARATORS.get(json_format)
    if sep is None:
        raise ValueError("unknown JSON format '%s'" % json_format)
    body = _joined_events(events, sep, date_key, date_format)
    if json_format == "json":
        return b"[" + body + b"]"
    if json_format == "json_lines" and events:
        return body + b"\n"
    return body


# ---------------------------------------------------------------------------------------------
# msgpack print (msgpack_object_print)


def _bin_print(data):
    # Printable ASCII raw, '"' escaped, anything else as \xNN (msgpack-c's bin printer).
    return "".join(['\\"' if b == 34 else chr(b) if 32 <= b < 127 else "\\x%02x" % b
                    for b in bytes(data)])


def print_value(value):
    """One value as ``msgpack_object_print`` writes it (text; encode with surrogateescape
    to get back raw bytes)."""
    kind = type(value)
    if kind is str:
        return '"' + value + '"'
    if kind is int:
        return str(value)
    if kind is float:
        return "%f" % value
    if value is None:
        return "nil"
    if kind is bool:
        return "true" if value else "false"
    if kind is dict:
        return "{" + ", ".join([print_value(k) + "=>" + print_value(v)
                                for k, v in value.items()]) + "}"
    if kind is list or kind is tuple:
        return "[" + ", ".join([print_value(v) for v in value]) + "]"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return '"' + _bin_print(value) + '"'
    for base in (str, int, float, dict, list, tuple):  # subclasses: as the base type
        if isinstance(value, base):
            return print_value(base(value))
    return '"' + str(value) + '"'


def _encode(text):
    return text.encode("utf-8", "surrogateescape")


def time_double(time_ns):
    """The event time as Fluent Bit's double (``flb_time_to_double``: sec + nsec / 1e9)."""
    sec, nsec = divmod(time_ns, NS)
    return sec + nsec / 1e9


def render_msgpack_print(tag, events):
    """stdout's default format: ``[N] tag: [[sec.nsec, {}], {"k"=>"v"}]`` per event, N from 0."""
    return _encode("".join([
        "[%d] %s: [[%d.%09d, {}], %s]\n" % (n, tag, t // NS, t % NS, print_value(record))
        for n, (t, record) in enumerate(events)]))


# ---------------------------------------------------------------------------------------------
# file output formats


def check_delimiter(text):
    """The delimiter a Delimiter / Label_Delimiter value means to Fluent Bit: tab (or ``\\t``),
    space or comma; None for any other value, which Fluent Bit ignores."""
    if text is None:
        return None
    return {"\\t": "\t", "tab": "\t", "space": " ", "comma": ","}.get(text.lower())


def render_out_file(tag, events):
    """``tag: [sec.nsec, {json}]`` lines, the default file format."""
    if not events:
        return b""
    records = [record for _, record in events]
    prefix = _encode(tag) + b": ["
    if orjson is None:
        return b"".join([b"%s%d.%09d, %s]\n" % (prefix, t // NS, t % NS, part)
                         for (t, _), part in zip(events, json_batch(records))])
    return _headed(events, _json_joined(records)[1:-1], _SPLIT,
                   lambda t: b"%s%d.%09d, " % (prefix, t // NS, t % NS), b"]\n") + b"]\n"


def render_plain(events):
    """One JSON record per line."""
    return render_json(events, "json_lines")


# ---------------------------------------------------------------------------------------------
# Records whose JSON text is known

class RenderedEvents(list):
    """A batch of events whose records' Fluent Bit JSON rendering is known already,
    ``json_lines`` (one record a line, as ``render_json(events, "json_lines")`` writes it):
    a parser that decoded them from that very text hands it on, and an output writing JSON
    lines takes it instead of rendering the records again. Whatever changes a record hands
    on a plain list (the engine gives filters one)."""

    __slots__ = ("json_lines",)

    def __init__(self, events, json_lines):
        list.__init__(self, events)
        self.json_lines = json_lines


_MINUS_ZERO = re.compile(r"-0[,}]")


def verbatim_json_lines(joined):
    """The json_lines text (bytes) of the records decoded from ``joined`` when every one of
    its texts already is Fluent Bit's rendering of its record, else None (render them).

    ``joined``: plain objects joined by NUL (``untrusted.loads_plain_objects``: flat maps of
    strings, int64 integers, booleans and nulls, no key twice, no tab, CR or LF). Such a text
    is what Fluent Bit writes when it is ASCII without DEL and holds no space (whitespace
    between values, or inside a string: not told apart), no backslash (an escape has
    several spellings) and no -0 (written 0)."""
    if not joined.isascii() or " " in joined or "\\" in joined or "\x7f" in joined \
            or ("-0" in joined and _MINUS_ZERO.search(joined) is not None):
        return None
    return joined.encode("ascii").replace(b"\x00", b"\n") + b"\n"


def csv_header(record, delimiter=","):
    """``timestamp,"key1","key2"`` (csv_column_names) from the keys of ``record``."""
    return _encode("timestamp" + delimiter + delimiter.join([print_value(k) for k in record])
                   + "\n")


def render_csv(events, delimiter=","):
    """``sec.nsec`` then every value in record order; records with no keys are skipped."""
    return _encode("".join([
        "%d.%09d%s%s\n" % (t // NS, t % NS, delimiter,
                           delimiter.join([print_value(v) for v in record.values()]))
        for t, record in events if record]))


def render_ltsv(events, delimiter="\t", label_delimiter=":"):
    """``"time":<seconds %f>`` then ``"key":value`` pairs; records with no keys are skipped."""
    return _encode("".join([
        '"time"%s%f%s%s\n' % (label_delimiter, time_double(t), delimiter, delimiter.join([
            print_value(k) + label_delimiter + print_value(v) for k, v in record.items()]))
        for t, record in events if record]))


class Template:
    """out_file's ``Format template``: ``{key}`` is a top-level value (a string raw, anything
    else msgpack-printed), ``{time}`` the time as ``%f`` seconds, an unknown ``{key}`` stays
    as written. Braces are read as Fluent Bit reads them: a second ``{`` before a ``}``
    makes the first one literal, an unclosed ``{`` is literal to the end. Fluent Bit
    compares the key with ``strncmp(key, "time", len(key))``, so ``{}``, ``{t}`` ... ``{tim}``
    also mean the time."""

    def __init__(self, text):
        self.pieces = []   # (is_key, text)
        literal = []
        brace = None
        for pos, char in enumerate(text):
            if char == "{":
                if brace is not None:
                    literal.append(text[brace:pos])
                brace = pos
            elif char == "}" and brace is not None:
                self._literal(literal)
                self.pieces.append((True, text[brace + 1:pos]))
                brace = None
            elif brace is None:
                literal.append(char)
        if brace is not None:
            literal.append(text[brace:])
        self._literal(literal)

    def _literal(self, chars):
        if chars:
            self.pieces.append((False, "".join(chars)))
            del chars[:]

    def _line(self, time_ns, record):
        out = []
        for is_key, text in self.pieces:
            if not is_key:
                out.append(text)
            elif "time".startswith(text):
                out.append("%f" % time_double(time_ns))
            elif text in record:
                value = record[text]
                out.append(value if type(value) is str else print_value(value))
            else:
                out.append("{" + text + "}")
        out.append("\n")
        return "".join(out)

    def render(self, events):
        return _encode("".join([self._line(t, record) for t, record in events]))

