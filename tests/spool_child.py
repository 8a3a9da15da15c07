"""edgeship with one test-only output plugin, ``flaky``, for the durability tests.

    python tests/spool_child.py -c fluent-bit.conf

``flaky`` appends the ``log`` (or whole record as JSON) of each record to ``Path`` and fsyncs
before it answers OK (and the record count of the flush to ``Path.batches``), like a real output that confirms only delivered data. It can be slow
(``Delay`` seconds per flush), fail at random (``Fail_Ratio``: RETRY without writing), and be
dead while the file ``Dead_File`` exists. The plugin is registered under the name the plugin
registry looks up, so the config loads it like any other.
"""
import asyncio
import json
import os
import random
import sys
import types

from edgeship.core.schema import Option
from edgeship.engine.plugin import OK, RETRY, Output


class FlakyOutput(Output):
    name = "flaky"
    description = "test output: slow, failing at random, dead while a file exists"
    options = (
        Option("Path", required=True, help="file the records are appended to"),
        Option("Delay", "float", "0", help="seconds each flush takes"),
        Option("Fail_Ratio", "float", "0", help="share of flushes answered RETRY"),
        Option("Dead_File", help="flushes answer RETRY while this file exists"),
    )

    async def flush(self, chunk):
        events = chunk.events()
        if self.conf["delay"]:
            await asyncio.sleep(self.conf["delay"])
        dead = self.conf["dead_file"]
        if (dead and os.path.exists(dead)) or random.random() < self.conf["fail_ratio"]:
            return RETRY
        text = "".join((r["log"] if "log" in r else json.dumps(r)) + "\n" for _, r in events)
        with open(self.conf["path"], "a") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        with open(self.conf["path"] + ".batches", "a") as f:
            f.write("%d\n" % len(events))  # the tests bound duplicates by batch sizes
        return OK


def register():
    module = types.ModuleType("edgeship.plugins.outputs.flaky")
    module.PLUGIN = FlakyOutput
    sys.modules[module.__name__] = module


if __name__ == "__main__":
    register()
    from edgeship.cli import main
    sys.exit(main(sys.argv[1:]))
