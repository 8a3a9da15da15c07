"""The Fluent Bit conformance corpus (../shared/conformance/run.py) run with this interpreter's
edgeship. .ci/run also runs the corpus with the main venv's ``edgeship`` script; as an e2e
test it runs under every other CPython 3.9-3.13 on the machine too."""
import os
import subprocess
import sys

import pytest

from conftest import SHARED

RUNNER = os.path.join(SHARED, "conformance", "run.py")


@pytest.mark.e2e
def test_every_case_of_the_corpus_passes():
    command = " ".join([sys.executable, "-m", "edgeship"])
    proc = subprocess.run([sys.executable, RUNNER, "--cmd", command], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.stdout.rstrip().endswith(" passed, 0 failed"), proc.stdout[-2000:]
