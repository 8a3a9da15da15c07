"""Command line compatible with fluent-bit's (src/fluent-bit.c).

Options are order-dependent like fluent-bit's: ``-p``, ``-t`` and ``-m`` apply to the most
recent ``-i``/``-F``/``-o``. Heavy modules are imported only once we know they are needed, so
``edgeship --version`` returns at once. Also here: the help texts (``-h``, a plugin's ``-h``,
the man page of ``--man``), all made from the option declarations, and the shipped examples
(``edgeship examples``, ``--example NAME``).
"""
import os
import signal
import sys

from edgeship import __version__

# The command-line options, declared once: the parser, the usage text and the man page
# (edgeship --man) read them. (short flag or None, long name, value name or None, help)
CLI_OPTIONS = (
    ("-b", "storage_path", "PATH", "specify a storage buffering path"),
    ("-c", "config", "FILE", "specify an optional configuration file"),
    (None, "example", "NAME", "run a shipped example config (edgeship examples lists them)"),
    ("-d", "daemon", None, "not supported: stays in the foreground (use the systemd unit)"),
    ("-f", "flush", "SECONDS", "flush timeout in seconds (default: 1)"),
    ("-F", "filter", "FILTER", "set a filter"),
    ("-i", "input", "INPUT", "set an input"),
    ("-m", "match", "MATCH", "set plugin match, same as '-p match=abc'"),
    ("-o", "output", "OUTPUT", "set an output"),
    ("-p", "prop", "\"A=B\"", "set plugin configuration property"),
    ("-R", "parser", "FILE", "specify a parser configuration file"),
    ("-l", "log_file", "FILE", "write log info to a file"),
    ("-t", "tag", "TAG", "set plugin tag, same as '-p tag=abc'"),
    ("-H", "http", None, "enable the monitoring HTTP server"),
    ("-L", "http_listen", "ADDRESS", "monitoring HTTP server address"),
    ("-P", "http_port", "PORT", "monitoring HTTP server port"),
    ("-Y", "enable-hot-reload", None, "enable hot reload (SIGHUP, POST /api/v2/reload)"),
    ("-v", "verbose", None, "more log: -v debug, -vv trace (default: info)"),
    ("-q", "quiet", None, "quiet mode"),
    ("-D", "dry-run", None, "dry run: validate the configuration and exit"),
    (None, "strict", None, "refuse what Fluent Bit only ignores (unknown [PARSER] keys...)"),
    ("-w", "workdir", "DIR", "change to this directory before loading"),
    (None, "man", None, "print the manual page (edgeship --man | man -l -)"),
    ("-V", "version", None, "show version number"),
    ("-h", "help", None, "print this help, or a plugin's options after -i/-F/-o NAME"),
)
# Commands that take the place of the options: (synopsis, help)
COMMANDS = (
    ("edgeship spool dump PATH [--records]", "print the chunks of a spool"),
    ("edgeship spool check PATH", "exit non-zero when a spool is damaged"),
    ("edgeship examples [NAME]", "list the shipped examples, or print one"),
    ("edgeship top [-L ADDRESS] [-P PORT]", "live view of a running edgeship (HTTP_Server On)"),
)


def _usage():
    lines = ["Usage: edgeship [OPTION]", "", "Available Options"]
    for short, long, value, text in CLI_OPTIONS:
        flag = "%s, " % short if short else "    "
        lines.append("  %s%-22s %s" % (flag, "--" + long + ("=" + value if value else ""),
                                       text))
    lines.append("")
    lines += ["  %-38s %s" % command for command in COMMANDS]
    return "\n".join(lines) + "\n"


USAGE = _usage()
# flag -> long name
FLAGS = {short: long for short, long, _value, _help in CLI_OPTIONS if short}
WITH_VALUE = {long for _short, long, value, _help in CLI_OPTIONS if value}
LONG_NAMES = {long for _short, long, _value, _help in CLI_OPTIONS}
LONG_ALIASES = {"http_server": "http", "dry_run": "dry-run",
                "enable_hot_reload": "enable-hot-reload"}
# option -> the [SERVICE] key it sets (-H and -d are flags: they turn their key on)
SERVICE_FLAGS = {"flush": "flush", "log_file": "log_file", "storage_path": "storage.path",
                 "http": "http_server", "http_listen": "http_listen", "http_port": "http_port",
                 "daemon": "daemon", "enable-hot-reload": "hot_reload"}
ON_FLAGS = ("http", "daemon", "enable-hot-reload")
# Why Daemon On is refused (Fluent Bit forks into the background).
DAEMON_WARNING = ("Daemon On is not supported, staying in the foreground: a process that "
                  "forks away from its supervisor is not restarted when it fails and its log "
                  "goes nowhere; run edgeship under systemd (edgeship examples "
                  "systemd/edgeship.service) or a container runtime")


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
            if name not in LONG_NAMES:
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


MAN_KIND_TITLES = (("input", "INPUTS"), ("parser", "PARSERS"), ("filter", "FILTERS"),
               ("output", "OUTPUTS"))


def _roff(value):
    """``value`` as roff text: backslashes escaped, hyphens as ASCII minus signs (so they can
    be searched and copied), a leading dot or quote kept from being read as a request."""
    text = str(value).replace("\\", "\\e").replace("-", "\\-")
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def _man_option(option):
    """A tagged paragraph for one schema Option: name, type and marks, then the help."""
    marks = [option.kind] + option.marks()
    # A default may be a long regex or list: let a line break after | / , (\\: is groff's
    # optional break point).
    marks_text = _roff("; ".join(marks))
    for mark in "|/,":
        marks_text = marks_text.replace(mark, mark + "\\:")
    return [".TP", "\\fB%s\\fR (%s)" % (_roff(option.name), marks_text),
            _roff(option.help or "")]


def _man_cli_options(cli_options):
    lines = []
    for short, long, value, text in cli_options:
        flags = "\\fB\\-\\-%s\\fR" % _roff(long)
        if value:
            flags += "=\\fI%s\\fR" % _roff(value.strip('"'))
        if short:
            flags = "\\fB%s\\fR, %s" % (_roff(short), flags)
        lines += [".TP", flags, _roff(text)]
    return lines


def _man_plugin_sections():
    from edgeship import plugins
    lines = []
    for kind, title in MAN_KIND_TITLES:
        lines += [".SH %s" % title]
        names = plugins.names(kind)
        if kind == "parser":
            # The keys every format shares come once, then each format's own.
            lines += ["Sections \\fB[PARSER]\\fR of a \\fBParsers_File\\fR. Formats: %s. "
                      "Keys of every format:" % _roff(", ".join(names))]
            common = plugins.find(kind, names[0]).schema().options
            common_keys = {option.key for option in common}
            for option in common:
                lines += _man_option(option)
            for name in names:
                cls = plugins.find(kind, name)
                own = [o for o in cls.schema().options if o.key not in common_keys]
                lines += [".SS %s" % _roff(name)]
                if not own:
                    lines += ["No keys of its own."]
                for option in own:
                    lines += _man_option(option)
            continue
        lines += ["Every %s also takes the keys its kind shares (\\fBName\\fR, "
                  "\\fBAlias\\fR, \\fBLog_Level\\fR, ...), listed with each plugin." % kind]
        for name in names:
            cls = plugins.find(kind, name)
            lines += [".SS %s" % _roff(cls.name), _roff(cls.description) + ".", ".PP"]
            for option in cls.schema().options:
                lines += _man_option(option)
    return lines


def man_page():
    """``edgeship --man``: the manual page, edgeship(1), in roff, made from the declarations
    the program itself uses (CLI_OPTIONS, the [SERVICE] keys, every plugin's schema), so it
    cannot drift from what edgeship accepts. ``edgeship --man | man -l -`` reads it."""
    from edgeship.engine.loader import CONFIG_DIR_VARIABLE, SERVICE_OPTIONS
    lines = [
        '.TH EDGESHIP 1 "" "edgeship %s" "User Commands"' % _roff(__version__),
        # Ragged right, no hyphenation: option defaults hold long regexes with no space to
        # stretch, which a justified line cannot fit.
        ".ad l",
        ".nh",
        ".SH NAME",
        "edgeship \\- log and telemetry forwarder for edge devices, running Fluent Bit "
        "classic configurations",
        ".SH SYNOPSIS",
        ".B edgeship",
        "\\fB\\-c\\fR \\fIFILE\\fR [\\fIOPTION\\fR]...",
        ".br",
        ".B edgeship",
        "\\fB\\-i\\fR \\fIINPUT\\fR [\\fB\\-p\\fR \\fIKEY=VALUE\\fR]... "
        "\\fB\\-o\\fR \\fIOUTPUT\\fR [\\fB\\-p\\fR \\fIKEY=VALUE\\fR]... [\\fIOPTION\\fR]...",
        ".br",
        ".B edgeship",
        "\\fB\\-\\-example\\fR \\fINAME\\fR [\\fIOPTION\\fR]...",
    ]
    for synopsis, _help in COMMANDS:
        lines += [".br", _roff(synopsis)]
    lines += [
        ".SH DESCRIPTION",
        "edgeship reads a Fluent Bit classic configuration (\\fB[SERVICE]\\fR, "
        "\\fB[INPUT]\\fR, \\fB[FILTER]\\fR, \\fB[OUTPUT]\\fR sections, \\fB@INCLUDE\\fR, "
        "\\fB@SET\\fR and \\fB${VARIABLE}\\fR) and does what Fluent Bit 5.1.1 does with it: "
        "records flow from inputs through parsers and filters to the outputs whose "
        "\\fBMatch\\fR takes their tag. Each output keeps a queue in memory, spooled to disk "
        "with \\fBstorage.type filesystem\\fR, and a record leaves only once its output "
        "confirmed it.",
        ".PP",
        "Options given on the command line apply after the configuration file; "
        "\\fB\\-p\\fR, \\fB\\-t\\fR and \\fB\\-m\\fR apply to the most recent "
        "\\fB\\-i\\fR, \\fB\\-F\\fR or \\fB\\-o\\fR. Every configuration error names its "
        "file, line and key.",
        ".SH OPTIONS",
    ]
    lines += _man_cli_options(CLI_OPTIONS)
    lines += [".SH COMMANDS"]
    for synopsis, text in COMMANDS:
        lines += [".TP", "\\fB%s\\fR" % _roff(synopsis), _roff(text)]
    lines += [".SH SERVICE OPTIONS", "Keys of the \\fB[SERVICE]\\fR section."]
    for option in SERVICE_OPTIONS:
        lines += _man_option(option)
    lines += _man_plugin_sections()
    lines += [
        ".SH ENVIRONMENT",
        ".TP", "\\fB%s\\fR" % _roff(CONFIG_DIR_VARIABLE),
        "The directory of the main configuration file, when neither the environment nor "
        "\\fB@SET\\fR defines it: \\fB${%s}/sample.log\\fR names a file beside the "
        "configuration from any working directory. edgeship's own; Fluent Bit has no such "
        "variable." % _roff(CONFIG_DIR_VARIABLE),
        ".TP", "\\fBFLB_LOG_LEVEL\\fR", "Overrides \\fBLog_Level\\fR.",
        ".TP", "\\fBHOSTNAME\\fR",
        "Taken from the system's host name when the environment has none.",
        ".TP", "\\fBSTATE_DIRECTORY\\fR",
        "Set by systemd for the unit's \\fBStateDirectory=\\fR (and in the container image): "
        "the place for \\fBstorage.path\\fR and tail \\fBDB\\fR files.",
        ".SH SIGNALS",
        ".TP", "\\fBSIGTERM\\fR, \\fBSIGINT\\fR",
        "Stop gracefully: inputs stop and queued data gets \\fBGrace\\fR seconds to be "
        "delivered.",
        ".TP", "\\fBSIGHUP\\fR",
        "With \\fBHot_Reload On\\fR (or \\fB\\-Y\\fR): read the configuration again and "
        "replace the pipeline, keeping queued data; a configuration with errors is logged "
        "and the running one kept. Without it, only logged.",
        ".SH FILES",
        ".TP", "\\fI/etc/edgeship/fluent\\-bit.conf\\fR",
        "The configuration the systemd unit runs (\\fBedgeship examples "
        "systemd/edgeship.service\\fR).",
        ".TP", "\\fI/fluent\\-bit/etc/fluent\\-bit.conf\\fR",
        "The configuration the container image runs, as in Fluent Bit's image.",
        ".SH EXIT STATUS",
        "0 when the run ended normally or \\fB\\-\\-dry\\-run\\fR found no error; 1 on a "
        "configuration error or a failed run.",
        ".SH EXAMPLES",
        ".nf",
        "edgeship \\-c /etc/edgeship/fluent\\-bit.conf",
        "edgeship \\-i dummy \\-o stdout",
        "edgeship \\-i tail \\-p path=/var/log/syslog \\-o stdout \\-p format=json_lines",
        "edgeship \\-\\-dry\\-run \\-c fluent\\-bit.conf",
        "edgeship \\-\\-example quickstart",
        ".fi",
    ]
    return "\n".join(lines) + "\n"


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
    if argv[:1] == ["examples"]:
        return examples_command(argv[1:])
    if argv[:1] == ["top"]:
        from edgeship.http.top import main as top_main
        return top_main(argv[1:])
    try:
        opts = parse_args(argv)
    except UsageError as exc:
        sys.stderr.write("edgeship: %s\n%s" % (exc, USAGE))
        return 1
    names = [name for name, _ in opts]
    if "version" in names:
        print("edgeship v%s (Fluent Bit 5.1.1 compatible)" % __version__)
        return 0
    if "man" in names:
        sys.stdout.write(man_page())
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


def examples_dir():
    """The example configs shipped inside the package (the repository's configs/)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "examples")


def examples():
    """[(name, path, summary)] of the runnable example configs (those with an [INPUT]): a
    folder's fluent-bit.conf is named by the folder, another config by folder/file."""
    found = []
    base = examples_dir()
    for folder in sorted(os.listdir(base)):
        if not os.path.isdir(os.path.join(base, folder)):
            continue
        for filename in sorted(os.listdir(os.path.join(base, folder))):
            path = os.path.join(base, folder, filename)
            if not filename.endswith(".conf"):
                continue
            with open(path, encoding="utf-8") as f:
                text = f.read()
            if "[INPUT]" not in text.upper():
                continue
            name = folder if filename == "fluent-bit.conf" else folder + "/" + filename[:-5]
            found.append((name, path, _summary(text)))
    return found


def _summary(text):
    """The first sentence of a config's opening comment."""
    words = []
    for line in text.splitlines():
        if not line.startswith("#") or not line[1:].strip():
            break
        words.append(line[1:].strip())
    paragraph = " ".join(words)
    end = paragraph.find(". ")
    return paragraph[:end + 1] if end >= 0 else paragraph


def example_path(name):
    """The file of example ``name`` (an example's name or a file under the examples), or
    None."""
    for example, path, _summary_text in examples():
        if example == name:
            return path
    base = examples_dir()
    path = os.path.normpath(os.path.join(base, name))
    if path.startswith(base + os.sep) and os.path.isfile(path):
        return path
    return None


def examples_command(args):
    """``edgeship examples``: list them; ``edgeship examples NAME``: print one."""
    if len(args) > 1 or args[:1] in (["-h"], ["--help"]):
        sys.stderr.write("usage: edgeship examples [NAME]\n")
        return 1 if len(args) > 1 else 0
    if args:
        path = example_path(args[0])
        if path is None:
            sys.stderr.write("edgeship: no example named '%s'; 'edgeship examples' lists them\n"
                             % args[0])
            return 1
        with open(path, encoding="utf-8") as f:
            sys.stdout.write(f.read())
        return 0
    import textwrap
    base = examples_dir()
    lines = ["Example configs shipped with edgeship, in %s:" % base, ""]
    for name, _path, summary in examples():
        lines += textwrap.wrap(summary, 98, initial_indent="  %-24s " % name,
                               subsequent_indent=" " * 27)
    lines += ["", "Run one:    edgeship --example NAME    (check it first: add --dry-run)",
              "Print one:  edgeship examples NAME     (or a file, e.g. quickstart/parsers.conf)",
              "Copy one:   cp -r %s DIR" % os.path.join(base, "NAME"),
              "", "The systemd unit: edgeship examples systemd/edgeship.service", ""]
    sys.stdout.write("\n".join(lines))
    return 0


# Plugins that load ssl whatever their tls.* options say: kubernetes and kubernetes_events (the
# API server is https by default), prometheus_scrape and prometheus_textfile (prometheus_client
# imports ssl), the AWS outputs (TLS on by default, credentials from https STS), nrlogs (New
# Relic's https base_uri by default), slack, logdna and td (TLS only), the Azure and Google Cloud
# outputs (TLS on by default, Google's OAuth2 token URI is https).
PLUGINS_NEEDING_SSL = ("kubernetes", "kubernetes_events", "prometheus_scrape",
                       "prometheus_textfile", "cloudwatch_logs", "s3", "kinesis_firehose",
                       "kinesis_streams", "nrlogs", "slack", "logdna", "azure", "azure_blob",
                       "bigquery", "stackdriver", "td")


def _json_escape_unicode(on):
    """[SERVICE] json.escape_unicode is process-wide, as in Fluent Bit. The JSON codec is
    imported for it only when off or already loaded by a plugin (a hot reload may turn it
    back on)."""
    if not on or "edgeship.codecs.formats" in sys.modules:
        from edgeship.codecs import formats
        formats.escape_unicode(on)


def _load_tls_only_if_used(sections):
    """Keep the ssl module (and libcrypto: ~4.5 MB of RSS, a quarter of the idle budget on a
    Pi) out of the process unless some section turns TLS on. asyncio binds ssl when it is
    first imported, so this must run before anything imports asyncio."""
    from edgeship.core.schema import TRUE_WORDS
    for section in sections:
        for entry in section.entries:
            if entry.key == "upstream":  # upstream nodes may use TLS: decided in that file
                return
            if entry.key == "name" and entry.value.strip().lower() in PLUGINS_NEEDING_SSL:
                return
            if (entry.key in ("tls", "aws_auth") or entry.key.startswith("tls.")) and \
                    entry.value.strip().lower() in TRUE_WORDS:  # aws_auth: STS is https
                return
            if entry.key == "mode" and entry.value.strip().lower() == "tls":  # syslog, gelf
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
        # A SIGHUP while loading must not end the process (its default action): the
        # configuration being read is the newest anyway.
        signal.signal(signal.SIGHUP, self._ignore)

    @staticmethod
    def _ignore(signum, frame):
        pass

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
    strict = False
    verbosity = 0
    quiet = False
    cli_sections = []
    service = []
    parsers = []
    for index, (name, value) in enumerate(opts, 1):
        if name == "config":
            config = value
        elif name == "example":
            config = example_path(value)
            if config is None:
                sys.stderr.write("edgeship: no example named '%s'; 'edgeship examples' lists "
                                 "them\n" % value)
                return 1
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
            service.append(Entry(SERVICE_FLAGS[name], "on" if name in ON_FLAGS else value,
                                 where, index))
        elif name == "parser":
            parsers.append(Entry("parsers_file", value, where, index))
        elif name == "verbose":
            verbosity += 1
        elif name == "quiet":
            quiet = True
        elif name == "dry-run":
            dry_run = True
        elif name == "strict":
            strict = True
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
        # Fluent Bit's: -v debug, -vv (or more) trace.
        service.append(Entry("log_level", "debug" if verbosity == 1 else "trace", where, 0))

    def build():
        """The pipeline of the configuration as it is now (again at each hot reload)."""
        loader = Loader(strict=strict, dry_run=dry_run)
        sections = (loader.read(config) if config else []) + cli_sections
        _load_tls_only_if_used(sections)
        engine = loader.build(sections, service, parsers)
        _json_escape_unicode(engine.service["json.escape_unicode"])
        return engine

    try:
        engine = build()
    except ConfigError as exc:
        for error in getattr(exc, "errors", [exc]):
            sys.stderr.write("[error] [config] %s\n" % error)
        sys.stderr.write("[error] configuration file contains errors, aborting.\n")
        return 1
    if engine.service["daemon"]:
        engine.log.warn(DAEMON_WARNING)
    if dry_run:
        sys.stderr.write("configuration test is successful\n")
        return 0
    # A bare command line is a question: the usage. A config file with no input and no
    # output is accepted as Fluent Bit accepts it; with no input the run ends at once (Fluent
    # Bit idles until a signal), as a run that only drains its spool does.
    if not config and not engine.inputs and not engine.outputs:
        sys.stderr.write(USAGE)
        return 1
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    import asyncio
    from edgeship.engine.supervisor import Supervisor
    return asyncio.run(Supervisor(engine, build, _follow_monitor).run(early_signals))


async def _follow_monitor(supervisor, current):
    """The monitoring server (``edgeship.http.monitor.follow``), imported only once a
    configuration turns HTTP_Server on: h11 and the server cost a Pi RSS otherwise."""
    if current is None and not supervisor.engine.service["http_server"]:
        return None
    from edgeship.http import monitor
    return await monitor.follow(supervisor, current)


if __name__ == "__main__":
    sys.exit(main())
