"""out_forward's frames: the options map and the ``Encoder`` of Forward, CompressedPackedForward
and Message mode frames, byte for byte as Fluent Bit 5.1.1 sends them."""
from edgeship.core.forward.digest import chunk_id
from edgeship.core.forward.wire import (NS, SIGNAL_LOGS, SIGNAL_METRICS, array_header, gzip_compress,
                                        map32_header, pack_bin, pack_event_time, pack_str,
                                        pack_time_words, pack_uint)


def options_map(chunk=None, size=None, compressed=None, signal=SIGNAL_LOGS, extra=()):
    """The options element, keys in Fluent Bit's order, map32 header."""
    parts = []
    if chunk is not None:
        parts.append(b"\xa5chunk" + pack_str(chunk))
    if size is not None:
        parts.append(b"\xa4size" + pack_uint(size))
    if compressed is not None:
        parts.append(b"\xaacompressed" + pack_str(compressed))
    parts.append(b"\xadfluent_signal" + pack_uint(signal))
    for key, value in extra:
        parts.append(pack_str(key) + pack_str(value))
    return map32_header(len(parts)) + b"".join(parts)


class Encoder:
    """Frames for out_forward.

    ``entries(events)`` packs a batch the way Fluent Bit does: ``[[EventTime, {}], record]``
    when metadata is retained (Fluent Bit 5.x default; the chunk format, packed by the
    codec's ``pack_entries``), ``[EventTime, record]`` as an array32 when not,
    ``[uint seconds, record]`` with ``time_as_integer``. ``frame(tag, events)`` is one
    Forward frame (CompressedPackedForward with gzip) and its chunk id (None without ack);
    ``packed_frame(tag, entries, count)`` the same around entries already packed.
    """

    def __init__(self, packb, retain_metadata=True, time_as_integer=False, compress=False,
                 send_options=False, require_ack=False, extra_options=(), pack_entries=None):
        self.packb = packb
        self.pack_entries = pack_entries
        self.retain_metadata = retain_metadata
        self.time_as_integer = time_as_integer
        self.compress = compress
        self.require_ack = require_ack
        self.extra = tuple(extra_options)
        self.with_options = bool(send_options or require_ack or self.extra or compress)

    def entries(self, events):
        packb = self.packb
        if self.time_as_integer:
            return b"".join([b"\x92" + pack_uint(t // NS) + packb(rec) for t, rec in events])
        et = pack_time_words
        if self.retain_metadata:
            if self.pack_entries is not None:   # the codec's one entry encoder (CPython)
                return self.pack_entries(events)
            # A runtime without the codecs layer (MicroPython): the same bytes, by hand.
            return b"".join([b"\x92\x92" + et(0xd700, t // NS, t % NS) + b"\x80" + packb(rec)
                             for t, rec in events])
        return b"".join([b"\xdd\x00\x00\x00\x02" + et(0xd700, t // NS, t % NS) + packb(rec)
                         for t, rec in events])

    def frame(self, tag, events):
        return self.packed_frame(tag, self.entries(events), len(events))

    def packed_frame(self, tag, payload, count):
        chunk = chunk_id(payload) if self.require_ack else None
        if self.compress:
            return (b"\x93" + pack_str(tag) + pack_bin(gzip_compress(payload))
                    + options_map(chunk, count, "gzip", extra=self.extra)), chunk
        head = pack_str(tag) + array_header(count)
        if not self.with_options:
            return b"\x92" + head + payload, None
        return (b"\x93" + head + payload
                + options_map(chunk, count, extra=self.extra)), chunk

    def metrics_frame(self, tag, payload):
        """A metrics chunk (cmetrics contexts) as Fluent Bit sends it: always
        ``[tag, bin(payload), options]``, the options with ``fluent_signal`` 1 and no size;
        the chunk id is of the uncompressed payload."""
        chunk = chunk_id(payload) if self.require_ack else None
        compressed = None
        if self.compress:
            payload, compressed = gzip_compress(payload), "gzip"
        return (b"\x93" + pack_str(tag) + pack_bin(payload)
                + options_map(chunk, None, compressed, SIGNAL_METRICS, self.extra)), chunk

    def message(self, tag, event):
        """One Message-mode frame ``[tag, time, record, options]`` and its chunk id."""
        t, record = event
        when = pack_uint(t // NS) if self.time_as_integer else pack_event_time(t)
        body = self.packb(record)
        chunk = None
        if self.require_ack:
            chunk = chunk_id(b"\x92\x92" + pack_event_time(t) + b"\x80" + body)
        return (b"\x94" + pack_str(tag) + when + body
                + options_map(chunk, extra=self.extra)), chunk
