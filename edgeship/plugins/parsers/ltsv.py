"""Format ltsv: ``label:value<TAB>label:value`` (http://ltsv.org, flb_parser_ltsv.c).

- A label is ``[0-9A-Za-z_.-]+`` and must be followed by ':'; the value runs to the next
  tab, CR or LF (so it may hold ':'). An empty value stays "".
- Parsing stops at a line break, at two tabs in a row, or at a label followed by anything
  but ':'. A text without any field does not parse.
- Time_Key: a value that does not parse makes the whole text fail, as in logfmt.
- Types converts the listed labels.
"""
import re

from edgeship.plugins.parsers._base import Parser

_FIELD = re.compile(r"([0-9A-Za-z_.\-]*):([^\x00\t\n\r]*)")


class LtsvParser(Parser):
    format = "ltsv"

    def parse(self, text):
        fields = []
        pos = 0
        end = len(text)
        while pos < end:
            match = _FIELD.match(text, pos)
            if match is None:
                break
            label, value = match.groups()
            pos = match.end()
            if label:
                fields.append((label, value))
            if pos < end and text[pos] == "\t":
                pos += 1
            if pos < end and text[pos] in "\r\n":
                break
        return self.fields_event(fields)


PLUGIN = LtsvParser
