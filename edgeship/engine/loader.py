"""Turn config sections (from a classic file and/or the command line) into a ready Engine.

Everything that can be checked before running is checked here, so ``--dry-run`` is simply
"load and stop": unknown plugins and keys, bad values, missing parsers, bad regexes.

Errors are collected: every section is checked, and ``build`` raises ``ConfigErrors`` with all
of them, so one run shows every typo. An unknown key or plugin name comes with the closest
known one ("did you mean").

What Fluent Bit 5.1.1 accepts without a word is accepted with a warning naming file:line:key
(``--strict`` or ``[SERVICE] edgeship.strict on`` refuse it instead): what the reader notes
(unknown sections, a doubly indented entry), an unknown key in a [PARSER] (ignored) and a
key repeated there (the first one counts, as Fluent Bit's parser lookup takes the first),
and what a plugin tolerates through its context (an unregistered tail Parser...).
A Parsers_File naming Fluent Bit's stock file at one of its standard places, absent there,
is read from edgeship's own stock file (edgeship/etc/parsers.conf), said in one info line.
"""
import difflib
import functools
import errno
import os
import socket

from edgeship import plugins
from edgeship.core import backoff
from edgeship.core.config import (PARSER_SECTIONS, ClassicReader, Section, Variables,
                                  dirname)
from edgeship.core.errors import ConfigError, ConfigErrors, StartError
from edgeship.core.schema import Entry, Option, Schema, atoi_text
from edgeship.core.tagmatch import Matcher
from edgeship.core.files import LocalFiles
from edgeship.engine.log import LEVELS, Log

SERVICE_OPTIONS = (
    Option("Flush", "float", "1", above=0, help="seconds between flushes of the output queues"),
    Option("Grace", "float", "5", help="seconds given to deliver queued data on shutdown"),
    Option("Daemon", "bool", "off", compat=True, help="run under systemd instead"),
    Option("Log_Level", default="info", choices=tuple(LEVELS), help="engine log level"),
    Option("Log_File", help="write the log here instead of stderr"),
    Option("Parsers_File", multiple=True, help="file of [PARSER] and [MULTILINE_PARSER] sections"),
    Option("multiline_buffer_limit", "binary_size", "2MB",
           help="longest record a multiline parser joins; a longer one is cut there"),
    Option("Plugins_File", help="edgeship has no .so plugins: says which cannot be loaded"),
    Option("Streams_File", compat=True, help="no stream processor"),
    Option("HTTP_Server", "bool", "off", help="monitoring HTTP server"),
    Option("HTTP_Listen", default="0.0.0.0", help="monitoring server address"),
    Option("HTTP_Port", "int", "2020", help="monitoring server port"),
    Option("Health_Check", "bool", "off", help="register /api/v1/health"),
    Option("HC_Errors_Count", "int", "5", help="health: output errors allowed per period"),
    Option("HC_Retry_Failure_Count", "int", "5", help="health: failed retries allowed per period"),
    Option("HC_Period", "int", "60", help="health: period in seconds"),
    Option("storage.path", help="spool directory for filesystem storage"),
    Option("storage.sync", default="normal", choices=("normal", "full"),
           help="full: fsync every spool write"),
    Option("storage.checksum", "bool", "off", compat=True, help="the spool always checksums"),
    Option("storage.backlog.mem_limit", "size", "100M", help="memory for replayed chunks"),
    Option("storage.backlog.flush_on_shutdown", "bool", "off", compat=True),
    Option("storage.max_chunks_up", "int", "128", compat=True),
    Option("storage.metrics", "bool", "on", help="register /api/v1/storage"),
    Option("storage.delete_irrecoverable_chunks", "bool", "off",
           help="delete spool segments that cannot be read"),
    Option("scheduler.base", "float", "5", help="retry backoff base, seconds"),
    Option("scheduler.cap", "float", "2000", help="retry backoff cap, seconds"),
    Option("Hot_Reload", "bool", "off",
           help="reload the configuration on SIGHUP or POST /api/v2/reload"),
    Option("coro_stack_size", "int", "0", compat=True),
    Option("json.escape_unicode", "bool", "on",
           help="JSON outputs write non-ASCII as \\uXXXX; off: as UTF-8"),
    Option("edgeship.strict", "bool", "off",
           help="refuse what Fluent Bit only ignores (as --strict)"),
)
SERVICE_SCHEMA = Schema("service", SERVICE_OPTIONS)
CONFIG_DIR_VARIABLE = "EDGESHIP_CONFIG_DIR"
# Where Fluent Bit's packages and images install its stock files.
STOCK_DIRS = ("/fluent-bit/etc", "/etc/fluent-bit", "/etc/td-agent-bit",
              "/opt/fluent-bit/etc/fluent-bit", "/usr/local/etc/fluent-bit",
              "/opt/td-agent-bit/etc/td-agent-bit", "/usr/local/etc/td-agent-bit")
STOCK_PARSERS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "etc", "parsers.conf")


class Loader:
    def __init__(self, environ=None, log_stream=None, strict=False, dry_run=False):
        self.files = LocalFiles()
        self.variables = Variables(os.environ if environ is None else environ,
                                   socket.gethostname())
        self.reader = ClassicReader(self.files, self.variables, _parse_yaml)
        self.log_stream = log_stream
        self.main_dir = ""
        self.strict = strict
        # A dry run checks what Fluent Bit's does: what it finds only when a plugin starts
        # (StartError) is a warning there.
        self.dry_run = dry_run
        self._stock_sections = None

    # ------------------------------------------------------------------ sections
    def read(self, config_path):
        self.main_dir = dirname(config_path)
        # edgeship's own variable: where the main config is, so a config can name the files
        # beside it from any working directory (the shipped examples do). Fluent Bit has none;
        # the environment or @SET still win.
        self.variables.fallbacks[CONFIG_DIR_VARIABLE] = os.path.abspath(self.main_dir or ".")
        return self.reader.read_main(config_path)

    def build(self, sections, overrides=None, extra_parsers=(), clock=None):
        """An Engine for ``sections``; ``overrides`` are service keys and ``extra_parsers``
        parsers files (-R), as Entry, from the command line; ``clock`` the schedulers' time
        (``edgeship.engine.scheduler.Clock`` when None)."""
        service_entries = []
        for section in sections:
            if section.kind == "SERVICE":
                service_entries.extend(section.entries)
        # Fluent Bit ignores unknown [SERVICE] keys (edgeship warns once the log exists).
        unknown = [e for e in service_entries if e.key not in SERVICE_SCHEMA.by_key]
        service_entries = [e for e in service_entries if e.key in SERVICE_SCHEMA.by_key]
        service_entries.extend(overrides or ())
        service_entries = _last_wins(service_entries)
        service = SERVICE_SCHEMA.build(service_entries)
        level = os.environ.get("FLB_LOG_LEVEL") or service["log_level"]
        log = Log(level, self.log_stream)
        if service["log_file"]:
            log = self._log_file(log, level, _entry(service_entries, "log_file"))
        for entry in unknown:
            log.warn("%s:%s: unknown [SERVICE] key '%s' ignored%s", entry.file, entry.line,
                     entry.key, _did_you_mean(entry.key, SERVICE_SCHEMA.by_key))
        from edgeship.engine.engine import Engine  # asyncio: only after cli chose about ssl
        # The one reader of every config file (its @SET values, Fluent Bit's path rule):
        # plugins read their own files (Upstream, Script) through it.
        engine = Engine(service, log, self.main_dir or ".", clock, self.reader)
        engine.strict = self.strict or service["edgeship.strict"]
        engine.stock_parser = functools.partial(self._stock_parser, engine)
        # What the reader and the loader tolerate is said by one context, as a plugin's is.
        self.config_context = engine.context("config")
        self._tolerate_notes()
        if service["plugins_file"]:
            self._plugins_file(_entry(service_entries, "plugins_file"))

        errors = []
        # A YAML config's own parsers and multiline_parsers first, then the parsers files.
        _collect(errors, self._register_parsers, engine,
                 [s for s in sections if s.kind in PARSER_SECTIONS])
        named = [e for e in service_entries if e.key == "parsers_file"]
        named += list(extra_parsers)
        for entry in named:
            _collect(errors, self._load_parsers, engine, entry)

        counters = {}
        for section in sections:
            if section.kind in ("INPUT", "FILTER", "OUTPUT"):
                _collect(errors, self._instance, engine, section, counters)
        if errors:
            raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
        engine.seal()
        return engine

    @staticmethod
    def _log_file(log, level, entry):
        """The Log writing to Log_File; when it cannot be opened (its folder is missing...),
        an error line and stderr, as Fluent Bit does, rather than no log at all."""
        try:
            return Log(level, open_log_file(entry.value), mirror=log.mirror)
        except OSError as exc:
            log.error("cannot open Log_File '%s' (%s:%s): %s; logging to stderr instead",
                      entry.value, entry.file, entry.line, exc.strerror or exc)
            return log

    # ------------------------------------------------------------------ tolerance
    def _tolerate_notes(self):
        """What the reader noted: warnings, or the first one as the error when strict."""
        notes, self.reader.notes = self.reader.notes, []
        for note in notes:
            self.config_context.tolerate(note)

    def _atoi_number(self, option, entry, error):
        """Fluent Bit reads an integer option with atoi: ``Interval_Sec 60  # a minute`` is
        60. Tolerated, with a warning; text with no leading digits stays an error (atoi's 0
        would hide a typo)."""
        number = atoi_text(entry.value) if option.kind == "int" else None
        if number is None:
            raise error
        self.config_context.tolerate(ConfigError(
            "'%s' is not an integer: read as %s, as Fluent Bit's atoi reads it"
            % (entry.value, number),
            entry.file, entry.line, entry.key))
        return number

    def _plugins_file(self, entry):
        """Fluent Bit loads the [PLUGINS] Path entries (Go and C shared objects) of this file;
        edgeship cannot: it says which, and a section using one fails as an unknown plugin."""
        try:
            sections = self.reader.read_other(entry.value, ("PLUGINS",),
                                              (entry.file, entry.line, "plugins_file"))
        except ConfigError as exc:
            self.config_context.log.warn("%s", exc)
            return
        self._tolerate_notes()
        for section in sections:
            for item in section.entries:
                if item.key == "path":
                    self.config_context.log.warn(
                        "%s:%s: plugin '%s' is a shared object; edgeship cannot load it "
                        "(outputs it provides do not exist)", item.file, item.line, item.value)

    # ------------------------------------------------------------------ parsers
    def _stock(self, entry):
        """STOCK_PARSERS when ``entry`` names Fluent Bit's stock parsers.conf at one of its
        standard places and nothing is there, else the path as named."""
        path = entry.value
        if dirname(path).rstrip("/") not in STOCK_DIRS or not path.endswith("/parsers.conf"):
            return path
        if os.path.exists(path):
            return path
        self.config_context.log.info(
            "%s:%s: '%s' is absent: using edgeship's stock parsers (the same names and "
            "records as Fluent Bit's)", entry.file, entry.line, path)
        return STOCK_PARSERS

    def _stock_parser(self, engine, name):
        """Fluent Bit's stock parser called ``name``, from STOCK_PARSERS (read on first use);
        KeyError when there is none."""
        if self._stock_sections is None:
            sections = self.reader.read_other(STOCK_PARSERS, PARSER_SECTIONS)
            self._stock_sections = {s.get("name"): s for s in sections if s.kind == "PARSER"}
        return self._parser(engine, self._stock_sections[name])

    def _load_parsers(self, engine, entry):
        sections = self.reader.read_other(self._stock(entry), PARSER_SECTIONS,
                                          (entry.file, entry.line, "parsers_file"))
        self._tolerate_notes()
        self._register_parsers(engine, sections)

    def _register_parsers(self, engine, sections):
        for section in sections:
            # Fluent Bit's parser keys: the first of a repeated key counts.
            name = next((e.value for e in section.entries if e.key == "name"), None)
            if not name:
                raise ConfigError("[%s] without a Name" % section.kind, section.file,
                                  section.line, "name")
            table = engine.parsers if section.kind == "PARSER" else engine.multiline_parsers
            if name in table:
                raise ConfigError("parser named '%s' already exists" % name, section.file,
                                  section.line, "name")
            if section.kind == "PARSER":
                table[name] = self._parser(engine, section)
            else:
                from edgeship.text import multiline
                table[name] = multiline.from_section(section)

    def _parser(self, engine, section):
        fmt_entry = section.entry("format")
        if fmt_entry is None:
            raise ConfigError("parser '%s' has no Format" % section.get("name"),
                              section.file, section.line, "format")
        cls = plugins.find("parser", fmt_entry.value)
        if cls is None:
            raise ConfigError("parser '%s': unknown format '%s'" % (section.get("name"),
                                                                    fmt_entry.value),
                              fmt_entry.file, fmt_entry.line, "format")
        schema = cls.schema()
        conf = schema.build(self._parser_entries(engine, schema, section),
                            (section.file, section.line))
        try:
            return cls(engine.context("parser:%s" % section.get("name")), conf)
        except ConfigError as exc:
            raise _at_key(exc, section.entries, exc.key, section)

    def _parser_entries(self, engine, schema, section):
        """The entries of a [PARSER] as Fluent Bit reads them: unknown keys ignored, the first
        of a repeated key used (each with a warning, or the schema's error when strict)."""
        if engine.strict:
            return section.entries
        kept, seen = [], set()
        for entry in section.entries:
            opt = schema.find(entry.key)
            if opt is None:
                self.config_context.tolerate(ConfigError(
                    "parser: unknown key ignored, as Fluent Bit does", entry.file, entry.line,
                    entry.key))
            elif not opt.multiple and opt.key in seen:
                self.config_context.tolerate(ConfigError(
                    "parser: key repeated; the first value counts, as in Fluent Bit",
                    entry.file, entry.line, entry.key))
            else:
                seen.add(opt.key)
                kept.append(entry)
        return kept

    # ------------------------------------------------------------------ plugin instances
    def _instance(self, engine, section, counters):
        kind = section.kind.lower()
        name_entry = section.entry("name")
        if name_entry is None:
            raise ConfigError("[%s] section without a Name" % section.kind, section.file,
                              section.line, "name")
        name = name_entry.value.strip().lower()
        cls = plugins.find(kind, name)
        if cls is None:
            raise ConfigError("section '%s' tried to instance a plugin name that doesn't exist"
                              % name_entry.value, name_entry.file, name_entry.line, "name",
                              (name, plugins.names(kind)))
        conf = cls.schema().build(section.entries, (section.file, section.line),
                                  self._atoi_number)
        # Fluent Bit numbers instances per section kind: dummy.0, cpu.1, null.0, stdout.1.
        number = counters.get(kind, 0)
        counters[kind] = number + 1
        instance = "%s.%d" % (cls.name, number)
        context = engine.context(conf.get("alias") or instance, conf.get("log_level"))
        context.section = section
        try:
            plugin = cls(context, conf, instance)
        except StartError as exc:
            exc = _at_key(exc, section.entries, exc.key, section)
            if self.dry_run and not engine.strict:
                self.config_context.log.warn("%s (Fluent Bit checks this only when the plugin "
                                             "starts: a run stops here)", exc)
                return
            raise exc
        except ConfigError as exc:
            raise _at_key(exc, section.entries, exc.key, section)
        if kind == "input":
            if conf.get("storage.type") == "filesystem" and not engine.service["storage.path"]:
                entry = section.entry("storage.type")
                raise ConfigError("[storage] instance '%s' requested filesystem storage but no "
                                  "storage.path is set in [SERVICE]" % plugin.display,
                                  entry.file, entry.line, "storage.type")
            engine.add_input(plugin)
            return
        matcher = self._matcher(conf, section)
        if kind == "filter":
            if matcher.is_empty():
                engine.log.warn("[filter] NO match rule for %s filter instance, unloading.",
                                plugin.display)
                return
            engine.add_filter(plugin, matcher)
            return
        try:
            retry_limit = backoff.parse_retry_limit(conf["retry_limit"])
        except ValueError as exc:
            entry = section.entry("retry_limit")
            raise ConfigError(str(exc), entry.file, entry.line, "retry_limit")
        workers = conf["workers"]
        if workers is None:
            workers = cls.workers
        elif workers < 0:
            entry = section.entry("workers")
            raise ConfigError("Workers cannot be negative: %d" % workers, entry.file,
                              entry.line, "workers")
        # Fluent Bit's 0 flushes on its engine thread, one at a time.
        engine.add_output(plugin, matcher, retry_limit, max(1, workers))

    def _matcher(self, conf, section):
        regex = None
        if conf.get("match_regex"):
            from edgeship.text.onigmo import compile_onigmo
            try:
                regex = compile_onigmo(conf["match_regex"])
            except ValueError as exc:
                entry = section.entry("match_regex")
                raise ConfigError("invalid Match_Regex: %s" % exc, entry.file, entry.line,
                                  "match_regex")
        return Matcher(conf.get("match"), regex)


def _parse_yaml(text, path):
    from edgeship.text.yaml_config import parse    # PyYAML only for YAML configs
    return parse(text, path)


def open_log_file(path):
    """Log_File opened for appending. A FIFO without a reader is an error (ENXIO), not a
    start-up that hangs; a device (/dev/stdout) is fine."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except ValueError:  # a NUL byte (only the command line's -l can bring one)
        raise OSError(errno.EINVAL, "the path holds a NUL byte")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "a", buffering=1)


def _collect(errors, step, *args):
    """Run one step of the build; its ConfigError joins ``errors`` (with a suggestion when
    it names an unknown thing) and the build goes on with the next section."""
    try:
        step(*args)
    except ConfigError as exc:
        errors.append(_suggested(exc))


def _suggested(exc):
    """``exc`` with the closest accepted name after its first sentence."""
    if exc.unknown:
        hint = _did_you_mean(*exc.unknown)
        if hint:
            head, stop, rest = exc.message.partition(". ")
            exc.message = head + hint + stop + rest
    return exc


def _did_you_mean(given, choices):
    """`` (did you mean 'x'?)`` for the accepted name closest to ``given``, or ''."""
    close = difflib.get_close_matches(given.strip().lower(), list(choices), 1, 0.6)
    return " (did you mean '%s'?)" % close[0] if close else ""


def _entry(entries, key):
    """The last entry of ``key``."""
    for entry in reversed(entries):
        if entry.key == key:
            return entry
    return None


def _at_key(exc, entries, key, section=None):
    """``exc`` located at the line of its key's entry when it has no place yet (plugins
    raise with a key only), else at the section's header."""
    entry = _entry(entries, key) if key else None
    if entry is not None:
        return exc.located(entry.file, entry.line, key)
    if section is not None:
        return exc.located(section.file, section.line)
    return exc


def _last_wins(entries):
    """Service keys: a later value replaces an earlier one (several [SERVICE] merge)."""
    last = {}
    for entry in entries:
        if entry.key == "parsers_file":
            continue
        last[entry.key] = entry
    return [e for e in entries if e.key == "parsers_file"] + list(last.values())


def command_line_section(kind, name, index):
    """A section for ``-i/-F/-o NAME``; its entries are located on the command line."""
    section = Section(kind, "<command line>", index)
    section.entries.append(Entry("name", name, "<command line>", index))
    if kind != "INPUT":
        # fluent-bit routes everything to a command-line output unless -m says otherwise.
        section.entries.append(Entry("match", "*", "<command line>", index))
    return section
