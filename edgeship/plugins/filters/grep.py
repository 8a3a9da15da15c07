"""grep filter: keep or drop records by regexes on their values (filter_grep).

Quirks kept from Fluent Bit 5.1.1:
- Logical_Op legacy (the default) checks the rules in config order: an Exclude that matches
  drops the record, a Regex that does not match drops it, and the first Regex that matches
  keeps it at once (later rules are not looked at).
- A regex searches (unanchored); only string values can match, a missing or non-string
  value never does.
- ``Regex KEY REGEX``: the regex is the rest of the line after one space, spaces included.
"""
from edgeship.core.accessor import accessor
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import Filter
from edgeship.plugins.filters._tokens import split_fields
from edgeship.regex import compile_onigmo

KEEP, DROP = True, False


class GrepFilter(Filter):
    name = "grep"
    description = "grep events by specified field values"
    options = (
        Option("Regex", multiple=True,
               help="KEY REGEX: keep records whose KEY ($a['b'] allowed) matches REGEX"),
        Option("Exclude", multiple=True,
               help="KEY REGEX: drop records whose KEY matches REGEX"),
        Option("Logical_Op", default="legacy", choices=("legacy", "and", "or"),
               help="how several rules combine: legacy (first deciding rule), AND or OR"),
    )

    def configure(self):
        self.op = self.conf["logical_op"]
        # (is_regex, value getter, compiled regex) in config order, Regex and Exclude mixed.
        self.rules = []
        for key, value, entry in self.conf.ordered:
            if key not in ("regex", "exclude"):
                continue
            self.rules.append(self._rule(key == "regex", value, entry))
        if self.op != "legacy" and len(set(r[0] for r in self.rules)) > 1:
            raise ConfigError("grep: Both 'regex' and 'exclude' are set: Logical_Op %s "
                              "needs rules of one kind" % self.conf["logical_op"].upper(),
                              key="logical_op")

    def _rule(self, is_regex, value, entry):
        where = (entry.file, entry.line, entry.key)
        words = split_fields(value, 1)
        if len(words) != 2:
            raise ConfigError("grep: invalid regex, expected field and regular expression",
                              *where)
        field, pattern = words
        if not field.startswith("$"):
            field = "$" + field
        try:
            acc = accessor(field)
        except ValueError as exc:
            raise ConfigError("grep: %s" % exc, *where)
        if acc is None:
            raise ConfigError("grep: invalid record accessor '%s'" % field, *where)
        try:
            regex = compile_onigmo(pattern)
        except ValueError as exc:
            raise ConfigError("grep: could not compile regex pattern '%s': %s"
                              % (pattern, exc), *where)
        return is_regex, acc, regex

    @staticmethod
    def _matches(acc, regex, record):
        value = acc.get(record) if acc.path else record.get(acc.key)
        return isinstance(value, str) and regex.search(value) is not None

    def _legacy(self, record):
        for is_regex, acc, regex in self.rules:
            if self._matches(acc, regex, record):
                return is_regex   # Regex match keeps now; Exclude match drops
            if is_regex:
                return DROP
        return KEEP

    def _and_or(self, record):
        found = False
        is_regex = True
        want = self.op == "or"  # OR stops at the first match, AND at the first miss
        for is_regex, acc, regex in self.rules:
            found = self._matches(acc, regex, record)
            if found == want:
                break
        return found if is_regex else not found

    def filter(self, tag, events):
        if not self.rules:
            return events
        decide = self._legacy if self.op == "legacy" else self._and_or
        kept = [event for event in events if decide(event[1])]
        self.dropped += len(events) - len(kept)
        return kept


PLUGIN = GrepFilter
