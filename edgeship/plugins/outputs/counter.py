"""counter output: prints how many records each chunk held (out_counter, 5.x format).

One line per flush: ``{"ts":1711360801.123456,"serialized_events":N,"log_records":N,"total":2N}``
where ts is the time of the flush. As in Fluent Bit 5.x, ``total`` is serialized_events +
log_records of this chunk (not a running total), and both counts are the number of records
(edgeship has no group markers). The chunk is never decoded: its count is known.
"""
import asyncio
import time

from edgeship.engine.plugin import OK, Output
from edgeship.plugins.outputs.stdout import warn_stdout_closed, write_stdout


class CounterOutput(Output):
    name = "counter"
    description = "Records counter"
    reads_records = False

    async def flush(self, chunk):
        count = chunk.count
        line = (b'{"ts":%.6f,"serialized_events":%d,"log_records":%d,"total":%d}\n'
                % (time.time(), count, count, 2 * count))
        # a stalled stdout must not stall the loop
        if not await asyncio.to_thread(write_stdout, line):
            warn_stdout_closed(self)
        return OK


PLUGIN = CounterOutput
