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
        self.simple = all(len(numbers) == 1 for _, numbers in self.fields)

    def parse(self, text):
        match = self.regex.search(text)
        if match is None or not self.has_groups:
            self.failed += 1
            return None
        values = match.groups()
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
                if self.simple:
                    record[name] = value
                else:
                    put(record, name, value)
        if self.decoders is not None:
            record = self.decoders.apply(record)
        return time_ns, record


PLUGIN = RegexParser
