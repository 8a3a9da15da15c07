"""Format json: one JSON object per text, as Fluent Bit's flb_parser_json.c.

- Only an object parses: arrays, scalars, invalid JSON, two objects on one line or single
  quotes fail (the caller keeps the raw line). Whitespace around the object is fine.
- A key given twice keeps the last value at the later position (``{"a":1,"b":2,"a":3}``
  gives ``{"b":2,"a":3}``), at every depth.
- Integers beyond 64 bits become floats; NaN, Infinity and 1e400 are refused.
- An object nested deeper than ``untrusted.MAX_DEPTH`` (64) levels fails, as Fluent Bit's
  msgpack stack makes it fail (the caller keeps the raw line).
- Types does not apply (as in Fluent Bit). Decoders run before the time lookup.
- Time_Key with a string value is parsed with Time_Format; a value that does not parse is
  warned about and kept, and the record gets the current time. A number is not a time.

orjson does the work when it is installed (about 1 us a line); the standard library gives
the same records without it.
"""
import json as _json

from edgeship.codecs import untrusted
from edgeship.plugins.parsers._base import Parser, put

try:
    from orjson import loads as _fast_loads
    from orjson import JSONDecodeError as _FastError
except ImportError:  # pragma: no cover - exercised by the stdlib tests directly
    _fast_loads = None
    _FastError = ValueError

_INT64_MIN, _UINT64_MAX = -(1 << 63), (1 << 64) - 1


def _pairs_last_wins(pairs):
    record = {}
    for key, value in pairs:
        put(record, key, value)
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


_STDLIB = _json.JSONDecoder(object_pairs_hook=_pairs_last_wins, parse_int=_parse_int,
                            parse_float=_parse_float, parse_constant=_refuse_constant)


def _stdlib_object(text):
    try:
        value = _STDLIB.decode(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or untrusted.text_nests_deeper(text, value):
        return None
    return value


def _count_keys(value):
    """Keys in ``value`` and everything nested in it."""
    if isinstance(value, dict):
        return len(value) + sum(_count_keys(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count_keys(v) for v in value)
    return 0


def _may_repeat_a_key(text, value):
    """False when ``text`` certainly has no repeated key.

    Every key is a string followed by ':'. Without whitespace before any ':', the count of
    '":' is the number of keys in the text (nested ones included) plus any '":' inside
    string values; when it equals the number of keys decoded, no key was lost to a repeat.
    (Each whitespace is first looked for alone: a one-character search is a fast memchr.)
    """
    if (" " in text and " :" in text) or ("\t" in text and "\t:" in text) \
            or ("\r" in text and "\r:" in text) or ("\n" in text and "\n:" in text):
        return True
    found = text.count('":')
    return found != len(value) and found != _count_keys(value)


_REFUSED = object()  # orjson raised: the standard parser decides


def _settle(text, value):
    """The object of ``text`` given what orjson made of it (``value``), the slow way."""
    if value is _REFUSED:
        # orjson refuses a few texts Python accepts (lone surrogate escapes); let the
        # standard parser decide, so the result never depends on orjson being installed.
        # Only an object can parse: other texts fail before the slower parser runs.
        if text[:1] != "{" and not text.lstrip(" \t\r\n").startswith("{"):
            return None
        return _stdlib_object(text)
    # Depth first: _may_repeat_a_key walks the value recursively.
    if type(value) is not dict or untrusted.text_nests_deeper(text, value):
        return None
    if _may_repeat_a_key(text, value):
        return _stdlib_object(text)
    return value


def loads_objects(texts):
    """The JSON object in each text as a dict, or None for a text that is not one object."""
    if _fast_loads is None:
        return [_stdlib_object(text) for text in texts]
    loads, error = _fast_loads, _FastError  # locals: this loop is hot
    values = []
    append = values.append
    for text in texts:
        try:
            append(loads(text))
        except error:
            append(_REFUSED)
    if _flat_objects(texts, values):
        return values
    return [_settle(text, value) for text, value in zip(texts, values)]


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
        and ("[" not in joined or joined.count("[") <= untrusted.MAX_DEPTH - 2)


def loads_object(text):
    """The JSON object in ``text`` as a dict, or None when ``text`` is not one object."""
    if _fast_loads is None:
        return _stdlib_object(text)
    try:
        value = _fast_loads(text)
    except _FastError:
        value = _REFUSED
    return _settle(text, value)


class JsonParser(Parser):
    format = "json"

    def parse(self, text):
        record = loads_object(text)
        if record is None:
            self.failed += 1
            return None
        return self._finish(record, None)

    def parse_lines(self, lines, now_ns):
        records = loads_objects(lines)
        failed = records.count(None)
        self.failed += failed
        if self.decoders is None and self.time_format is None and not failed:
            return [(now_ns, record) for record in records]
        finish = self._finish
        return [None if record is None else finish(record, now_ns) for record in records]

    def _finish(self, record, now_ns):
        """Decoders, then the time lookup: the event of a decoded record."""
        if self.decoders is not None:
            record = self.decoders.apply(record)
        if self.time_format is None:
            return now_ns, record
        value = record.get(self.time_key)
        if value is None:
            return now_ns, record
        if not isinstance(value, str):
            self.log.warn_often("invalid non-string time")
            return now_ns, record
        time_ns = self.lookup_time(value)
        if time_ns is None:
            return now_ns, record
        if not self.time_keep:
            del record[self.time_key]
        return time_ns, record


PLUGIN = JsonParser
