"""``edgeship --man``: the manual page, edgeship(1), in roff, made from the declarations the
program itself uses: the command-line options (cli.CLI_OPTIONS), the [SERVICE] keys
(loader.SERVICE_OPTIONS) and every plugin's options (its schema). It cannot drift from what
the program accepts. Read it with ``edgeship --man | man -l -``, or install it:
``edgeship --man > /usr/local/share/man/man1/edgeship.1``.
"""
from edgeship import __version__, plugins

KIND_TITLES = (("input", "INPUTS"), ("parser", "PARSERS"), ("filter", "FILTERS"),
               ("output", "OUTPUTS"))


def _text(value):
    """``value`` as roff text: backslashes escaped, hyphens as ASCII minus signs (so they can
    be searched and copied), a leading dot or quote kept from being read as a request."""
    text = str(value).replace("\\", "\\e").replace("-", "\\-")
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def _option(option):
    """A tagged paragraph for one schema Option: name, type and marks, then the help."""
    marks = [option.kind]
    if option.default not in (None, ""):
        marks.append("default: %s" % option.default)
    if option.choices:
        marks.append("one of: %s" % ", ".join(option.choices))
    if option.required:
        marks.append("required")
    if option.multiple:
        marks.append("repeatable")
    if option.aliases:
        marks.append("also: %s" % ", ".join(option.aliases))
    return [".TP", "\\fB%s\\fR (%s)" % (_text(option.name), _text("; ".join(marks))),
            _text(option.help or "")]


def _cli_options(cli_options):
    lines = []
    for short, long, value, text in cli_options:
        flags = "\\fB\\-\\-%s\\fR" % _text(long)
        if value:
            flags += "=\\fI%s\\fR" % _text(value.strip('"'))
        if short:
            flags = "\\fB%s\\fR, %s" % (_text(short), flags)
        lines += [".TP", flags, _text(text)]
    return lines


def _plugin_sections():
    lines = []
    for kind, title in KIND_TITLES:
        lines += [".SH %s" % title]
        names = plugins.names(kind)
        if kind == "parser":
            # The keys every format shares come once, then each format's own.
            lines += ["Sections \\fB[PARSER]\\fR of a \\fBParsers_File\\fR. Formats: %s. "
                      "Keys of every format:" % _text(", ".join(names))]
            common = plugins.find(kind, names[0]).schema().options
            common_keys = {option.key for option in common}
            for option in common:
                lines += _option(option)
            for name in names:
                cls = plugins.find(kind, name)
                own = [o for o in cls.schema().options if o.key not in common_keys]
                lines += [".SS %s" % _text(name)]
                if not own:
                    lines += ["No keys of its own."]
                for option in own:
                    lines += _option(option)
            continue
        lines += ["Every %s also takes the keys its kind shares (\\fBName\\fR, "
                  "\\fBAlias\\fR, \\fBLog_Level\\fR, ...), listed with each plugin." % kind]
        for name in names:
            cls = plugins.find(kind, name)
            lines += [".SS %s" % _text(cls.name), _text(cls.description) + ".", ".PP"]
            for option in cls.schema().options:
                lines += _option(option)
    return lines


def render():
    """The whole page, as a string."""
    from edgeship.cli import CLI_OPTIONS, COMMANDS
    from edgeship.engine.loader import CONFIG_DIR_VARIABLE, SERVICE_OPTIONS
    lines = [
        '.TH EDGESHIP 1 "" "edgeship %s" "User Commands"' % _text(__version__),
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
        lines += [".br", _text(synopsis)]
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
    lines += _cli_options(CLI_OPTIONS)
    lines += [".SH COMMANDS"]
    for synopsis, text in COMMANDS:
        lines += [".TP", "\\fB%s\\fR" % _text(synopsis), _text(text)]
    lines += [".SH SERVICE OPTIONS", "Keys of the \\fB[SERVICE]\\fR section."]
    for option in SERVICE_OPTIONS:
        lines += _option(option)
    lines += _plugin_sections()
    lines += [
        ".SH ENVIRONMENT",
        ".TP", "\\fB%s\\fR" % _text(CONFIG_DIR_VARIABLE),
        "The directory of the main configuration file, when neither the environment nor "
        "\\fB@SET\\fR defines it: \\fB${%s}/sample.log\\fR names a file beside the "
        "configuration from any working directory. edgeship's own; Fluent Bit has no such "
        "variable." % _text(CONFIG_DIR_VARIABLE),
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
