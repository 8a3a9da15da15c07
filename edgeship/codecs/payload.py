"""MQTT payloads <-> records: JSON, CBOR, msgpack and raw text.

Encoding (mqtt output): ``json`` is one record per message (Fluent Bit's JSON text with the
``json_date_key``, see edgeship.codecs.formats); ``json_lines``, ``cbor`` and ``msgpack`` pack a
whole batch in one message: JSON lines, or an array of maps, each map led by the date key.

Decoding (mqtt and mqtt_client inputs): ``values(fmt, data)`` returns every top-level value
of a payload (a JSON/CBOR/msgpack stream may hold several, as a json_lines batch does), and
``records(values, key)`` makes records of them, opening arrays of maps (the batch payloads
above).
Decoding is bounded by ``edgeship.codecs.untrusted`` (depth, size, linear time): a payload
nested deeper than its ``MAX_DEPTH`` raises ``TooDeep``, a ValueError like any payload that
does not decode. JSON follows Fluent Bit's rules (untrusted.loads): a key given twice keeps
the last value at the later position, as the json parser and every input has it.
``with_topic`` puts the message topic first in a record the same way: a payload key of the
same name wins, at its own position (what Fluent Bit's JSON outputs show for in_mqtt).
cbor2 and msgpack are imported only when a payload needs them.
"""
import io
import itertools
import operator

from edgeship.codecs import formats
from edgeship.codecs import untrusted

ENCODINGS = ("json", "json_lines", "cbor", "msgpack")
DECODINGS = ("json", "cbor", "msgpack", "raw")

_JSON_SPACE = " \t\n\r"


def _text(data):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


# ------------------------------------------------------------------------------- decoding
def first_json(data):
    """The first JSON value of ``data``; text after it is ignored, as Fluent Bit's in_mqtt
    does (``{"a":1} x`` is ``{"a":1}``). Raises ValueError when there is none."""
    try:
        return untrusted.loads(data)
    except untrusted.TooDeep:
        raise
    except ValueError:
        pass
    text = _text(data).lstrip(_JSON_SPACE)
    return untrusted.raw_decode(text)[0]


def json_values(data):
    """Every JSON value of ``data``, one after another (a json_lines batch, or one object).
    Raises ValueError when the payload is not JSON at all."""
    try:
        return [untrusted.loads(data)]
    except untrusted.TooDeep:
        raise
    except ValueError:
        pass
    text = _text(data)
    out = []
    pos = 0
    end = len(text)
    while True:
        while pos < end and text[pos] in _JSON_SPACE:
            pos += 1
        if pos >= end:
            return out
        try:
            value, pos = untrusted.raw_decode(text, pos)
        except untrusted.TooDeep:
            raise
        except ValueError:
            if out:  # keep what was read; the rest is not JSON
                return out
            raise
        out.append(value)


def _bounded_cbor(value):
    # cbor2 stops at 400 levels itself; the bound is the one every input has.
    if untrusted.nests_deeper(value):
        raise untrusted.TooDeep()
    return value


def first_cbor(data):
    import cbor2
    try:
        value = cbor2.CBORDecoder(io.BytesIO(data)).decode()
    except Exception as exc:  # cbor2 raises several kinds
        raise ValueError("not CBOR: %s" % exc)
    return _bounded_cbor(value)


def cbor_values(data):
    import cbor2
    stream = io.BytesIO(data)
    decoder = cbor2.CBORDecoder(stream)
    out = []
    while stream.tell() < len(data):
        try:
            out.append(_bounded_cbor(decoder.decode()))
        except untrusted.TooDeep:
            raise
        except Exception as exc:
            if out:
                return out
            raise ValueError("not CBOR: %s" % exc)
    return out


_UNREADABLE = object()


def msgpack_values(data):
    values = untrusted.msgpack_values(data, _UNREADABLE, raw=False, unicode_errors="replace",
                                      strict_map_key=False)
    if values and values[0] is _UNREADABLE:
        raise ValueError("not msgpack")
    if _UNREADABLE in values:
        values = values[:values.index(_UNREADABLE)]   # keep what was read before
    if any(map(untrusted.nests_deeper, values)):
        raise untrusted.TooDeep()
    return values


def looks_like_json(data):
    """For ``Format auto``: JSON maps/arrays start with '{' or '[' (after blanks); a CBOR
    map or array never does (0x7b and 0x5b are text/bytes headers in CBOR)."""
    return data.lstrip(b" \t\r\n")[:1] in (b"{", b"[")


def values(fmt, data):
    """Every value of the payload ``data`` in format ``fmt`` (json, cbor, msgpack)."""
    if fmt == "json":
        return json_values(data)
    if fmt == "cbor":
        return cbor_values(data)
    if fmt == "msgpack":
        return msgpack_values(data)
    raise ValueError("unknown payload format '%s'" % fmt)


def records(found, key):
    """Records from decoded ``found`` values: a map is a record, an array of maps one record
    per map, and any other value is kept as ``{key: value}``."""
    out = []
    for value in found:
        if isinstance(value, dict):
            out.append(value)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            out.extend(value)
        else:
            out.append({key: value})
    return out


def raw_text(data):
    return _text(data)


def with_topic(key, topic, body):
    """``{key: topic}`` followed by the keys of ``body``; a key of ``body`` named ``key``
    keeps its value at its own position (the later one), as every duplicate key does."""
    if key in body:
        return dict(body)
    record = {key: topic}
    record.update(body)
    return record


# ------------------------------------------------------------------------------- encoding
def dated_maps(events, date_key, date_format):
    """Records with the date first under ``date_key`` (None: records as they are). A record
    that already has the key keeps its own value, as formats.json_events does."""
    if date_key is None:
        return [record for _, record in events]
    maps = []
    # One date per run of events at the same time (a batch read from a file shares one).
    for time_ns, run in itertools.groupby(events, key=operator.itemgetter(0)):
        date = untrusted.loads(formats.date_json(time_ns, date_format))
        maps.extend([record if date_key in record else {date_key: date, **record}
                     for _, record in run])
    return maps


def encode_batch(fmt, events, date_key=None, date_format="double"):
    """One payload for a whole batch (json_lines, cbor, msgpack)."""
    if fmt == "json_lines":
        return formats.render_json(events, "json_lines", date_key, date_format)
    maps = dated_maps(events, date_key, date_format)
    if fmt == "cbor":
        import cbor2
        return cbor2.dumps(maps)
    if fmt == "msgpack":
        from edgeship.codecs.msgpack import packb
        return packb(maps)
    raise ValueError("unknown batch format '%s'" % fmt)


def encode_records(events, date_key=None, date_format="double"):
    """One JSON payload per record (Format json)."""
    return formats.json_events(events, date_key, date_format)


def encode_value(value):
    """A single field sent raw (Payload_Key): text as UTF-8, bytes as they are, anything
    else as its JSON."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return formats.to_json(value)
