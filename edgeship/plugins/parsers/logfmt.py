"""Format logfmt: ``key=value key="quoted value" bare_key`` (flb_parser_logfmt.c).

- A key is a run of characters above space other than '=' and '"'; anything else between
  pairs is skipped. ``key=`` and a bare ``key`` give true; ``key=""`` gives "".
- A quoted value runs to the next unescaped '"' (or the end) and is unescaped (\\" \\n
  \\uXXXX ...). An unquoted value stops at the first space, '=' or '"'.
- Parsing stops at the end of the first line. A text without any key does not parse.
- logfmt_no_bare_keys on: a text holding a bare key does not parse.
- Time_Key: a value that does not parse makes the whole text fail (Fluent Bit logs an
  error), unlike regex and json.
- Types converts the listed keys. Not in Fluent Bit: keys Types does not list keep their
  usual values (Fluent Bit turns them into raw strings once Types is set).
"""
import re

from edgeship.core.schema import Option
from edgeship.plugins.parsers._base import Parser, unescape_c

_PAIR = re.compile(r'([^\x00-\x20="]+)(?:=(?:"((?:[^"\\]|\\[\s\S])*\\?)("?)|([^\x00-\x20="]*)))?')
_GARBAGE = re.compile(r'[\x00-\x20="]*')


class LogfmtParser(Parser):
    format = "logfmt"
    options = (Option("logfmt_no_bare_keys", "bool", "false",
                      help="a text holding a key without '=value' does not parse"),)

    def __init__(self, context, conf):
        Parser.__init__(self, context, conf)
        self.no_bare_keys = conf.get("logfmt_no_bare_keys", False)

    def parse(self, text):
        fields = []
        pos = 0
        end = len(text)
        while pos < end:
            pos = _GARBAGE.match(text, pos).end()
            if pos >= end:
                break
            match = _PAIR.match(text, pos)
            key, quoted, _, plain = match.groups()
            pos = match.end()
            if quoted is not None:
                value = unescape_c(quoted) if quoted else ""
            elif plain:
                value = plain
            elif self.no_bare_keys and plain is None:
                fields.append((key, None))  # fails the text, after the fields before it
                break
            else:
                value = True
            fields.append((key, value))
            # A pair directly followed by a line break ends the record.
            if pos < end and text[pos] in "\r\n":
                break
        return self.fields_event(fields)


PLUGIN = LogfmtParser
