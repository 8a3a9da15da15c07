"""out_forward's frames: the options map and the ``Encoder`` of Forward, CompressedPackedForward
and Message mode frames, byte for byte as Fluent Bit 5.1.1 sends them."""
from edgeship.core.forward.digest import chunk_id
from edgeship.core.forward.wire import (NS, SIGNAL_LOGS, array_header, gzip_compress,
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
    when metadata is retained (Fluent Bit 5.x default), ``[EventTime, record]`` as an array32
    when not, ``[uint seconds, record]`` with ``time_as_integer``. ``frame(tag, events)`` is
    one Forward frame (CompressedPackedForward with gzip) and its chunk id (None without ack).
    """

    def __init__(self, packb, retain_metadata=True, time_as_integer=False, compress=False,
                 send_options=False, require_ack=False, extra_options=(), pack_entries=None):
        self.packb = packb
        # Optional: packs a batch's ``[[EventTime, {}], record]`` entries at once, to the same
        # bytes (a C packer does a batch in one call, far faster than record by record).
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
            if self.pack_entries is not None:
                return self.pack_entries(events)
            return b"".join([b"\x92\x92" + et(0xd700, t // NS, t % NS) + b"\x80" + packb(rec)
                             for t, rec in events])
        return b"".join([b"\xdd\x00\x00\x00\x02" + et(0xd700, t // NS, t % NS) + packb(rec)
                         for t, rec in events])

    def frame(self, tag, events):
        payload = self.entries(events)
        chunk = chunk_id(payload) if self.require_ack else None
        if self.compress:
            return (b"\x93" + pack_str(tag) + pack_bin(gzip_compress(payload))
                    + options_map(chunk, len(events), "gzip", extra=self.extra)), chunk
        head = pack_str(tag) + array_header(len(events))
        if not self.with_options:
            return b"\x92" + head + payload, None
        return (b"\x93" + head + payload
                + options_map(chunk, len(events), extra=self.extra)), chunk

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
