"""The engine: one asyncio loop moving batches from inputs through filters to output queues,
and one flush task per output that delivers chunks and retries them with backoff."""
import asyncio
import gc
import os
import signal
import time

from edgeship.core import backoff
from edgeship.core.tagmatch import RouteCache
from edgeship.engine.plugin import ERROR, OK, RETRY
from edgeship.storage.manager import Storage


class OutputState:
    """What the engine keeps per output instance: its queue, counters and wake-up event."""

    def __init__(self, plugin, matcher, retry_limit, queue):
        self.plugin = plugin
        self.matcher = matcher
        self.retry_limit = retry_limit
        self.queue = queue
        # Made by Engine.run: an asyncio.Event made before the loop runs belongs to another
        # loop on Python 3.9, and waiting on it fails.
        self.wake = None
        self.proc_records = 0
        self.errors = 0
        self.retries = 0
        self.retries_failed = 0
        self.dropped_records = 0
        self.retried_records = 0

    def ready(self):
        """A chunk is ready for a flush."""
        if self.wake is not None:
            self.wake.set()


class _Isolation:
    """What isolating the records of a raising flush found."""

    def __init__(self, error):
        self.error = error      # the last exception a flush raised
        self.raised = 0         # single records the flush still raised on
        self.refused = 0        # records of parts the output answered ERROR for


class FilterState:
    def __init__(self, plugin, matcher):
        self.plugin = plugin
        self.matcher = matcher


class Engine:
    # Bytes (msgpack, as Fluent Bit counts them) of an input's memory chunks before it pauses
    # when it has no Mem_Buf_Limit.
    DEFAULT_MEM_BUDGET = 2 * 1000 * 1000

    def __init__(self, service, log):
        self.service = service
        self.log = log
        self.flush_interval = service["flush"]
        self.grace = service["grace"]
        self.inputs = []
        self.filters = []
        self.outputs = []
        self.parsers = {}
        self.multiline_parsers = {}
        self.stopping = False
        self.draining = False
        # Process exit code; a plugin that must fail the run (expect action exit) sets it.
        self.exit_code = 0
        self.storage = Storage(service, log, self.DEFAULT_MEM_BUDGET, self._released)
        self._room = None
        self._eof_inputs = set()
        self.input_restarts = {}  # input plugin -> times it died and was started again

    # ------------------------------------------------------------------ building
    def add_input(self, plugin):
        self.inputs.append(plugin)

    def add_filter(self, plugin, matcher):
        self.filters.append(FilterState(plugin, matcher))

    def add_output(self, plugin, matcher, retry_limit):
        state = OutputState(plugin, matcher, retry_limit, None)
        state.queue = self.storage.queue_for(
            plugin.display, plugin.conf.get("storage.total_limit_size"), state.ready,
            lambda chunk, why, log=True: self._count_drop(state, chunk, why, log))
        self.outputs.append(state)

    def parser(self, name):
        """The [PARSER] called ``name``; raises KeyError when there is none."""
        return self.parsers[name]

    def seal(self):
        self.filter_routes = RouteCache(self.filters)
        self.output_routes = RouteCache(self.outputs)
        for out in self.outputs:
            if out.matcher.is_empty():
                self.log.warn("[router] NO match for %s output instance", out.plugin.display)

    # ------------------------------------------------------------------ the record path
    def ingest(self, source, tag, events, size=0, ack=None, skip=None):
        """Run ``events`` through the filters matching ``tag`` and queue them for every output
        whose Match accepts the tag. ``skip`` is a filter the batch must not pass through
        again (records re-emitted by rewrite_tag)."""
        for state in self.filter_routes.resolve(tag):
            if state.plugin is skip:
                continue
            try:
                events = state.plugin.filter(tag, events)
            except Exception as exc:  # a filter bug must not kill the pipeline
                state.plugin.log.error("filter failed on a batch of %d records, passed on "
                                       "unchanged: %r", len(events), exc)
            if not events:
                break
        if events:
            outputs = self.output_routes.resolve(tag)
            if outputs:
                self.storage.put(source, tag, events, ack, outputs)
        if ack is not None:
            ack.seal()

    async def room(self, source):
        """Wait while ``source`` is over its memory budget (Mem_Buf_Limit)."""
        budget = self.storage.budget(source)
        if not budget.over() or self.stopping:
            return
        budget.paused = True
        # Fluent Bit's lines, for a Mem_Buf_Limit the user set. edgeship's default budget is
        # how a fast input keeps pace with its outputs: pausing on it is routine, not news.
        log = self.log.child("input")
        notice, resumed = (log.warn, log.info) if budget.configured else (log.debug, log.debug)
        notice("%s paused (mem buf overlimit)", budget.name)
        self.storage.tick()  # hand the open chunks to the outputs now
        while budget.over() and not self.stopping:
            self._room.clear()
            await self._room.wait()
        budget.paused = False
        resumed("%s resume (mem buf overlimit)", budget.name)

    def _released(self):
        if self._room is not None:
            self._room.set()

    def input_finished(self, plugin):
        """An input reached its end; the process ends once every Exit_On_Eof input has."""
        if plugin.exit_on_eof:
            self._eof_inputs.add(plugin)
            if all(p in self._eof_inputs for p in self.inputs if p.exit_on_eof):
                self.log.debug("every exit-on-eof input is done, shutting down")
                self.shutdown()

    # ------------------------------------------------------------------ delivery
    async def _deliver(self, out, chunk):
        """One flush of what is left of ``chunk``; returns OK, RETRY or ERROR."""
        plugin = out.plugin
        out.queue.busy = chunk
        try:
            try:
                events = await out.queue.load(chunk)
            except (OSError, ValueError) as exc:
                out.errors += 1
                out.queue.drop(chunk, "cannot be read back from the spool: %s" % exc)
                return ERROR
            try:
                result = await self._flush(out, chunk, events)
                delivered = len(events)
            except Exception as exc:
                # An exception is about records (one the output cannot render, say), not
                # a passing failure (the output answers RETRY for those): retrying would
                # block every later chunk behind it forever.
                result = await self._isolate(out, chunk, events, exc)
                delivered = 0  # counted part by part
        finally:
            out.queue.busy = None
        if chunk.gone:
            return result  # dropped while in flight (memrb): nothing left to account for
        if result == OK:
            out.proc_records += delivered
            if chunk.attempts:
                plugin.log.info("flush chunk succeeded at retry %d", chunk.attempts)
            out.queue.confirm(chunk)
            return OK
        if result == ERROR:
            out.errors += 1
            out.queue.drop(chunk, "the output reported an error")
            return ERROR
        chunk.attempts += 1
        if backoff.out_of_retries(chunk.attempts, out.retry_limit):
            out.retries_failed += 1
            out.queue.drop(chunk, "cannot be retried (retry limit reached)")
            return RETRY
        out.retries += 1
        out.retried_records += chunk.left
        if self.stopping:
            wait = 1.0
        else:
            wait = backoff.retry_wait(chunk.attempts, self.service["scheduler.base"],
                                      self.service["scheduler.cap"])
        chunk.retry_at = time.monotonic() + wait
        plugin.log.warn("failed to flush chunk of %d records (tag %s), retry in %d seconds",
                        chunk.left, chunk.tag, wait)
        return RETRY

    async def _flush(self, out, chunk, events):
        """The output's flush of ``events``: what is left of ``chunk``, or a part of it that
        starts at its first unsettled record."""
        plugin = out.plugin
        if not plugin.takes_chunk_id:
            return await plugin.flush(chunk.tag, events)
        # The same id on every retry of the same records (the output may still be completing
        # an earlier attempt); a part of the chunk is other records, so it has its own.
        part_id = chunk.seq
        if chunk.settled or len(events) != chunk.count:
            part_id = (chunk.seq, chunk.settled, len(events))
        return await plugin.flush(chunk.tag, events, part_id)

    async def _isolate(self, out, chunk, events, error):
        """The flush of ``events`` (what is left of ``chunk``) raised ``error``. Flush halves,
        recursively, down to the single records that still raise; drop those, deliver the
        rest in order. Returns OK once every record is delivered or dropped, RETRY when the
        output asked for a retry on the way: ``chunk.settled`` then says where the next
        attempt starts, so what was delivered is not sent again."""
        found = _Isolation(error)
        result = await self._split(out, chunk, events, found)
        if found.raised or found.refused:
            out.errors += 1
            out.dropped_records += found.raised + found.refused
            refused = ""
            if found.refused:
                refused = "; %d more refused by the output" % found.refused
            out.plugin.log.error(
                "%d of %d records of a chunk (tag %s) dropped: the flush raises on each (%r)%s;"
                " the rest %s", found.raised, chunk.count, chunk.tag, found.error, refused,
                "delivered" if result == OK else "delivered up to a retry")
        else:
            out.plugin.log.warn("the flush of a chunk of %d records (tag %s) raised %r; its "
                                "parts did not", chunk.count, chunk.tag, error)
        return result

    async def _split(self, out, chunk, events, found):
        if len(events) == 1:
            found.raised += 1
            chunk.settled += 1
            return OK
        half = len(events) // 2
        for part in (events[:half], events[half:]):
            if chunk.gone:
                return RETRY
            try:
                result = await self._flush(out, chunk, part)
            except Exception as exc:
                found.error = exc
                result = await self._split(out, chunk, part, found)
                if result != OK:
                    return result
                continue
            if result == RETRY:
                return RETRY
            if result == OK:
                out.proc_records += len(part)
            else:
                found.refused += len(part)
            chunk.settled += len(part)
        return OK

    def _count_drop(self, out, chunk, why, log=True):
        """Every chunk an output gives up passes here (errors, retries, storage limits)."""
        out.dropped_records += chunk.left
        if log:
            out.plugin.log.error("chunk of %d records (tag %s) dropped: %s",
                                 chunk.left, chunk.tag, why)

    async def _flush_pass(self, out):
        """Deliver the due chunks of ``out``, oldest first. Returns True when the pass should
        run again at once (the output just came back).

        While the output fails, only its oldest chunk is retried (at its backoff time); the
        others wait behind it instead of each hammering a dead output. When it succeeds the
        whole backlog follows at once, in order. A chunk out of retries is dropped and the
        next one becomes the oldest."""
        queue = out.queue
        for chunk in queue.pending():
            if chunk.gone:
                continue
            if chunk.retry_at > time.monotonic():
                return False  # the oldest waits for its retry; the rest keep their order
            result = await self._deliver(out, chunk)
            if result == RETRY and not chunk.gone:
                queue.set_failing(True)
                return False
            if result == OK and queue.failing:
                queue.set_failing(False)
                return True
        return False

    async def _output_loop(self, out):
        queue = out.queue
        while True:
            out.wake.clear()
            try:
                while await self._flush_pass(out):
                    pass
            except Exception as exc:  # a bug must not silently stop this output for good
                out.plugin.log.error("delivery loop error, continuing: %r", exc)
            if self.draining and queue.empty():
                return
            wait = self.flush_interval
            head = queue.head()
            if queue.failing and head is not None:
                wait = min(wait, max(0.0, head.retry_at - time.monotonic()))
            if self.draining:
                wait = min(wait, 0.05)
            try:
                await asyncio.wait_for(out.wake.wait(), wait)
            except asyncio.TimeoutError:
                pass

    async def _collect_loop(self):
        """Cycles (asyncio futures and tracebacks make some) are collected here, not per
        allocation count: a bounded, predictable pause every GC_INTERVAL seconds."""
        while True:
            await asyncio.sleep(GC_INTERVAL)
            gc.collect()

    async def _tick_loop(self):
        """Every Flush seconds the open chunks close and go to their outputs."""
        while True:
            await asyncio.sleep(self.flush_interval)
            self.storage.tick()

    def storage_metrics(self):
        """Per output: chunks and bytes in RAM and on disk, records delivered and dropped,
        errors and retries; per input: its memory budget, records it could not store and
        how often it died and was restarted."""
        metrics = self.storage.metrics()
        for plugin in self.inputs:
            entry = metrics["inputs"].setdefault(plugin.display, {})
            entry["restarts"] = self.input_restarts.get(plugin, 0)
        for out in self.outputs:
            entry = metrics["outputs"][out.plugin.display]
            entry.update(proc_records=out.proc_records, errors=out.errors,
                         dropped_records=out.dropped_records, retries=out.retries,
                         retried_records=out.retried_records,
                         retries_failed=out.retries_failed)
        return metrics

    # ------------------------------------------------------------------ running
    def shutdown(self):
        """Stop the inputs, then deliver what is queued within Grace seconds."""
        if self.stopping:
            return
        self.stopping = True
        for plugin in self.inputs:
            plugin.stop()
        self._room.set()
        self._stop_requested.set()

    async def _run_input(self, plugin):
        """Run an input, and run it again with backoff whenever it dies: Fluent Bit's engine
        keeps its collectors running, and a gateway must not stop reading for good on one
        bad message. The backoff is the scheduler's, capped at INPUT_RESTART_CAP; it starts
        over once the input ran that long. An Exit_On_Eof input that dies is not restarted:
        it counts as finished (exit code 1), so the process cannot wait for an end that may
        never come."""
        failures = 0
        while not self.stopping:
            started = time.monotonic()
            try:
                await plugin.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = "%r%s" % (exc, _where(exc))
            if time.monotonic() - started >= INPUT_RESTART_CAP:
                failures = 0
            failures += 1
            if plugin.exit_on_eof:
                plugin.log.error("input died on an unexpected error: %s; it has Exit_On_Eof, "
                                 "so it counts as finished", error)
                self.exit_code = self.exit_code or 1
                self.input_finished(plugin)
                return
            wait = backoff.retry_wait(failures, self.service["scheduler.base"],
                                      min(self.service["scheduler.cap"], INPUT_RESTART_CAP))
            self.input_restarts[plugin] = self.input_restarts.get(plugin, 0) + 1
            plugin.log.error("input died on an unexpected error: %s; restart %d in %.1f "
                             "seconds", error, self.input_restarts[plugin], wait)
            try:
                await asyncio.wait_for(self._stop_requested.wait(), wait)
            except asyncio.TimeoutError:
                pass

    async def run(self, early_signals=None):
        """Run until a signal or the end of the Exit_On_Eof inputs; return the exit code.
        ``early_signals.caught`` is a signal that came before the loop took the handlers
        over (cli.EarlySignals): the run then stops at once, gracefully."""
        _tune_garbage_collector()
        loop = asyncio.get_running_loop()
        self._room = asyncio.Event()
        self._stop_requested = asyncio.Event()
        for out in self.outputs:
            out.wake = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)
        if early_signals is not None and early_signals.caught is not None:
            self._on_signal(early_signals.caught)
        # A signal from here on is handled once the loop runs: after the replay below, or
        # while an output starts.
        self.storage.start()
        for out in self.outputs:
            await out.plugin.start()
        output_tasks = [asyncio.ensure_future(self._output_loop(out)) for out in self.outputs]
        tick_task = asyncio.ensure_future(self._tick_loop())
        collect_task = asyncio.ensure_future(self._collect_loop())
        input_tasks = []
        if not self.stopping:  # a signal came during start-up: read nothing
            input_tasks = [asyncio.ensure_future(self._run_input(p)) for p in self.inputs]
        if not self.inputs:
            self.shutdown()
        await self._stop_requested.wait()
        deadline = loop.time() + self.grace
        # Inputs finish the batch at hand (half the grace, as Fluent Bit gives them) ...
        if input_tasks:
            await asyncio.wait(input_tasks, timeout=self.grace / 2)
        for task in input_tasks:
            task.cancel()
        # ... then the outputs deliver what is queued, until it is all out or time is up.
        self.draining = True
        tick_task.cancel()
        self.storage.tick()
        for out in self.outputs:
            out.wake.set()
        if output_tasks:
            await asyncio.wait(output_tasks, timeout=max(0.1, deadline - loop.time()))
        for task in output_tasks:
            task.cancel()
        collect_task.cancel()
        await asyncio.gather(*(input_tasks + output_tasks + [tick_task, collect_task]),
                             return_exceptions=True)
        for out in self.outputs:
            try:
                await out.plugin.stop()
            except Exception as exc:
                out.plugin.log.error("stop failed: %r", exc)
        await self.storage.close()
        left = sum(out.queue.chunks for out in self.outputs)
        if left:
            kept = sum(1 for out in self.outputs for c in out.queue.pending() if c.durable)
            self.log.warn("stopped after %ss grace with %d chunks not delivered (%d kept in the "
                          "spool for the next start)", self.grace, left, kept)
        return self.exit_code

    def _on_signal(self, sig):
        self.log.info("caught signal (%s)", signal.Signals(sig).name)
        self.log.info("service will shutdown in max %s seconds", self.grace)
        self.shutdown()


# Seconds between the engine's own garbage collections (see _tune_garbage_collector).
GC_INTERVAL = 5.0
# Longest wait before an input that died runs again; an input that ran this long without
# dying is restarted after the shortest wait again.
INPUT_RESTART_CAP = 60.0


def _where(exc):
    """`` at file:line`` of the code that raised ``exc``: a log line says where an input
    died without a traceback."""
    tb = exc.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    return " at %s:%d" % (os.path.basename(code.co_filename), tb.tb_lineno)


def _tune_garbage_collector():
    """Batches allocate thousands of containers at once (a decoded chunk, a parsed block): the
    automatic collector runs every few hundred allocations and rescans the young batch each
    time, which costs a quarter to a half of decoding msgpack. Records are freed by reference
    counting, so the automatic collector is turned off and the engine collects cycles itself
    every GC_INTERVAL seconds (_collect_loop); freezing what start-up loaded keeps those
    objects out of every collection."""
    gc.freeze()
    gc.disable()
