"""nest filter: move keys under a map (nest) or a map's keys up to the top level (lift).

Quirks kept from Fluent Bit 5.1.1:
- Wildcard (repeatable) is an exact, case-sensitive name, or a prefix when it ends in '*'.
- nest: the new map goes at the end of the record; a record with no matching key is
  unchanged.
- lift: every top-level key named Nested_under whose value is a map is removed and its
  keys are appended at the end (an empty map just disappears); a value that is not a map
  is left alone with a warning.
- Add_prefix / Remove_prefix rename the moved keys; they are mutually exclusive.
- A moved key that already exists keeps only the last value at the last position, as
  Fluent Bit's JSON output does with the duplicate it writes.
"""
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import Filter


def name_matcher(patterns):
    """True for keys equal to a pattern, or starting with one that ends in '*'."""
    exact = set(p for p in patterns if not p.endswith("*"))
    prefixes = tuple(p[:-1] for p in patterns if p.endswith("*"))

    def matches(key):
        return isinstance(key, str) and (key in exact or (bool(prefixes)
                                                         and key.startswith(prefixes)))
    return matches


class NestFilter(Filter):
    name = "nest"
    description = "nest events by specified field values"
    options = (
        Option("Operation", choices=("nest", "lift"), required=True,
               help="nest: move keys under Nest_under; lift: move Nested_under's keys up"),
        Option("Wildcard", multiple=True, help="key to nest (trailing * for a prefix)"),
        Option("Wildcard_exclude", multiple=True,
               help="key never to nest (trailing * for a prefix)"),
        Option("Nest_under", help="nest: the map the keys go under"),
        Option("Nested_under", help="lift: the map whose keys are lifted"),
        Option("Add_prefix", help="prefix added to the moved keys"),
        Option("Prefix_with", help="old name of Add_prefix"),
        Option("Remove_prefix", help="prefix removed from the moved keys"),
    )

    def configure(self):
        conf = self.conf
        self.operation = conf["operation"]
        add = conf["add_prefix"] or conf["prefix_with"]
        remove = conf["remove_prefix"]
        if add and remove:
            raise ConfigError("nest: Add_prefix and Remove_prefix are exclusive",
                              key="remove_prefix")
        self.add_prefix, self.remove_prefix = add, remove
        if self.operation == "nest":
            self.key = conf["nest_under"]
            if not self.key:
                raise ConfigError("nest: Operation nest needs Nest_under", key="nest_under")
            if not conf["wildcard"]:
                raise ConfigError("nest: Operation nest needs at least one Wildcard",
                                  key="wildcard")
            self.selected = name_matcher(conf["wildcard"])
            self.excluded = name_matcher(conf["wildcard_exclude"])
        else:
            self.key = conf["nested_under"]
            if not self.key:
                raise ConfigError("nest: Operation lift needs Nested_under",
                                  key="nested_under")

    def _rename(self, key):
        if self.add_prefix:
            return self.add_prefix + key
        if self.remove_prefix and key.startswith(self.remove_prefix):
            return key[len(self.remove_prefix):]
        return key

    def _nest(self, record):
        selected, excluded = self.selected, self.excluded
        moved = [k for k in record if selected(k) and not excluded(k)]
        if not moved:
            return record
        inner = {}
        for k in moved:
            inner[self._rename(k)] = record.pop(k)
        record.pop(self.key, None)
        record[self.key] = inner
        return record

    def _lift(self, record):
        if self.key not in record:
            return record
        inner = record[self.key]
        if not isinstance(inner, dict):
            self.not_a_map += 1
            return record
        del record[self.key]
        for k, v in inner.items():
            if isinstance(k, str):
                k = self._rename(k)
            record.pop(k, None)
            record[k] = v
        return record

    def filter(self, tag, events):
        self.not_a_map = 0
        apply = self._nest if self.operation == "nest" else self._lift
        out = [(time_ns, apply(record)) for time_ns, record in events]
        if self.not_a_map:
            self.log.warn("value of key '%s' is not a map in %d record(s); will not attempt "
                          "to lift from there", self.key, self.not_a_map)
        return out


PLUGIN = NestFilter
