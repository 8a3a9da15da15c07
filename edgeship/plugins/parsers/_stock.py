"""Fluent Bit's stock parsers (conf/parsers.conf of 5.1.1), available by name without a
Parsers_File: a parser the config loads under the same name wins.

Only the three the syslog input defaults to are here so far (``syslog-rfc5424`` for tcp/udp,
``syslog-rfc3164-local`` for the unix modes, and ``syslog-rfc3164``), each exactly as
parsers.conf defines it (shared/reference/vectors/parsers_conf_v5.1.1.json). Fluent Bit
needs parsers.conf loaded (``-R``) for the syslog input to start ("parser not set"); edgeship
also starts without it. The syslog, tcp and udp inputs look parsers up through ``parser()``.
"""
from edgeship import plugins
from edgeship.core.schema import Entry

SOURCE = "<stock parsers.conf>"

STOCK = {
    "syslog-rfc5424": (
        ("Format", "regex"),
        ("Regex", r"^\<(?<pri>[0-9]{1,5})\>1 (?<time>[^ ]+) (?<host>[^ ]+) (?<ident>[^ ]+) "
                  r"(?<pid>[-0-9]+) (?<msgid>[^ ]+) (?<extradata>(\[(.*?)\]|-)) "
                  r"(?<message>.+)$"),
        ("Time_Key", "time"),
        ("Time_Format", "%Y-%m-%dT%H:%M:%S.%L%z"),
        ("Time_Keep", "On"),
    ),
    "syslog-rfc3164-local": (
        ("Format", "regex"),
        ("Regex", r"^\<(?<pri>[0-9]+)\>(?<time>[^ ]* {1,2}[^ ]* [^ ]*) "
                  r"(?<ident>[a-zA-Z0-9_\/\.\-]*)(?:\[(?<pid>[0-9]+)\])?(?:[^\:]*\:)? "
                  r"*(?<message>.*)$"),
        ("Time_Key", "time"),
        ("Time_Format", "%b %d %H:%M:%S"),
        ("Time_Keep", "On"),
    ),
    "syslog-rfc3164": (
        ("Format", "regex"),
        ("Regex", r"/^\<(?<pri>[0-9]+)\>(?<time>[^ ]* {1,2}[^ ]* [^ ]*) (?<host>[^ ]*) "
                  r"(?<ident>[a-zA-Z0-9_\/\.\-]*)(?:\[(?<pid>[0-9]+)\])?(?:[^\:]*\:)? "
                  r"*(?<message>.*)$/"),
        ("Time_Key", "time"),
        ("Time_Format", "%b %d %H:%M:%S"),
        ("Time_Keep", "On"),
    ),
}


def parser(context, name):
    """The parser called ``name``: the config's, else the stock one built for ``context``
    (its log carries the parser's lines). KeyError when neither exists."""
    try:
        return context.parser(name)
    except KeyError:
        if name not in STOCK:
            raise
    entries = [Entry("Name", name, SOURCE, 0)]
    entries += [Entry(key, value, SOURCE, 0) for key, value in STOCK[name]]
    cls = plugins.find("parser", dict(STOCK[name])["Format"])
    return cls(context, cls.schema().build(entries, (SOURCE, 0)))
