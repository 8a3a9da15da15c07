"""One spool segment: ``<base>.seg`` (frames, append-only), ``<base>.idx`` (offset -> position,
one entry per frame) and ``<base>.ack`` (the chunks already confirmed or dropped).

``base`` is the offset of the first chunk written to the segment; offsets of the chunks in
it are ``base`` and up, so the sidecar files store them relative to it (4 bytes).

``inspect`` reads the three files together: the frames of the .seg, and the chunks the index
knew of that the .seg lost (truncated, zeroed, torn, or gone), unless confirmed. Replay and
``edgeship spool check`` both use it, so they agree on what is lost. A segment set aside after
damage keeps its three files, each renamed with ``.damaged``, as evidence.
"""
import errno
import os
import stat

from edgeship.core import chunkframe as cf

SEG, IDX, ACK = ".seg", ".idx", ".ack"
SET_ASIDE = ".damaged"
READ_BLOCK = 1 << 20
# The largest segment: one rolls over before it reaches this, so no frame starts beyond it.
SEGMENT_BYTES = 4 * 1024 * 1024


def name(base):
    return "%020d" % base


def base_of(filename, exts=(SEG,)):
    """The base offset of a segment file name (``.seg``, or any of ``exts``), or None for
    other files."""
    for ext in exts:
        if filename.endswith(ext):
            stem = filename[:-len(ext)]
            if len(stem) == 20 and stem.isdigit():
                return int(stem)
    return None


class Inspection:
    """What one segment holds, checked against its index and confirm files."""

    def __init__(self):
        self.frames = []        # intact chunks, in file order
        self.damage = []        # cf.Damage: unusable byte ranges of the .seg
        self.confirmed = set()  # offsets in the .ack
        self.lost = []          # (offset, position, reason): indexed, not confirmed, not in the .seg
        self.bad_index = []     # (offset, position): index entries no chunk can be behind
        self.problems = []      # what keeps the count of lost chunks from being sure

    @property
    def damaged(self):
        """Anything wrong: such a segment is kept as evidence once its good chunks are out."""
        return bool(self.damage or self.lost or self.bad_index or self.problems)


def cross_check(base, items, size, index_data, confirmed):
    """An Inspection from the scan of a .seg (``items``, ``size`` bytes; None when the file
    is gone), its index file's bytes (None when missing) and its confirmed offsets.

    An index entry is trusted when the frame at its position has its offset. Another entry
    names a lost chunk only where one can be: frames are written back to back and the index
    in the same order, so the first chunk lost after a trusted entry starts where the intact
    frames stop (a damaged range, or the end of the file), the next ones follow in order, all
    before the next trusted entry. Anything else is junk in the index, not a lost chunk."""
    found = Inspection()
    found.confirmed = confirmed
    for item in items:
        (found.frames if isinstance(item, cf.Frame) else found.damage).append(item)
    if index_data is None:
        if found.frames or found.damage:
            found.problems.append("index file missing: lost chunks cannot be counted")
        return found
    if len(index_data) % cf.ENTRY_SIZE:
        found.problems.append("index ends in a torn entry")
    entries = [(base + rel, pos) for rel, pos in cf.index_entries(index_data)]
    at = {f.position: f.offset for f in found.frames}
    trusted = []
    newest = base - 1
    for off, pos in entries:  # a repeat (a zeroed page reads as entry 0 again) is junk
        trusted.append(at.get(pos) == off and off > newest)
        if trusted[-1]:
            newest = off
    upper = [None] * len(entries)   # the next trusted entry after each one
    bound = (float("inf"), SEGMENT_BYTES)
    for i in range(len(entries) - 1, -1, -1):
        upper[i] = bound
        if trusted[i]:
            bound = entries[i]
    intact = set(at.values())
    stops = {d.position for d in found.damage}
    stops.add(size or 0)
    last_offset, next_at, chained, broken = base - 1, 0, False, False
    for i, (off, pos) in enumerate(entries):
        if trusted[i]:
            last_offset, chained, broken = off, False, False
            continue
        high_offset, high_pos = upper[i]
        fits = (pos in stops) if not chained else (next_at <= pos)
        if (broken or not fits or off in intact
                or not (last_offset < off < high_offset and pos < high_pos)):
            found.bad_index.append((off, pos))
            broken = True  # what follows junk up to the next trusted entry is junk too
            continue
        last_offset, next_at, chained = off, pos + cf.PREFIX_SIZE + cf.HEAD_SIZE, True
        if off not in confirmed:
            found.lost.append((off, pos, _why_lost(found.damage, pos, size)))
    if size is None and found.lost:
        # (Without lost chunks: a crash in the middle of a delete, all its chunks done.)
        found.problems.append("segment file missing")
    return found


def _open_regular(path):
    """``path`` opened for reading, or OSError when it is no regular file: a FIFO or device
    put in a spool directory must not hang the start-up."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _why_lost(damage, pos, size):
    if size is None:
        return "the segment file is missing"
    if pos >= size:
        return "not in the segment, which ends at byte %d" % size
    for bad in damage:
        if bad.position <= pos < bad.position + bad.length:
            return "in %d damaged bytes at position %d: %s" % (bad.length, bad.position,
                                                               bad.reason)
    return "no frame at that position"


class Segment:
    def __init__(self, directory, base, suffix=""):
        """``suffix``: SET_ASIDE for the files of a segment an earlier run set aside."""
        self.base = base
        stem = os.path.join(directory, name(base))
        self.path = stem + SEG + suffix
        self.index_path = stem + IDX + suffix
        self.ack_path = stem + ACK + suffix
        self.live = set()      # offsets of its chunks not confirmed or dropped yet
        self.size = 0          # bytes of the .seg file
        self.side = 0          # bytes of the .idx and .ack files
        self.damaged = False   # a replay found bad bytes in it
        self._fd = None
        self._index_fd = None

    @property
    def disk_bytes(self):
        return self.size + self.side

    # ------------------------------------------------------------------ writing
    def create(self):
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
        self._fd = os.open(self.path, flags, 0o600)
        try:
            self._index_fd = os.open(self.index_path, flags, 0o600)
        except OSError:
            self.close()
            os.unlink(self.path)
            raise

    def append(self, offset, head, payload):
        """Write one frame; returns its position. On failure the half-written frame is cut off
        again (as far as the disk allows) and the error raised."""
        position = self.size
        total = len(head) + len(payload)
        try:
            written = os.writev(self._fd, [head, payload])
            while written < total:  # a short write: the rest, from where it stopped
                rest = (head + payload)[written:]
                written += os.write(self._fd, rest)
        except OSError:
            try:
                os.ftruncate(self._fd, position)
            except OSError:
                # The torn bytes stay (replay skips them as damage); later frames go after
                # them, and their index entries must say so.
                try:
                    self.size = os.fstat(self._fd).st_size
                except OSError:
                    pass
            raise
        self.size += total
        try:
            self.side += os.write(self._index_fd, cf.index_entry(offset - self.base, position))
        except OSError:
            pass  # the index is a hint (spool dump/check); the frame itself is safe
        self.live.add(offset)
        return position

    def confirm(self, offset):
        """Record that ``offset`` needs no more delivery (done when chunks of the segment are
        still waiting; a segment with none left is deleted instead)."""
        self.live.discard(offset)
        try:
            # O_NONBLOCK: junk in the spool (a FIFO of that name) fails, never hangs.
            fd = os.open(self.ack_path,
                         os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK, 0o600)
            try:
                self.side += os.write(fd, cf.confirm_entry(offset - self.base))
            finally:
                os.close(fd)
        except OSError:
            pass  # without the record the chunk is delivered again after a restart: safe

    def dup_fds(self):
        """Own copies of the open descriptors, for an fsync in another thread that must not
        race with this segment being closed."""
        return [os.dup(fd) for fd in (self._fd, self._index_fd) if fd is not None]

    def close(self):
        for fd in (self._fd, self._index_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._index_fd = None

    def delete(self):
        """The .seg goes first: a .seg without its .ack would deliver confirmed chunks again.
        The .ack goes last: an .idx a crash leaves behind is checked against it at replay
        (its chunks were all confirmed: see Spool.done), and only an .idx without any .ack
        means a segment lost with chunks in it."""
        self.close()
        error = None
        for path in (self.path, self.index_path, self.ack_path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                error = error or exc
        if error is not None:
            raise error

    def rename_damaged(self):
        """Keep a damaged segment's files for inspection, out of the spool's way (each as
        ``<name>.damaged``; ``edgeship spool check`` reads them as the replay did)."""
        self.close()
        for path in (self.path, self.index_path, self.ack_path):
            try:
                os.replace(path, path + SET_ASIDE)
            except FileNotFoundError:
                pass

    # ------------------------------------------------------------------ reading
    def read(self, position, size):
        with open(self.path, "rb") as f:
            f.seek(position)
            return f.read(size)

    def confirmed(self):
        """Offsets recorded in the .ack file."""
        try:
            with _open_regular(self.ack_path) as f:
                data = f.read()
        except FileNotFoundError:
            return set()
        return {self.base + rel for rel in cf.confirmed_offsets(data)}

    def inspect(self, keep_payload=False):
        """The Inspection of this segment (see ``cross_check``). Raises OSError when a file
        is there but cannot be read."""
        problems = []
        # The index first: its entries are written after their frames, so a segment that a
        # running edgeship appends to meanwhile still holds every chunk they name.
        try:
            with _open_regular(self.index_path) as f:
                index_data = f.read()
        except FileNotFoundError:
            index_data = None
        except OSError as exc:  # the frames are still worth replaying
            index_data = None
            problems.append("index file unreadable: %s" % (exc.strerror or exc))
        try:
            items = self.scan(keep_payload)
            size = self.size
        except FileNotFoundError:
            items, size = [], None
        try:
            confirmed = self.confirmed()
        except OSError as exc:
            confirmed = set()
            problems.append("confirm file unreadable (its chunks are delivered again): %s"
                            % (exc.strerror or exc))
        self.side = sum(os.path.getsize(p) for p in (self.index_path, self.ack_path)
                        if os.path.isfile(p))
        found = cross_check(self.base, items, size, index_data, confirmed)
        found.problems[:0] = problems
        return found

    def scan(self, keep_payload=False):
        """Every Frame and Damage of the .seg file, in order. Payloads are dropped unless
        asked for, so scanning a large spool holds one read block at a time."""
        decoder = cf.Decoder()
        items = []
        size = 0
        with _open_regular(self.path) as f:
            while True:
                block = f.read(READ_BLOCK)
                if not block:
                    break
                size += len(block)
                items.extend(self._keep(decoder.feed(block), keep_payload))
        items.extend(self._keep(decoder.finish(), keep_payload))
        self.size = size
        return items

    @staticmethod
    def _keep(items, keep_payload):
        if not keep_payload:
            for item in items:
                if isinstance(item, cf.Frame):
                    item.payload = None
        return items
