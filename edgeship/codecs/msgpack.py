"""The msgpack codec of the forward protocol on CPython, shared by the forward input and output.

``edgeship.core.forward`` is sans-IO and MicroPython-importable, so it cannot import the
msgpack package; it takes a codec instead, and ``MsgpackCodec`` here is that codec on
CPython (msgpack's C unpacker is already an incremental, bytes-in decoder), bounded by
``edgeship.codecs.untrusted``: a record nested deeper than its ``MAX_DEPTH`` is dropped and
counted, and a frame too deep for msgpack's decoder still gets its answer.
"""
import struct
from operator import itemgetter

import msgpack

from edgeship.codecs import untrusted
from edgeship.core import forward


class MsgpackCodec:
    """str stays str even when it is not UTF-8 (surrogateescape), so salts and odd record
    values survive a decode/encode round trip byte for byte."""

    def __init__(self):
        self._strict = msgpack.Packer(use_bin_type=True, default=_default).pack
        self._escaping = msgpack.Packer(use_bin_type=True, unicode_errors="surrogateescape",
                                        default=_default).pack

    def packb(self, obj):
        # Strict UTF-8 packs about 30% faster; only a str holding raw bytes (a lone
        # surrogate) needs surrogateescape, and makes the same bytes for every other str.
        try:
            return self._strict(obj)
        except UnicodeEncodeError:
            return self._escaping(obj)

    def pack_entries(self, events):
        """``[[EventTime, {}], record]`` entries of a batch in one packb call: the bytes the
        Encoder makes record by record, each time's EventTime built once (a batch mostly
        shares one time)."""
        heads = {}
        items = []
        append = items.append
        for t, record in events:
            head = heads.get(t)
            if head is None:
                head = heads[t] = (msgpack.ExtType(0, _SEC_NSEC(t // forward.NS, t % forward.NS)),
                                   _NO_METADATA)
            append((head, record))
        packed = self.packb(items)
        return packed[_ARRAY_HEADER_SIZE.get(packed[0], 1):]

    def unpacker(self, limit):
        return msgpack.Unpacker(max_buffer_size=max(limit, 1024), **_UNPACK_OPTIONS)

    def stream_unpacker(self, limit):
        return FrameUnpacker(limit)

    def values(self, data):
        return untrusted.msgpack_values(data, forward.UNREADABLE, **_UNPACK_OPTIONS)

    def too_deep(self, events):
        return untrusted.too_deep(list(map(_RECORD, events)))


_SEC_NSEC = struct.Struct(">II").pack
_NO_METADATA = {}  # shared by every entry; never changed
_ARRAY_HEADER_SIZE = {0xdc: 3, 0xdd: 5}  # array16 / array32; a fixarray header is 1 byte
_RECORD = itemgetter(1)

_UNPACK_OPTIONS = {"raw": False, "unicode_errors": "surrogateescape",
                   "ext_hook": forward.ext_hook, "strict_map_key": False}


class FrameUnpacker:
    """A socket's frames, each decoded once.

    msgpack's streaming Unpacker restarts an incomplete object from its first byte at every
    feed, building and throwing away its records each time: a 300 KB frame that arrives in
    five reads was decoded about three times over. Here a scanning Unpacker finds where a
    frame ends with ``skip()`` (which builds nothing), and the frame's bytes are decoded once.
    A frame nested deeper than msgpack's decoder goes (1024 levels) is measured by
    ``untrusted.Scanner`` instead and decoded part by part (``_deep_frame``).
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
        frame = _deep_frame(data) if deep else msgpack.unpackb(data, **_UNPACK_OPTIONS)
        self.start = end
        if self.start == len(self.buffer) or self.start > (1 << 20):
            del self.buffer[:self.start]
            self.base += self.start
            self.start = 0
        return frame

    def tell(self):
        return self.base + self.start


def _unpack_part(data):
    try:
        return msgpack.unpackb(data, **_UNPACK_OPTIONS)
    except msgpack.StackError:
        return forward.UNREADABLE


def _deep_frame(data):
    """A frame msgpack cannot decode whole: its elements one by one, and the entries of a
    Forward-mode array one by one, so that only the part too deep (an entry, a message's
    record) becomes UNREADABLE and the rest, options included, still serves."""
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


def _default(value):
    """Values msgpack cannot pack as they are: the forward input's own decoded types."""
    if isinstance(value, forward.EventTime):
        return msgpack.ExtType(0, forward.pack_event_time(value.ns)[2:])
    if isinstance(value, forward.Ext):
        return msgpack.ExtType(value.code, value.data)
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)
