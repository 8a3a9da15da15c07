"""The engine: one asyncio loop moving batches from inputs through filters to output queues,
and one flush task per output that delivers chunks and retries them with backoff."""
import asyncio
import signal
import time

from edgeship.core import backoff
from edgeship.core.tagmatch import RouteCache
from edgeship.engine.plugin import ERROR, OK, RETRY
from edgeship.engine.queue import MemoryQueue


class OutputState:
    """What the engine keeps per output instance: its queue, counters and wake-up event."""

    def __init__(self, plugin, matcher, retry_limit, queue):
        self.plugin = plugin
        self.matcher = matcher
        self.retry_limit = retry_limit
        self.queue = queue
        self.wake = asyncio.Event()
        self.proc_records = 0
        self.errors = 0
        self.retries = 0
        self.retries_failed = 0
        self.dropped_records = 0
        self.retried_records = 0


class FilterState:
    def __init__(self, plugin, matcher):
        self.plugin = plugin
        self.matcher = matcher


class Engine:
    # Bytes that may wait in output queues before inputs pause (raw input bytes; the Python
    # objects take a few times more). Mem_Buf_Limit on an input lowers it for that input.
    DEFAULT_MEM_BUDGET = 4 * 1000 * 1000

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
        self.queued_bytes = 0
        self._room = None
        self._eof_inputs = set()

    # ------------------------------------------------------------------ building
    def add_input(self, plugin):
        self.inputs.append(plugin)

    def add_filter(self, plugin, matcher):
        self.filters.append(FilterState(plugin, matcher))

    def add_output(self, plugin, matcher, retry_limit):
        state = OutputState(plugin, matcher, retry_limit, MemoryQueue())
        state.queue.on_full = state.wake.set
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
            for out in self.output_routes.resolve(tag):
                out.queue.put(tag, events, size, ack)
                self.queued_bytes += size
        if ack is not None:
            ack.seal()

    async def room(self, source):
        """Wait until the queued bytes are under the budget of ``source``."""
        budget = source.conf.get("mem_buf_limit") or self.DEFAULT_MEM_BUDGET
        while self.queued_bytes > budget and not self.stopping:
            for out in self.outputs:
                if out.queue.bytes:
                    out.wake.set()
            self._room.clear()
            await self._room.wait()

    def _released(self, size):
        self.queued_bytes -= size
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
        plugin = out.plugin
        try:
            result = await plugin.flush(chunk.tag, chunk.events)
        except Exception as exc:
            plugin.log.error("flush raised %r; will retry", exc)
            result = RETRY
        if result == OK:
            out.proc_records += len(chunk.events)
            if chunk.attempts:
                plugin.log.info("flush chunk succeeded at retry %d", chunk.attempts)
            out.queue.confirm(chunk)
            self._released(chunk.size)
            return
        if result == ERROR:
            out.errors += 1
            self._give_up(out, chunk, "the output reported an error")
            return
        chunk.attempts += 1
        if backoff.out_of_retries(chunk.attempts, out.retry_limit):
            out.retries_failed += 1
            self._give_up(out, chunk, "cannot be retried (retry limit reached)")
            return
        out.retries += 1
        out.retried_records += len(chunk.events)
        if self.stopping:
            wait = 1.0
        else:
            wait = backoff.retry_wait(chunk.attempts, self.service["scheduler.base"],
                                      self.service["scheduler.cap"])
        chunk.retry_at = time.monotonic() + wait
        plugin.log.warn("failed to flush chunk of %d records (tag %s), retry in %d seconds",
                        len(chunk.events), chunk.tag, wait)
        out.queue.requeue(chunk)

    def _give_up(self, out, chunk, why):
        out.dropped_records += len(chunk.events)
        out.plugin.log.error("chunk of %d records (tag %s) dropped: %s",
                             len(chunk.events), chunk.tag, why)
        out.queue.drop(chunk, why)
        self._released(chunk.size)

    async def _output_loop(self, out):
        while True:
            now = time.monotonic()
            due = []
            for chunk in out.queue.take():
                if chunk.retry_at <= now:
                    due.append(chunk)
                else:
                    out.queue.requeue(chunk)
            for chunk in due:
                await self._deliver(out, chunk)
            if self.draining and out.queue.empty():
                return
            wait = self.flush_interval
            pending = [c.retry_at for c in out.queue.ready]
            if pending and not out.queue.open:
                wait = max(0.0, min(pending) - time.monotonic())
            if self.draining:
                wait = min(wait, 0.05)
            try:
                await asyncio.wait_for(out.wake.wait(), wait)
            except asyncio.TimeoutError:
                pass
            out.wake.clear()

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
        try:
            await plugin.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            plugin.log.error("input stopped on an unexpected error: %r", exc)

    async def run(self):
        """Run until a signal or the end of the Exit_On_Eof inputs; return the exit code."""
        loop = asyncio.get_running_loop()
        self._room = asyncio.Event()
        self._stop_requested = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)
        for out in self.outputs:
            await out.plugin.start()
        output_tasks = [asyncio.ensure_future(self._output_loop(out)) for out in self.outputs]
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
        for out in self.outputs:
            out.wake.set()
        if output_tasks:
            await asyncio.wait(output_tasks, timeout=max(0.1, deadline - loop.time()))
        for task in output_tasks:
            task.cancel()
        await asyncio.gather(*(input_tasks + output_tasks), return_exceptions=True)
        for out in self.outputs:
            try:
                await out.plugin.stop()
            except Exception as exc:
                out.plugin.log.error("stop failed: %r", exc)
        left = sum(out.queue.chunks for out in self.outputs)
        if left:
            self.log.warn("stopped after %ss grace with %d chunks not delivered", self.grace, left)
        return self.exit_code

    def _on_signal(self, sig):
        self.log.info("caught signal (%s)", signal.Signals(sig).name)
        self.log.info("service will shutdown in max %s seconds", self.grace)
        self.shutdown()
