"""throttle filter: drop records above a rate, over a sliding window (filter_throttle).

The window has ``Window`` panes; every ``Interval`` a new pane (count 0) replaces the
oldest. A record is dropped when (records counted in the window / Window) >= Rate,
otherwise it is counted in the newest pane. As in Fluent Bit 5.1.1, a Rate not above 1
means 1 and a Window not above 1 means 5.
"""
import math
import time

from edgeship.core.schema import Option
from edgeship.engine.plugin import Filter

DEFAULT_WINDOW = 5


class ThrottleFilter(Filter):
    name = "throttle"
    description = "Throttle messages using sliding window algorithm"
    options = (
        Option("Rate", "float", "1", help="records allowed per interval, on average"),
        Option("Window", "int", "5", help="number of intervals in the sliding window"),
        Option("Interval", "time", "1", above=0, attr="interval",
               help="length of one pane: 1s, 0.5s, 2m, 1h, 1d"),
        Option("Print_Status", "bool", "false", help="log the current rate every interval"),
    )

    def configure(self):
        rate, window = self.conf["rate"], self.conf["window"]
        self.rate = rate if rate > 1 else 1.0
        self.size = window if window > 1 else DEFAULT_WINDOW
        self.panes = [0] * self.size
        self.newest = 0
        self.total = 0
        self.next_tick = time.monotonic() + self.interval

    def _advance(self, now):
        """Open a new pane for every interval that has passed since the last one."""
        ticks = int((now - self.next_tick) // self.interval) + 1
        self.next_tick += ticks * self.interval
        if ticks >= self.size:
            self.panes = [0] * self.size
            self.total = 0
        else:
            for _ in range(ticks):
                self.newest = (self.newest + 1) % self.size
                self.total -= self.panes[self.newest]
                self.panes[self.newest] = 0
        if self.conf["print_status"]:
            self.log.info("limit is %0.2f per %ss with window size of %d, current rate is: "
                          "%d per interval", self.rate, self.interval, self.size,
                          self.total // self.size)

    def filter(self, tag, events):
        now = time.monotonic()
        if now >= self.next_tick:
            self._advance(now)
        # Records allowed while the window average stays under the rate.
        room = min(len(events), max(0, math.ceil(self.rate * self.size - self.total)))
        kept = events if room == len(events) else events[:room]
        self.panes[self.newest] += room
        self.total += room
        self.dropped += len(events) - room
        return kept


PLUGIN = ThrottleFilter
