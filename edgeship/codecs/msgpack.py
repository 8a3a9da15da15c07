"""msgpack on CPython: the one packer rule every writer of msgpack uses (chunks, spool, the
forward protocol, MQTT and file payloads), and the codec of the forward protocol.

The packer rule (``packb``):
- strict UTF-8 first: msgpack's fast path, and the bytes of every valid str;
- a str holding raw bytes an input kept (surrogate escapes, U+DC80..U+DCFF) goes out as
  those bytes, as Fluent Bit passes them; any other lone surrogate becomes U+FFFD (the
  renderings in ``formats`` do the same);
- values msgpack has no type for: the forward input's ``EventTime`` and ``Ext`` go back to
  their ext types, a set is an array, an integer beyond 64 bits and anything else is its
  ``str()`` rather than a lost record.
Reading (``UNPACK_OPTIONS``) is the mirror: invalid UTF-8 comes back as surrogate escapes,
ext type 0 as ``EventTime``.

``edgeship.core.forward`` is sans-IO and MicroPython-importable, so it cannot import the
msgpack package; it takes a codec instead, and ``MsgpackCodec`` here is that codec on
CPython (msgpack's C unpacker is already an incremental, bytes-in decoder), bounded by
``edgeship.codecs.untrusted``: a record nested deeper than its ``MAX_DEPTH`` is dropped and
counted, and a frame too deep for msgpack's decoder still gets its answer.
"""
import codecs
from operator import itemgetter

import msgpack

from edgeship.core import forward

# ``edgeship.codecs.untrusted`` (and orjson with it) is imported where the forward codec
# uses it: storage packs and reads chunks with this module in every process, and an idle
# edgeship should not carry a JSON library it does not use.

RAW_BYTES = "edgeship.raw_bytes"


def _raw_bytes(error):
    """The encoding error handler of the rule: surrogate escapes are the bytes they stand
    for, another lone surrogate is U+FFFD."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    out = bytearray()
    for char in error.object[error.start:error.end]:
        code = ord(char)
        out += bytes((code - 0xDC00,)) if 0xDC80 <= code <= 0xDCFF else b"\xef\xbf\xbd"
    return bytes(out), error.end


codecs.register_error(RAW_BYTES, _raw_bytes)


def _default(value):
    """Values msgpack cannot pack as they are: the forward input's own decoded types."""
    if isinstance(value, forward.EventTime):
        return msgpack.ExtType(0, forward.pack_event_time(value.ns)[2:])
    if isinstance(value, forward.Ext):
        return msgpack.ExtType(value.code, value.data)
    if isinstance(value, (set, frozenset)):
        return list(value)
    return str(value)


def _plain(value):
    """``value`` with integers msgpack cannot carry (beyond 64 bits) as their text."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) \
            and not -(1 << 63) <= value < (1 << 64):
        return str(value)
    return value


# Packs only what msgpack holds exactly (raises on the rest): the fast path.
pack_exact = msgpack.Packer(use_bin_type=True).pack
_pack_ruled = msgpack.Packer(use_bin_type=True, unicode_errors=RAW_BYTES, default=_default).pack


def packb(obj):
    """``obj`` as msgpack, by the rule above. Raises ValueError only for a value nested
    deeper than msgpack packs (511 levels), RecursionError deeper than Python recurses."""
    try:
        return pack_exact(obj)
    except (UnicodeEncodeError, TypeError, OverflowError):
        pass
    try:
        return _pack_ruled(obj)
    except OverflowError:
        return _pack_ruled(_plain(obj))


def map_header(count):
    """The msgpack map header of ``count`` pairs (a writer that packs the pairs itself)."""
    if count < 16:
        return bytes((0x80 | count,))
    if count < 0x10000:
        return b"\xde" + count.to_bytes(2, "big")
    return b"\xdf" + count.to_bytes(4, "big")


def map_body(packed):
    """The pairs of the packed map ``packed``: its bytes after the map header."""
    return packed[{0xde: 3, 0xdf: 5}.get(packed[0], 1):]


UNPACK_OPTIONS = {"raw": False, "unicode_errors": "surrogateescape",
                  "ext_hook": forward.ext_hook, "strict_map_key": False}


class MsgpackCodec:
    """str stays str even when it is not UTF-8 (surrogate escapes), so salts and odd record
    values survive a decode/encode round trip byte for byte."""

    packb = staticmethod(packb)

    @staticmethod
    def pack_entries(events):
        from edgeship.codecs import entries
        return entries.pack_entries(events)[0]

    def unpacker(self, limit):
        return msgpack.Unpacker(max_buffer_size=max(limit, 1024), **_UNPACK_OPTIONS)

    def stream_unpacker(self, limit):
        return FrameUnpacker(limit)

    def values(self, data):
        from edgeship.codecs import untrusted
        return untrusted.msgpack_values(data, forward.UNREADABLE, **_UNPACK_OPTIONS)

    def too_deep(self, events):
        from edgeship.codecs import untrusted
        return untrusted.too_deep(list(map(_RECORD, events)))

    @staticmethod
    def packed_entries(data):
        from edgeship.codecs import entries
        return entries.checked(bytes(data))


_RECORD = itemgetter(1)
_UNPACK_OPTIONS = UNPACK_OPTIONS


class FrameUnpacker:
    """A socket's frames, each decoded once.

    msgpack's streaming Unpacker restarts an incomplete object from its first byte at every
    feed, building and throwing away its records each time: a 300 KB frame that arrives in
    five reads was decoded about three times over. Here a scanning Unpacker finds where a
    frame ends with ``skip()`` (which builds nothing), and the frame's bytes are decoded once.
    A Forward frame whose entries ``entries.checked`` takes keeps them as bytes
    (``_packed_frame``): no record is built. A frame nested deeper than msgpack's decoder
    goes (1024 levels) is measured by ``untrusted.Scanner`` instead and decoded part by part
    (``_deep_frame``).
    """

    def __init__(self, limit):
        self.limit = max(limit, 1024)
        self.scanner = msgpack.Unpacker(max_buffer_size=self.limit)
        self.origin = 0     # stream offset of the scanner's first byte
        self.deep = None    # the untrusted.Scanner measuring a frame too deep for msgpack
        self.buffer = bytearray()
        self.base = 0       # stream offset of buffer[0]
        self.start = 0      # buffer offset of the next frame

    def feed(self, data):
        if self.deep is None:
            self.scanner.feed(data)
        self.buffer += data

    def __iter__(self):
        return self

    def __next__(self):
        if self.deep is None:
            try:
                self.scanner.skip()
            except msgpack.OutOfData:
                raise StopIteration
            except msgpack.StackError:
                from edgeship.codecs import untrusted
                self.deep = untrusted.Scanner(self.start)
            else:
                return self._frame(self.origin + self.scanner.tell() - self.base, False)
        end = self.deep.scan(self.buffer)
        if end is None:
            raise StopIteration
        # The scanner that failed cannot go on: a new one starts after the deep frame.
        self.deep = None
        self.scanner = msgpack.Unpacker(max_buffer_size=self.limit)
        self.scanner.feed(self.buffer[end:])
        self.origin = self.base + end
        return self._frame(end, True)

    def _frame(self, end, deep):
        data = self.buffer[self.start:end]
        if deep:
            frame = _deep_frame(data)
        else:
            frame = _packed_frame(data) or msgpack.unpackb(data, **_UNPACK_OPTIONS)
        self.start = end
        if self.start == len(self.buffer) or self.start > (1 << 20):
            del self.buffer[:self.start]
            self.base += self.start
            self.start = 0
        return frame

    def tell(self):
        return self.base + self.start


_ARRAY_COUNT = {0xdc: 2, 0xdd: 4}   # array16 / array32: bytes of count after the header byte


def _packed_frame(data):
    """``[tag, Entries, options...]`` for a Forward frame ``[tag, [entry, ...], options?]``
    whose entries ``entries.checked`` takes; None for any other frame."""
    if data[0] not in (0x92, 0x93):
        return None
    from edgeship.codecs import entries
    unpacker = msgpack.Unpacker(max_buffer_size=max(len(data), 1024), **_UNPACK_OPTIONS)
    unpacker.feed(data)
    try:
        unpacker.read_array_header()
        tag = unpacker.unpack()
        start = unpacker.tell()
        head = data[start]
        if 0x90 <= head <= 0x9f:
            count, width = head & 0x0f, 0
        elif head in _ARRAY_COUNT:
            width = _ARRAY_COUNT[head]
            count = int.from_bytes(data[start + 1:start + 1 + width], "big")
        else:
            return None
        unpacker.skip()
        end = unpacker.tell()
        rest = [unpacker.unpack()] if data[0] == 0x93 else []
    except Exception:  # anything odd: the whole frame is decoded and judged as usual
        return None
    packed = entries.checked(bytes(data[start + 1 + width:end]), count)
    if packed is None:
        return None
    return [tag, packed] + rest


def _unpack_part(data):
    try:
        return msgpack.unpackb(data, **_UNPACK_OPTIONS)
    except msgpack.StackError:
        return forward.UNREADABLE


def _deep_frame(data):
    """A frame msgpack cannot decode whole: its elements one by one, and the entries of a
    Forward-mode array one by one, so that only the part too deep (an entry, a message's
    record) becomes UNREADABLE and the rest, options included, still serves."""
    from edgeship.codecs import untrusted
    spans = untrusted.array_items(data)
    if spans is None:
        return forward.UNREADABLE          # not a frame: the session refuses it
    frame = [_unpack_part(data[start:end]) for start, end in spans]
    if len(spans) > 1 and frame[1] is forward.UNREADABLE:
        start, end = spans[1]
        entries = untrusted.array_items(data[start:end])
        if entries is not None:
            body = data[start:end]
            frame[1] = [_unpack_part(body[a:b]) for a, b in entries]
    return frame
