"""Entry point: a board runs it after boot.py; on the unix port ``micropython main.py [config]``.
Kept as source (a board runs main.py as such) and small: the rest is compiled. startup.py builds
the parts and is unloaded before the main loop's code comes in, so its RAM is reused."""
import gc
import sys

import startup

parts = startup.start(*sys.argv[1:2])
del startup, sys.modules["startup"]
gc.collect()

from agent import Agent, run  # noqa: E402 (once startup's RAM is back)

run(Agent(*parts))
