"""Storage: the chunk life cycle, and the engine-wide side of the queues. The engine uses
storage only through ``Storage`` (``add_input``, ``add_output``, ``put``, ``tick``, ``load``,
``confirm``, ``drop``, ``put_back``, ``failing``, ``adopt``, ``metrics``) and hears back through the
callbacks it gives (a chunk is ready, a chunk was dropped, a budget has room again);
``OutputQueue`` is called only from here.

- a ``Budget`` per input: the bytes of its chunks that are only in RAM (open, memory storage,
  or not written yet) against its limit. ``memory``: the input pauses over ``Mem_Buf_Limit``
  (or the engine's default budget). ``memrb``: the oldest chunks are dropped instead, a ring
  of ``Mem_Buf_Limit`` bytes. ``filesystem``: chunks leave the budget once spooled; the
  input pauses only if they cannot be (disk full), over ``Mem_Buf_Limit`` or else
  ``storage.backlog.mem_limit``.
- one RAM ring of ``storage.backlog.mem_limit`` bytes for spooled chunks: the newest stay
  in RAM for their flush, older ones are only on disk and read back when their turn comes.
- the fsync of ``storage.sync full``: writes are grouped, one fsync in a thread per group,
  and the acks of a chunk are released only after its fsync.
"""
import asyncio
import os
import re
import time

from edgeship.codecs.entries import LOGS, METRICS, Chunk, Entries, pack_entries
from edgeship.core import chunkframe as cf
from edgeship.core.ring import ByteRing
from edgeship.storage import legacy
from edgeship.storage.queue import CHUNK_BYTES, OutputQueue
from edgeship.storage.spool import Spool, fsync_all


class Budget:
    def __init__(self, name, storage_type, limit, configured):
        self.name = name
        self.type = storage_type
        self.limit = limit
        self.configured = configured  # the user's Mem_Buf_Limit, not edgeship's default
        self.bytes = 0
        self.paused = False
        self.ring = ByteRing(limit) if storage_type == "memrb" else None
        self.memrb_dropped_chunks = 0
        self.memrb_dropped_bytes = 0
        self.dropped_records = 0     # records that could not be stored (Storage._storable)

    def over(self):
        return self.ring is None and self.bytes > self.limit

    def metrics(self):
        return {"storage_type": self.type, "overlimit": self.over(), "paused": self.paused,
                "mem_bytes": self.bytes, "mem_limit": self.limit,
                "memrb_dropped_chunks": self.memrb_dropped_chunks,
                "memrb_dropped_bytes": self.memrb_dropped_bytes,
                "dropped_records": self.dropped_records}


def _dir_name(name):
    """An output name as a directory name (aliases are free text)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return cleaned or "_"


class Storage:
    def __init__(self, service, log, default_budget, on_release):
        self.log = log.child("storage")
        self.path = service.get("storage.path")
        self.sync_full = service.get("storage.sync") == "full"
        self.backlog_limit = service.get("storage.backlog.mem_limit") or 0
        self.delete_damaged = bool(service.get("storage.delete_irrecoverable_chunks"))
        self.default_budget = default_budget
        self.on_release = on_release      # bytes left a budget: paused inputs may resume
        self.ram = ByteRing(self.backlog_limit)
        self.budgets = []
        self.queues = []
        self._unsynced = []
        self._sync_wake = None
        self._sync_task = None
        self._adopted = None    # the budget of chunks a hot reload handed over

    # ------------------------------------------------------------------ building
    def add_input(self, name, storage_type="memory", mem_buf_limit=0):
        """The Budget of a source of records (an input; a filter re-emitting records)."""
        limit = mem_buf_limit
        if not limit:
            limit = self.backlog_limit if storage_type == "filesystem" else self.default_budget
        budget = Budget(name, storage_type, limit, bool(mem_buf_limit))
        self.budgets.append(budget)
        return budget

    def add_output(self, name, total_limit, on_ready, on_dropped, reads_records=True):
        """The queue of an output. ``on_ready()``: a chunk closed; ``on_dropped(chunk,
        reason, log)``: storage gave a chunk up (memrb, storage.total_limit_size).
        ``reads_records``: False for an output that only sends or writes the chunks' bytes
        (no events are kept for it), "json_lines" for one that takes their JSON lines text
        when known (no events are kept beside it)."""
        spool = None
        if self.path:
            spool = Spool(os.path.join(self.path, _dir_name(name)), self.log,
                          total_limit or 0, self.delete_damaged, self.sync_full)
        queue = OutputQueue(name, self.log, spool, reads_records)
        queue.on_ready, queue.on_dropped = on_ready, on_dropped
        self.queues.append(queue)
        return queue

    # ------------------------------------------------------------------ running
    def start(self):
        """Replay the spools (before any input runs) and start the fsync task."""
        if not self.path:
            return
        for queue in self.queues:
            try:
                chunks, count = queue.replay()
            except OSError as exc:
                self.log.error("cannot open the spool in %s: %s; output %s runs without it",
                               queue.spool.dir, exc.strerror or exc, queue.name)
                queue.spool = None
                continue
            if chunks:
                self.log.info("output %s: %d chunks (%d records) queued from the spool in %s",
                              queue.name, chunks, count, queue.spool.dir)
        self._warn_unknown_spools()
        if self.sync_full:
            self._sync_wake = asyncio.Event()
            self._sync_task = asyncio.ensure_future(self._sync_loop())

    def _warn_unknown_spools(self):
        known = {os.path.basename(q.spool.dir) for q in self.queues if q.spool is not None}
        try:
            names = sorted(os.listdir(self.path))
        except OSError:
            return
        for name in names:
            if name not in known and os.path.isdir(os.path.join(self.path, name)):
                self.log.warn("spool %s belongs to no configured output; left untouched",
                              os.path.join(self.path, name))

    def put(self, budget, tag, events, ack, queues):
        """Queue a batch for each output queue it was routed to (packed once for all).
        ``events``: a list, or entries already packed (``codecs.entries.Entries``)."""
        text = None
        if isinstance(events, Entries):
            body, cached = events.payload, events.decoded()
            first, last = events.first_ns, events.last_ns
        else:
            try:
                body, exact = pack_entries(events)
            except Exception as exc:  # ValueError, RecursionError: deeper than msgpack goes
                events = self._storable(budget, tag, events, exc)
                if not events:
                    return
                body, exact = pack_entries(events)
            cached = events if exact else None
            if exact:
                text = getattr(events, "json_lines", None)
            first, last = events[0][0], events[-1][0]
        for queue in queues:
            chunk = queue.put(budget, tag, body, cached, len(events), first, last, text=text)
            budget.bytes += len(body)
            if ack is not None:
                ack.add()
                chunk.acks.append(ack)
            if budget.ring is not None:
                if chunk not in budget.ring:
                    budget.ring.add(chunk)
                budget.ring.grow(chunk, len(body))
                self._evict_memrb(budget, chunk)
            if chunk.size >= CHUNK_BYTES and not chunk.gone:
                self._close(queue, chunk)
                queue.on_ready()

    def put_metrics(self, budget, tag, payload, ack, queues):
        """Queue one encoded cmetrics context for each output queue: a chunk of its own
        (Fluent Bit 5.1.1 makes every metrics append its own chunk), closed at once."""
        now = time.time_ns()
        for queue in queues:
            chunk = queue.put(budget, tag, payload, None, 1, now, now, cf.METRICS)
            budget.bytes += len(payload)
            if ack is not None:
                ack.add()
                chunk.acks.append(ack)
            self._close(queue, chunk)
            queue.on_ready()
    def adopt(self, queue, chunks):
        """Hot reload: the chunks that were only in memory in the previous pipeline's queue
        of this output (QueuedChunks of another Storage), queued here in their order, their
        acks still waiting (a tail DB offset is committed once the new output delivers).
        They count against one budget of their own."""
        if self._adopted is None:
            self._adopted = self.add_input("hot_reload")
        for old in chunks:
            chunk = queue.put(self._adopted, old.tag, old.payload, None, old.count,
                              old.first_ns, old.last_ns, old.version)
            chunk.acks, old.acks = old.acks, []
            self._adopted.bytes += chunk.size
            self._close(queue, chunk)
        queue.on_ready()

    def _storable(self, budget, tag, events, error):
        """The records of a batch that can be packed; the others are dropped, counted and
        logged (once per batch), so a poison record cannot make an input die."""
        kept = []
        for event in events:
            try:
                pack_entries([event])
            except Exception as exc:
                error = exc
            else:
                kept.append(event)
        dropped = len(events) - len(kept)
        budget.dropped_records += dropped
        self.log.error("%d of %d records from %s (tag %s) dropped: they cannot be stored (%r)",
                       dropped, len(events), budget.name, tag, error)
        return kept

    def tick(self):
        """The flush tick: every open chunk closes and goes to its output."""
        for queue in self.queues:
            chunks = list(queue.open.values())
            for chunk in chunks:
                self._close(queue, chunk)
            if chunks:
                queue.on_ready()

    def over(self, budget):
        return budget.over()

    def _close(self, queue, chunk):
        for old in queue.close(chunk):
            self._forget(old)
            queue.on_dropped(old, "storage.total_limit_size reached", False)
        if chunk.durable:
            self._stored(chunk)

    # ------------------------------------------------------------------ flushes
    async def load(self, chunk):
        """The ``Chunk`` an output flushes for ``chunk``: its entries from RAM, else read
        back from the spool (in a thread), with its cached events when it has them. Marks it
        in flight until ``confirm``, ``drop`` or ``put_back``. Raises OSError or ValueError
        when the spool copy is unreadable or damaged."""
        chunk.busy = True
        payload = chunk.payload
        if payload is None:
            payload = await asyncio.get_running_loop().run_in_executor(None, _read, chunk)
        signal = METRICS if chunk.version == cf.METRICS else LOGS
        texts = chunk.texts
        return Chunk(chunk.tag, payload, chunk.count, chunk.seq, chunk.events, signal,
                     None if texts is None else b"".join(texts))

    def confirm(self, chunk):
        """The output has ``chunk``: it is forgotten, its acks released."""
        if not chunk.gone:
            chunk.queue.remove(chunk)
            self._forget(chunk)

    def drop(self, chunk, reason="", log=True):
        """``chunk`` is given up; its queue's ``on_dropped`` hears of it."""
        if chunk.gone:
            return
        chunk.queue.remove(chunk)
        self._forget(chunk)
        chunk.queue.on_dropped(chunk, reason, log)

    def put_back(self, chunk):
        """The flush of ``chunk`` ended without it being delivered; it stays queued."""
        chunk.busy = False

    def failing(self, queue, failing):
        """Its output stopped or started working again. While it fails, its spooled
        backlog stays on disk only (RAM is for what is about to be flushed) and no events
        are cached."""
        if failing == queue.failing:
            return
        queue.failing = failing
        if failing:
            for chunk in queue.all():
                queue.uncache(chunk)
            for chunk in queue.pending():
                self._to_disk_only(chunk)

    # ------------------------------------------------------------------ bookkeeping
    def _stored(self, chunk):
        """``chunk`` is in the spool: it leaves its input's budget and joins the RAM ring."""
        self._unpin(chunk)
        if chunk.queue.failing:
            chunk.payload = None  # its turn may be far away: read back from disk
            chunk.queue.uncache(chunk)
        else:
            self.ram.add(chunk, chunk.size)
            for old in self.ram.victims():
                self._to_disk_only(old)
        if self.sync_full:
            self._unsynced.append(chunk)
            self._sync_wake.set()
        else:
            _release(chunk)

    def _to_disk_only(self, chunk):
        """Free the RAM copy of a spooled chunk; its flush reads it back."""
        if self.ram.remove(chunk) is not None:
            chunk.payload = None
            chunk.queue.uncache(chunk)

    def _forget(self, chunk):
        """``chunk`` left its queue (confirmed or dropped)."""
        self._unpin(chunk)
        self.ram.remove(chunk)
        if chunk.source is not None and chunk.source.ring is not None:
            chunk.source.ring.remove(chunk)
        _release(chunk)

    def _unpin(self, chunk):
        if chunk.pinned:
            chunk.pinned = False
            if chunk.source is not None:
                chunk.source.bytes -= chunk.size
            self.on_release()

    def _evict_memrb(self, budget, newest):
        """memrb: drop the oldest chunks of the input until its ring fits again."""
        victims = budget.ring.victims(keep=lambda c: c is newest or c.busy)
        for chunk in victims:
            budget.memrb_dropped_chunks += 1
            budget.memrb_dropped_bytes += chunk.size
            self.drop(chunk, "memrb: %s is over its Mem_Buf_Limit" % budget.name)

    async def _sync_loop(self):
        while True:
            await self._sync_wake.wait()
            self._sync_wake.clear()
            await self._sync_once()

    async def _sync_once(self):
        count = len(self._unsynced)  # taken off the list only once synced (cancellation)
        fds = []
        for queue in self.queues:
            if queue.spool is not None:
                fds.extend(queue.spool.sync_handles())
        error = await asyncio.get_running_loop().run_in_executor(None, fsync_all, fds)
        if error is not None:
            self.log.error("fsync of the spool failed: %s", error.strerror or error)
        chunks = self._unsynced[:count]
        del self._unsynced[:count]
        for chunk in chunks:
            _release(chunk)

    async def close(self):
        """Shutdown: what was written reaches the disk, files are closed."""
        if self._sync_task is not None:
            self._sync_task.cancel()
            await asyncio.gather(self._sync_task, return_exceptions=True)
            await self._sync_once()
        for queue in self.queues:
            if queue.spool is not None:
                queue.spool.close()

    def metrics(self):
        return {"inputs": {b.name: b.metrics() for b in self.budgets},
                "outputs": {q.name: q.metrics() for q in self.queues},
                "ram_bytes": self.ram.bytes, "ram_limit": self.backlog_limit}


def _read(chunk):
    """The entries of a chunk read back from the spool (a version 1 frame converted)."""
    payload = chunk.queue.read(chunk)
    if chunk.version == 1:
        return legacy.to_entries(payload)
    return payload


def _release(chunk):
    acks, chunk.acks = chunk.acks, []
    for ack in acks:
        ack.release()
