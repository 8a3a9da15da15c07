"""exit output: ends the process, gracefully, after a number of flushes, records or seconds
(out_exit; for tests and one-shot pipelines).

Kept from Fluent Bit 5.1.1: ``Flush_Count``, ``Record_Count`` and ``Time_Count`` (seconds
since start, checked when a flush comes), each -1 (off) by default; with none set it ends
after one flush. Records and metrics are taken and acknowledged (nothing is written);
records count only for log chunks. The shutdown is the graceful one (``Grace``), with exit
status 0.

Difference: the flush that brings the record count to its end ends the process (Fluent
Bit's returns early and waits for one more flush, which may never come).
"""
import time

from edgeship.core.schema import Option
from edgeship.engine.plugin import LOGS, METRICS, OK, Output


class ExitOutput(Output):
    name = "exit"
    description = "Exit after a number of flushes (test purposes)"
    reads_records = False
    signals = (LOGS, METRICS)
    options = (
        Option("Flush_Count", "int", "-1", help="flushes before exiting"),
        Option("Record_Count", "int", "-1", help="records received before exiting"),
        Option("Time_Count", "int", "-1",
               help="seconds before exiting (checked when a flush comes)"),
    )

    def configure(self):
        conf = self.conf
        self.flushes = conf["flush_count"]
        self.records = conf["record_count"]
        self.seconds = conf["time_count"]
        if self.flushes == -1 and self.records == -1 and self.seconds == -1:
            self.flushes = 1
        self.started = time.monotonic()
        self.running = True

    async def flush(self, chunk):
        if not self.running:
            return OK
        if self.flushes > 0:
            self.flushes -= 1
        if self.records > 0 and chunk.signal == LOGS:
            self.records = max(0, self.records - chunk.count)
        if self.flushes == 0 or self.records == 0 or (
                self.seconds > 0 and time.monotonic() - self.started > self.seconds):
            self.running = False
            self.log.info("exiting after the flush of %d record(s) of %s", chunk.count,
                          chunk.tag)
            self.context.request_exit(0)
        return OK


PLUGIN = ExitOutput
