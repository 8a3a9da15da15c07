"""The firmware's unit tests (tests/firmware/unit_*.py) under the real MicroPython unix port, each
module in a fresh directory (they write ring files)."""
import os
import subprocess

import pytest

from test_core_micropython import _micropython

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
UNITS = os.path.join(HERE, "firmware")


@pytest.mark.parametrize("module", sorted(f[:-3] for f in os.listdir(UNITS)
                                          if f.startswith("unit_") and f.endswith(".py")))
def test_firmware_unit_under_micropython(module, tmp_path):
    path = ":".join((ROOT, os.path.join(ROOT, "firmware"), UNITS, ".frozen"))
    env = dict(os.environ, MICROPYPATH=path, STANDIN_DIR=str(tmp_path))
    proc = subprocess.run([_micropython(), os.path.join(HERE, "core", "mp_runner.py"), module],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " passed, 0 failed" in proc.stdout
