"""The scheduler of one output: which chunk is flushed when, how many at once (Workers),
retries with backoff, Retry_Limit, the failing state, and isolating the records a flush
raises on. It owns the delivery state of each chunk (attempts, retry time, the head already
settled); storage owns the chunks, and is asked to load, confirm, drop or put them back.

Order. Chunks start their first flush in queue order (per output: the order batches were
routed to it). With Workers 1 they are delivered in that order, retries included. With
Workers N, up to N consecutive chunks are in flight at once and may complete in any order.
When a flush answers RETRY the output is *failing*: no new chunk starts; once the flushes in
flight are done, only the oldest chunk is retried, at its backoff time, and the others wait
behind it instead of each hammering a dead output. When that retry succeeds the backlog
follows at once, in order. So a retried chunk is never overtaken by a chunk that had not
started yet, but with Workers N up to N-1 chunks queued after it may already be delivered.
A chunk out of retries is dropped and the next one becomes the oldest.

Poison records. A flush that raises is about records (one the output cannot render), not a
passing failure (the output answers RETRY for those): retrying would block every later
chunk forever. The chunk is flushed in halves, recursively, down to the single records that
still raise; those are dropped, the rest delivered in order. A RETRY on the way keeps the
chunk, and the next attempt starts after what was settled (delivered or dropped).

Time comes from a ``Clock`` (``now()``, ``await wait(event, timeout)``), so tests can run
the scheduler on a clock of their own.
"""
import asyncio
import time

from edgeship.core import backoff
from edgeship.engine.plugin import ERROR, OK, RETRY


class Clock:
    """Real time."""

    now = staticmethod(time.monotonic)

    async def wait(self, event, timeout):
        """Until ``event`` is set or ``timeout`` seconds passed."""
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            pass


class _Delivery:
    """The delivery state of one chunk."""

    __slots__ = ("attempts", "retry_at", "settled")

    def __init__(self):
        self.attempts = 0       # flushes that answered RETRY
        self.retry_at = 0.0     # clock time of the next attempt
        self.settled = 0        # records at its head already delivered or dropped


class _Isolation:
    """What isolating the records of a raising flush found."""

    def __init__(self, error):
        self.error = error      # the last exception a flush raised
        self.raised = 0         # single records the flush still raised on
        self.refused = 0        # records of parts the output answered ERROR for


class Scheduler:
    # Seconds between retries once the engine is shutting down (Grace is short).
    STOPPING_RETRY_WAIT = 1.0
    # Longest wait while the engine drains the queues at shutdown.
    DRAIN_WAIT = 0.05

    def __init__(self, plugin, matcher, storage, retry_limit, workers, service, clock=None):
        self.plugin = plugin
        self.matcher = matcher
        self.storage = storage
        self.retry_limit = retry_limit
        self.workers = workers
        self.flush_interval = service["flush"]
        self.base = service["scheduler.base"]
        self.cap = service["scheduler.cap"]
        self.clock = clock or Clock()
        self.queue = storage.add_output(plugin.display, plugin.conf.get("storage.total_limit_size"),
                                        self.ready, self.dropped, plugin.reads_records)
        self.deliveries = {}    # queued chunk -> _Delivery
        self.in_flight = {}     # queued chunk -> its flush task
        self.failing = False
        self.stopping = False   # retries come sooner: the engine is shutting down
        self.draining = False   # run() ends once the queue is empty
        self.held = False       # no new flush starts (a hot reload hands the queue over)
        # Made by run: an asyncio.Event made before the loop runs belongs to another loop
        # on Python 3.9, and waiting on it fails.
        self.wake = None
        self.proc_records = 0
        self.proc_bytes = 0
        self.errors = 0
        self.retries = 0
        self.retries_failed = 0
        self.dropped_records = 0
        self.retried_records = 0

    # ------------------------------------------------------------------ storage's callbacks
    def ready(self):
        """A chunk is ready for a flush."""
        if self.wake is not None:
            self.wake.set()

    def dropped(self, chunk, why, log=True):
        """Every chunk this output gives up passes here (errors, retries, storage limits)."""
        delivery = self.deliveries.pop(chunk, None)
        left = chunk.count - (delivery.settled if delivery is not None else 0)
        self.dropped_records += left
        if log:
            self.plugin.log.error("chunk of %d records (tag %s) dropped: %s", left, chunk.tag,
                                  why)

    # ------------------------------------------------------------------ the loop
    async def run(self):
        self.wake = asyncio.Event()
        try:
            while True:
                self.wake.clear()
                try:
                    self._dispatch()
                except Exception as exc:  # a bug must not silently stop this output for good
                    self.plugin.log.error("delivery loop error, continuing: %r", exc)
                if (self.held or self.draining and self.queue.empty()) and not self.in_flight:
                    return
                await self.clock.wait(self.wake, self._next_wait())
        finally:
            for task in self.in_flight.values():
                task.cancel()

    def flights(self):
        """The flush tasks in flight (the engine awaits them when it cancels run())."""
        return list(self.in_flight.values())

    def _dispatch(self):
        """Start the flushes that are due: in queue order, up to ``workers`` at once; while
        failing, only the oldest chunk, alone, at its retry time."""
        while True:
            chunk = self._next_due()
            if chunk is None:
                return
            task = asyncio.ensure_future(self._work(chunk, probe=self.failing))
            self.in_flight[chunk] = task

    def _next_due(self):
        """The chunk a worker may flush now, or None."""
        if self.held or len(self.in_flight) >= self.workers or (self.failing and self.in_flight):
            return None
        for chunk in self.queue.oldest():
            if chunk.gone or chunk in self.in_flight:
                continue
            if self.failing:
                delivery = self.deliveries.get(chunk)
                if delivery is not None and delivery.retry_at > self.clock.now():
                    return None
            return chunk
        return None

    def _next_wait(self):
        wait = self.flush_interval
        if self.failing and not self.in_flight:
            head = self.queue.head()
            delivery = self.deliveries.get(head) if head is not None else None
            if delivery is not None:
                wait = min(wait, max(0.0, delivery.retry_at - self.clock.now()))
        if self.draining:
            wait = min(wait, self.DRAIN_WAIT)
        return wait

    async def _work(self, chunk, probe):
        """A worker: flush ``chunk``, then, while the output works, the next chunk due,
        without waiting for the scheduler's loop (a flush that does not wait, like null's,
        drains the queue in one go)."""
        task = self.in_flight[chunk]
        while chunk is not None:
            try:
                result = await self._deliver(chunk)
            except Exception as exc:  # a bug must not lose the chunk: it stays queued
                self.plugin.log.error("delivery error, the chunk stays queued: %r", exc)
                self.storage.put_back(chunk)
                result = None
            finally:
                del self.in_flight[chunk]
            if result == RETRY and not chunk.gone:
                self._set_failing(True)
            elif result == OK and probe:
                self._set_failing(False)
            probe = False
            chunk = self._next_due() if result == OK else None
            if chunk is not None:
                self.in_flight[chunk] = task
        self.wake.set()

    def _set_failing(self, failing):
        """The output stopped or started working again. When it works again every chunk
        may go at once, in order."""
        if failing == self.failing:
            return
        self.failing = failing
        self.storage.failing(self.queue, failing)
        if not failing:
            for delivery in self.deliveries.values():
                delivery.retry_at = 0.0

    # ------------------------------------------------------------------ one flush
    async def _deliver(self, chunk):
        """One flush of what is left of ``chunk``; returns OK, RETRY or ERROR."""
        delivery = self.deliveries.get(chunk)
        if delivery is None:
            delivery = self.deliveries[chunk] = _Delivery()
        try:
            whole = await self.storage.load(chunk)
        except (OSError, ValueError) as exc:
            self.errors += 1
            self.storage.drop(chunk, "cannot be read back from the spool: %s" % exc)
            return ERROR
        rest = self._rest(chunk, whole, delivery)
        try:
            result = await self.plugin.flush(rest)
            delivered = chunk.count - delivery.settled
        except Exception as exc:
            result = await self._isolate(chunk, whole, delivery, exc)
            delivered = 0  # counted part by part
        if chunk.gone:
            return result  # dropped while in flight (memrb): nothing left to account for
        if result == OK:
            self.proc_records += delivered
            if delivered:
                self.proc_bytes += len(rest.payload)
            if delivery.attempts:
                self.plugin.log.info("flush chunk succeeded at retry %d", delivery.attempts)
            del self.deliveries[chunk]
            self.storage.confirm(chunk)
            return OK
        if result == ERROR:
            self.errors += 1
            self.storage.drop(chunk, "the output reported an error")
            return ERROR
        delivery.attempts += 1
        left = chunk.count - delivery.settled
        if backoff.out_of_retries(delivery.attempts, self.retry_limit):
            self.retries_failed += 1
            self.storage.drop(chunk, "cannot be retried (retry limit reached)")
            return RETRY
        self.retries += 1
        self.retried_records += left
        if self.stopping:
            wait = self.STOPPING_RETRY_WAIT
        else:
            wait = backoff.retry_wait(delivery.attempts, self.base, self.cap)
        delivery.retry_at = self.clock.now() + wait
        self.plugin.log.warn("failed to flush chunk of %d records (tag %s), retry in %d seconds",
                             left, chunk.tag, wait)
        self.storage.put_back(chunk)
        return RETRY

    @staticmethod
    def _rest(chunk, whole, delivery):
        """What is left of ``whole``: all of it, or the part after its settled head. The
        same records have the same id on every retry; a part is other records, so it has
        its own."""
        if not delivery.settled:
            return whole
        start = delivery.settled
        return whole.part(start, whole.count, (chunk.seq, start, whole.count - start))

    async def _isolate(self, chunk, whole, delivery, error):
        """The flush of what is left of ``chunk`` raised ``error``. Flush halves,
        recursively, down to the single records that still raise; drop those, deliver the
        rest in order. Returns OK once every record is delivered or dropped, RETRY when the
        output asked for a retry on the way: ``delivery.settled`` then says where the next
        attempt starts, so what was delivered is not sent again."""
        found = _Isolation(error)
        result = await self._split(chunk, whole, delivery, delivery.settled, whole.count, found)
        log = self.plugin.log
        if found.raised or found.refused:
            self.errors += 1
            self.dropped_records += found.raised + found.refused
            refused = ""
            if found.refused:
                refused = "; %d more refused by the output" % found.refused
            log.error("%d of %d records of a chunk (tag %s) dropped: the flush raises on each "
                      "(%r)%s; the rest %s", found.raised, chunk.count, chunk.tag, found.error,
                      refused, "delivered" if result == OK else "delivered up to a retry")
        else:
            log.warn("the flush of a chunk of %d records (tag %s) raised %r; its parts did not",
                     chunk.count, chunk.tag, error)
        return result

    async def _split(self, chunk, whole, delivery, start, end, found):
        if end - start == 1:
            found.raised += 1
            delivery.settled += 1
            return OK
        half = start + (end - start) // 2
        for first, last in ((start, half), (half, end)):
            if chunk.gone:
                return RETRY
            try:
                part = whole.part(first, last, (chunk.seq, first, last - first))
            except ValueError as exc:  # bytes that cannot even be cut into entries
                found.error = exc
                found.raised += last - first
                delivery.settled += last - first
                continue
            try:
                result = await self.plugin.flush(part)
            except Exception as exc:
                found.error = exc
                result = await self._split(chunk, whole, delivery, first, last, found)
                if result != OK:
                    return result
                continue
            if result == RETRY:
                return RETRY
            if result == OK:
                self.proc_records += last - first
                self.proc_bytes += len(part.payload)
            else:
                found.refused += last - first
            delivery.settled += last - first
        return OK

    def metrics(self):
        return {"proc_records": self.proc_records, "proc_bytes": self.proc_bytes,
                "errors": self.errors,
                "dropped_records": self.dropped_records, "retries": self.retries,
                "retried_records": self.retried_records,
                "retries_failed": self.retries_failed}
