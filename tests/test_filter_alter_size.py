"""alter_size filter: real edgeship runs (five stdin lines, one batch -> alter_size -> stdout
json_lines) compared with what Fluent Bit 5.1.1 wrote for the same config and lines (the
literals were captured from the real binary, ``"date"`` left out)."""
import re
import time

import pytest

from edgeship.core.errors import ConfigError
from filter_helpers import T0, plugin, run, run_config, section

FIVE = "".join('{"n":%d}\n' % n for n in range(1, 6))
KEPT = ['{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}', '{"n":5}']


def through_edgeship(tmp_path, *lines):
    proc = run_config(tmp_path, "[SERVICE]\n    Flush 0.2\n    Grace 1\n"
                      "[INPUT]\n    Name stdin\n    Tag t\n" + section("alter_size", *lines)
                      + "[OUTPUT]\n    Name stdout\n    Match *\n    Format json_lines\n",
                      input=FIVE)
    assert proc.returncode == 0, proc.stderr
    records = [re.sub(r'^\{"date":[0-9.e+-]+,', "{", line)
               for line in proc.stdout.splitlines() if line.startswith("{")]
    return records, proc.stderr


# (options, what Fluent Bit 5.1.1 wrote): Add appends one record however many it is asked
# for (each begin discards the one before), Remove drops the last N, or the whole batch.
@pytest.mark.parametrize("lines, fluent_bit", [
    (["Add 3"], KEPT + ['{"key":"alter_size 2"}']),
    (["Add 1"], KEPT + ['{"key":"alter_size 0"}']),
    (["Add 2abc"], KEPT + ['{"key":"alter_size 1"}']),
    (["Remove 2"], KEPT[:3]),
    (["Remove 4"], KEPT[:1]),
    (["Remove 5"], []),
    (["Remove 9"], []),
])
def test_batches_as_fluent_bit(tmp_path, lines, fluent_bit):
    records, _ = through_edgeship(tmp_path, *lines)
    assert records == fluent_bit


def test_neither_add_nor_remove_passes_the_records_with_a_warning(tmp_path):
    # Fluent Bit 5.1.1 writes nothing here: it drops every record (README: a difference).
    records, stderr = through_edgeship(tmp_path, "Add -1")
    assert records == KEPT
    assert "neither add nor remove is above 0: records pass unchanged" in stderr


def test_the_added_record_has_the_current_time(tmp_path):
    flt = plugin(tmp_path, section("alter_size", "Add 2"))
    before = time.time_ns()
    events = flt.filter("t", [(T0, {"a": 1})])
    assert events[0] == (T0, {"a": 1})
    assert events[1][1] == {"key": "alter_size 1"} and events[1][0] >= before
    assert len(events) == 2


def test_remove_works_per_batch(tmp_path):
    flt = plugin(tmp_path, section("alter_size", "Remove 1"))
    assert run(flt, [{"a": 1}, {"a": 2}]) == [{"a": 1}]
    assert run(flt, [{"a": 3}]) == []


def test_add_and_remove_together_are_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        plugin(tmp_path, section("alter_size", "Add 1", "Remove 1"))
    assert "cannot use 'add' and 'remove' at the same time" in str(err.value)
    assert (err.value.line, err.value.key) == (7, "remove")
