"""A small msgpack codec in plain Python, for the forward session tests under MicroPython
(which has no msgpack package): the ``codec`` the sessions take (see edgeship.core.forward),
enough for test frames. On CPython edgeship uses edgeship.codecs.msgpack instead."""
import struct

from edgeship.core import forward


class Incomplete(Exception):
    pass


def _need(data, end):
    if end > len(data):
        raise Incomplete()


def _sized(data, pos, width):
    _need(data, pos + width)
    return int.from_bytes(data[pos:pos + width], "big"), pos + width


def decode(data, pos=0):
    """``(value, end)`` of the msgpack value at ``data[pos:]``; Incomplete when it is cut,
    ValueError for a byte that starts no value."""
    _need(data, pos + 1)
    b = data[pos]
    pos += 1
    if b < 0x80:
        return b, pos
    if b >= 0xe0:
        return b - 0x100, pos
    if b < 0x90:
        return _map(data, pos, b & 0x0f)
    if b < 0xa0:
        return _array(data, pos, b & 0x0f)
    if b < 0xc0:
        return _text(data, pos, b & 0x1f)
    if b == 0xc0:
        return None, pos
    if b in (0xc2, 0xc3):
        return b == 0xc3, pos
    if b in (0xc4, 0xc5, 0xc6):                             # bin 8/16/32
        n, pos = _sized(data, pos, 1 << (b - 0xc4))
        _need(data, pos + n)
        return bytes(data[pos:pos + n]), pos + n
    if b in (0xc7, 0xc8, 0xc9):                             # ext 8/16/32
        n, pos = _sized(data, pos, 1 << (b - 0xc7))
        return _ext(data, pos, n)
    if b in (0xca, 0xcb):
        width = 4 if b == 0xca else 8
        _need(data, pos + width)
        return struct.unpack(">f" if width == 4 else ">d", data[pos:pos + width])[0], pos + width
    if 0xcc <= b <= 0xcf:                                   # uint 8..64
        return _sized(data, pos, 1 << (b - 0xcc))
    if 0xd0 <= b <= 0xd3:                                   # int 8..64
        width = 1 << (b - 0xd0)
        n, pos = _sized(data, pos, width)
        return (n - (1 << (8 * width)) if n >> (8 * width - 1) else n), pos
    if 0xd4 <= b <= 0xd8:                                   # fixext 1..16
        return _ext(data, pos, 1 << (b - 0xd4))
    if b in (0xd9, 0xda, 0xdb):                             # str 8/16/32
        n, pos = _sized(data, pos, 1 << (b - 0xd9))
        return _text(data, pos, n)
    if b in (0xdc, 0xdd):
        n, pos = _sized(data, pos, 2 if b == 0xdc else 4)
        return _array(data, pos, n)
    if b in (0xde, 0xdf):
        n, pos = _sized(data, pos, 2 if b == 0xde else 4)
        return _map(data, pos, n)
    raise ValueError("invalid msgpack byte 0x%02x" % b)


def _text(data, pos, n):
    _need(data, pos + n)
    return bytes(data[pos:pos + n]).decode(), pos + n


def _ext(data, pos, n):
    _need(data, pos + 1 + n)
    return forward.ext_hook(data[pos] - 0x100 if data[pos] > 127 else data[pos],
                            bytes(data[pos + 1:pos + 1 + n])), pos + 1 + n


def _array(data, pos, n):
    out = []
    for _ in range(n):
        value, pos = decode(data, pos)
        out.append(value)
    return out, pos


def _map(data, pos, n):
    out = {}
    for _ in range(n):
        key, pos = decode(data, pos)
        value, pos = decode(data, pos)
        out[key] = value
    return out, pos


class Unpacker:
    """Incremental: ``feed(bytes)``, then iterate; StopIteration means "needs more";
    ``tell()`` is the bytes consumed by the values read so far."""

    def __init__(self):
        self.data = b""
        self.pos = 0
        self.total = 0

    def feed(self, data):
        self.data = self.data[self.pos:] + bytes(data)
        self.pos = 0

    def __iter__(self):
        return self

    def __next__(self):
        try:
            value, end = decode(self.data, self.pos)
        except Incomplete:
            raise StopIteration
        self.total += end - self.pos
        self.pos = end
        return value

    def tell(self):
        return self.total


class Codec:
    """The codec contract of edgeship.core.forward, by this small decoder."""

    def unpacker(self, limit):
        return Unpacker()

    def stream_unpacker(self, limit):
        return Unpacker()

    def values(self, data):
        out = []
        pos = 0
        while pos < len(data):
            try:
                value, pos = decode(data, pos)
            except Exception:       # cut or not msgpack: the rest is unreadable
                out.append(forward.UNREADABLE)
                return out
            out.append(value)
        return out

    def too_deep(self, events):
        return []

    def packed_entries(self, data):
        return None     # entries are always decoded here
