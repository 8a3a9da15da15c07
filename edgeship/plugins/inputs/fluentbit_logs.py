"""fluentbit_logs input: edgeship's own log lines as records (in_fluentbit_logs).

Each line any part of the pipeline logs (the engine, every instance, the storage, a reload)
becomes ``{"level": "warn", "message": "[tail.0] file not found: /var/log/x.log"}``, stamped
with the line's time, and the lines that came together go out as one batch.

Fluent Bit 5.1.1 behaviour kept: the record's keys and level names (error, warn, info,
debug, trace); the message is the line without its time and level (``[component] text``);
a line is taken when it is written, so each instance's ``Log_Level`` (and the service's)
decides which levels come; the lines logged before the input started (the start-up lines)
come first; no options; at most 1024 lines wait, those beyond are dropped.

Differences: the ``[component]`` of the message is edgeship's, as in its log lines
(``[tail.0]``, ``[engine]``; Fluent Bit: ``[input:tail:tail.0]``); the lines dropped
because 1024 waited are counted in one warning (Fluent Bit drops them silently); what is
logged while this input hands its own records to the pipeline (a filter failing on them) is
written to the log but not taken again, so a line cannot feed itself in a loop (Fluent Bit
takes it; what an output logs when it cannot deliver these records still comes back, once per
attempt, as there); two fluentbit_logs inputs each get every line (Fluent Bit shares the lines
out between them); the lines logged after the input stopped (the end of a shutdown) are not
taken.
"""
import asyncio
import collections
import threading

from edgeship.engine.plugin import Input

# Fluent Bit's FLB_LOG_QUEUE_LIMIT: the lines that may wait for the input.
QUEUE_LIMIT = 1024


class FluentbitLogs(Input):
    name = "fluentbit_logs"
    description = "Fluent Bit internal logs"
    options = ()

    def configure(self):
        self.pending = collections.deque()
        self.dropped = 0
        self._loop = None
        self._loop_thread = None
        self._wake = None
        self._signalled = False
        self.context.tap_log(self._take)

    def _take(self, level, time_ns, text):
        """A log line (on whatever thread wrote it): queued, and the loop woken once."""
        if len(self.pending) >= QUEUE_LIMIT:
            self.dropped += 1
            return
        self.pending.append((time_ns, {"level": level, "message": text}))
        if self._signalled or self._wake is None:
            return
        self._signalled = True
        if threading.get_ident() == self._loop_thread:
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self):
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        while True:
            if not self.pending and not self.stopping:
                await self._wake.wait()
            self._wake.clear()
            self._signalled = False
            if self.pending and not self.stopping:
                await self.context.room()
            self._flush()
            if self.stopping:
                return

    def _flush(self):
        """Every waiting line as one batch."""
        batch = []
        size = 0
        pending = self.pending
        while pending:
            event = pending.popleft()
            size += len(event[1]["message"])
            batch.append(event)
        if batch:
            with self.context.log_muted():
                self.context.emit(self.tag, batch, size)
        dropped, self.dropped = self.dropped, 0
        if dropped:
            self.log.warn("%d log lines dropped: %d were waiting", dropped, QUEUE_LIMIT)

    def stop(self):
        Input.stop(self)
        if self._wake is not None:
            self._wake.set()

    def close(self):
        self.context.untap_log(self._take)


PLUGIN = FluentbitLogs
