"""record_modifier filter: append fixed fields, remove or allow-list keys (filter_record_modifier).

Quirks kept from Fluent Bit 5.1.1:
- ``Record KEY VALUE`` takes exactly two words; a double-quoted value may hold spaces. A
  value of several unquoted words is rejected with an error and that Record is ignored
  (the run goes on).
- A Record for a key the record already has is appended again; Fluent Bit's JSON output
  then keeps the last value at the last position, which is what this filter produces.
- Remove_key and Allowlist_key (alias Whitelist_key) compare case-insensitively; a trailing
  ``*`` makes the name a prefix. The two are mutually exclusive.
- A record left with no key at all (and nothing to add) is dropped, as Fluent Bit drops it.
"""
import uuid

from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import Filter
from edgeship.plugins.filters._tokens import split_tokens


def key_matcher(patterns):
    """A predicate for Remove_key / Allowlist_key names (case-insensitive, ``*`` prefix)."""
    exact = set()
    prefixes = []
    for pattern in patterns:
        if pattern.endswith("*"):
            prefixes.append(pattern[:-1].lower())
        else:
            exact.add(pattern.lower())
    prefixes = tuple(prefixes)

    def matches(key):
        if not isinstance(key, str):
            return False
        low = key.lower()
        return low in exact or (bool(prefixes) and low.startswith(prefixes))
    return matches


class RecordModifierFilter(Filter):
    name = "record_modifier"
    description = "modify record"
    options = (
        Option("Record", multiple=True, help="KEY VALUE: append this field to every record"),
        Option("Remove_key", multiple=True, help="remove this key (trailing * for a prefix)"),
        Option("Allowlist_key", multiple=True, aliases=("Whitelist_key",),
               help="keep only these keys (trailing * for a prefix)"),
        Option("Uuid_key", help="add a random UUIDv4 under this key"),
    )

    def configure(self):
        self.records = []
        for key, value, entry in self.conf.ordered:
            if key != "record":
                continue
            words = split_tokens(value, 2)
            if len(words) != 2:
                self.log.error("invalid record parameters, expects 'KEY VALUE' "
                               "(%s:%s: Record %s), ignored", entry.file, entry.line, value)
                continue
            self.records.append((words[0], words[1]))
        removes, allows = self.conf["remove_key"], self.conf["allowlist_key"]
        if removes and allows:
            raise ConfigError("record_modifier: remove_keys and allowlist_keys are exclusive "
                              "with each other", key="remove_key")
        self.remove = key_matcher(removes) if removes else None
        self.allow = key_matcher(allows) if allows else None
        self.uuid_key = self.conf["uuid_key"]

    def filter(self, tag, events):
        remove, allow, records, uuid_key = self.remove, self.allow, self.records, self.uuid_key
        out = []
        for time_ns, record in events:
            if remove is not None:
                record = {k: v for k, v in record.items() if not remove(k)}
            elif allow is not None:
                record = {k: v for k, v in record.items() if allow(k)}
            for key, value in records:
                record.pop(key, None)
                record[key] = value
            if uuid_key:
                record.pop(uuid_key, None)
                record[uuid_key] = str(uuid.uuid4())
            if record:
                out.append((time_ns, record))
        self.dropped += len(events) - len(out)
        return out


PLUGIN = RecordModifierFilter
