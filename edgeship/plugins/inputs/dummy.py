"""dummy input: emits a fixed JSON record at a rate (in_dummy). The record is decoded by the
one JSON decoder of every input (edgeship.codecs.untrusted: a key given twice keeps the last
value at the later position, as Fluent Bit's JSON outputs show it). It runs on the collecting
inputs' timer (inputs/_interval.py) with its own period: Interval_Sec/NSec, else 1 / Rate."""
from edgeship.codecs import untrusted
from edgeship.core import events as ev
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.plugins.inputs._interval import IntervalInput, interval_seconds


class DummyInput(IntervalInput):
    name = "dummy"
    description = "Generate dummy data"
    options = (
        Option("Dummy", default='{"message":"dummy"}', help="the record, as a JSON map"),
        Option("Metadata", default="{}", compat=True, help="edgeship records carry no metadata"),
        Option("Rate", "int", "1", help="emissions per second"),
        Option("Interval_Sec", "int", "0", help="seconds between emissions (overrides Rate)"),
        Option("Interval_NSec", "int", "0", help="nanoseconds between emissions (with Interval_Sec)"),
        Option("Samples", "int", "0", help="emissions in all; 0 means no end"),
        Option("Copies", "int", "1", help="records per emission"),
        Option("Start_time_sec", "int", "-1", help="timestamp of the first record, seconds"),
        Option("Start_time_nsec", "int", "-1", help="timestamp of the first record, nanoseconds"),
        Option("Fixed_Timestamp", "bool", "off", help="every record keeps the start time"),
        Option("Flush_On_Startup", "bool", "false", help="emit once at start, before the first interval"),
    )

    def configure(self):
        try:
            record = untrusted.loads(self.conf["dummy"])
        except ValueError as exc:
            raise ConfigError("dummy: 'Dummy' is not valid JSON: %s" % exc, key="dummy")
        if not isinstance(record, dict):
            raise ConfigError("dummy: 'Dummy' must be a JSON map", key="dummy")
        self.text = self.conf["dummy"]
        self.size = len(self.text.encode())
        if self.conf["interval_sec"] > 0 or self.conf["interval_nsec"] > 0:
            self.interval = interval_seconds(self.conf)
        elif self.conf["rate"] > 0:
            self.interval = 1.0 / self.conf["rate"]
        else:
            raise ConfigError("dummy: Rate must be greater than 0", key="rate")
        sec, nsec = self.conf["start_time_sec"], self.conf["start_time_nsec"]
        self.start_ns = None
        if sec >= 0 or nsec >= 0:
            self.start_ns = max(sec, 0) * ev.NS + max(nsec, 0)
            if not ev.in_range(self.start_ns):
                raise ConfigError("dummy: start_time_sec %d + start_time_nsec %d is past 2106 "
                                  "(%d s), the last time a record can carry"
                                  % (sec, nsec, ev.TIME_LIMIT - 1), key="start_time_sec")
        self.started_ns = None      # when the first run() began
        self.sent = 0               # emissions so far

    @property
    def period(self):
        return self.interval

    def _batch(self, started_ns):
        now = ev.now_ns()
        if self.start_ns is not None:
            now = self.start_ns if self.conf["fixed_timestamp"] else self.start_ns + (now - started_ns)
        # A fresh dict per record: filters may change records in place.
        return [(now, untrusted.loads(self.text)) for _ in range(self.conf["copies"])]

    def _emit(self):
        batch = self._batch(self.started_ns)
        self.context.emit(self.tag, batch, self.size * len(batch))
        self.sent += 1
        samples = self.conf["samples"]
        self.done = 0 < samples <= self.sent

    def start(self):
        # Kept across runs: an input restarted after an error goes on with its Samples count
        # and its timestamps.
        if self.started_ns is None:
            self.started_ns = ev.now_ns()
            if self.conf["flush_on_startup"]:
                self._emit()

    async def tick(self):
        self._emit()


PLUGIN = DummyInput
