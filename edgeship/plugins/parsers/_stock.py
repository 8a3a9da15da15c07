"""Fluent Bit's stock parsers (its conf/parsers.conf, shipped as edgeship/etc/parsers.conf)
by name without a Parsers_File, for the inputs that default to one: syslog
(``syslog-rfc5424`` for tcp/udp, ``syslog-rfc3164-local`` for the unix modes) and the tcp/udp
``Parser``. A parser the config loads under the same name wins. Fluent Bit needs parsers.conf
loaded (``-R``) for the syslog input to start ("parser not set"); edgeship also starts
without it.
"""
from edgeship.core.errors import ConfigError


def required(context, name):
    """``parser(context, name)``, a ConfigError naming the ``Parser`` key when it is not
    there."""
    try:
        return parser(context, name)
    except KeyError:
        raise ConfigError("requested parser '%s' not found" % name, key="parser")


def parser(context, name):
    """The parser called ``name``: the config's, else the stock one. KeyError when neither
    exists."""
    try:
        return context.parser(name)
    except KeyError:
        return context.stock_parser(name)
