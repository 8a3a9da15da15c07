"""Storage: the engine-wide side of the queues.

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

from edgeship.core.ring import ByteRing
from edgeship.storage import records
from edgeship.storage.queue import OutputQueue
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
        self.budgets = {}
        self.queues = []
        self._unsynced = []
        self._sync_wake = None
        self._sync_task = None

    # ------------------------------------------------------------------ building
    def queue_for(self, name, total_limit, on_ready, on_dropped):
        spool = None
        if self.path:
            spool = Spool(os.path.join(self.path, _dir_name(name)), self.log,
                          total_limit or 0, self.delete_damaged, self.sync_full)
        queue = OutputQueue(name, self, spool, on_ready, on_dropped)
        self.queues.append(queue)
        return queue

    def budget(self, source):
        """The Budget of an input (filters re-emitting records get a memory one)."""
        budget = self.budgets.get(source)
        if budget is None:
            conf = getattr(source, "conf", None) or {}
            kind = conf.get("storage.type") or "memory"
            configured = conf.get("mem_buf_limit") or 0
            limit = configured
            if not limit:
                limit = self.backlog_limit if kind == "filesystem" else self.default_budget
            name = getattr(source, "display", None) or "engine"
            budget = self.budgets[source] = Budget(name, kind, limit, bool(configured))
        return budget

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

    def put(self, source, tag, events, ack, outputs):
        """Queue a batch for each output it was routed to (packed once for all)."""
        budget = self.budget(source)
        try:
            body, exact = records.pack_batch(events)
        except Exception as exc:  # RecursionError: nested deeper than even its text form
            events = self._storable(budget, tag, events, exc)
            if not events:
                return
            body, exact = records.pack_batch(events)
        first, last = events[0][0], events[-1][0]
        for out in outputs:
            out.queue.put(budget, tag, body, events, exact, first, last, ack)

    def _storable(self, budget, tag, events, error):
        """The records of a batch that can be packed; the others are dropped, counted and
        logged (once per batch), so a poison record cannot make an input die."""
        kept = []
        for event in events:
            try:
                records.pack_batch([event])
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
        for queue in self.queues:
            queue.close_open()

    def over(self, source):
        return self.budget(source).over()

    # ------------------------------------------------------------------ chunk events
    def stored(self, chunk):
        """``chunk`` is in the spool: it leaves its input's budget and joins the RAM ring."""
        self._unpin(chunk)
        if chunk.queue.failing:
            chunk.payload = None  # its turn may be far away: read back from disk
        else:
            self.ram.add(chunk, chunk.size)
            for old in self.ram.victims():
                self.to_disk_only(old)
        if self.sync_full:
            self._unsynced.append(chunk)
            self._sync_wake.set()
        else:
            _release(chunk)

    def to_disk_only(self, chunk):
        """Free the RAM copy of a spooled chunk; its flush reads it back."""
        if self.ram.remove(chunk) is not None:
            chunk.payload = None
            chunk.queue.uncache(chunk)

    def forget(self, chunk):
        """``chunk`` was confirmed or dropped."""
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

    def evict_memrb(self, budget, newest):
        """memrb: drop the oldest chunks of the input until its ring fits again."""
        victims = budget.ring.victims(
            keep=lambda c: c is newest or c.queue.busy is c)
        for chunk in victims:
            budget.memrb_dropped_chunks += 1
            budget.memrb_dropped_bytes += chunk.size
            chunk.queue.drop(chunk, "memrb: %s is over its Mem_Buf_Limit" % budget.name)

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
        return {"inputs": {b.name: b.metrics() for b in self.budgets.values()},
                "outputs": {q.name: q.metrics() for q in self.queues},
                "ram_bytes": self.ram.bytes, "ram_limit": self.backlog_limit}


def _release(chunk):
    acks, chunk.acks = chunk.acks, []
    for ack in acks:
        ack.release()
