"""The engine: one asyncio loop moving batches from inputs through filters to the output
queues (storage), and one scheduler per output (``edgeship.engine.scheduler``) that flushes
them with retries and Workers. Plugins see it only through their context
(``edgeship.engine.context``)."""
import asyncio
import functools
import gc
import os
import signal
import socket
import time

from edgeship.core import backoff
from edgeship.core.forward.wire import SIGNAL_LOGS as LOGS, SIGNAL_METRICS as METRICS
from edgeship.core.schema import Entry
from edgeship.core.tagmatch import RouteCache
from edgeship.engine.context import Context
from edgeship.engine.scheduler import Scheduler
from edgeship.storage.manager import Storage


class FilterState:
    def __init__(self, plugin, matcher):
        self.plugin = plugin
        self.matcher = matcher
        # Fluent Bit's filter metrics, counted per batch: records in, records it removed or
        # added (net, per batch).
        self.records = 0
        self.drop_records = 0
        self.add_records = 0

    def count(self, given, passed):
        """A batch of ``given`` records went through, ``passed`` came out."""
        self.records += given
        if passed < given:
            self.drop_records += given - passed
        elif passed > given:
            self.add_records += passed - given


class Engine:
    # Bytes (msgpack, as Fluent Bit counts them) of an input's memory chunks before it pauses
    # when it has no Mem_Buf_Limit.
    DEFAULT_MEM_BUDGET = 2 * 1000 * 1000
    # Seconds given to cancelled tasks to end.
    CANCEL_WAIT = 2.0

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
        # name -> Fluent Bit's stock parser; the loader sets the reader of its stock file.
        self.stock_parser = self._no_stock_parser
        self.multiline_parsers = {}
        self.strict = False     # refuse what Fluent Bit only ignores (--strict)
        self.stopping = False
        # Process exit code; a plugin that must fail the run (expect action exit) sets it.
        self.exit_code = 0
        self.storage = Storage(service, log, self.DEFAULT_MEM_BUDGET, self._released)
        self._room = None
        self._eof_inputs = set()
        self.input_restarts = {}  # input plugin -> times it died and was started again
        # The process's start and the hot reloads done (the supervisor carries them over to
        # the pipeline a reload builds).
        self.process_started_at = time.time()
        self.reloads = 0
        self.started_at = self.process_started_at   # set again by start(): uptime counts from there
        self.waiting = set()      # futures of filters holding a batch (see _through)

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

    @staticmethod
    def _no_stock_parser(name):
        raise KeyError(name)

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

        parser = multiline.get(name, self.multiline_parsers, self.parsers, pre_parser)
        parser.buffer_limit = self.service["multiline_buffer_limit"]
        return parser

    def seal(self):
        self.filter_routes = RouteCache(self.filters)
        # Each output gets the signals it takes (Fluent Bit's event_type): logs, metrics.
        self.output_routes = RouteCache([o for o in self.outputs if LOGS in o.plugin.signals])
        self.metric_routes = RouteCache([o for o in self.outputs
                                         if METRICS in o.plugin.signals])
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
        self._through(source, tag, events, ack, skip, filters, 0)

    def _through(self, source, tag, events, ack, skip, filters, first):
        """``filters[first:]``, then the outputs. A filter may answer with a future instead
        of a list when it waits for something (kubernetes: a pod's metadata): the batch goes
        on from the next filter once the future is done, and its ack stays open until then."""
        for index in range(first, len(filters)):
            if not events:
                break
            state = filters[index]
            plugin = state.plugin
            if plugin is skip:
                continue
            try:
                result = plugin.filter(tag, events)
            except Exception as exc:  # a filter bug must not kill the pipeline
                plugin.log.error("filter failed on a batch of %d records, passed on "
                                 "unchanged: %r", len(events), exc)
                continue
            if isinstance(result, asyncio.Future):
                self.waiting.add(result)
                result.add_done_callback(functools.partial(
                    self._resume, source, tag, events, ack, skip, filters, index))
                return
            state.count(len(events), len(result))
            events = result
        if events:
            outputs = self.output_routes.resolve(tag)
            if outputs:
                self.storage.put(self.budget_of(source), tag, events, ack,
                                 [out.queue for out in outputs])
        if ack is not None:
            ack.seal()

    def ingest_metrics(self, source, tag, payload, ack=None):
        """Queue an encoded cmetrics context for every output that takes metrics and
        matches ``tag``. Filters are for logs: metrics pass them untouched, as in Fluent
        Bit (whose metrics processors edgeship does not have)."""
        outputs = self.metric_routes.resolve(tag)
        if outputs:
            self.storage.put_metrics(self.budget_of(source), tag, payload, ack,
                                     [out.queue for out in outputs])
        if ack is not None:
            ack.seal()

    def _resume(self, source, tag, events, ack, skip, filters, index, future):
        self.waiting.discard(future)
        given = len(events)
        try:
            events = future.result()
        except (Exception, asyncio.CancelledError) as exc:
            filters[index].plugin.log.error("filter failed on a batch of %d records, passed "
                                            "on unchanged: %r", len(events), exc)
        filters[index].count(given, len(events))
        self._through(source, tag, events, ack, skip, filters, index + 1)

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

    def metrics_snapshot(self):
        """Everything edgeship counts about itself, as plain data, for the fluentbit_metrics
        input and the monitoring API (``codecs.engine_metrics`` renders it): uptime, process
        start, reloads, storage totals (with ``storage.metrics``), and per input, filter and
        output instance its counters."""
        with_storage = self.service.get("storage.metrics", True)
        inputs = {}
        for plugin in self.inputs:
            entry = dict(plugin.context.counters)
            budget = plugin.context.budget
            entry["paused"] = bool(budget is not None and budget.paused)
            if budget is not None and with_storage:
                entry["overlimit"] = budget.over()
                entry["mem_bytes"] = budget.bytes
            inputs[plugin.display] = entry
        storage = None
        if with_storage:
            queues = [out.queue.metrics() for out in self.outputs]
            storage = {name: sum(q[key] for q in queues) for name, key in (
                ("chunks", "total_chunks"), ("mem_chunks", "mem_chunks"),
                ("fs_chunks", "fs_chunks"), ("fs_chunks_up", "fs_chunks_up"),
                ("fs_chunks_down", "fs_chunks_down"))}
        return {"hostname": socket.gethostname(),
                "uptime": int(time.time() - self.started_at),
                "process_start": int(self.process_started_at), "reloads": self.reloads,
                "storage": storage, "inputs": inputs,
                "filters": {state.plugin.display: {"drop_records": state.drop_records,
                                                   "add_records": state.add_records,
                                                   "records": state.records}
                            for state in self.filters},
                "outputs": {out.plugin.display: out.metrics() for out in self.outputs}}

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
        over (cli.EarlySignals): the run then stops at once, gracefully. (The command line
        runs engines through ``edgeship.engine.supervisor``, which adds hot reload.)"""
        _tune_garbage_collector()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.on_signal, sig)
        await self.start(early_signals.caught if early_signals is not None else None)
        await self.stop_requested()
        return await self.finish()

    async def start(self, signal_caught=None, handed_over=None):
        """Start the outputs, replay the spools, queue what a previous pipeline handed over
        (``hand_over``'s result), then start the inputs. ``signal_caught``: a stop signal
        that came before; nothing is read then."""
        self._room = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self.started_at = time.time()
        if signal_caught is not None:
            self.on_signal(signal_caught)
        # A signal from here on is handled once the loop runs: after the replay below, or
        # while an output starts.
        self.storage.start()
        self._announce()
        for out in self.outputs:
            await out.plugin.start()
        for out in self.outputs:
            chunks = (handed_over or {}).get(out.plugin.display)
            if chunks:
                self.storage.adopt(out.queue, chunks)
                self.log.info("output %s: %d chunks (%d records) handed over by the reload",
                              out.plugin.display, len(chunks), sum(c.count for c in chunks))
        self._output_tasks = [asyncio.ensure_future(out.run()) for out in self.outputs]
        self._tick_task = asyncio.ensure_future(self._tick_loop())
        self._collect_task = asyncio.ensure_future(self._collect_loop())
        self._input_tasks = []
        if not self.stopping:  # a signal came during start-up: read nothing
            self._input_tasks = [asyncio.ensure_future(self._run_input(p))
                                 for p in self.inputs]
        # The inputs have taken the start-up lines they want (fluentbit_logs).
        self.log.mirror.started()
        if not self.inputs:
            self.shutdown()

    async def stop_requested(self):
        """Until a signal, an exit-on-eof end or a plugin asked the run to stop."""
        await self._stop_requested.wait()

    async def _stop_inputs(self):
        """Inputs finish the batch at hand (half the grace, as Fluent Bit gives them); the
        open chunks close."""
        for plugin in self.inputs:
            plugin.stop()
        self._room.set()
        if self._input_tasks:
            await asyncio.wait(self._input_tasks, timeout=self.grace / 2)
        for task in self._input_tasks:
            task.cancel()
        # The filters hand on what they hold (multiline groups, batches waiting for
        # kubernetes metadata), then the open chunks close.
        for state in self.filters:
            try:
                state.plugin.stop()
            except Exception as exc:
                state.plugin.log.error("stop failed: %r", exc)
        if self.waiting:
            await asyncio.wait(set(self.waiting), timeout=max(0.1, self.grace / 2))
        self._tick_task.cancel()
        self.storage.tick()

    async def finish(self):
        """Shutdown: inputs stop, the outputs deliver what is queued until it is all out or
        Grace is up; returns the exit code."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace
        await self._stop_inputs()
        for out in self.outputs:
            out.draining = True
            out.ready()
        if self._output_tasks:
            await asyncio.wait(self._output_tasks, timeout=max(0.1, deadline - loop.time()))
        await self._end_tasks()
        await self.storage.close()
        left = sum(out.queue.chunks for out in self.outputs)
        if left:
            kept = sum(1 for out in self.outputs for c in out.queue.pending() if c.durable)
            self.log.warn("stopped after %ss grace with %d chunks not delivered (%d kept in the "
                          "spool for the next start)", self.grace, left, kept)
        return self.exit_code

    async def _end_tasks(self):
        """Cancel what still runs (inputs, output loops and their flushes, timers) and stop
        the outputs."""
        flights = [task for out in self.outputs for task in out.flights()]
        for task in self._output_tasks + flights:
            task.cancel()
        self._collect_task.cancel()
        self._tick_task.cancel()
        tasks = self._input_tasks + self._output_tasks + flights + [self._tick_task,
                                                                    self._collect_task]
        # A task that swallows its cancellation (a plugin's bug) is left behind, not
        # waited for: stopping must not hang on it.
        await asyncio.wait(tasks, timeout=self.CANCEL_WAIT)
        for task in tasks:
            if not task.done():
                self.log.error("a task did not stop when cancelled, left behind: %r", task)
        for plugin in self.inputs:
            try:
                plugin.close()
            except Exception as exc:
                plugin.log.error("close failed: %r", exc)
        for out in self.outputs:
            try:
                await asyncio.wait_for(out.plugin.stop(), self.grace)
            except Exception as exc:  # asyncio.TimeoutError included
                out.plugin.log.error("stop failed: %r", exc)

    async def hand_over(self, kept):
        """Hot reload: stop this pipeline for the next one, without waiting on a dead output.
        Inputs stop; outputs named in ``kept`` (display names the new config has too) get
        half the grace to finish the flushes in flight, then these are cancelled (their
        chunks stay queued: at-least-once); other outputs drain like at shutdown, within
        Grace. Spooled chunks stay in the spool for the new pipeline's replay; returns
        {output name: [chunks only in memory]}, oldest first, to hand to the new one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace
        self.stopping = True
        await self._stop_inputs()
        leaving, staying = [], []
        for out, task in zip(self.outputs, self._output_tasks):
            if out.plugin.display in kept:
                # No new flush starts; its loop ends once the flushes in flight are done.
                out.held = True
                staying.append(task)
            else:
                out.stopping = out.draining = True
                leaving.append(task)
            out.ready()
        if staying:
            await asyncio.wait(staying, timeout=self.grace / 2)
        if leaving:
            await asyncio.wait(leaving, timeout=max(0.1, deadline - loop.time()))
        await self._end_tasks()
        handed = {}
        for out in self.outputs:
            memory = [c for c in out.queue.pending() if not c.gone and not c.durable]
            if out.plugin.display in kept:
                handed[out.plugin.display] = memory
            elif out.queue.chunks:
                self.log.warn("output %s is not in the new configuration: %d chunks in memory "
                              "dropped, %d left in its spool", out.plugin.display, len(memory),
                              out.queue.chunks - len(memory))
        await self.storage.close()
        return handed

    def _announce(self):
        """One line per input and output: what it reads, where it sends."""
        for plugin in self.inputs:
            self.log.child("input").info("%s (%s) reads %s, tag %s", plugin.display,
                                         plugin.name, plugin.summary() or plugin.name,
                                         plugin.tag)
        for out in self.outputs:
            plugin = out.plugin
            match = plugin.conf.get("match") or "regex " + str(plugin.conf.get("match_regex"))
            self.log.child("output").info("%s (%s) sends tags matching %s to %s", plugin.display,
                                          plugin.name, match, plugin.summary() or plugin.name)

    def on_signal(self, sig):
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
