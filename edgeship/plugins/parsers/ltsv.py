"""Format ltsv: ``label:value<TAB>label:value`` (http://ltsv.org, flb_parser_ltsv.c).

- A label is ``[0-9A-Za-z_.-]+`` and must be followed by ':'; the value runs to the next
  tab, CR or LF (so it may hold ':'). An empty value stays "".
- Parsing stops at a line break, at two tabs in a row, or at a label followed by anything
  but ':'. A text without any field does not parse.
- Time_Key: a value that does not parse makes the whole text fail, as in logfmt.
- Types converts the listed labels.
"""
import re

from edgeship.plugins.parsers._base import Parser, put

_FIELD = re.compile(r"([0-9A-Za-z_.\-]*):([^\x00\t\n\r]*)")


class LtsvParser(Parser):
    format = "ltsv"

    def parse(self, text):
        record = {}
        time_ns = None
        time_field = self.time_key if self.time_format is not None else None
        pos = 0
        end = len(text)
        while pos < end:
            match = _FIELD.match(text, pos)
            if match is None:
                break
            label, value = match.groups()
            pos = match.end()
            if label:
                if label == time_field and value:
                    time_ns = self.lookup_time_or_fail(value)
                    if time_ns is None:
                        return None
                    if not self.time_keep:
                        label = None
                if label is not None:
                    if self.types and label in self.types:
                        value = self.cast(label, value)
                    put(record, label, value)
            if pos < end and text[pos] == "\t":
                pos += 1
            if pos < end and text[pos] in "\r\n":
                break
        if not record:
            self.failed += 1
            return None
        if self.decoders is not None:
            record = self.decoders.apply(record)
        return time_ns, record


PLUGIN = LtsvParser
