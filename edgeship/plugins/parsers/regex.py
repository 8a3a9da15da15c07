"""Format regex: named captures of an Onigmo (Ruby) regex become fields (flb_parser_regex.c).

- The regex is searched, not anchored; see edgeship.text.onigmo for the Ruby -> Python rules.
- Only named captures become fields, in the order the names appear; all values are strings
  until Types converts them. A pattern without any capture group never parses.
- A group that did not take part, or captured nothing, is an empty value: dropped when
  Skip_Empty_Values is on (the default), kept as "" when off.
- Time_Key: parsed with Time_Format and removed unless Time_Keep; a time that does not
  parse is warned about and its field dropped, and the record gets the current time.
"""
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.plugins.parsers._base import Parser, put
from edgeship.text.onigmo import capture_fields, compile_onigmo


class RegexParser(Parser):
    format = "regex"
    options = (Option("Regex", required=True, help="Onigmo/Ruby regex with (?<name>...) groups"),)

    def __init__(self, context, conf):
        Parser.__init__(self, context, conf)
        try:
            self.regex = compile_onigmo(conf["regex"])
        except ValueError as exc:
            raise ConfigError("[parser:%s] Invalid regex pattern %s: %s"
                              % (self.name, conf["regex"], exc), key="regex")
        self.fields = [(name, [n - 1 for n in numbers])
                       for name, numbers in capture_fields(self.regex)]
        self.has_groups = self.regex.groups > 0
        self.skip_empty = conf.get("skip_empty_values", True)
        # Each name one group (the usual case): the record is built in one comprehension.
        self.single = [(name, numbers[0]) for name, numbers in self.fields] \
            if all(len(numbers) == 1 for _, numbers in self.fields) else None

    def parse(self, text):
        match = self.regex.search(text)
        if match is None or not self.has_groups:
            self.failed += 1
            return None
        values = match.groups()
        if self.single is None:
            time_ns, record = self._fields(values)
        else:
            if self.skip_empty:
                record = {name: values[number] for name, number in self.single
                          if values[number]}
            else:
                record = {name: values[number] or "" for name, number in self.single}
            time_ns = None
            value = record.get(self.time_field) if self.time_field is not None else None
            if value is not None:
                time_ns = self.lookup_time(value)
                if time_ns is None or not self.time_keep:
                    del record[self.time_field]
            types = self.types
            if types:
                for name in record:
                    if name in types:
                        record[name] = self.cast(name, record[name])
        if self.decoders is not None:
            record = self.decoders.apply(record)
        return time_ns, record

    def _fields(self, values):
        """(time_ns, record) when a name has several groups: each value in group order, a
        later one replacing an earlier one at its own position."""
        record = {}
        time_ns = None
        skip_empty = self.skip_empty
        time_field = self.time_field
        types = self.types
        for name, numbers in self.fields:
            for number in numbers:
                value = values[number]
                if not value:
                    if skip_empty:
                        continue
                    value = ""
                if name == time_field:
                    parsed = self.lookup_time(value)
                    if parsed is None:
                        continue
                    time_ns = parsed
                    if not self.time_keep:
                        continue
                if types and name in types:
                    value = self.cast(name, value)
                put(record, name, value)
        return time_ns, record


PLUGIN = RegexParser
