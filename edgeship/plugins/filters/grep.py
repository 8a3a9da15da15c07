"""grep filter: keep or drop records by regexes on their values (filter_grep).

Quirks kept from Fluent Bit 5.1.1:
- Logical_Op legacy (the default) checks the rules in config order: an Exclude that matches
  drops the record, a Regex that does not match drops it, and the first Regex that matches
  keeps it at once (later rules are not looked at).
- A regex searches (unanchored); only string values can match, a missing or non-string
  value never does.
- ``Regex KEY REGEX``: the regex is the rest of the line after one space, spaces included.
"""
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import Filter
from edgeship.plugins.filters._rules import grep_rule, legacy_decision, rule_matches


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
        self.rules = [grep_rule("grep", key == "regex", value, entry)
                      for key, value, entry in self.conf.ordered]
        if self.op != "legacy" and len(set(r[0] for r in self.rules)) > 1:
            raise ConfigError("grep: Both 'regex' and 'exclude' are set: Logical_Op %s "
                              "needs rules of one kind" % self.conf["logical_op"].upper(),
                              key="logical_op")

    def _one_top_level_rule(self, events):
        """The usual grep, one rule on a top-level key, as one comprehension: with a single
        rule every Logical_Op means the same (a Regex keeps matches, an Exclude drops them)."""
        is_regex, acc, regex = self.rules[0]
        key, search = acc.key, regex.search
        if is_regex:
            return [e for e in events
                    if type(v := e[1].get(key)) is str and search(v) is not None]
        return [e for e in events
                if not (type(v := e[1].get(key)) is str and search(v) is not None)]

    def _legacy(self, record):
        return legacy_decision(self.rules, record)

    def _and_or(self, record):
        want = self.op == "or"  # OR stops at the first match, AND at the first miss
        found = False
        for _, acc, regex in self.rules:
            found = rule_matches(acc, regex, record)
            if found == want:
                break
        all_regex = self.rules[0][0]  # configure() refuses mixed kinds here
        return found if all_regex else not found

    def filter(self, tag, events):
        if not self.rules:
            return events
        if len(self.rules) == 1 and not self.rules[0][1].path:
            kept = self._one_top_level_rule(events)
        else:
            decide = self._legacy if self.op == "legacy" else self._and_or
            kept = [event for event in events if decide(event[1])]
        self.dropped += len(events) - len(kept)
        return kept


PLUGIN = GrepFilter
