"""record_modifier: Record (quotes, rejected values, duplicates), Remove_key, Allowlist_key."""
import re

import pytest

from edgeship.core.errors import ConfigError
from filter_helpers import plugin, run, section


def test_record_appends_and_an_existing_key_moves_to_the_end(tmp_path):
    flt = plugin(tmp_path, section("record_modifier", "Record role operator",
                                   'Record greeting "hello world"'))
    out = run(flt, [{"role": "admin", "user": "alice"}])
    assert list(out[0].items()) == [("user", "alice"), ("role", "operator"),
                                    ("greeting", "hello world")]


def test_value_of_several_unquoted_words_is_rejected_and_ignored(tmp_path):
    flt = plugin(tmp_path, section("record_modifier", "Record bad value with spaces",
                                   "Record ok yes"))
    assert run(flt, [{"a": 1}]) == [{"a": 1, "ok": "yes"}]


def test_record_value_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICE_ID", "rpi-0042")
    flt = plugin(tmp_path, section("record_modifier", "Record device ${DEVICE_ID}"))
    assert run(flt, [{}]) == [{"device": "rpi-0042"}]


def test_remove_key_case_insensitive_with_prefix(tmp_path):
    flt = plugin(tmp_path, section("record_modifier", "Remove_key password",
                                   "Remove_key SECRET_*"))
    out = run(flt, [{"user": "a", "PassWord": "p", "secret_token": "t", "Secret_Key": "k",
                     "secretive": "kept"}])
    assert out == [{"user": "a", "secretive": "kept"}]


def test_allowlist_keeps_listed_keys_in_order_plus_records(tmp_path):
    flt = plugin(tmp_path, section("record_modifier", "Allowlist_key device",
                                   "Whitelist_key temp_*", "Allowlist_key TS",
                                   "Record source edge"))
    out = run(flt, [{"ts": 1, "Device": "d", "temp_c": 2, "humidity": 3, "TEMP_f": 4}])
    assert list(out[0]) == ["ts", "Device", "temp_c", "TEMP_f", "source"]


def test_record_left_empty_is_dropped(tmp_path):
    flt = plugin(tmp_path, section("record_modifier", "Allowlist_key keep"))
    assert run(flt, [{"other": 1}, {"keep": 2}]) == [{"keep": 2}]
    assert flt.dropped == 1


def test_uuid_key(tmp_path):
    flt = plugin(tmp_path, section("record_modifier", "Uuid_key id"))
    out = run(flt, [{"a": 1}, {"a": 2}])
    pattern = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    assert all(pattern.match(r["id"]) for r in out)
    assert out[0]["id"] != out[1]["id"]


def test_remove_and_allowlist_are_exclusive(tmp_path):
    with pytest.raises(ConfigError) as err:
        plugin(tmp_path, section("record_modifier", "Remove_key a", "Allowlist_key b"))
    assert "exclusive" in str(err.value)
