"""random input: a random unsigned 64-bit number every interval (in_random).

``{"rand_value": 15107158373130126958}``, from the OS random source (os.urandom, as Fluent
Bit's flb_random_bytes). Kept from Fluent Bit 5.1.1: ``Samples N`` stops after N records,
``Samples 0`` emits nothing, a negative value (the default, -1) never stops; the first record
one interval after the start.

Difference: when the OS random source fails Fluent Bit sends the current time instead;
os.urandom does not fail on Linux once the pool is ready, so edgeship has no such fallback.
"""
import os

from edgeship.core.schema import Option
from edgeship.plugins.inputs._interval import IntervalInput, interval_options


class RandomInput(IntervalInput):
    name = "random"
    description = "Random"
    options = (
        Option("Samples", "int", "-1", help="records in all; -1: no end, 0: none"),
    ) + interval_options()

    def configure(self):
        self.samples = self.conf["samples"]
        self.sent = 0
        self.done = self.samples == 0

    def collect(self, now_ns):
        self.sent += 1
        if self.samples > 0 and self.sent >= self.samples:
            self.done = True
        return [{"rand_value": int.from_bytes(os.urandom(8), "little")}]


PLUGIN = RandomInput
