"""The forward protocol's wire pieces (Fluent Bit 5.1.1): the msgpack envelope parts it
compares byte for byte (array/map/str/bin headers, EventTime, map32 options), packed by hand
so they are exact and MicroPython can build them; the values a codec decodes to (EventTime,
Ext, UNREADABLE); gzip as Fluent Bit writes it; ProtocolError."""
import struct

from edgeship.core.events import NS

try:
    import zlib
except ImportError:  # MicroPython: gzip is not available there
    zlib = None

DEFAULT_PORT = 24224
SIGNAL_LOGS = 0         # the fluent_signal option: what a PackedForward payload holds
SIGNAL_METRICS = 1


class ProtocolError(Exception):
    """The peer broke the protocol: close the connection. ``reply`` is sent first if any."""

    def __init__(self, message, reply=b""):
        super().__init__(message)   # MicroPython has no Exception.__init__ to call
        self.reply = reply


# ------------------------------------------------------------------ msgpack envelope parts
def utf8_bytes(text):
    if isinstance(text, str):
        try:
            return text.encode("utf-8", "surrogateescape")
        except (TypeError, UnicodeError):  # MicroPython strings are always valid UTF-8
            return text.encode()
    return bytes(text)


def pack_str(value):
    """A msgpack str holding ``value`` (str, or raw bytes such as Fluent Bit's salts)."""
    data = utf8_bytes(value)
    n = len(data)
    if n < 32:
        return bytes((0xa0 | n,)) + data
    if n < 0x100:
        return bytes((0xd9, n)) + data
    if n < 0x10000:
        return struct.pack(">BH", 0xda, n) + data
    return struct.pack(">BI", 0xdb, n) + data


def pack_bin(data):
    n = len(data)
    if n < 0x100:
        return bytes((0xc4, n)) + data
    if n < 0x10000:
        return struct.pack(">BH", 0xc5, n) + data
    return struct.pack(">BI", 0xc6, n) + data


def array_header(n):
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return struct.pack(">BH", 0xdc, n)
    return struct.pack(">BI", 0xdd, n)


def map_header(n):
    if n < 16:
        return bytes((0x80 | n,))
    if n < 0x10000:
        return struct.pack(">BH", 0xde, n)
    return struct.pack(">BI", 0xdf, n)


def map32_header(n):
    """Fluent Bit writes options maps as map32 whatever their size."""
    return struct.pack(">BI", 0xdf, n)


def pack_uint(n):
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0xcc, n))
    if n < 0x10000:
        return struct.pack(">BH", 0xcd, n)
    if n < 0x100000000:
        return struct.pack(">BI", 0xce, n)
    return struct.pack(">BQ", 0xcf, n)


def pack_bool(value):
    return b"\xc3" if value else b"\xc2"


# ------------------------------------------------------------------ EventTime (ext type 0)
class EventTime:
    """A decoded EventTime: ``ns`` nanoseconds since the epoch."""
    __slots__ = ("ns",)

    def __init__(self, ns):
        self.ns = ns


class Unreadable:
    """What the codec gives for a value it would not decode (nested deeper than its bound,
    or bytes that are not msgpack): the entry or record is dropped and counted, and the
    frame is still acked."""
    __slots__ = ()


UNREADABLE = Unreadable()


class Ext:
    """Any other msgpack ext value (kept, never taken for a time)."""
    __slots__ = ("code", "data")

    def __init__(self, code, data):
        self.code = code
        self.data = data


try:
    pack_time_words = struct.Struct(">HII").pack       # CPython: the bound packer is the fast path
except AttributeError:                     # MicroPython has no struct.Struct
    def pack_time_words(*values):
        return struct.pack(">HII", *values)


def pack_event_time(time_ns):
    """fixext8 type 0: d7 00, seconds and nanoseconds as big-endian uint32."""
    sec, nsec = divmod(time_ns, NS)
    return pack_time_words(0xd700, sec, nsec)


try:
    _unpack_ii = struct.Struct(">II").unpack
except AttributeError:
    def _unpack_ii(data):
        return struct.unpack(">II", data)


_recent_times = {}


def ext_hook(code, data):
    if code == 0 and len(data) == 8:
        # The records of a batch mostly share their time (the moment tail read them): reuse
        # the EventTime of the same 8 bytes instead of decoding and allocating one per record.
        found = _recent_times.get(data)
        if found is None:
            if len(_recent_times) >= 1024:
                _recent_times.clear()
            sec, nsec = _unpack_ii(data)
            found = _recent_times[bytes(data)] = EventTime(sec * NS + nsec)
        return found
    return Ext(code, bytes(data))


# ------------------------------------------------------------------ gzip
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"   # as Fluent Bit writes it


def gzip_compress(data, level=6):
    if zlib is None:
        raise ProtocolError("gzip is not available on this runtime")
    deflate = zlib.compressobj(level, zlib.DEFLATED, -15)
    body = deflate.compress(data) + deflate.flush()
    return _GZIP_HEADER + body + struct.pack("<II", zlib.crc32(data) & 0xffffffff,
                                               len(data) & 0xffffffff)


def gunzip(data, limit):
    """Every gzip member of ``data``, at most ``limit`` bytes out (no decompression bomb)."""
    if zlib is None:
        raise ProtocolError("gzip is not available on this runtime")
    out = []
    total = 0
    data = bytes(data)
    while data:
        inflate = zlib.decompressobj(31)
        try:
            piece = inflate.decompress(data, limit - total + 1)
        except zlib.error as exc:
            raise ProtocolError("invalid gzip payload: %s" % exc)
        total += len(piece)
        if total > limit or inflate.unconsumed_tail:
            raise ProtocolError("decompressed payload exceeds %d bytes" % limit)
        if not inflate.eof:
            raise ProtocolError("truncated gzip payload")
        out.append(piece)
        data = inflate.unused_data
    return b"".join(out)


def field_bytes(value):
    """The bytes a str or bin field carried (handshake salts are not UTF-8)."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return utf8_bytes(value)
    return None


def is_text(value):
    return isinstance(value, (str, bytes, bytearray))
