"""edgeship with one test-only input plugin, ``crashing``, for tests/faults/test_engine_faults.py.

    python tests/faults/engine_child.py -c fluent-bit.conf

``crashing`` emits ``Records`` records per run (``{"n": 0}``, ``{"n": 1}``... numbered across
runs), then raises on each of its first ``Crashes`` runs, as an input with a bug does; after
those it emits once more and waits for the stop (or ends, with ``Exit_On_Eof``). The plugin
is registered under the name the plugin registry looks up, so a config loads it like any
other.
"""
import asyncio
import sys
import types

from edgeship.core import events as ev
from edgeship.core.schema import Option
from edgeship.engine.plugin import Input


class CrashingInput(Input):
    name = "crashing"
    description = "test input: dies on its first runs"
    options = (
        Option("Crashes", "int", "3", help="runs that end with an exception"),
        Option("Records", "int", "10", help="records emitted per run"),
        Option("Exit_On_Eof", "bool", "off", help="end after the last run's records"),
    )

    def configure(self):
        self.runs = 0
        self.next_number = 0
        self.exit_on_eof = self.conf["exit_on_eof"]

    async def run(self):
        self.runs += 1
        first, self.next_number = self.next_number, self.next_number + self.conf["records"]
        now = ev.now_ns()
        self.context.emit(self.tag, [(now, {"n": n, "run": self.runs})
                             for n in range(first, self.next_number)])
        if self.runs <= self.conf["crashes"]:
            raise RuntimeError("crash number %d" % self.runs)
        if self.exit_on_eof:
            self.context.finished()
            return
        while not self.stopping:
            await asyncio.sleep(0.05)


def register():
    module = types.ModuleType("edgeship.plugins.inputs.crashing")
    module.PLUGIN = CrashingInput
    sys.modules[module.__name__] = module


if __name__ == "__main__":
    register()
    from edgeship.cli import main
    sys.exit(main(sys.argv[1:]))
