"""OutputQueue: the chunks waiting for one output, in RAM and, for filesystem inputs, in its
spool. See ``edgeship.engine.ack`` for the contract the engine relies on.

Chunks hold msgpack bytes, never Python objects: bytes are what the budgets count, so RAM is
bounded by the budgets however large the backlog (objects would take 5-10 times more), and
the spool write is the same bytes. A chunk is turned back into events only for its flush.

Life of a chunk: *open* (per input and tag, taking batches) -> *closed* (full, or at the flush
tick): it gets its offset, and a filesystem input's chunk is written to the spool. From then
on it is *durable*: its acks are released (the input may commit), its bytes no longer count
against the input's budget, and its payload stays in RAM only while the engine-wide RAM ring
has room (otherwise it is read back from disk for its flush). Memory chunks stay in RAM and
release their acks on confirm or drop, as Fluent Bit does.

While an output keeps up, its first chunks also keep the events they were packed from
(``Chunk.events``), so their flush needs no unpacking: rebuilding records from msgpack costs
more than a microsecond per record, the largest cost on the path. That cache is bounded
(CACHE_BYTES of packed records per output) and dropped as soon as the chunk leaves RAM, the
output starts failing, or the chunk is done: the msgpack bytes stay the truth.

A chunk whose flush stopped part way (the engine isolating records an output cannot take,
then a RETRY) keeps all its records; ``Chunk.settled`` counts those at its head already
delivered or dropped, and ``load`` returns only the rest. Its acks wait for the whole chunk.
After a crash the spool copy is replayed whole: the settled head is sent again (at least
once, never lost).
"""
import asyncio
import time

from edgeship.core import chunkframe as cf
from edgeship.storage import records

# Fluent Bit closes a chunk around 2 MB; a smaller chunk keeps the objects of one flush
# (several times the msgpack bytes) small on a Pi.
CHUNK_BYTES = 256 * 1024
# After a failed spool write (ENOSPC, EIO...) chunks stay in memory for this long before the
# spool is tried again.
SPOOL_RETRY_SECONDS = 10.0
# Packed bytes per output whose events are also kept as objects (several times larger).
CACHE_BYTES = 1024 * 1024


class Chunk:
    __slots__ = ("queue", "seq", "tag", "source", "bodies", "payload", "events", "count",
                 "size", "first_ns", "last_ns", "acks", "attempts", "retry_at", "segment",
                 "position", "frame_size", "pinned", "gone", "settled")

    def __init__(self, queue, tag, source):
        self.queue = queue
        self.seq = -1           # offset, given when the chunk closes
        self.tag = tag
        self.source = source    # the input's Budget; None for chunks replayed from the spool
        self.bodies = []        # packed batches while open
        self.payload = None     # msgpack bytes once closed; None when only on disk
        self.events = None      # the same records as objects, while cached (see above)
        self.count = 0
        self.size = 0           # msgpack bytes of its records
        self.first_ns = 0
        self.last_ns = 0
        self.acks = []
        self.attempts = 0
        self.retry_at = 0.0
        self.segment = None     # where it is in the spool, once written
        self.position = 0
        self.frame_size = 0
        self.pinned = True      # counts against its input's budget (not durable yet)
        self.gone = False       # confirmed or dropped
        self.settled = 0        # records at the head already delivered or dropped

    @property
    def durable(self):
        return self.segment is not None

    @property
    def left(self):
        """Records still to deliver."""
        return self.count - self.settled


class OutputQueue:
    def __init__(self, name, storage, spool=None, on_ready=None, on_dropped=None):
        self.name = name
        self.storage = storage
        self.spool = spool
        self.on_ready = on_ready        # a chunk is ready for a flush
        self.on_dropped = on_dropped    # (chunk, reason, log) when a chunk is given up
        self.open = {}                  # (budget, tag) -> open Chunk
        self.queued = {}                # offset -> closed Chunk, oldest first
        self.next_seq = 0
        self.busy = None                # the chunk being flushed
        self.failing = False            # the oldest chunk waits for a retry
        self.spool_down_until = 0.0
        self.spool_failed = False
        self.limit_dropped_chunks = 0
        self.cached_bytes = 0           # packed size of the chunks holding their events

    # ------------------------------------------------------------------ start
    def replay(self):
        """Queue the spool's chunks left from the previous run; returns (chunks, records)."""
        if self.spool is None:
            return 0, 0
        records_total = 0
        found = self.spool.replay()
        for segment, frame in found:
            chunk = Chunk(self, frame.tag, None)
            chunk.seq = frame.offset
            chunk.count, chunk.first_ns, chunk.last_ns = frame.count, frame.first_ns, frame.last_ns
            chunk.bodies = None
            chunk.segment, chunk.position, chunk.frame_size = segment, frame.position, frame.size
            chunk.size = frame.size
            chunk.pinned = False
            self.queued[chunk.seq] = chunk
            records_total += frame.count
        self.next_seq = self.spool.next_offset
        return len(found), records_total

    # ------------------------------------------------------------------ in
    def put(self, budget, tag, body, events, exact, first_ns, last_ns, ack):
        """Append one batch, ``events`` and their packed form ``body``
        (``records.pack_batch``), to the open chunk of its input and tag. When the packed
        form is not ``exact`` the chunk stops caching objects: its flush must see the values
        the spool holds."""
        key = (budget, tag)
        chunk = self.open.get(key)
        if chunk is None:
            chunk = self.open[key] = Chunk(self, tag, budget)
            chunk.first_ns = first_ns
            if not self.failing and self.cached_bytes < CACHE_BYTES:
                chunk.events = []
            if budget.ring is not None:
                budget.ring.add(chunk)
        count = len(events)
        if not exact:
            self.uncache(chunk)
        if chunk.events is not None:
            chunk.events.extend(events)
            self.cached_bytes += len(body)
        chunk.bodies.append(body)
        chunk.count += count
        chunk.size += len(body)
        chunk.last_ns = last_ns
        budget.bytes += len(body)
        if ack is not None:
            ack.add()
            chunk.acks.append(ack)
        if budget.ring is not None:
            budget.ring.grow(chunk, len(body))
            self.storage.evict_memrb(budget, chunk)
        if chunk.size >= CHUNK_BYTES and not chunk.gone:
            self._close(chunk)
            if self.on_ready is not None:
                self.on_ready()

    def close_open(self):
        """The flush tick: every open chunk closes; True when any did."""
        chunks = list(self.open.values())
        for chunk in chunks:
            self._close(chunk)
        if chunks and self.on_ready is not None:
            self.on_ready()
        return bool(chunks)

    def _close(self, chunk):
        del self.open[(chunk.source, chunk.tag)]
        chunk.payload = records.payload(chunk.count, chunk.bodies)
        chunk.bodies = None
        chunk.seq = self.next_seq
        self.next_seq += 1
        self.queued[chunk.seq] = chunk
        if self.spool is not None and chunk.source.type == "filesystem":
            self._write(chunk)

    def _write(self, chunk):
        now = time.monotonic()
        if now < self.spool_down_until:
            return  # memory only for now
        try:
            self._make_room(chunk)
            chunk.segment, chunk.position, chunk.frame_size = self.spool.append(
                chunk.seq, chunk.tag, chunk.payload, chunk.count, chunk.first_ns,
                chunk.last_ns, time.time_ns())
        except OSError as exc:
            self.spool_down_until = now + SPOOL_RETRY_SECONDS
            if not self.spool_failed:
                self.spool_failed = True
                self.storage.log.error(
                    "output %s: cannot write the spool in %s (%s): chunks are kept IN MEMORY "
                    "ONLY, not durable, until it is writable again", self.name, self.spool.dir,
                    exc.strerror or exc)
            return
        if self.spool_failed:
            self.spool_failed = False
            self.storage.log.info("output %s: the spool in %s is writable again",
                                  self.name, self.spool.dir)
        self.storage.stored(chunk)

    def _make_room(self, chunk):
        """storage.total_limit_size: drop this output's oldest chunks, a segment at a time
        (what frees disk space), until the new chunk fits. The chunk being flushed stays."""
        extra = cf.frame_size(chunk.tag, chunk.payload) + cf.ENTRY_SIZE  # + its index entry
        victims = self.spool.segments.victims(
            extra, keep=lambda seg: self.busy is not None and self.busy.segment is seg)
        chunks = records_total = 0
        for segment in victims:
            for seq in sorted(segment.live):
                old = self.queued.get(seq)
                if old is None:
                    self.spool.done(segment, seq)
                    continue
                chunks += 1
                records_total += old.left
                self.drop(old, "storage.total_limit_size reached", log=False)
        if chunks:
            self.limit_dropped_chunks += chunks
            self.storage.log.warn(
                "output %s: storage.total_limit_size (%d bytes) reached: dropped the %d oldest "
                "chunks (%d records)", self.name, self.spool.segments.limit, chunks,
                records_total)

    # ------------------------------------------------------------------ out
    def pending(self):
        """The closed chunks, oldest first (a copy: the queue may change during flushes)."""
        return list(self.queued.values())

    async def load(self, chunk):
        """The events of ``chunk`` still to deliver (all but its settled head) for its
        flush: the cached objects, else unpacked from RAM or read back from the spool.
        Raises ValueError or OSError when the spool copy is damaged or unreadable."""
        if chunk.events is not None:
            events = chunk.events
        else:
            data = chunk.payload
            if data is None:
                data = await asyncio.get_running_loop().run_in_executor(
                    None, self.spool.read, chunk.segment, chunk.position, chunk.frame_size,
                    chunk.seq)
            try:
                events = records.unpack(data)
            except Exception as exc:  # msgpack raises several types for bad bytes
                raise ValueError("undecodable records: %r" % exc)
        return events[chunk.settled:] if chunk.settled else events

    def confirm(self, chunk):
        self._forget(chunk)

    def drop(self, chunk, reason="", log=True):
        if chunk.gone:
            return
        self._forget(chunk)
        if self.on_dropped is not None:
            self.on_dropped(chunk, reason, log)

    def _forget(self, chunk):
        if chunk.gone:
            return
        chunk.gone = True
        if chunk.seq >= 0:
            self.queued.pop(chunk.seq, None)
        else:
            del self.open[(chunk.source, chunk.tag)]
        self.storage.forget(chunk)
        if chunk.segment is not None:
            self.spool.done(chunk.segment, chunk.seq)
        self.uncache(chunk)
        chunk.payload = chunk.bodies = None

    def uncache(self, chunk):
        """Let go of the objects of ``chunk``; its flush will unpack its bytes."""
        if chunk.events is not None:
            chunk.events = None
            self.cached_bytes -= chunk.size

    def set_failing(self, failing):
        """The output stopped or started working again. While it fails, the others wait
        behind the oldest chunk and its spooled backlog stays on disk only (RAM is for what
        is about to be flushed); when it works again they may all go at once, in order."""
        if failing == self.failing:
            return
        self.failing = failing
        if failing:
            for chunk in list(self.open.values()) + list(self.queued.values()):
                self.uncache(chunk)
            for chunk in self.queued.values():
                self.storage.to_disk_only(chunk)
        else:
            for chunk in self.queued.values():
                chunk.retry_at = 0.0

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

    def metrics(self):
        """Chunks and bytes in RAM and on disk (Fluent Bit's storage_layer names)."""
        mem_chunks = mem_bytes = fs_chunks = fs_up = 0
        for chunk in list(self.open.values()) + list(self.queued.values()):
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
