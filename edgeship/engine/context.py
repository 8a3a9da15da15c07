"""The plugin context: all a plugin (input, filter, output, parser) sees of the engine.

One per plugin instance, made by the loader before the plugin (so ``configure`` can use it):

    log                     the instance's log (its Log_Level, the service's Log_File)
    config_dir              the main config file's directory (relative paths start there)
    flush_interval          the service's Flush, in seconds (flowcounter sizes its windows)
    config_files            the config's reader: ``locate(path)`` by Fluent Bit's path rule,
                            ``read(...)`` a file it names (Upstream), with its @SET values
    parser(name)            the [PARSER] called ``name``; KeyError when there is none
    stock_parser(name)      Fluent Bit's stock parser called ``name``; KeyError
    multiline(name)         a built-in or [MULTILINE_PARSER] multiline parser; KeyError
    emit(tag, events, size, ack)   an input hands a batch to the pipeline
    emit_metrics(tag, payload, ack)   an input hands an encoded cmetrics context
                            (``codecs.cmetrics.Context.encode()``) to the pipeline
    reemit(tag, events)     a filter sends records through the pipeline again under a new
                            tag, past every filter but itself (rewrite_tag)
    await room(), has_room()       wait while the input is over its memory budget
    finished()              an input reached its end (Exit_On_Eof)
    tolerate(error)         something Fluent Bit accepts (a ConfigError with its key): a
                            warning at the key's config line, or the error in strict mode
    request_exit(code)      stop the process with this exit code (expect's action exit)
    counters                the instance's metrics (``count(name, n)``; inputs: records,
                            bytes)
    engine_metrics()        what edgeship counts about itself (``Engine.metrics_snapshot``)
    tap_log(callback), untap_log(callback)    every line the pipeline's logs write,
                            ``callback(level, time_ns, "[component] text")``, the lines
                            written before the pipeline started first (fluentbit_logs);
                            ``with log_muted():`` what the caller logs meanwhile is not
                            tapped (``edgeship.engine.log.Mirror``)

It never hands out the engine, the storage or another plugin.
"""


class Context:
    def __init__(self, engine, log):
        self._engine = engine
        self.log = log
        self.config_dir = engine.config_dir
        self.flush_interval = engine.flush_interval
        self.config_files = engine.config_files
        self.counters = {}
        self.plugin = None      # the instance it serves, set when the engine adds it
        self.budget = None      # the storage budget of what it emits, made on first use
        self.section = None     # the config section of the instance (set by the loader)

    def parser(self, name):
        return self._engine.parsers[name]

    def stock_parser(self, name):
        """Fluent Bit's stock parser called ``name`` (edgeship/etc/parsers.conf), for an input
        that defaults to one (syslog); KeyError when there is none."""
        return self._engine.stock_parser(name)

    def multiline(self, name):
        return self._engine.multiline(name, self.log)

    def count(self, name, n=1):
        self.counters[name] = self.counters.get(name, 0) + n

    def emit(self, tag, events, size=0, ack=None):
        """Hand a batch to the pipeline. ``size`` is its raw byte size (for metrics);
        ``ack``, an ``Ack``, is told when every output has confirmed it."""
        self.count("records", len(events))
        self.count("bytes", size)
        self._engine.ingest(self, tag, events, ack)

    def emit_metrics(self, tag, payload, ack=None):
        """Hand one encoded metrics context to the pipeline; Fluent Bit counts it as one
        record of its size."""
        self.count("records", 1)
        self.count("bytes", len(payload))
        self._engine.ingest_metrics(self, tag, payload, ack)

    def engine_metrics(self):
        return self._engine.metrics_snapshot()

    def tap_log(self, callback):
        self.log.mirror.tap(callback)

    def untap_log(self, callback):
        self.log.mirror.untap(callback)

    def log_muted(self):
        return self.log.mirror.muted()

    def takes_json_lines(self, tag):
        """Is it worth emitting records of ``tag`` with their JSON lines text
        (``codecs.formats.RenderedEvents``)? (An output would write it as it is.)"""
        return self._engine.takes_json_lines(tag)

    def reemit(self, tag, events):
        self._engine.ingest(self, tag, events, None, skip=self.plugin)

    async def room(self):
        """Wait while the outputs this input feeds are over its memory budget."""
        await self._engine.room(self)

    def has_room(self):
        """Would room() return at once? (For an input with work to do while it waits.)"""
        return not self._engine.budget_of(self).over()

    def tolerate(self, error):
        if self.section is not None:
            entry = self.section.entry(error.key) if error.key else None
            if entry is not None:
                error.located(entry.file, entry.line)
            else:
                error.located(self.section.file, self.section.line)
        if self._engine.strict:
            raise error
        self.log.warn("%s", error)

    def finished(self):
        self._engine.input_finished(self.plugin)

    def request_exit(self, code):
        self._engine.exit_code = code
        self._engine.shutdown()
