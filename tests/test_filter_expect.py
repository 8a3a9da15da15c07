"""expect: every rule kind, actions warn / result_key, and exit ending a real process."""
import pytest

from edgeship.core.errors import ConfigError
from filter_helpers import plugin, run, run_config, section


@pytest.mark.parametrize("rule,record,ok", [
    ("key_exists a", {"a": 1}, True), ("key_exists a", {}, False),
    ("key_exists $m['x']", {"m": {"x": None}}, True),
    ("key_not_exists a", {}, True), ("key_not_exists a", {"a": 1}, False),
    ("key_val_is_null a", {"a": None}, True), ("key_val_is_null a", {"a": 0}, False),
    ("key_val_is_null a", {}, False),
    ("key_val_is_not_null a", {"a": 0}, True), ("key_val_is_not_null a", {"a": None}, False),
    ("key_val_eq a hello", {"a": "hello"}, True), ("key_val_eq a 5", {"a": 5}, True),
    ("key_val_eq a hello", {"a": "bye"}, False), ("key_val_eq a hello", {}, False),
])
def test_rule_kinds_with_result_key(tmp_path, rule, record, ok):
    flt = plugin(tmp_path, section("expect", rule, "Action result_key", "Result_Key ok"))
    assert run(flt, [record])[0]["ok"] is ok


def test_warn_keeps_records(tmp_path):
    flt = plugin(tmp_path, section("expect", "key_exists a"))
    assert run(flt, [{"b": 1}, {"a": 1}]) == [{"b": 1}, {"a": 1}]


@pytest.mark.parametrize("rule,words", [
    ("key_val_eq onlykey", "needs 'KEY VALUE'"),
    ("key_exists $a[", "invalid record accessor"),
    ("key_exists $TAG", "invalid record accessor"),
])
def test_bad_rules_are_config_errors_at_their_line(tmp_path, rule, words):
    with pytest.raises(ConfigError) as err:
        plugin(tmp_path, section("expect", "Action warn", rule))
    assert words in str(err.value)
    assert (err.value.line, err.value.key) == (7, rule.split()[0])


def test_action_exit_ends_the_process_with_code_255(tmp_path):
    proc = run_config(tmp_path, "[SERVICE]\n    Flush 0.2\n    Grace 1\n"
                      "[INPUT]\n    Name dummy\n    Dummy {\"b\":1}\n    Flush_On_Startup true\n"
                      + section("expect", "key_exists a", "Action exit")
                      + "[OUTPUT]\n    Name null\n    Match *\n")
    assert proc.returncode == 255, proc.stderr
    assert "key_exists" in proc.stderr
