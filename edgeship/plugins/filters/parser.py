"""parser filter: parse one field of each record with [PARSER]s (filter_parser).

Behaviour of Fluent Bit 5.1.1:
- Key_Name is a top-level key, or a record accessor when it starts with '$'. Only string
  values are parsed; anything else leaves the record unchanged.
- Parser lines are tried in order; the first that parses wins. If none does, the record
  is unchanged.
- Without Reserve_Data the record becomes the parsed fields alone (plus the source field
  when Preserve_Key is on). With Reserve_Data the other fields follow the parsed ones,
  and the source field too when Preserve_Key is on.
- A time found by the parser replaces the record time.
"""
from edgeship.core.accessor import accessor
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import Filter


def append(record, key, value):
    """Add after the parsed fields; a key the parser also produced takes the later value."""
    record.pop(key, None)
    record[key] = value


class ParserFilter(Filter):
    name = "parser"
    description = "Parse events"
    options = (
        Option("Key_Name", required=True, help="field to parse ($a['b'] allowed)"),
        Option("Parser", multiple=True, help="parser name; several are tried in order"),
        Option("Reserve_Data", "bool", "false", help="keep the other fields of the record"),
        Option("Preserve_Key", "bool", "false", help="keep the parsed field too"),
        Option("Unescape_Key", help="deprecated, ignored"),
    )

    def configure(self):
        key_name = self.conf["key_name"]
        self.key = key_name
        self.acc = None
        if key_name.startswith("$"):
            try:
                self.acc = accessor(key_name)
            except ValueError as exc:
                raise ConfigError("parser: invalid record accessor pattern: %s" % exc,
                                  key="key_name")
        self.parsers = []
        for name in self.conf["parser"]:
            try:
                self.parsers.append(self.context.parser(name))
            except KeyError:
                self.log.error("requested parser '%s' not found", name)
        if not self.parsers:
            raise ConfigError("parser: Invalid 'parser': no Parser line names a known "
                              "[PARSER]", key="parser")
        self.reserve = self.conf["reserve_data"]
        self.preserve = self.conf["preserve_key"]

    def _parse(self, text):
        for parser in self.parsers:
            try:
                result = parser.parse(text)
            except Exception as exc:  # a parser bug must not lose the record
                self.failures += 1
                self.last_error = exc
                continue
            if result is not None:
                return result
        return None

    def filter(self, tag, events):
        self.failures = 0
        key, acc = self.key, self.acc
        out = []
        for event in events:
            time_ns, record = event
            value = acc.get(record) if acc is not None else record.get(key)
            result = self._parse(value) if isinstance(value, str) else None
            if result is None:
                out.append(event)
                continue
            parsed_time, parsed = result
            new = dict(parsed)
            if self.reserve:
                for k, v in record.items():
                    if acc is None and k == key and not self.preserve:
                        continue
                    append(new, k, v)
            elif self.preserve and acc is None:
                append(new, key, value)
            if parsed_time:
                time_ns = parsed_time
            out.append((time_ns, new))
        if self.failures:
            self.log.error("%d parse attempt(s) raised, records kept: %r", self.failures,
                           self.last_error)
        return out


PLUGIN = ParserFilter
