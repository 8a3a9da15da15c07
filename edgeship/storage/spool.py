"""The spool of one output: a directory of segments, oldest first, one of them open for writing.

Segments are per output (``<storage.path>/<output name>/``), not shared between outputs:
- ``storage.total_limit_size`` is per output and must be enforced on bytes really on disk;
  a segment shared with another output could not be freed when this output drops it.
- a dead output then holds only its own segments; a live one deletes its segments as it
  confirms them, whatever the other outputs are doing.
- a confirm is local to the output's own files (no shared state to update or lock).
The price is a second copy of a chunk routed to two outputs; edge configs rarely fan out.

A segment is deleted as soon as none of its chunks waits for delivery (also the one being
written: the next chunk opens a new one), so a spool that keeps up holds almost nothing.
"""
import os

from edgeship.core import chunkframe as cf
from edgeship.core.ring import ByteRing
from edgeship.storage.segment import (ACK, IDX, SEG, SEGMENT_BYTES, SET_ASIDE, Segment, base_of,
                                      name)


def segment_bytes_for(limit):
    """Small segments under a small total_limit_size: disk space comes back a segment at a
    time, so a segment should be a small part of the limit."""
    if not limit:
        return SEGMENT_BYTES
    return max(64 * 1024, min(SEGMENT_BYTES, limit // 8))


class Spool:
    def __init__(self, directory, log, limit=0, delete_damaged=False, sync_full=False):
        self.dir = directory
        self.sync_full = sync_full
        self.log = log
        self.segments = ByteRing(limit)   # Segment -> bytes on disk, oldest first
        self.segment_bytes = segment_bytes_for(limit)
        self.delete_damaged = delete_damaged
        self.active = None
        self.next_offset = 0
        self.damaged_bytes = 0
        self.damaged_regions = 0
        self.lost_chunks = 0          # chunks the index knew of that a replay did not find
        self.bad_index_entries = 0
        self._unsynced = set()       # segments written since the last fsync (sync full)
        self._closed_fds = []        # copies of the descriptors of those closed since
        self._dir_changed = False

    @property
    def disk_bytes(self):
        return self.segments.bytes

    # ------------------------------------------------------------------ start
    def replay(self):
        """Scan the directory: [(segment, frame)] for every intact chunk not yet confirmed, in
        order. Each segment is checked against its index and confirm files: damaged bytes
        and chunks the index knew of that the segment lost are counted and logged (file,
        offsets, reason), never fatal; such a segment is set aside once its good chunks are
        delivered, never deleted unnoticed."""
        os.makedirs(self.dir, exist_ok=True)
        names = os.listdir(self.dir)
        seg_bases = {b for b in map(base_of, names) if b is not None}
        # An .idx without its .seg: a crash in the middle of a delete, or a segment lost.
        idx_bases = {b for b in (base_of(n, (IDX,)) for n in names) if b is not None}
        self._remove_orphans(names, seg_bases | idx_bases)
        for set_aside in (base_of(n, (SEG + SET_ASIDE, IDX + SET_ASIDE)) for n in names):
            if set_aside is not None:  # a new segment must not take the name of evidence
                self.next_offset = max(self.next_offset, set_aside + 1)
        found = []
        for base in sorted(seg_bases | idx_bases):
            segment = Segment(self.dir, base)
            self.next_offset = max(self.next_offset, base + 1)
            try:
                seen = segment.inspect()
            except OSError as exc:
                self.log.error("cannot read spool segment %s: %s; left in place",
                               segment.path, exc.strerror or exc)
                continue
            self._report(segment, seen)
            for offset, _position, _why in seen.lost:
                self.next_offset = max(self.next_offset, offset + 1)
            for frame in seen.frames:
                self.next_offset = max(self.next_offset, frame.offset + 1)
                if frame.offset in seen.confirmed or frame.offset in segment.live:
                    continue
                segment.live.add(frame.offset)
                found.append((segment, frame))
            self.segments.add(segment, segment.disk_bytes)
            if not segment.live:
                self._remove(segment)
        return found

    def _report(self, segment, seen):
        """Count and log what ``seen`` (an Inspection) says is damaged or lost."""
        segment.damaged = seen.damaged
        for item in seen.damage:
            self.damaged_bytes += item.length
            self.damaged_regions += 1
            self.log.warn("%s: skipped %d damaged bytes at position %d: %s",
                          segment.path, item.length, item.position, item.reason)
        by_reason = {}
        for offset, _position, why in seen.lost:
            by_reason.setdefault(why, []).append(offset)
        for why, offsets in by_reason.items():
            self.lost_chunks += len(offsets)
            self.log.error("%s: LOST %d chunks its index lists (offsets %s): %s",
                           segment.path, len(offsets), _ranges(offsets), why)
        if seen.bad_index:
            self.bad_index_entries += len(seen.bad_index)
            self.log.warn("%s: %d entries of %s match no chunk (damaged index); ignored",
                          segment.path, len(seen.bad_index), segment.index_path)
        for problem in seen.problems:
            self.log.warn("%s: %s", segment.path, problem)

    def _remove_orphans(self, names, bases):
        """An .ack whose segment and index are gone (a crash in the middle of a delete)."""
        stems = {name(b) for b in bases}
        for filename in names:
            stem, ext = os.path.splitext(filename)
            if ext == ACK and stem not in stems:
                try:
                    os.unlink(os.path.join(self.dir, filename))
                except OSError:
                    pass

    # ------------------------------------------------------------------ writing
    def append(self, offset, tag, payload, count, first_ns, last_ns, created_ns,
               version=cf.VERSION):
        """Write a chunk; returns (segment, position, frame size). Raises OSError (ENOSPC,
        EIO, ...) with nothing half-written left behind."""
        segment = self.active
        if segment is None or segment.size >= self.segment_bytes:
            segment = self._roll(offset)
        head = cf.header(offset, tag, payload, count, first_ns, last_ns, created_ns, version)
        before = segment.disk_bytes
        position = segment.append(offset, head, payload)
        self.segments.grow(segment, segment.disk_bytes - before)
        if self.sync_full:
            self._unsynced.add(segment)
        return segment, position, len(head) + len(payload)

    def _roll(self, base):
        old = self.active
        self.active = None
        if old is not None:
            if old in self._unsynced:
                self._unsynced.discard(old)
                self._closed_fds.extend(old.dup_fds())
            old.close()
            if not old.live:
                self._remove(old)
        os.makedirs(self.dir, exist_ok=True)
        segment = Segment(self.dir, base)
        segment.create()
        self.segments.add(segment, 0)
        self.active = segment
        self._dir_changed = True
        return segment

    def done(self, segment, offset):
        """The chunk at ``offset`` was confirmed or dropped for good. Recorded in the .ack
        also when it is the last one and the segment goes: should a crash leave the .idx
        behind, the replay sees that every chunk it lists was done (not lost)."""
        before = segment.disk_bytes
        segment.confirm(offset)
        if not segment.live:
            self._remove(segment)
            return
        self.segments.grow(segment, segment.disk_bytes - before)

    def _remove(self, segment):
        self.segments.remove(segment)
        self._unsynced.discard(segment)  # deleted: nothing of it needs to reach the disk
        if segment is self.active:
            self.active = None
        if segment.damaged and not self.delete_damaged:
            try:
                segment.rename_damaged()
                self.log.warn("%s is damaged: kept, with its index and confirm files, as "
                              "%s.damaged (storage.delete_irrecoverable_chunks off)",
                              segment.path, os.path.basename(segment.path))
            except OSError as exc:
                self.log.error("cannot set aside damaged segment %s: %s", segment.path, exc)
        else:
            if segment.damaged:
                self.log.warn("%s is damaged: deleted (storage.delete_irrecoverable_chunks on)",
                              segment.path)
            try:
                segment.delete()
            except OSError as exc:
                # Its chunks are done: at worst they are delivered again after a restart.
                self.log.error("cannot delete spool segment %s: %s", segment.path,
                               exc.strerror or exc)
        self._dir_changed = True

    def read(self, segment, position, size, offset):
        """The payload of a chunk back from disk, checked; ValueError when it is damaged."""
        found = cf.decode_at(segment.read(position, size), 0, position)
        if not isinstance(found, cf.Frame):
            raise ValueError("%s at position %d of %s" % (found or cf.TORN_TAIL, position,
                                                          segment.path))
        if found.offset != offset:
            raise ValueError("chunk %d expected at position %d of %s, found %d"
                             % (offset, position, segment.path, found.offset))
        return found.payload

    # ------------------------------------------------------------------ durability
    def sync_handles(self):
        """Duplicates of the descriptors to fsync for what was written so far (called on the
        loop; the fsync itself runs in a thread, which then closes them)."""
        fds, self._closed_fds = self._closed_fds, []
        for segment in self._unsynced:
            fds.extend(segment.dup_fds())
        self._unsynced = set()
        if self._dir_changed:
            self._dir_changed = False
            try:
                fds.append(os.open(self.dir, os.O_RDONLY))
            except OSError:
                pass
        return fds

    def close(self):
        for segment in self.segments.keys():
            segment.close()
        self.active = None


def fsync_all(fds):
    """fsync and close each descriptor; returns the first error, or None."""
    error = None
    for fd in fds:
        try:
            os.fsync(fd)
        except OSError as exc:
            error = error or exc
        finally:
            os.close(fd)
    return error


def _ranges(offsets):
    """'3-7, 9' for [3, 4, 5, 6, 7, 9]."""
    parts = []
    offsets = sorted(offsets)
    start = prev = offsets[0]
    for offset in offsets[1:] + [None]:
        if offset is not None and offset == prev + 1:
            prev = offset
            continue
        parts.append("%d" % start if start == prev else "%d-%d" % (start, prev))
        start = prev = offset
    return ", ".join(parts)
