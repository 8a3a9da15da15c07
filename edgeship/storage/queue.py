"""OutputQueue: the chunks waiting for one output, in RAM and, for filesystem inputs, in its
spool. Only ``edgeship.storage.manager.Storage`` calls it; it calls nothing back: each
method returns what happened (a chunk closed, chunks dropped to make room) and the manager
does the engine-wide bookkeeping (budgets, the RAM ring, acks, the engine's callbacks).

Chunks hold bytes, never Python objects: Fluent Bit's own chunk format
(``edgeship.codecs.entries``). Bytes are what the budgets count, so RAM is bounded by the
budgets however large the backlog (objects would take 5-10 times more), the spool write is
the same bytes, and outputs that send or write the chunk as it is (forward, file msgpack)
never decode it.

Life of a chunk: *open* (per input and tag, taking batches) -> *closed* (full, or at the flush
tick): it gets its offset, and a filesystem input's chunk is written to the spool. From then
on it is *durable*: its acks are released (the input may commit), its bytes no longer count
against the input's budget, and its payload stays in RAM only while the engine-wide RAM ring
has room (otherwise it is read back from disk for its flush). Memory chunks stay in RAM and
release their acks on confirm or drop, as Fluent Bit does.

While an output that renders records (file, stdout, mqtt) keeps up, its first chunks also
keep the events they were packed from (``QueuedChunk.events``), so it gets them without
decoding: rebuilding records from msgpack costs about a microsecond per record, the
largest cost on that path. That cache is bounded (CACHE_BYTES of packed records per output)
and dropped as soon as the chunk leaves RAM, the output starts failing, or the chunk is
done: the bytes stay the truth. For an output that takes the records' JSON lines text when it
is there (``cache == "json_lines"``: file ``plain``) a chunk keeps that text instead
(``QueuedChunk.texts``, see ``codecs.formats.RenderedEvents``) while every batch of it came
with one; one whose first batch came without keeps its events.
"""
import time

from edgeship.core import chunkframe as cf

# Fluent Bit closes a chunk around 2 MB; a smaller chunk keeps the objects of one flush
# (several times the msgpack bytes) small on a Pi.
CHUNK_BYTES = 256 * 1024
# After a failed spool write (ENOSPC, EIO...) chunks stay in memory for this long before the
# spool is tried again.
SPOOL_RETRY_SECONDS = 10.0
# Packed bytes per output whose events are also kept as objects (several times larger).
CACHE_BYTES = 2560 * 1024


class QueuedChunk:
    """A chunk in a queue. The engine reads ``seq``, ``tag``, ``count``, ``durable`` and
    ``gone``; the rest is storage's."""

    __slots__ = ("queue", "seq", "tag", "source", "bodies", "payload", "events", "texts",
                 "count",
                 "size", "first_ns", "last_ns", "acks", "segment", "position", "frame_size",
                 "version", "pinned", "gone", "busy")

    def __init__(self, queue, tag, source):
        self.queue = queue
        self.seq = -1           # offset, given when the chunk closes
        self.tag = tag
        self.source = source    # the input's Budget; None for chunks replayed from the spool
        self.bodies = []        # packed batches while open
        self.payload = None     # entries once closed; None when only on disk
        self.events = None      # the same records as objects, while cached (see above)
        self.texts = None       # or their JSON lines text, batch by batch (see above)
        self.count = 0
        self.size = 0           # bytes of its entries
        self.first_ns = 0
        self.last_ns = 0
        self.acks = []
        self.segment = None     # where it is in the spool, once written
        self.position = 0
        self.frame_size = 0
        # Its spool frame's version: what it holds (cf.LOGS, cf.METRICS; replayed: 1 too).
        self.version = cf.VERSION
        self.pinned = True      # counts against its input's budget (not durable yet)
        self.gone = False       # confirmed or dropped
        self.busy = False       # an output is flushing it

    @property
    def durable(self):
        return self.segment is not None


class OutputQueue:
    def __init__(self, name, log, spool=None, cache=True):
        self.name = name
        self.log = log
        self.spool = spool
        self.cache = cache              # its output reads records: keep their objects
        self.lines_suffice = cache == "json_lines"  # ... or just their JSON lines text
        self.open = {}                  # (budget, tag) -> open QueuedChunk
        self.queued = {}                # offset -> closed QueuedChunk, oldest first
        self.next_seq = 0
        self.failing = False            # its output fails: cache nothing (see Storage.failing)
        self.spool_down_until = 0.0
        self.spool_failed = False
        self.limit_dropped_chunks = 0
        self.cached_bytes = 0           # packed size of the chunks holding their events
        # Set by Storage.add_output: a chunk is ready for a flush; (chunk, reason, log) when
        # a chunk is given up.
        self.on_ready = None
        self.on_dropped = None

    # ------------------------------------------------------------------ start
    def replay(self):
        """Queue the spool's chunks left from the previous run; returns (chunks, records)."""
        if self.spool is None:
            return 0, 0
        records_total = 0
        found = self.spool.replay()
        for segment, frame in found:
            chunk = QueuedChunk(self, frame.tag, None)
            chunk.seq = frame.offset
            chunk.count, chunk.first_ns, chunk.last_ns = frame.count, frame.first_ns, frame.last_ns
            chunk.bodies = None
            chunk.segment, chunk.position, chunk.frame_size = segment, frame.position, frame.size
            chunk.version = frame.version
            chunk.size = frame.size
            chunk.pinned = False
            self.queued[chunk.seq] = chunk
            records_total += frame.count
        self.next_seq = self.spool.next_offset
        return len(found), records_total

    # ------------------------------------------------------------------ in
    def put(self, budget, tag, body, events, count, first_ns, last_ns, version=cf.LOGS,
            text=None):
        """Append a batch, its packed entries ``body`` and, when they unpack to exactly
        these values, its ``events`` (else None) and their JSON lines ``text`` (None when
        unknown), to the open chunk of its input, tag and kind (``version``: logs or
        metrics); returns that chunk."""
        key = (budget, tag, version)
        chunk = self.open.get(key)
        if chunk is None:
            chunk = self.open[key] = QueuedChunk(self, tag, budget)
            chunk.version = version
            chunk.first_ns = first_ns
            if self.cache and not self.failing and self.cached_bytes < CACHE_BYTES:
                if self.lines_suffice and text is not None:
                    chunk.texts = []    # only the text: no other output reads it
                else:
                    chunk.events = []
        if events is None:
            self.uncache(chunk)
        elif chunk.events is not None or chunk.texts is not None:
            if text is None and chunk.events is None:
                self.uncache(chunk)     # text alone was kept, and this batch has none
            else:
                if chunk.events is not None:
                    chunk.events.extend(events)
                if text is None:
                    chunk.texts = None
                elif chunk.texts is not None:
                    chunk.texts.append(text)
                self.cached_bytes += len(body)
        chunk.bodies.append(body)
        chunk.count += count
        chunk.size += len(body)
        chunk.last_ns = last_ns
        return chunk

    def close(self, chunk):
        """Close an open chunk: it gets its offset and, from a filesystem input, goes to the
        spool (``chunk.durable`` tells whether it did). Returns the chunks removed to make
        room for it (storage.total_limit_size)."""
        del self.open[(chunk.source, chunk.tag, chunk.version)]
        chunk.payload = b"".join(chunk.bodies)
        chunk.bodies = None
        chunk.seq = self.next_seq
        self.next_seq += 1
        self.queued[chunk.seq] = chunk
        if self.spool is not None and chunk.source.type == "filesystem":
            return self._write(chunk)
        return []

    def _write(self, chunk):
        now = time.monotonic()
        if now < self.spool_down_until:
            return []  # memory only for now
        dropped = []
        try:
            dropped = self._make_room(chunk)
            chunk.segment, chunk.position, chunk.frame_size = self.spool.append(
                chunk.seq, chunk.tag, chunk.payload, chunk.count, chunk.first_ns,
                chunk.last_ns, time.time_ns(), chunk.version)
        except OSError as exc:
            self.spool_down_until = now + SPOOL_RETRY_SECONDS
            if not self.spool_failed:
                self.spool_failed = True
                self.log.error(
                    "output %s: cannot write the spool in %s (%s): chunks are kept IN MEMORY "
                    "ONLY, not durable, until it is writable again", self.name, self.spool.dir,
                    exc.strerror or exc)
            return dropped
        if self.spool_failed:
            self.spool_failed = False
            self.log.info("output %s: the spool in %s is writable again", self.name,
                          self.spool.dir)
        return dropped

    def _make_room(self, chunk):
        """storage.total_limit_size: this output's oldest chunks, a segment at a time (what
        frees disk space), until the new chunk fits; chunks being flushed stay. They leave
        the queue and the spool here, before the write; returns them (the manager does the
        rest of dropping them)."""
        extra = cf.frame_size(chunk.tag, chunk.payload) + cf.ENTRY_SIZE  # + its index entry
        busy = {c.segment for c in self.queued.values() if c.busy}
        victims = self.spool.segments.victims(extra, keep=busy.__contains__)
        dropped = []
        for segment in victims:
            for seq in sorted(segment.live):
                old = self.queued.get(seq)
                if old is None:
                    self.spool.done(segment, seq)
                else:
                    self.remove(old)
                    dropped.append(old)
        if dropped:
            self.limit_dropped_chunks += len(dropped)
            self.log.warn(
                "output %s: storage.total_limit_size (%d bytes) reached: dropped the %d oldest "
                "chunks (%d records)", self.name, self.spool.segments.limit, len(dropped),
                sum(c.count for c in dropped))
        return dropped

    # ------------------------------------------------------------------ out
    def pending(self):
        """The closed chunks, oldest first (a copy: the queue may change during flushes)."""
        return list(self.queued.values())

    def oldest(self):
        """The closed chunks, oldest first, as an iterator: read it at once, before the
        queue can change (without copying a long backlog for a look at its head)."""
        return iter(self.queued.values())

    def read(self, chunk):
        """The spool copy of ``chunk``'s frame payload (blocking: run it in a thread).
        Raises ValueError or OSError when it is damaged or unreadable."""
        return self.spool.read(chunk.segment, chunk.position, chunk.frame_size, chunk.seq)

    def remove(self, chunk):
        """``chunk`` was confirmed or dropped: out of the queue and, once done, the spool."""
        chunk.gone = True
        chunk.busy = False
        if chunk.seq >= 0:
            self.queued.pop(chunk.seq, None)
        else:
            del self.open[(chunk.source, chunk.tag, chunk.version)]
        if chunk.segment is not None:
            self.spool.done(chunk.segment, chunk.seq)
        self.uncache(chunk)
        chunk.payload = chunk.bodies = None

    def uncache(self, chunk):
        """Let go of the objects of ``chunk``; its flush will decode its bytes."""
        if chunk.events is not None or chunk.texts is not None:
            chunk.events = chunk.texts = None
            self.cached_bytes -= chunk.size

    def head(self):
        """The oldest closed chunk, or None."""
        for chunk in self.queued.values():
            return chunk
        return None

    def empty(self):
        return not self.open and not self.queued

    @property
    def chunks(self):
        return len(self.open) + len(self.queued)

    def all(self):
        return list(self.open.values()) + list(self.queued.values())

    def metrics(self):
        """Chunks and bytes in RAM and on disk (Fluent Bit's storage_layer names)."""
        mem_chunks = mem_bytes = fs_chunks = fs_up = 0
        for chunk in self.all():
            in_ram = chunk.payload is not None or chunk.bodies is not None
            if in_ram:
                mem_chunks += 1
                mem_bytes += chunk.size
            if chunk.durable:
                fs_chunks += 1
                fs_up += in_ram
        spool = self.spool
        return {
            "total_chunks": self.chunks,
            "mem_chunks": mem_chunks,
            "mem_bytes": mem_bytes,
            "fs_chunks": fs_chunks,
            "fs_chunks_up": fs_up,
            "fs_chunks_down": fs_chunks - fs_up,
            "fs_bytes": spool.disk_bytes if spool else 0,
            "fs_segments": len(spool.segments) if spool else 0,
            "limit_dropped_chunks": self.limit_dropped_chunks,
            "damaged_bytes": spool.damaged_bytes if spool else 0,
            "lost_chunks": spool.lost_chunks if spool else 0,
            "bad_index_entries": spool.bad_index_entries if spool else 0,
            "spool_writable": not self.spool_failed,
        }
