"""exit output: a real edgeship child ends by itself, gracefully, after the flushes, records
or seconds it was given; what was flushed to the other outputs by then is written."""
import pytest

from conftest import run_edgeship

pytestmark = pytest.mark.e2e

DUMMY = ["-i", "dummy", "-p", "rate=20", "-p", "dummy={\"n\":1}", "-f", "0.2",
         "-o", "stdout", "-m", "*", "-p", "format=json_lines"]


@pytest.mark.parametrize("keys, least", [
    ([], 1),                                        # one flush by default
    (["-p", "flush_count=3"], 3),
    (["-p", "record_count=10"], 10),
    (["-p", "time_count=1"], 1),
])
def test_the_process_ends_with_status_0_after_its_count(keys, least):
    proc = run_edgeship(DUMMY + ["-o", "exit", "-m", "*"] + keys, timeout=30)
    assert proc.returncode == 0, proc.stderr
    printed = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(printed) >= least
    assert "exiting after the flush" in proc.stderr
