"""Framing of spool chunks, sans-IO: bytes in, frames and damage reports out.

A spool segment is a run of frames. A frame is one chunk (one tag, many records):

    0   4  magic  b"\\xedES" and the format version (one byte)
    4   4  body length N, little-endian
    8   4  CRC32 of the body
    12  N  body:  offset u64 | created ns i64 | first time ns i64 | last time ns i64 |
                  record count u32 | tag length u16 | tag (UTF-8) | payload

The payload is opaque here; its format is the version's. Version 2 (``LOGS``): Fluent Bit's
chunk bytes, ``[[EventTime, {}], record]`` entries back to back. Version 3 (``METRICS``):
cmetrics contexts back to back, Fluent Bit's metrics chunk (its record count is 1).
Version 1 (read, never written): one msgpack array of ``[time_ns, record]`` pairs.
``Frame.version`` says which.
The CRC covers every body byte, so a flipped bit anywhere in a chunk is caught; the length is checked against the CRC
too, because a body read with a wrong length fails it. From version 3 on the CRC also covers
the version byte (it starts from the CRC of that byte), so a flipped bit there cannot turn a
chunk of one kind into a valid chunk of another.

``Decoder`` takes the bytes of a segment in pieces of any size and returns ``Frame`` and
``Damage`` items in file order. After damage (bad magic, impossible length, CRC mismatch) it
resynchronises on the next magic whose frame checks out, so one bad chunk never hides the
good ones after it. ``finish()`` reports a torn tail: the half-written frame a crash leaves.

Index and confirm records (the sidecar files of a segment) are fixed-size entries, also here.
"""
import binascii
import struct

MAGIC_PREFIX = b"\xedES"
LOGS = VERSION = 2                        # what a chunk holds, by its frame's version byte
METRICS = 3
MAGIC = MAGIC_PREFIX + bytes((VERSION,))
VERSIONS = (1, LOGS, METRICS)             # the versions decode_at reads
_PREFIX = "<4sII"                         # magic, body length, crc32
_HEAD = "<QqqqIH"                         # offset, created, first, last, count, tag length
PREFIX_SIZE = struct.calcsize(_PREFIX)    # 12
HEAD_SIZE = struct.calcsize(_HEAD)        # 38
MAX_BODY = 64 * 1024 * 1024               # a length above this is damage, not a chunk

TORN_TAIL = "torn tail (incomplete frame at the end)"
BAD_MAGIC = "bad magic (not the start of a frame)"
BAD_LENGTH = "bad length"
BAD_CRC = "crc32 mismatch"


class Frame:
    """One decoded chunk. ``position`` is where its frame starts in the segment, ``size`` the
    whole frame's bytes (prefix included)."""

    def __init__(self, offset, created_ns, first_ns, last_ns, count, tag, payload,
                 position=0, size=0, version=VERSION):
        self.version = version
        self.offset = offset
        self.created_ns = created_ns
        self.first_ns = first_ns
        self.last_ns = last_ns
        self.count = count
        self.tag = tag
        self.payload = payload
        self.position = position
        self.size = size


class Damage:
    """``length`` unusable bytes starting at ``position``; ``reason`` says what was wrong with
    the first of them."""

    def __init__(self, position, length, reason):
        self.position = position
        self.length = length
        self.reason = reason

    def __repr__(self):
        return "Damage(%d, %d, %r)" % (self.position, self.length, self.reason)


def header(offset, tag, payload, count, first_ns, last_ns, created_ns, version=VERSION):
    """The bytes that go before ``payload`` in the frame (write both, e.g. with writev)."""
    tag_bytes = tag.encode("utf-8")
    head = struct.pack(_HEAD, offset, created_ns, first_ns, last_ns, count, len(tag_bytes)) + tag_bytes
    crc = binascii.crc32(payload, binascii.crc32(head, _crc_seed(version))) & 0xFFFFFFFF
    magic = MAGIC_PREFIX + bytes((version,))
    return struct.pack(_PREFIX, magic, len(head) + len(payload), crc) + head


def _crc_seed(version):
    """Where a frame's CRC starts: 0 for the versions before 3 (as they were written)."""
    return binascii.crc32(bytes((version,))) if version >= METRICS else 0


def encode(offset, tag, payload, count, first_ns, last_ns, created_ns, version=VERSION):
    return header(offset, tag, payload, count, first_ns, last_ns, created_ns,
                  version) + payload


def frame_size(tag, payload):
    return PREFIX_SIZE + HEAD_SIZE + len(tag.encode("utf-8")) + len(payload)


def decode_at(data, start=0, position=None):
    """The frame at ``data[start:]`` or a reason string when there is none there; None when
    ``data`` ends before the frame does."""
    if len(data) - start < PREFIX_SIZE:
        return None
    magic, length, crc = struct.unpack_from(_PREFIX, data, start)
    if magic[:3] != MAGIC_PREFIX or magic[3] not in VERSIONS:
        return BAD_MAGIC
    if length < HEAD_SIZE or length > MAX_BODY:
        return BAD_LENGTH
    end = start + PREFIX_SIZE + length
    if end > len(data):
        return None
    body_at = start + PREFIX_SIZE
    body = memoryview(data)[body_at:end]
    if binascii.crc32(body, _crc_seed(magic[3])) & 0xFFFFFFFF != crc:
        return BAD_CRC
    offset, created, first, last, count, tag_len = struct.unpack_from(_HEAD, data, body_at)
    tag_at = body_at + HEAD_SIZE
    if tag_at + tag_len > end:
        return BAD_LENGTH
    try:
        tag = str(bytes(data[tag_at:tag_at + tag_len]), "utf-8")
    except UnicodeError:
        return BAD_CRC  # CRC-valid but unreadable: treat as damage all the same
    payload = bytes(data[tag_at + tag_len:end])
    return Frame(offset, created, first, last, count, tag, payload,
                 start if position is None else position, end - start, magic[3])


class Decoder:
    """Incremental segment reader: ``feed(bytes) -> [Frame|Damage]``, then ``finish()``."""

    def __init__(self, position=0):
        self.buf = b""
        self.base = position      # segment position of buf[0]
        self.bad_at = -1          # start of the damaged run being skipped, -1 when none
        self.bad_reason = ""

    def feed(self, data):
        self.buf = self.buf + bytes(data) if self.buf else bytes(data)
        return self._parse(False)

    def finish(self):
        """Everything still buffered is resolved: frames after a false length are found,
        what is left over is a torn tail."""
        items = self._parse(True)
        if self.buf:
            self._mark_bad(0, TORN_TAIL)
        if self.bad_at >= 0:
            items.append(self._close_bad(self.base + len(self.buf)))
        self.base += len(self.buf)
        self.buf = b""
        return items

    def _mark_bad(self, i, reason):
        if self.bad_at < 0:
            self.bad_at = self.base + i
            self.bad_reason = reason

    def _close_bad(self, end):
        damage = Damage(self.bad_at, end - self.bad_at, self.bad_reason)
        self.bad_at = -1
        return damage

    def _parse(self, final):
        items = []
        buf = self.buf
        i = 0
        while i < len(buf):
            found = decode_at(buf, i, self.base + i)
            if isinstance(found, Frame):
                if self.bad_at >= 0:
                    if self.bad_reason == TORN_TAIL:
                        self.bad_reason = BAD_LENGTH  # frames follow: not the tail after all
                    items.append(self._close_bad(self.base + i))
                items.append(found)
                i += found.size
                continue
            if found is None and not final:
                break  # the rest of this frame has not arrived yet
            if found is None:
                # At the end of the data and still incomplete: a torn tail, unless the
                # length was false and real frames follow; look for them.
                found = TORN_TAIL
            self._mark_bad(i, found)
            nxt = buf.find(MAGIC_PREFIX, i + 1)
            if nxt < 0:
                # Keep a few bytes: they may be the start of a magic cut by the feed.
                keep = 0 if final else min(len(buf) - i - 1, len(MAGIC) - 1)
                i = len(buf) - keep if keep > 0 else len(buf)
                break
            i = nxt
        self.buf = buf[i:]
        self.base += i
        return items


# ---------------------------------------------------------------------------- sidecar records
# Index: (offset - segment base, frame position), 8 bytes each, like Kafka's .index.
# Confirm: (offset - segment base, crc32 of those 4 bytes): a damaged entry is ignored (the
# chunk is delivered again) instead of wrongly confirming a chunk.
_PAIR = "<II"
ENTRY_SIZE = struct.calcsize(_PAIR)


def index_entry(relative_offset, position):
    return struct.pack(_PAIR, relative_offset, position)


def index_entries(data):
    """[(relative offset, position)] from an index file; a torn last entry is left out."""
    return [struct.unpack_from(_PAIR, data, i)
            for i in range(0, len(data) - ENTRY_SIZE + 1, ENTRY_SIZE)]


def confirm_entry(relative_offset):
    rel = struct.pack("<I", relative_offset)
    return rel + struct.pack("<I", binascii.crc32(rel) & 0xFFFFFFFF)


def confirmed_offsets(data):
    """The relative offsets confirmed in a confirm file, damaged entries skipped."""
    found = set()
    for i in range(0, len(data) - ENTRY_SIZE + 1, ENTRY_SIZE):
        rel, crc = struct.unpack_from(_PAIR, data, i)
        if binascii.crc32(data[i:i + 4]) & 0xFFFFFFFF == crc:
            found.add(rel)
    return found
