"""A small CBOR (RFC 8949) encoder for the MicroPython agent, which has no cbor module.

Encodes what sensor records hold: maps, lists, str, bytes, int, float (always 64-bit),
bool and None. CPython edgeship decodes with cbor2 (edgeship.codecs.payload); tests check that both
agree.
"""
import struct


def _head(major, value, out):
    if value < 24:
        out.append((major << 5) | value)
        return
    size = 1 if value < 0x100 else 2 if value < 0x10000 else 4 if value < 0x100000000 else 8
    out.append((major << 5) | (24 + (size > 1) + (size > 2) + (size > 4)))   # 24..27
    out.extend(value.to_bytes(size, "big"))


def _encode(value, out):
    if value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, int):
        if value >= 0:
            _head(0, value, out)
        else:
            _head(1, -1 - value, out)
    elif isinstance(value, float):
        out.append(0xFB)
        out.extend(struct.pack(">d", value))
    elif isinstance(value, str):
        data = value.encode()
        _head(3, len(data), out)
        out.extend(data)
    elif isinstance(value, (bytes, bytearray)):
        _head(2, len(value), out)
        out.extend(value)
    elif isinstance(value, dict):
        _head(5, len(value), out)
        for key in value:
            _encode(key, out)
            _encode(value[key], out)
    elif isinstance(value, (list, tuple)):
        _head(4, len(value), out)
        for item in value:
            _encode(item, out)
    else:
        raise TypeError("cannot encode %s as CBOR" % type(value).__name__)


def dumps(value):
    out = bytearray()
    _encode(value, out)
    return bytes(out)
