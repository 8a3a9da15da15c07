"""The base classes every plugin module builds on, and the keys common to each kind.

A plugin module defines one class with ``name``, ``description`` and ``options`` (a tuple of
``Option``) and exposes it as ``PLUGIN``. The engine builds ``self.conf`` (a dict keyed by
lowercase option name) from the schema, so a plugin never parses a string itself; options
declared with ``attr=`` are also set as attributes before ``configure()`` runs.

A plugin sees the engine only through ``self.context`` (``edgeship.engine.context``): its
log (also ``self.log``), the config directory, ``parser(name)``, ``multiline(name)``,
``emit``, ``reemit``, ``room``, ``finished``, ``request_exit`` and metrics counters.

Inputs   ``async run()``; hand batches to ``self.context.emit(tag, events, size, ack)``,
         metrics contexts to ``self.context.emit_metrics(tag, payload)``.
Filters  ``filter(tag, events) -> events``: return the (possibly same) list to pass on, or
         an ``asyncio.Future`` of it when the batch must wait (kubernetes metadata): the
         batch then goes on from the next filter once it is done. ``stop()`` is called once
         the inputs have stopped: hand on what the filter holds.
Outputs  ``async flush(chunk) -> OK | RETRY | ERROR`` for one chunk of one tag: ``chunk.tag``,
         ``chunk.payload`` (Fluent Bit's entries, ``edgeship.codecs.entries``),
         ``chunk.count``, ``chunk.events()`` (decoded on first use) and ``chunk.id`` (the
         same on every retry of these records). Up to ``Workers`` flushes run at once.
         An output that lists ``METRICS`` in ``signals`` also gets metrics chunks
         (``chunk.signal == METRICS``: the payload is cmetrics contexts, see
         ``edgeship.codecs.cmetrics``).
Parsers  built with a context too (``edgeship.plugins.parsers._base.Parser``).
"""
from edgeship.core.forward.wire import SIGNAL_LOGS as LOGS, SIGNAL_METRICS as METRICS
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option, Schema

OK, RETRY, ERROR = "ok", "retry", "error"

_LOG_LEVELS = ("off", "error", "warn", "warning", "info", "debug", "trace")


def _common(*extra):
    return (Option("Name", help="plugin name", required=True),
            Option("Alias", help="name used in logs and metrics instead of plugin.N",
                   last_wins=True),
            Option("Log_Level", help="log level of this instance", choices=_LOG_LEVELS),
            Option("Log_Suppress_Interval", "time", "0", compat=True)) + extra


INPUT_COMMON = _common(
    Option("Tag", help="tag of the records (default: the instance name)", last_wins=True),
    Option("Mem_Buf_Limit", "size", "0",
           help="pause the input while this many bytes wait in memory (0: engine budget)"),
    Option("storage.type", default="memory", choices=("memory", "filesystem", "memrb"),
           help="buffer chunks in memory only or also in the spool"),
    Option("storage.pause_on_chunks_overlimit", "bool", "off", compat=True),
    Option("Threaded", "bool", "false", compat=True, help="edgeship runs one loop"),
    Option("Routable", "bool", "true", compat=True),
)

FILTER_COMMON = _common(
    Option("Match", help="tag glob this filter applies to", last_wins=True),
    Option("Match_Regex", help="tag regex (anchored at the start) this filter applies to",
           last_wins=True),
)

OUTPUT_COMMON = _common(
    Option("Match", help="tag glob routed to this output", last_wins=True),
    Option("Match_Regex", help="tag regex (anchored at the start) routed to this output",
           last_wins=True),
    Option("Retry_Limit", default="1",
           help="retries before a chunk is dropped: N, no_limits/false/off, or no_retries"),
    Option("storage.total_limit_size", "size", "0",
           help="cap on spooled bytes for this output; the oldest chunks are dropped"),
    Option("Workers", "int",
           help="chunks flushed at once (default: the plugin's, as in Fluent Bit: forward and "
                "tcp 2, others 1)"),
)


class Plugin:
    name = ""
    description = ""
    options = ()
    kind = ""
    common = ()

    @classmethod
    def schema(cls):
        return Schema(cls.name, cls.common + tuple(cls.options))

    def __init__(self, context, conf, instance):
        self.context = context
        self.conf = conf
        conf.bind(self)                   # options declared with attr= become attributes
        self.instance = instance          # "tail.0"
        self.display = conf.get("alias") or instance
        self.log = context.log
        self.configure()

    def configure(self):
        """Check option combinations and prepare state; raise ConfigError when they clash."""

    # The options that name what an instance reads or where it sends, in the order the
    # start-up line gives them.
    PLACE_KEYS = ("path", "file", "listen", "host", "port", "unix_path", "topic", "uri", "url",
                  "dev", "device", "format")

    def regex_option(self, key):
        """The compiled Fluent Bit (Onigmo) regex of option ``key``, None when it is not set;
        a ConfigError at the key when it does not compile."""
        if not self.conf[key]:
            return None
        from edgeship.text.onigmo import compile_onigmo  # only for plugins that have one
        try:
            return compile_onigmo(self.conf[key])
        except ValueError as exc:
            raise ConfigError("%s: invalid '%s': %s" % (self.name, key, exc), key=key)

    def summary(self):
        """What this instance reads or where it sends, for its start-up log line
        (``path=/var/log/*.log``); a plugin with a better way to say it overrides this."""
        parts = []
        for key in self.PLACE_KEYS:
            value = self.conf.get(key)
            if value is None or value == "" or value == []:
                continue
            if isinstance(value, list):
                value = ",".join(str(v) for v in value)
            parts.append("%s=%s" % (key, value))
        return " ".join(parts)


class Input(Plugin):
    kind = "input"
    common = INPUT_COMMON

    def __init__(self, context, conf, instance):
        self.tag = conf.get("tag") or instance
        Plugin.__init__(self, context, conf, instance)

    async def run(self):
        raise NotImplementedError

    def stop(self):
        """Asked to stop: finish the batch at hand and return from run()."""
        self.stopping = True

    def close(self):
        """Let go of what run() keeps open between runs (files, a DB): the engine calls it
        once the input stopped for good (shutdown, hot reload), so a reload leaks nothing."""

    stopping = False
    # True for inputs whose end (EOF) ends the process, such as tail with Exit_On_Eof.
    exit_on_eof = False


class Filter(Plugin):
    kind = "filter"
    common = FILTER_COMMON
    dropped = 0
    added = 0

    def filter(self, tag, events):
        raise NotImplementedError

    def stop(self):
        """The inputs have stopped: hand on (``context.reemit``) what the filter holds and
        finish the futures it returned."""


class Output(Plugin):
    kind = "output"
    common = OUTPUT_COMMON
    # Chunks flushed at once when the config sets no Workers (Fluent Bit's per plugin).
    workers = 1
    # False (set by configure) for an output that only sends or writes ``chunk.payload``:
    # storage then keeps no record objects for it; "json_lines" for one that takes
    # ``chunk.json_lines`` when it is there: storage keeps that text instead of the records.
    reads_records = True
    # The signals it takes (Fluent Bit's event_type): LOGS, METRICS; chunk.signal says
    # which one a flush carries.
    signals = (LOGS,)

    async def start(self):
        """Open connections or files; called once before the first flush."""

    async def flush(self, chunk):
        raise NotImplementedError

    async def stop(self):
        """Close what start() opened."""
