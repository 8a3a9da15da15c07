"""counter output, run as a real edgeship child process."""
import json
import re

from conftest import run_edgeship

LINES = '[1711360801, {"a":1}]\n[1711360802, {"b":2}]\n[1711360803, {}]\n'


def test_counter_prints_the_records_of_each_flush():
    result = run_edgeship(["-i", "stdin", "-o", "counter", "-m", "*"], input=LINES)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines
    for line in lines:
        assert re.match(r'^\{"ts":\d+\.\d{6},"serialized_events":\d+,"log_records":\d+,'
                        r'"total":\d+\}$', line)
    counts = [json.loads(line) for line in lines]
    assert sum(c["log_records"] for c in counts) == 3
    assert all(c["serialized_events"] == c["log_records"] for c in counts)
    assert all(c["total"] == 2 * c["log_records"] for c in counts)
