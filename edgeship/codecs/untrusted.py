"""Bounded decoding of what arrives from outside: the one place every input turns untrusted
JSON text or msgpack bytes into values (forward frames and entries, MQTT payloads, stdin,
the json parser that tail and stdin lines go through).

Three bounds, the same at every boundary:

Depth  A value holds at most ``MAX_DEPTH`` = 64 levels of maps and arrays, its own map or
       array counted as the first. That is Fluent Bit's number: it builds msgpack-c with a
       64-container stack (``MSGPACK_EMBED_STACK_SIZE=64``, cmake/msgpack.cmake), so its
       decoder refuses anything deeper; in_mqtt then drops the payload, and no output can
       read such a record back from a chunk (there the entry array takes one of the 64, so
       Fluent Bit delivers records of at most 63 levels). A deeper value raises ``TooDeep``,
       a ValueError: each input treats it as it treats any text it cannot decode (its rule:
       drop it, or keep the raw text), counts it and logs it once per batch.
Size   msgpack lengths (str, bin, array, map, ext) are capped by the bytes at hand; JSON
       text by each input's own buffer (Buffer_Size, Buffer_Max_Size).
Time   linear in the input whatever it holds. JSON is decoded by orjson or the standard
       library's C scanner, which both give up early on deep text (1024 levels, or the
       recursion limit); the depth is then walked only when the text has more opening
       brackets than ``MAX_DEPTH`` (counted at C speed), so a common line costs nothing
       more. msgpack is decoded by msgpack's C decoder, which gives up at 1024 levels; past
       that a small pure-Python ``Scanner`` finds where the deep value ends (about 0.15 us a
       level), so reading goes on after it. Decoded records are checked level by level,
       never recursively: a batch of flat records in one C-level pass over their values.

JSON is decoded here, and only here, with Fluent Bit's rules (see "JSON" below): every
input (the json parser, stdin, the mqtt and mqtt_client payloads, dummy's record) gets the
same values, duplicate keys included, with or without orjson.
"""
import io
import json
import re
from itertools import chain, compress

import msgpack

try:  # orjson is the fast extra; json gives the same values without it
    from orjson import loads as _fast_loads
except ImportError:
    _fast_loads = None

try:  # msgspec (the fast extra too) decodes plain objects checking their types as it goes
    from typing import Annotated, Dict, Union

    import msgspec
    _INT64 = Annotated[int, msgspec.Meta(ge=-(1 << 63), le=(1 << 63) - 1)]
    _plain_loads = msgspec.json.Decoder(Dict[str, Union[None, bool, _INT64, str]]).decode
    # ValueErrors since msgspec 0.21; before, only MsgspecErrors
    _NOT_PLAIN = (ValueError, msgspec.MsgspecError)
except ImportError:
    _plain_loads = None

MAX_DEPTH = 64

_CONTAINERS = frozenset((dict, list))
_is_container_type = _CONTAINERS.__contains__


class TooDeep(ValueError):
    """A value nests more than ``MAX_DEPTH`` levels. ``pos``: where it starts in its text;
    ``end``: where it ends, or None when the decoder gave up inside it."""

    def __init__(self, pos=0, end=None):
        ValueError.__init__(self, "nested deeper than %d levels" % MAX_DEPTH)
        self.pos = pos
        self.end = end


# ------------------------------------------------------------------------------ any value
def _inner(level):
    """The maps and arrays directly inside the maps and arrays of ``level``."""
    found = []
    for container in level:
        items = container.values() if type(container) is dict else container
        found.extend(compress(items, map(_is_container_type, map(type, items))))
    return found


def nests_deeper(value, limit=MAX_DEPTH):
    """True when ``value`` holds more than ``limit`` levels of maps and arrays. Level by
    level, no recursion: time is linear in the containers, whatever the depth."""
    level = [value] if type(value) in _CONTAINERS else []
    for _ in range(limit):
        if not level:
            return False
        level = _inner(level)
    return bool(level)


def too_deep(records, limit=MAX_DEPTH):
    """Indexes of the ``records`` (maps) nesting deeper than ``limit``, the record being the
    first level. Flat records, the usual batch, cost one C-level pass over their values."""
    if _CONTAINERS.isdisjoint(map(type, chain.from_iterable(map(dict.values, records)))):
        return []
    level = records
    for _ in range(limit):
        level = _inner(level)
        if not level:
            return []
    return [i for i, record in enumerate(records) if nests_deeper(record, limit)]


# ------------------------------------------------------------------------------ JSON
# Fluent Bit's rules (flb_pack_json; checked on 5.1.1 with the json parser, in_mqtt and
# in_stdin): a key given twice keeps the last value at the later position, at every depth
# (Fluent Bit's record holds both; each of its JSON outputs shows the last value at the
# later position, which is what a dict can hold); integers beyond 64 bits become floats;
# NaN, Infinity and numbers beyond a double (1e400) are refused; in_stdin alone (its own
# tokenizer) takes 1e400 as infinity, hence ``raw_decode(..., overflow_ok=True)``.
_INT64_MIN, _UINT64_MAX = -(1 << 63), (1 << 64) - 1


def _last_wins(pairs):
    record = {}
    for key, value in pairs:
        if key in record:
            del record[key]     # the later position
        record[key] = value
    return record


def _parse_int(text):
    value = int(text)
    if _INT64_MIN <= value <= _UINT64_MAX:
        return value
    return float(text)


def _parse_float(text):
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("number out of range")
    return value


def _refuse_constant(name):
    raise ValueError("%s is not JSON" % name)


_STRICT = json.JSONDecoder(object_pairs_hook=_last_wins, parse_int=_parse_int,
                           parse_float=_parse_float, parse_constant=_refuse_constant)
_OVERFLOW_OK = json.JSONDecoder(object_pairs_hook=_last_wins, parse_int=_parse_int,
                                parse_constant=_refuse_constant)
_REFUSED = object()  # orjson raised: the standard decoder decides


def _opening_brackets(text, start=0, end=None):
    if isinstance(text, str):
        return text.count("{", start, end) + text.count("[", start, end)
    return text.count(b"{", start, end) + text.count(b"[", start, end)


def text_nests_deeper(text, value, start=0, end=None, limit=MAX_DEPTH):
    """True when ``value``, decoded from ``text[start:end]``, nests deeper than ``limit``.
    A value cannot nest deeper than its text has opening brackets, so only a text with more
    than ``limit`` of them is walked."""
    return _opening_brackets(text, start, end) > limit and nests_deeper(value, limit)


def _count_keys(value):
    """Keys in ``value`` and everything nested in it (called on values within MAX_DEPTH)."""
    if isinstance(value, dict):
        return len(value) + sum(_count_keys(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count_keys(v) for v in value)
    return 0


# Whitespace before a ':' hides a key from the count of '":' (one C-level pass to find any).
_SPACED_COLON = re.compile(r"[ \t\r\n]:")
_SPACED_COLON_BYTES = re.compile(rb"[ \t\r\n]:")


def _may_repeat_a_key(text, value):
    """False when ``text`` certainly has no repeated key (orjson keeps a repeat's last value
    at the first position; only the standard decoder's hook moves it).

    Every key is a string followed by ':'. Without whitespace before any ':', the count of
    '":' is the number of keys in the text (nested ones included) plus any '":' inside
    string values; when it equals the number of keys decoded, no key was lost to a repeat.
    """
    kind = type(value)
    if kind is not dict and kind is not list:
        return False
    if type(text) is str:
        if _SPACED_COLON.search(text) is not None:
            return True
        found = text.count('":')
    else:
        if _SPACED_COLON_BYTES.search(text) is not None:
            return True
        found = text.count(b'":')
    if kind is dict and found == len(value):
        return False
    return found != _count_keys(value)


def _stdlib(data):
    if isinstance(data, (bytes, bytearray)):
        data = bytes(data).decode("utf-8")      # invalid UTF-8: a ValueError, as orjson's
    try:
        return _STRICT.decode(data)
    except RecursionError:
        raise TooDeep()


def _settle(data, value):
    """The value of ``data`` with Fluent Bit's rules, given what orjson made of it
    (``_REFUSED`` when it raised, or is not installed)."""
    if value is _REFUSED:
        # orjson also refuses a few texts Python accepts (lone surrogate escapes): the
        # standard decoder decides, so the result never depends on orjson being installed.
        value = _stdlib(data)
        if text_nests_deeper(data, value):
            raise TooDeep()
        return value
    if text_nests_deeper(data, value):    # first: _may_repeat_a_key walks the value
        raise TooDeep()
    if _may_repeat_a_key(data, value):
        return _stdlib(data)
    return value


def _fast(data):
    if _fast_loads is None:
        return _REFUSED
    try:
        return _fast_loads(data)
    except ValueError:
        return _REFUSED


def loads(data):
    """The JSON value all of ``data`` (str or bytes) holds, with Fluent Bit's rules. ValueError
    when it holds none, TooDeep when it nests too deep."""
    if _fast_loads is None:
        return _settle(data, _REFUSED)
    try:
        value = _fast_loads(data)
    except ValueError:
        value = _REFUSED
    return _settle(data, value)


def _object_from(text, value):
    if value is _REFUSED:
        # Only an object can parse: other texts fail before the slower decoder runs.
        if text[:1] != "{" and not text.lstrip(" \t\r\n").startswith("{"):
            return None
    elif type(value) is not dict:
        return None
    try:
        value = _settle(text, value)
    except ValueError:
        return None
    return value if type(value) is dict else None


def loads_object(text):
    """The JSON object in ``text`` as a dict, or None when ``text`` is not one object (or
    nests too deep): what the json parser takes."""
    return _object_from(text, _fast(text))


def loads_objects(texts):
    """``loads_object`` of each text, a batch at a time (the json parser's lines)."""
    if _fast_loads is None:
        return [loads_object(text) for text in texts]
    fast = _fast_loads  # a local: this loop is hot
    values = []
    append = values.append
    for text in texts:
        try:
            append(fast(text))
        except ValueError:
            append(_REFUSED)
    if _flat_objects(texts, values):
        return values
    return [_object_from(text, value) for text, value in zip(texts, values)]


def loads_plain_objects(texts):
    """``(objects, joined)`` when every text is one plain object: a map of strings, integers
    within int64, booleans and nulls (no float, no nested value), no key given twice;
    ``joined`` is the texts joined by NUL. Else None (always without msgspec, which checks
    the types while decoding): use ``loads_objects``.

    The objects are those ``loads_objects`` gives. A text that is not plain makes msgspec
    give the batch up; one with an array or with whitespace outside its strings other than
    spaces is not tried."""
    if _plain_loads is None or not texts:
        return None
    joined = "\x00".join(texts)
    if "[" in joined or "\t" in joined or "\r" in joined or "\n" in joined \
            or (" " in joined and " :" in joined):
        return None
    try:
        values = list(map(_plain_loads, texts))
    except _NOT_PLAIN:
        return None
    # Without whitespace before a ':', '":' is written once per key (and inside strings):
    # as many as the keys decoded means no key was given twice (see _may_repeat_a_key).
    if joined.count('":') != sum(map(len, values)):
        return None
    return values, joined


def _flat_objects(texts, values):
    """True when every value is an object, no text nests or repeats a key, and none can nest
    too deep: the usual block of lines, settled by a few passes over all texts at once
    instead of per text.

    Without whitespace before a ':', a text holds at least as many '":' as its object has
    keys (one per key written; nested keys and '":' inside strings add more), so equal
    totals over the block mean equal counts in every text (see _may_repeat_a_key). The NUL
    joining the texts forms neither '":' nor whitespace. Tab, CR and LF are one-character
    (memchr) searches; " :" is only searched for when there is a space at all.

    Equal totals also mean no nested key at all: a nested map is then empty, so only arrays
    nest, and a text holds at most 2 + its '[' count levels (the object, the arrays, an
    empty map inside). No '[' in the block (one memchr), or few, settles the depth bound.
    """
    if set(map(type, values)) != {dict}:
        return False
    joined = "\x00".join(texts)
    return "\t" not in joined and "\r" not in joined and "\n" not in joined \
        and (" " not in joined or " :" not in joined) \
        and joined.count('":') == sum(map(len, values)) \
        and ("[" not in joined or joined.count("[") <= MAX_DEPTH - 2)


def raw_decode(text, start=0, overflow_ok=False):
    """``(value, end)`` of the JSON value at ``text[start:]`` (a str), with Fluent Bit's
    rules, for texts holding several values. ``overflow_ok``: a number beyond a double is
    infinity (in_stdin) instead of an error. ValueError or TooDeep."""
    decoder = _OVERFLOW_OK if overflow_ok else _STRICT
    try:
        value, end = decoder.raw_decode(text, start)
    except RecursionError:
        raise TooDeep(start)
    if text_nests_deeper(text, value, start, end):
        raise TooDeep(start, end)
    return value, end


_SPACE = " \t\r\n"


class Scan:
    """What ``scan_values`` found in a text: ``values`` in order, ``end`` (where the text
    not yet taken starts), ``invalid`` and ``too_deep`` (values skipped) and ``example``
    (the start of the first invalid one, for the log line)."""

    __slots__ = ("values", "end", "invalid", "too_deep", "example")

    def __init__(self):
        self.values = []
        self.end = 0
        self.invalid = self.too_deep = 0
        self.example = None


def scan_values(text, at_eof=False, max_pending=None, overflow_ok=False):
    """The JSON values written one after another in ``text``, whitespace between them
    optional (stdin, the serial input's Format json). A value that is not complete waits for
    more text (``end`` stops before it) unless ``at_eof`` or ``max_pending`` characters of it
    are at hand; an invalid one is skipped to the end of its line, so the rest is kept; a
    value nested too deep is skipped whole when its end is known."""
    scan = Scan()
    append = scan.values.append
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in _SPACE:
            pos += 1
        if pos >= end:
            break
        try:
            value, pos = raw_decode(text, pos, overflow_ok)
        except ValueError as exc:
            deep = isinstance(exc, TooDeep)
            if deep and exc.end is not None:
                scan.too_deep += 1
                pos = exc.end
                continue
            newline = text.find("\n", getattr(exc, "pos", pos))
            complete = newline >= 0 or at_eof or (max_pending is not None
                                                 and end - pos >= max_pending)
            if not complete:
                break
            skip_to = newline + 1 if newline >= 0 else end
            if deep:
                scan.too_deep += 1
            else:
                scan.invalid += 1
                if scan.example is None:
                    scan.example = text[pos:skip_to][:80]
            pos = skip_to
            continue
        append(value)
    scan.end = pos
    return scan


# ------------------------------------------------------------------------------ msgpack
_ATOM, _FIXED_ITEMS, _ITEMS, _SIZED = range(4)


def _skip_table():
    """msgpack's first byte -> (kind, a, b). _ATOM: a value of ``a`` bytes. _FIXED_ITEMS: a
    header byte opening ``a`` items. _ITEMS: ``a`` bytes of count follow, ``b`` items per
    count. _SIZED: ``a`` bytes of length follow, then ``b`` bytes (ext type), then the body."""
    table = [None] * 256                        # None: 0xc1, never used
    for byte in range(256):
        if byte < 0x80 or byte >= 0xe0 or byte in (0xc0, 0xc2, 0xc3):
            table[byte] = (_ATOM, 1, 0)         # fixint, nil, booleans
        elif byte < 0xa0:                       # fixmap, fixarray
            items = (byte & 0x0f) * (2 if byte < 0x90 else 1)
            table[byte] = (_FIXED_ITEMS, items, 0) if items else (_ATOM, 1, 0)
        elif byte < 0xc0:
            table[byte] = (_ATOM, 1 + (byte & 0x1f), 0)   # fixstr
    sized = {0xc4: (1, 0), 0xc5: (2, 0), 0xc6: (4, 0),   # bin
             0xd9: (1, 0), 0xda: (2, 0), 0xdb: (4, 0),   # str
             0xc7: (1, 1), 0xc8: (2, 1), 0xc9: (4, 1)}   # ext
    for byte, (width, extra) in sized.items():
        table[byte] = (_SIZED, width, extra)
    atoms = {0xca: 5, 0xcb: 9, 0xcc: 2, 0xcd: 3, 0xce: 5, 0xcf: 9, 0xd0: 2, 0xd1: 3,
             0xd2: 5, 0xd3: 9, 0xd4: 3, 0xd5: 4, 0xd6: 6, 0xd7: 10, 0xd8: 18}
    for byte, size in atoms.items():
        table[byte] = (_ATOM, size, 0)
    for byte, width, per in ((0xdc, 2, 1), (0xdd, 4, 1), (0xde, 2, 2), (0xdf, 4, 2)):
        table[byte] = (_ITEMS, width, per)
    return table


_SKIP = _skip_table()


class Scanner:
    """Finds where one msgpack value ends, however deep, looking at each header once and
    building nothing. Pure Python, so it only serves values msgpack's C decoder refuses.
    ``scan(data)`` can be called again after more bytes were appended to ``data``."""

    def __init__(self, start=0):
        self.pos = start
        self.remaining = 1     # items left in the innermost open container
        self.stack = []        # the same for each enclosing container

    def scan(self, data):
        """The offset just past the value, or None when ``data`` ends first. ValueError
        for bytes that are not msgpack."""
        pos, remaining, stack = self.pos, self.remaining, self.stack
        size = len(data)
        table = _SKIP
        while pos < size:
            shape = table[data[pos]]
            if shape is None:
                raise ValueError("invalid msgpack byte 0xc1 at offset %d" % pos)
            kind, a, b = shape
            if kind == _FIXED_ITEMS:
                pos += 1
                stack.append(remaining)
                remaining = a
                continue
            if kind == _ATOM:
                end = pos + a
            else:
                head = pos + 1 + a
                if head > size:
                    break
                n = int.from_bytes(data[pos + 1:head], "big")
                if kind == _ITEMS and n:
                    pos = head
                    stack.append(remaining)
                    remaining = n * b
                    continue
                end = head if kind == _ITEMS else head + b + n
            if end > size:
                break
            pos = end
            remaining -= 1
            while not remaining:
                if not stack:
                    self.pos, self.remaining = pos, 0
                    return pos
                remaining = stack.pop() - 1
        self.pos, self.remaining = pos, remaining
        return None


def array_items(data):
    """Byte spans ``(start, end)`` of the elements of the msgpack array ``data`` holds
    (a whole value), or None when it holds no array."""
    shape = _SKIP[data[0]] if data else None
    if shape is None or not (0x90 <= data[0] <= 0x9f or data[0] in (0xdc, 0xdd)):
        return None
    kind, a, _ = shape
    if kind == _ATOM:                                 # empty fixarray
        return []
    if kind == _FIXED_ITEMS:
        count, pos = a, 1
    else:
        count, pos = int.from_bytes(data[1:1 + a], "big"), 1 + a
    spans = []
    for _ in range(count):
        end = Scanner(pos).scan(data)
        if end is None:
            raise ValueError("msgpack array cut short")
        spans.append((pos, end))
        pos = end
    return spans


# Appended to the bytes of msgpack_values: read back last, it shows the bytes before it ended
# on a whole value; a value cut short swallows it instead. (msgpack's own sign of a cut value
# differs between its versions.) A sender that ends its bytes with this very string and then
# a cut value only loses that string and the count of the cut value.
_END_TEXT = "edgeship:end-of-data"
_END = bytes((0xa0 | len(_END_TEXT),)) + _END_TEXT.encode()
_END_VALUES = (_END_TEXT, _END_TEXT.encode())


def _skip_values(stream, start, count, size):
    """The offset just past ``count`` whole values read from ``start`` (fast, in C)."""
    stream.seek(start)
    skipper = msgpack.Unpacker(stream, max_buffer_size=size)
    for _ in range(count):
        skipper.skip()
    return start + skipper.tell()


def msgpack_values(data, unreadable, **options):
    """Every msgpack value of ``data``, in order. A value nested deeper than msgpack's C
    decoder goes (1024 levels) is replaced by ``unreadable`` and reading goes on after it;
    bytes that are not msgpack, or a value cut short, add one ``unreadable`` and end the
    list. Lengths are capped by ``len(data)``. ``options`` go to msgpack.Unpacker."""
    size = len(data)
    data = bytes(data) + _END
    stream = io.BytesIO(data)
    values = []
    start = 0
    while start < len(data):
        stream.seek(start)
        unpacker = msgpack.Unpacker(stream, max_buffer_size=len(data), **options)
        before = len(values)
        try:
            values.extend(unpacker)
        except msgpack.StackError:
            at = _skip_values(stream, start, len(values) - before, len(data))
            try:
                end = Scanner(at).scan(data)
            except ValueError:
                end = None
            values.append(unreadable)
            if end is None or end > size:       # cut short: the end mark went into it
                return values
            start = end
            continue
        except Exception:   # not msgpack: the rest cannot be cut into values
            values.append(unreadable)
            return values
        if len(values) > before and values[-1] in _END_VALUES:
            values.pop()
            return values
        # A value was cut short. If it swallowed the end mark and so came out whole, it is
        # the last one read: drop it.
        if len(values) > before and _skip_values(stream, start, len(values) - before,
                                                 len(data)) > size:
            values.pop()
        values.append(unreadable)
        return values
    return values
