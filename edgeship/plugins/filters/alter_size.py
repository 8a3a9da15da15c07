"""alter_size filter: make batches bigger or smaller, a test helper (filter_alter_size).

Behaviour of Fluent Bit 5.1.1 kept (checked on the real binary), per batch of records (a
chunk append in Fluent Bit):
- ``Add N`` passes the records on and appends one record, ``{"key": "alter_size N-1"}``,
  stamped with the current time: Fluent Bit begins N records but each begin discards the one
  before, so only the last is committed.
- ``Remove N`` keeps the first records and drops the last N; a batch of N records or fewer
  is dropped whole.
- ``Add`` and ``Remove`` both above 0 is an error at start. The numbers are read as C's
  atoi reads them (``2abc`` is 2).

Difference: with neither above 0 (the defaults, or negative numbers) the records pass
unchanged, with a warning at start; Fluent Bit 5.1.1 then drops every record.
"""
from edgeship.core.errors import ConfigError
from edgeship.core.events import now_ns
from edgeship.core.schema import Option
from edgeship.engine.plugin import Filter


class AlterSizeFilter(Filter):
    name = "alter_size"
    description = "Alter incoming chunk size"
    options = (
        Option("Add", "int", "0", attr="add",
               help="append one record to each batch ({\"key\": \"alter_size N-1\"})"),
        Option("Remove", "int", "0", attr="remove",
               help="drop the last N records of each batch"),
    )

    def configure(self):
        if self.add > 0 and self.remove > 0:
            raise ConfigError("alter_size: cannot use 'add' and 'remove' at the same time",
                              key="remove")
        if self.add <= 0 and self.remove <= 0:
            self.log.warn("alter_size: neither add nor remove is above 0: records pass "
                          "unchanged (Fluent Bit 5.1.1 drops them all)")
        self.added_key = "alter_size %d" % (self.add - 1)

    def filter(self, tag, events):
        if self.add > 0:
            return events + [(now_ns(), {"key": self.added_key})]
        if self.remove > 0:
            return events[:len(events) - self.remove] if len(events) > self.remove else []
        return events


PLUGIN = AlterSizeFilter
