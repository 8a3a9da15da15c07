"""One spool segment: ``<base>.seg`` (frames, append-only), ``<base>.idx`` (offset -> position,
one entry per frame) and ``<base>.ack`` (the chunks already confirmed or dropped).

``base`` is the offset of the first chunk written to the segment; offsets of the chunks in
it are ``base`` and up, so the sidecar files store them relative to it (4 bytes).
"""
import os

from edgeship.core import chunkframe as cf

SEG, IDX, ACK = ".seg", ".idx", ".ack"
READ_BLOCK = 1 << 20


def name(base):
    return "%020d" % base


def base_of(filename):
    """The base offset of a segment file name, or None for other files."""
    stem, ext = os.path.splitext(filename)
    if ext != SEG or len(stem) != 20 or not stem.isdigit():
        return None
    return int(stem)


class Segment:
    def __init__(self, directory, base):
        self.base = base
        stem = os.path.join(directory, name(base))
        self.path = stem + SEG
        self.index_path = stem + IDX
        self.ack_path = stem + ACK
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
                pass  # replay will see a torn tail and skip it
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
            fd = os.open(self.ack_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
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
        """The .seg goes first: an .ack left behind by a crash is harmless, a .seg without its
        .ack would deliver confirmed chunks again."""
        self.close()
        error = None
        for path in (self.path, self.ack_path, self.index_path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                error = error or exc
        if error is not None:
            raise error

    def rename_damaged(self):
        """Keep a damaged segment for inspection, out of the spool's way."""
        self.close()
        os.replace(self.path, self.path + ".damaged")
        for path in (self.ack_path, self.index_path):
            try:
                os.unlink(path)
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
            with open(self.ack_path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return set()
        return {self.base + rel for rel in cf.confirmed_offsets(data)}

    def index(self):
        try:
            with open(self.index_path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        return [(self.base + rel, pos) for rel, pos in cf.index_entries(data)]

    def scan(self, keep_payload=False):
        """Every Frame and Damage of the .seg file, in order. Payloads are dropped unless
        asked for, so scanning a large spool holds one read block at a time."""
        decoder = cf.Decoder()
        items = []
        with open(self.path, "rb") as f:
            while True:
                block = f.read(READ_BLOCK)
                if not block:
                    break
                items.extend(self._keep(decoder.feed(block), keep_payload))
        items.extend(self._keep(decoder.finish(), keep_payload))
        self.size = os.path.getsize(self.path)
        self.side = sum(os.path.getsize(p) for p in (self.index_path, self.ack_path)
                        if os.path.exists(p))
        return items

    @staticmethod
    def _keep(items, keep_payload):
        if not keep_payload:
            for item in items:
                if isinstance(item, cf.Frame):
                    item.payload = None
        return items
