"""The timer of the collecting inputs (cpu, mem, disk, netif, proc, thermal, health, random,
head, exec): Fluent Bit's collector timer, ``Interval_Sec`` + ``Interval_NSec``.

Kept from Fluent Bit: the first collection comes one interval after the start (never at
start); ticks come at a fixed rate, a tick missed while the loop was busy is skipped, not run
twice; an interval of 0 or less (both options) falls back to 1 second. Each tick's records go
out as one batch, stamped with the collection time.

An input subclasses ``IntervalInput`` and implements ``collect(now_ns) -> [record]`` (plain
reads), or ``tick()`` when a tick awaits something (a connection, a command). ``start()`` runs
before the first tick (again after a restart): the first sample of a rate. Setting ``self.done`` ends the input
(Samples reached, a one-shot command finished).
"""
import asyncio

from edgeship.core import events as ev
from edgeship.core.schema import Option
from edgeship.engine.plugin import Input


def interval_options(sec="1", nsec="0"):
    """The two interval options, with the plugin's defaults."""
    return (Option("Interval_Sec", "int", sec, help="seconds between collections"),
            Option("Interval_NSec", "int", nsec,
                   help="nanoseconds added to Interval_Sec (sub-second intervals)"))


def interval_seconds(conf):
    """Seconds between ticks as Fluent Bit computes them (the cpu input divides by it):
    Interval_Sec + 1e-9 * Interval_NSec, 1 second when both are 0 or less."""
    sec, nsec = conf["interval_sec"], conf["interval_nsec"]
    if sec <= 0 and nsec <= 0:
        return 1.0
    return max(sec, 0) + 1e-9 * max(nsec, 0)


class IntervalInput(Input):
    done = False
    _wake = None

    @property
    def period(self):
        """Seconds between ticks."""
        return interval_seconds(self.conf)

    def start(self):
        """Take the first sample of a rate, before the first tick."""

    def collect(self, now_ns):
        """The records of one tick (a list of dicts, maybe empty)."""
        raise NotImplementedError

    async def tick(self):
        now = ev.now_ns()
        records = self.collect(now)
        if records:
            self.context.emit(self.tag, [(now, record) for record in records])

    async def run(self):
        self.start()
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        period = self.period
        due = loop.time() + period
        while not self.stopping and not self.done:
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.0, due - loop.time()))
                return              # stop(): no waiting for the next tick
            except asyncio.TimeoutError:
                pass
            now = loop.time()
            due += period
            if due <= now:
                due += period * ((now - due) // period + 1)
            await self.context.room()
            await self.tick()

    def stop(self):
        Input.stop(self)
        if self._wake is not None:
            self._wake.set()
