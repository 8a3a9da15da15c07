"""flowcounter output: counts records and their bytes per time window and prints each
window on standard output when it is over (out_flowcounter).

Kept from Fluent Bit 5.1.1 (lines checked on the real binary, tests/test_out_flowcounter.py):
``Unit`` second, minute (the default), hour or day is the window's length (an unknown unit
counts by minute, with a warning here where Fluent Bit says nothing); the windows are a ring
of ``Flush / unit + 1`` (truncated) windows ending at the output's start time + 1, 2...
units. A record counts in the window whose end is at most one unit after its time; the time
is the moment it is flushed, or with ``event_based on`` the record's own time, whole
seconds. Its bytes are its entry's size in the chunk (``[[time, metadata], record]`` as
msgpack). A record later than every window closes the oldest, prints it and moves it one
ring's length later, until one takes the record; a record earlier than the oldest window is
skipped with a warning (``out of range. Skip the record``). A window is printed as:

    [out_flowcounter] [END, {"counts":N, "bytes":B, "counts/UNIT":N/T, "bytes/UNIT":B/T }]

(END its end in seconds since the epoch, T the unit in seconds, integer divisions). The
chunk is always delivered: the counts are all this output keeps.

Differences: lines are written when the flush that closes their window ends (Fluent Bit's
stdout is buffered by the C library: through a pipe they show up in 4 KB blocks or at
exit). With ``event_based on``, a record more than MAX_WINDOWS windows later than the
newest one is skipped with the same warning: Fluent Bit would print every empty window up
to it, for a clock gone wrong millions of lines in one flush.
"""
import asyncio
import time

from edgeship.codecs import entries
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import OK, Output
from edgeship.plugins.outputs.stdout import warn_stdout_closed, write_stdout

UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
MAX_WINDOWS = 100000
_NS = 1000000000


class FlowCounter:
    """The windows of one output: ``count(t, size)`` a record at ``t`` (whole seconds) of
    ``size`` bytes; returns the lines of the windows it closed, or None when ``t`` is out
    of range (the record is skipped)."""

    def __init__(self, unit, tick, flush, base):
        self.unit = unit
        self.tick = tick
        self.size = int(flush / tick + 1)
        self.until = [base + tick * i for i in range(self.size)]
        self.counts = [0] * self.size
        self.bytes = [0] * self.size
        self.index = 0

    def _seek(self, t):
        i = self.index
        while True:
            if 0 <= self.until[i] - t <= self.tick:
                return i
            i = (i + 1) % self.size
            if i == self.index:
                return None

    def line(self, i):
        tick, unit, counts, size = self.tick, self.unit, self.counts[i], self.bytes[i]
        return ('[out_flowcounter] [%d, {"counts":%d, "bytes":%d, "counts/%s":%d, '
                '"bytes/%s":%d }]\n' % (self.until[i], counts, size, unit, counts // tick,
                                        unit, size // tick))

    def count(self, t, size):
        oldest = self.until[self.index]
        if t < oldest - self.tick or t > oldest + self.tick * (self.size + MAX_WINDOWS):
            return None
        lines = []
        i = self._seek(t)
        while i is None:
            j = self.index
            lines.append(self.line(j))
            self.counts[j] = self.bytes[j] = 0
            self.until[j] += self.tick * self.size
            self.index = (j + 1) % self.size
            i = self._seek(t)
        self.counts[i] += 1
        self.bytes[i] += size
        return lines


class FlowcounterOutput(Output):
    name = "flowcounter"
    description = "FlowCounter"
    options = (
        Option("Unit", help="window length: second, minute (default), hour or day"),
        Option("event_based", "bool", "false",
               help="count by the records' own times instead of the flush time"),
    )

    def configure(self):
        unit = (self.conf["unit"] or "minute").lower()
        if unit not in UNITS:
            self.context.tolerate(ConfigError(
                "flowcounter: unknown unit '%s', counting by minute" % self.conf["unit"],
                key="unit"))
            unit = "minute"
        self.event_based = self.conf["event_based"]
        self.reads_records = self.event_based
        self.counter = FlowCounter(unit, UNITS[unit], self.context.flush_interval,
                                   int(time.time()))
        self.log.debug('unit is "%s"', unit)
        self.log.debug("buffer size=%d", self.counter.size)

    def summary(self):
        return "unit=%s" % self.counter.unit

    async def flush(self, chunk):
        bounds = entries.offsets(chunk.payload)
        sizes = [end - start for start, end in zip(bounds, bounds[1:])]
        if self.event_based:
            times = [time_ns // _NS for time_ns, _ in chunk.events()]
        else:
            times = None
        lines = []
        skipped = 0
        for n, size in enumerate(sizes):
            t = times[n] if times is not None else int(time.time())
            closed = self.counter.count(t, size)
            if closed is None:
                skipped += 1
            else:
                lines += closed
        if skipped:
            self.log.warn("out of range. Skip the record (%d records)", skipped)
        if lines and not await asyncio.to_thread(write_stdout, "".join(lines).encode()):
            warn_stdout_closed(self)
        return OK


PLUGIN = FlowcounterOutput
