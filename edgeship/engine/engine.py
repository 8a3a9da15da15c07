"""The engine: one asyncio loop moving batches from inputs through filters to the output
queues (storage), and one scheduler per output (``edgeship.engine.scheduler``) that flushes
them with retries and Workers. Plugins see it only through their context
(``edgeship.engine.context``)."""
import asyncio
import gc
import os
import signal
import time

from edgeship.core import backoff
from edgeship.core.schema import Entry
from edgeship.core.tagmatch import RouteCache
from edgeship.engine.context import Context
from edgeship.engine.scheduler import Scheduler
from edgeship.storage.manager import Storage


class FilterState:
    def __init__(self, plugin, matcher):
        self.plugin = plugin
        self.matcher = matcher


class Engine:
    # Bytes (msgpack, as Fluent Bit counts them) of an input's memory chunks before it pauses
    # when it has no Mem_Buf_Limit.
    DEFAULT_MEM_BUDGET = 2 * 1000 * 1000

    def __init__(self, service, log, config_dir=".", clock=None, config_files=None):
        """``clock``: the schedulers' time (``scheduler.Clock``; tests bring their own);
        ``config_files``: the config's reader (``core.config``), for files plugins name."""
        self.service = service
        self.log = log
        self.config_dir = config_dir
        self.config_files = config_files
        self.clock = clock
        self.flush_interval = service["flush"]
        self.grace = service["grace"]
        self.inputs = []
        self.filters = []
        self.outputs = []       # a Scheduler per output
        self.parsers = {}
        self.multiline_parsers = {}
        self.stopping = False
        # Process exit code; a plugin that must fail the run (expect action exit) sets it.
        self.exit_code = 0
        self.storage = Storage(service, log, self.DEFAULT_MEM_BUDGET, self._released)
        self._room = None
        self._eof_inputs = set()
        self.input_restarts = {}  # input plugin -> times it died and was started again

    # ------------------------------------------------------------------ building
    def context(self, name, level=None):
        """A new plugin context, logging as ``name`` (at ``level``, else the engine's)."""
        return Context(self, self.log.child(name, level))

    def add_input(self, plugin):
        conf = plugin.conf
        plugin.context.plugin = plugin
        plugin.context.budget = self.storage.add_input(
            plugin.display, conf.get("storage.type") or "memory", conf.get("mem_buf_limit") or 0)
        self.inputs.append(plugin)

    def add_filter(self, plugin, matcher):
        plugin.context.plugin = plugin
        self.filters.append(FilterState(plugin, matcher))

    def add_output(self, plugin, matcher, retry_limit, workers):
        plugin.context.plugin = plugin
        self.outputs.append(Scheduler(plugin, matcher, self.storage, retry_limit, workers,
                                      self.service, self.clock))

    def multiline(self, name, log):
        """The multiline parser called ``name`` for a plugin logging to ``log``: a built-in
        (its pre-parser logs there, like the plugin) or a [MULTILINE_PARSER]; KeyError when
        there is none."""
        from edgeship.text import multiline

        def pre_parser(fmt, keys):
            from edgeship import plugins
            cls = plugins.find("parser", fmt)
            entries = [Entry("name", "_ml_" + fmt), Entry("format", fmt)]
            entries.extend(Entry(key, value) for key, value in keys)
            return cls(Context(self, log), cls.schema().build(entries))

        return multiline.get(name, self.multiline_parsers, self.parsers, pre_parser)

    def seal(self):
        self.filter_routes = RouteCache(self.filters)
        self.output_routes = RouteCache(self.outputs)
        for out in self.outputs:
            if out.matcher.is_empty():
                self.log.warn("[router] NO match for %s output instance", out.plugin.display)

    # ------------------------------------------------------------------ the record path
    def ingest(self, source, tag, events, ack=None, skip=None):
        """Run ``events`` from ``source`` (a plugin context) through the filters matching
        ``tag`` and queue them for every output whose Match accepts the tag. ``skip`` is a
        filter the batch must not pass through again (records re-emitted by rewrite_tag).
        ``events`` may be packed entries (``codecs.entries.Entries``): they are decoded only
        when a filter matches the tag, else stored as they are; events with their JSON text
        (``codecs.formats.RenderedEvents``) reach filters as a plain list, without it."""
        filters = self.filter_routes.resolve(tag)
        if filters and type(events) is not list:
            events = self._decoded(source, tag, events)
        for state in filters:
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
                self.storage.put(self.budget_of(source), tag, events, ack,
                                 [out.queue for out in outputs])
        if ack is not None:
            ack.seal()

    def takes_json_lines(self, tag):
        """Would records of ``tag`` reach, unfiltered, an output that takes their JSON lines
        text (``Output.reads_records == "json_lines"``)? Then a parser's text is worth
        handing on (``codecs.formats.RenderedEvents``)."""
        if self.filter_routes.resolve(tag):
            return False
        return any(out.plugin.reads_records == "json_lines"
                   for out in self.output_routes.resolve(tag))

    def _decoded(self, source, tag, entries):
        """The events of packed entries, for the filters (checked entries decode)."""
        if isinstance(entries, list):
            return list(entries)
        try:
            return entries.events()
        except ValueError as exc:
            source.log.error("%d records (tag %s) dropped: %s", len(entries), tag, exc)
            return []

    def budget_of(self, source):
        """The storage budget of a context: its input's, or a memory one for a filter that
        re-emits records."""
        if source.budget is None:
            source.budget = self.storage.add_input(source.plugin.display)
        return source.budget

    async def room(self, source):
        """Wait while ``source`` is over its memory budget (Mem_Buf_Limit)."""
        budget = self.budget_of(source)
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
        errors and retries; per input: its memory budget, records it could not store, its
        counters and how often it died and was restarted."""
        metrics = self.storage.metrics()
        for plugin in self.inputs:
            entry = metrics["inputs"].setdefault(plugin.display, {})
            entry.update(plugin.context.counters)
            entry["restarts"] = self.input_restarts.get(plugin, 0)
        for out in self.outputs:
            metrics["outputs"][out.plugin.display].update(out.metrics())
        return metrics

    # ------------------------------------------------------------------ running
    def shutdown(self):
        """Stop the inputs, then deliver what is queued within Grace seconds."""
        if self.stopping:
            return
        self.stopping = True
        for out in self.outputs:
            out.stopping = True
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
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)
        if early_signals is not None and early_signals.caught is not None:
            self._on_signal(early_signals.caught)
        # A signal from here on is handled once the loop runs: after the replay below, or
        # while an output starts.
        self.storage.start()
        for out in self.outputs:
            await out.plugin.start()
        output_tasks = [asyncio.ensure_future(out.run()) for out in self.outputs]
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
        tick_task.cancel()
        self.storage.tick()
        for out in self.outputs:
            out.draining = True
            out.ready()
        if output_tasks:
            await asyncio.wait(output_tasks, timeout=max(0.1, deadline - loop.time()))
        flights = [task for out in self.outputs for task in out.flights()]
        for task in output_tasks:
            task.cancel()
        collect_task.cancel()
        await asyncio.gather(*(input_tasks + output_tasks + flights + [tick_task, collect_task]),
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
