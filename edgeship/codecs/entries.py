"""Fluent Bit's chunk format, and the chunk an output flushes.

A chunk's bytes are what Fluent Bit keeps in its chunks and out_forward sends as a
PackedForward payload: one ``[[EventTime, {}], record]`` entry per event, packed back to
back, no array header (EventTime is fixext8 type 0: big-endian uint32 seconds, then
nanoseconds; the metadata map is empty). edgeship's queues and spool hold them, the forward
output sends them untouched, file ``Format msgpack`` writes them untouched.

``pack_entries`` is the one encoder of entries (the packer rule is ``codecs.msgpack``'s);
``unpack_entries`` reads them back as events. ``Entries`` is packed entries with their count,
decoded only when ``events()`` is asked for, and then once; ``Chunk`` adds the tag and an id
that stays the same on every retry of the same records (``part`` makes the chunk of a range
of its entries, for the engine's isolation of records an output cannot take).

Lazy records: ``checked`` takes entries received from outside (a forward frame) as they
are when they already have the form ``pack_entries`` writes: each entry
``[[EventTime, {}], record]`` with these very headers (fixext8 time with nanoseconds under
a second, empty fixmap metadata), the record a map with its smallest header, nested at most
``untrusted.MAX_DEPTH`` levels. The engine then stores them without building a record
unless a filter or an output needs one: what an edgeship sender sends crosses a relay as
bytes. A record encoded otherwise inside (a map32 record header, as Fluent Bit's log encoder
writes; an integer time; entries without metadata) is decoded and packed again, as before.
Inside a record the bytes are kept as they came, as Fluent Bit keeps them: a value a sender
packed wider than needed, or a key written twice, reaches the outputs that send or write
chunks as is, where a record decoded for a filter is packed again the smallest way (the
values read back are the same).

Packing: msgspec, when installed (the "fast" extra), packs a whole batch in one call (the
entry heads as pre-packed ``Raw`` bytes between the records), about three times faster
than a msgpack ``Packer`` call per entry; its bytes are those of the packer rule for every
type a record holds (dict, list, tuple, str, bytes, int, float, bool, None). Anything else
(a str or int subclass, the forward input's EventTime and Ext, an integer beyond 64 bits, a
string holding surrogate escapes) makes it give up, and the batch is packed as before.
msgspec also packs sets, dates, decimals and UUIDs by itself; no input or filter puts them
into a record.

Differences from Fluent Bit: its log encoder writes record and metadata maps with map32
headers; edgeship's are the smallest (any msgpack reader takes both). A time outside what
EventTime holds (before 1970, after 2106) is kept at the nearest end of the range; Fluent
Bit wraps it around.
"""
import struct
from operator import itemgetter

import msgpack

from edgeship.codecs.msgpack import UNPACK_OPTIONS, packb
from edgeship.core import forward

NS = forward.NS
LOGS = forward.SIGNAL_LOGS          # what a chunk holds (forward's fluent_signal numbers)
METRICS = forward.SIGNAL_METRICS
_SEC_NSEC = struct.Struct(">II").pack
_NO_METADATA = {}       # shared by every entry; never changed
_ARRAY_HEADER_SIZE = {0xdc: 3, 0xdd: 5}  # array16 / array32; a fixarray header is 1 byte
_MAX_SECONDS = (1 << 32) - 1
_ENTRY_HEAD = b"\x92\x92\xd7\x00"    # [[fixext8 type 0 ...
_TIME_OF, _RECORD_OF = itemgetter(0), itemgetter(1)


def _refuse(value):
    """msgspec's hook for a type it does not know: the packer rule decides instead."""
    raise TypeError("%s is packed by the packer rule" % type(value).__name__)


try:  # the "fast" extra; msgpack gives the same bytes without it
    from msgspec import Raw as _Raw
    from msgspec.msgpack import Encoder as _Encoder
    _encode = _Encoder(enc_hook=_refuse).encode
except ImportError:
    _encode = None


def _time_data(t):
    """The 8 bytes of EventTime ``t`` (ns), and whether they hold ``t`` exactly."""
    sec, nsec = divmod(int(t), NS)
    if 0 <= sec <= _MAX_SECONDS:
        return _SEC_NSEC(sec, nsec), True
    sec = 0 if sec < 0 else _MAX_SECONDS
    return _SEC_NSEC(sec, 0 if sec == 0 else NS - 1), False


def pack_entries(events):
    """``(bytes, exact)``: the entries of ``events``, and whether they unpack to the very
    same values (False when the packer rule had to change one, or a time was out of
    range). One packer fills one buffer; each time's 8 bytes are made once (a batch mostly
    shares one time)."""
    if _encode is not None and events:
        try:
            return _pack_batch(events)
        except Exception:  # see the module docstring: the packer rule decides
            pass
    packer = msgpack.Packer(use_bin_type=True, autoreset=False)
    array, ext, metadata, pack = (packer.pack_array_header, packer.pack_ext_type,
                                  packer.pack_map_header, packer.pack)
    times = {}
    exact = True
    try:
        for t, record in events:
            data = times.get(t)
            if data is None:
                data, held = _time_data(t)
                times[t] = data
                exact = exact and held
            array(2)
            array(2)
            ext(0, data)
            metadata(0)
            pack(record)
    except (UnicodeEncodeError, TypeError, OverflowError):
        return _pack_by_the_rule(events), False
    return packer.bytes(), exact


def _pack_batch(events):
    """pack_entries with msgspec: one call packs ``[head, record, head, record, ...]``,
    each head the Raw bytes of ``[[EventTime, {}],`` (one per distinct time), and the
    array header is cut off."""
    times = list(map(_TIME_OF, events))
    count = len(times)
    heads = {}
    exact = True
    for t in set(times):
        data, held = _time_data(t)
        heads[t] = _Raw(_ENTRY_HEAD + data + b"\x80")
        exact = exact and held
    if len(heads) == 1:
        mixed = [heads[times[0]]] * (2 * count)
    else:
        mixed = [None] * (2 * count)
        mixed[::2] = map(heads.__getitem__, times)
    mixed[1::2] = map(_RECORD_OF, events)
    packed = _encode(mixed)
    return packed[_ARRAY_HEADER_SIZE.get(packed[0], 1):], exact


def _pack_by_the_rule(events):
    """Entries with what msgpack cannot hold as it is turned by the packer rule."""
    items = [((msgpack.ExtType(0, _time_data(t)[0]), _NO_METADATA), record)
             for t, record in events]
    packed = packb(items)
    return packed[_ARRAY_HEADER_SIZE.get(packed[0], 1):]


def array_header(count):
    """The msgpack array header of ``count`` items."""
    if count < 16:
        return bytes((0x90 | count,))
    if count < 0x10000:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")


def unpack_entries(payload, count):
    """The ``count`` events ``(time_ns, record)`` of packed entries. ValueError when the
    bytes are not that many entries of this format."""
    try:
        items = msgpack.unpackb(array_header(count) + payload, **UNPACK_OPTIONS)
        return [(head[0].ns, record) for head, record in items]
    except Exception as exc:  # msgpack raises several types for bad bytes; a bad shape too
        raise ValueError("undecodable entries: %r" % exc)


def offsets(payload):
    """Where each entry starts, and the end: ``count + 1`` offsets."""
    skipper = msgpack.Unpacker(max_buffer_size=max(len(payload), 1024))
    skipper.feed(payload)
    found = [0]
    try:
        while True:
            skipper.skip()
            found.append(skipper.tell())
    except msgpack.OutOfData:
        pass
    return found


# Container headers (fixmap, fixarray, array16/32, map16/32) -> 1, any other byte -> 0: an
# entry cannot nest deeper than it has such bytes.
_CONTAINER_BYTES = bytes.maketrans(
    bytes(range(256)),
    bytes(1 if 0x80 <= b <= 0x9f or 0xdc <= b <= 0xdf else 0 for b in range(256)))


def _good_head(head):
    """Are these first bytes of an entry the ones pack_entries writes?"""
    if head[:4] != _ENTRY_HEAD or len(head) < 14 or head[12] != 0x80:
        return False
    if int.from_bytes(head[8:12], "big") >= NS:
        return False
    first = head[13]
    if 0x80 <= first <= 0x8f:
        return True
    return first == 0xde and len(head) >= 16 and int.from_bytes(head[14:16], "big") >= 16


def checked(payload, count=None):
    """``Entries`` of ``payload`` (bytes) when it holds ``count`` entries (any number when
    None) in the form ``pack_entries`` writes (see the module docstring), else None: then
    decode them one by one. Costs a scan of the bytes, builds no record."""
    try:
        found = offsets(payload)
    except Exception:  # not msgpack, or nested past msgpack's own bound
        return None
    number = len(found) - 1
    if number <= 0 or (count is not None and number != count) or found[-1] != len(payload):
        return None
    # Entries mostly share their first bytes (one time per batch, records alike): each
    # different head is checked once.
    if not all(map(_good_head, {payload[a:a + 16] for a in found[:-1]})):
        return None
    from edgeship.codecs.untrusted import MAX_DEPTH  # (only inputs check: see msgpack.py)
    marks = payload.translate(_CONTAINER_BYTES).count
    limit = MAX_DEPTH + 3   # the entry and header arrays and the metadata map
    if marks(1) > limit:
        one = b"\x01"
        for start, end in zip(found, found[1:]):
            if marks(one, start, end) > limit:
                return None
    last = found[-2]
    return Entries(payload, number, None, _time_at(payload, 0), _time_at(payload, last))


def _time_at(payload, entry_start):
    sec = int.from_bytes(payload[entry_start + 4:entry_start + 8], "big")
    return sec * NS + int.from_bytes(payload[entry_start + 8:entry_start + 12], "big")


class Entries(forward.PackedEntries):
    """Packed entries, their count, and the events they hold, decoded on first use;
    ``len()`` and iterating read it as the batch of events it is. ``first_ns``/``last_ns``:
    the times of the first and the last entry, when known."""

    __slots__ = ("payload", "count", "_events", "first_ns", "last_ns")

    def __init__(self, payload, count, events=None, first_ns=0, last_ns=0):
        self.payload = payload
        self.count = count
        self._events = events
        self.first_ns = first_ns
        self.last_ns = last_ns

    def __len__(self):
        return self.count

    def __iter__(self):
        """The events: packed entries read as the batch of events they are."""
        return iter(self.events())

    def events(self):
        """``[(time_ns, record)]``, decoded once (the same list on every call: read it,
        do not change it). ValueError when the bytes cannot be decoded."""
        if self._events is None:
            self._events = unpack_entries(self.payload, self.count)
        return self._events

    def decoded(self):
        """The events when they are decoded already, else None."""
        return self._events


class Chunk(Entries):
    """What an output's ``flush`` gets: ``tag``, ``payload`` (the entries), ``count``,
    ``events()``, and ``id``, the same on every retry of these records. ``signal`` is
    ``METRICS`` for a metrics chunk: its payload is cmetrics contexts
    (``codecs.cmetrics.decode``), its count 1, and it has no events. ``json_lines``: the
    records' JSON lines text when known (see ``formats.RenderedEvents``), else None."""

    __slots__ = ("tag", "id", "_offsets", "signal", "json_lines")

    def __init__(self, tag, payload, count, chunk_id, events=None, signal=LOGS,
                 json_lines=None):
        Entries.__init__(self, payload, count, events)
        self.tag = tag
        self.id = chunk_id
        self._offsets = None
        self.signal = signal
        self.json_lines = json_lines

    def part(self, start, end, chunk_id):
        """The chunk of entries ``start`` to ``end`` (exclusive) of this one: their own
        bytes, and their events when this chunk has them decoded."""
        if start == 0 and end == self.count:
            return Chunk(self.tag, self.payload, self.count, chunk_id, self._events,
                         self.signal, self.json_lines)
        if self._offsets is None:
            found = offsets(self.payload)
            if len(found) != self.count + 1:
                raise ValueError("undecodable entries: %d found, %d expected"
                                 % (len(found) - 1, self.count))
            self._offsets = found
        events = None if self._events is None else self._events[start:end]
        return Chunk(self.tag, self.payload[self._offsets[start]:self._offsets[end]],
                     end - start, chunk_id, events)
