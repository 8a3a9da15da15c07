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
from edgeship.plugins.parsers._base import Parser, put, unescape_c

_PAIR = re.compile(r'([^\x00-\x20="]+)(?:=(?:"((?:[^"\\]|\\[\s\S])*\\?)("?)|([^\x00-\x20="]*)))?')
_GARBAGE = re.compile(r'[\x00-\x20="]*')


class LogfmtParser(Parser):
    format = "logfmt"
    options = (Option("logfmt_no_bare_keys", "bool", "false",
                      help="a text holding a key without '=value' does not parse"),)

    def __init__(self, conf):
        Parser.__init__(self, conf)
        self.no_bare_keys = conf.get("logfmt_no_bare_keys", False)

    def parse(self, text):
        record = {}
        time_ns = None
        time_field = self.time_key if self.time_format is not None else None
        pos = 0
        end = len(text)
        while pos < end:
            pos = _GARBAGE.match(text, pos).end()
            if pos >= end:
                break
            match = _PAIR.match(text, pos)
            key, quoted, _, plain = match.groups()
            pos = match.end()
            has_equals = quoted is not None or plain is not None
            if quoted is not None:
                value = unescape_c(quoted) if quoted else ""
            elif plain:
                value = plain
            else:
                if self.no_bare_keys and not has_equals:
                    self.failed += 1
                    return None
                value = True
            if key == time_field and isinstance(value, str) and value:
                time_ns = self.lookup_time_or_fail(value)
                if time_ns is None:
                    return None
                if not self.time_keep:
                    continue
            if self.types and key in self.types:
                value = self.cast(key, value if isinstance(value, str) else "")
            put(record, key, value)
            # A pair directly followed by a line break ends the record.
            if pos < end and text[pos] in "\r\n":
                break
        if not record:
            # Fluent Bit counts the fields it will write: a text holding only a time
            # that is not kept does not parse either.
            self.failed += 1
            return None
        if self.decoders is not None:
            record = self.decoders.apply(record)
        return time_ns, record


PLUGIN = LogfmtParser
