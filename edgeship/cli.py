"""Command line compatible with fluent-bit's (src/fluent-bit.c).

Options are order-dependent like fluent-bit's: ``-p``, ``-t`` and ``-m`` apply to the most
recent ``-i``/``-F``/``-o``. Heavy modules are imported only once we know they are needed, so
``edgeship --version`` returns at once.
"""
import os
import signal
import sys

from edgeship import __version__

USAGE = """Usage: edgeship [OPTION]

Available Options
  -b  --storage_path=PATH specify a storage buffering path
  -c  --config=FILE       specify an optional configuration file
  -f, --flush=SECONDS     flush timeout in seconds (default: 1)
  -F  --filter=FILTER     set a filter
  -i, --input=INPUT       set an input
  -m, --match=MATCH       set plugin match, same as '-p match=abc'
  -o, --output=OUTPUT     set an output
  -p, --prop="A=B"        set plugin configuration property
  -R, --parser=FILE       specify a parser configuration file
  -l, --log_file=FILE     write log info to a file
  -t, --tag=TAG           set plugin tag, same as '-p tag=abc'
  -v, --verbose           increase logging verbosity (default: info)
  -q, --quiet             quiet mode
  -D, --dry-run           dry run: validate the configuration and exit
  -w, --workdir=DIR       change to this directory before loading
  -V, --version           show version number
  -h, --help              print this help, or a plugin's options after -i/-F/-o NAME

  edgeship spool dump PATH [--records]   print the chunks of a spool
  edgeship spool check PATH              exit non-zero when a spool is damaged
"""

# flag -> (long name, takes a value)
FLAGS = {
    "-b": "storage_path", "-c": "config", "-f": "flush", "-F": "filter", "-i": "input",
    "-m": "match", "-o": "output", "-p": "prop", "-R": "parser", "-l": "log_file",
    "-t": "tag", "-w": "workdir", "-L": "http_listen", "-P": "http_port",
    "-v": "verbose", "-q": "quiet", "-D": "dry-run", "-V": "version", "-h": "help",
    "-H": "http", "-d": "daemon",
}
WITH_VALUE = {"storage_path", "config", "flush", "filter", "input", "match", "output", "prop",
              "parser", "log_file", "tag", "workdir", "http_listen", "http_port"}
LONG_ALIASES = {"http_server": "http", "dry_run": "dry-run"}
# option -> the [SERVICE] key it sets (-H is a flag: it turns HTTP_Server on)
SERVICE_FLAGS = {"flush": "flush", "log_file": "log_file", "storage_path": "storage.path",
                 "http": "http_server", "http_listen": "http_listen", "http_port": "http_port"}


class UsageError(Exception):
    pass


def parse_args(argv):
    """Returns a list of (option, value) in order; value is None for flags."""
    out = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            name = LONG_ALIASES.get(name, name)
            if name not in FLAGS.values():
                raise UsageError("unknown option '%s'" % arg)
        elif arg.startswith("-") and len(arg) >= 2:
            name = FLAGS.get(arg[:2])
            if name is None:
                raise UsageError("unknown option '%s'" % arg)
            eq, value = ("=", arg[2:]) if len(arg) > 2 else ("", "")
            if name == "verbose" and arg.strip("-v") == "":
                out.extend([("verbose", None)] * (len(arg) - 1))
                continue
        else:
            raise UsageError("unexpected argument '%s'" % arg)
        if name in WITH_VALUE:
            if not eq:
                if i >= len(argv):
                    raise UsageError("option '%s' needs a value" % arg)
                value = argv[i]
                i += 1
            out.append((name, value))
        else:
            out.append((name, None))
    return out


def _plugin_help(kind, name):
    from edgeship import plugins
    cls = plugins.find(kind, name)
    if cls is None:
        return "no %s plugin named '%s'" % (kind, name), 1
    lines = ["HELP", "%s plugin: %s" % (cls.name, cls.description), "", "OPTIONS"]
    lines += ["  " + line for line in cls.schema().help_lines()]
    return "\n".join(lines), 0


def _general_help():
    from edgeship import plugins
    lines = [USAGE]
    for kind, title in (("input", "Inputs"), ("filter", "Filters"), ("output", "Outputs")):
        lines.append(title)
        for name in plugins.names(kind):
            cls = plugins.find(kind, name)
            lines.append("  %-20s %s" % (cls.name, cls.description))
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    # Until the engine runs, a reader that went away (`edgeship spool dump | head`, `-h |
    # head`) ends the process quietly, as it ends cat: SIGPIPE's default action, instead of a
    # BrokenPipeError traceback. run() ignores SIGPIPE again (Python's default) before the
    # engine starts: its sockets and stdout plugins handle EPIPE themselves.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["spool"]:
        from edgeship.storage.tool import main as spool_main
        return spool_main(argv[1:])
    try:
        opts = parse_args(argv)
    except UsageError as exc:
        sys.stderr.write("edgeship: %s\n%s" % (exc, USAGE))
        return 1
    names = [name for name, _ in opts]
    if "version" in names:
        print("edgeship v%s (Fluent Bit 5.1.1 compatible)" % __version__)
        return 0
    if "help" in names:
        # `-i tail -h` prints the options of that plugin.
        last_plugin = None
        for name, value in opts[:names.index("help")]:
            if name in ("input", "filter", "output"):
                last_plugin = (name, value)
        if last_plugin:
            text, code = _plugin_help(*last_plugin)
            print(text)
            return code
        print(_general_help())
        return 0
    return run(opts)


def _load_tls_only_if_used(sections):
    """Keep the ssl module (and libcrypto: ~4.5 MB of RSS, a quarter of the idle budget on a
    Pi) out of the process unless some section turns TLS on. asyncio binds ssl when it is
    first imported, so this must run before anything imports asyncio."""
    from edgeship.core.schema import TRUE_WORDS
    for section in sections:
        for entry in section.entries:
            if entry.key == "upstream":  # upstream nodes may use TLS: decided in that file
                return
            if (entry.key == "tls" or entry.key.startswith("tls.")) and \
                    entry.value.strip().lower() in TRUE_WORDS:
                return
    sys.modules.setdefault("ssl", None)


class EarlySignals:
    """SIGTERM and SIGINT from the first moment of a run, before the engine's loop takes them
    over: a signal during config loading is only noted, and the engine stops gracefully as
    soon as it runs (its spool replayed, nothing read). Without this the default action
    would end the process at once, and Ctrl-C would print a traceback."""

    def __init__(self):
        self.caught = None
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._note)

    def _note(self, signum, frame):
        if self.caught is None:
            self.caught = signum


def run(opts):
    early_signals = EarlySignals()
    from edgeship.core.errors import ConfigError
    from edgeship.core.schema import Entry
    from edgeship.engine.loader import Loader, command_line_section

    where = "<command line>"
    config = None
    dry_run = False
    verbosity = 0
    quiet = False
    cli_sections = []
    service = []
    parsers = []
    for index, (name, value) in enumerate(opts, 1):
        if name == "config":
            config = value
        elif name in ("input", "filter", "output"):
            cli_sections.append(command_line_section(name.upper(), value, index))
        elif name in ("prop", "tag", "match"):
            if not cli_sections:
                sys.stderr.write("edgeship: -%s needs a preceding -i, -F or -o\n" % name[0])
                return 1
            if name == "prop":
                key, eq, val = value.partition("=")
                if not eq:
                    sys.stderr.write("edgeship: -p expects KEY=VALUE, got '%s'\n" % value)
                    return 1
            else:
                key, val = name, value
            if name == "match" and cli_sections[-1].kind == "INPUT":
                continue  # fluent-bit ignores -m for inputs
            cli_sections[-1].entries.append(Entry(key.strip(), val.strip(), where, index))
        elif name in SERVICE_FLAGS:
            service.append(Entry(SERVICE_FLAGS[name], "on" if name == "http" else value,
                                 where, index))
        elif name == "parser":
            if not os.path.exists(value):
                sys.stderr.write("[error] [config] parsers file '%s' does not exist\n" % value)
                return 1
            parsers.append(Entry("parsers_file", value, where, index))
        elif name == "verbose":
            verbosity += 1
        elif name == "quiet":
            quiet = True
        elif name == "dry-run":
            dry_run = True
        elif name == "workdir":
            try:
                os.chdir(value)
            except (OSError, ValueError) as exc:
                sys.stderr.write("[error] [config] %s:%d: key 'workdir': cannot change to '%s': "
                                 "%s\n" % (where, index, value, getattr(exc, "strerror", exc)))
                return 1
    if quiet:
        service.append(Entry("log_level", "off", where, 0))
    elif verbosity:
        service.append(Entry("log_level", ("info", "debug", "trace")[min(verbosity, 3) - 1],
                             where, 0))

    loader = Loader()
    try:
        sections = (loader.read(config) if config else []) + cli_sections
        _load_tls_only_if_used(sections)
        engine = loader.build(sections, service, parsers)
    except ConfigError as exc:
        sys.stderr.write("[error] [config] %s\n" % exc)
        sys.stderr.write("[error] configuration file contains errors, aborting.\n")
        return 1
    if dry_run:
        sys.stderr.write("configuration test is successful\n")
        return 0
    if not engine.inputs and not engine.outputs:
        sys.stderr.write(USAGE)
        return 1
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    import asyncio
    return asyncio.run(engine.run(early_signals))


if __name__ == "__main__":
    sys.exit(main())
