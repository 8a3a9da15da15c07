"""parser filter with the real json and regex parsers: order, Reserve_Data, Preserve_Key,
time, accessors and configuration errors."""
import pytest

from edgeship.core.errors import ConfigError
from filter_helpers import T0, plugin, run, section

PARSERS = """[PARSER]
    Name   kv_pair
    Format regex
    Regex  ^(?<k>[a-z]+)=(?<v>\\S+)$

[PARSER]
    Name   json
    Format json

[PARSER]
    Name        timed
    Format      json
    Time_Key    time
    Time_Format %Y-%m-%dT%H:%M:%S
"""


def parser_filter(tmp_path, *lines):
    return plugin(tmp_path, section("parser", *lines), parsers=PARSERS)


RECORDS = [{"src": "a", "payload": "color=blue", "z": 0},
           {"src": "b", "payload": '{"x":1,"src":"inner"}'},
           {"src": "c", "payload": "no match"},
           {"src": "d"},
           {"src": "e", "payload": 42}]


def test_first_parser_that_succeeds_wins_and_others_fields_go(tmp_path):
    flt = parser_filter(tmp_path, "Key_Name payload", "Parser kv_pair", "Parser json")
    assert run(flt, RECORDS) == [{"k": "color", "v": "blue"}, {"x": 1, "src": "inner"}] \
        + RECORDS[2:]


def test_reserve_data_appends_other_fields_after_parsed_ones(tmp_path):
    flt = parser_filter(tmp_path, "Key_Name payload", "Parser kv_pair", "Parser json",
                        "Reserve_Data On")
    out = run(flt, RECORDS[:2])
    assert list(out[0].items()) == [("k", "color"), ("v", "blue"), ("src", "a"), ("z", 0)]
    # an original field with a parsed name keeps its original value, at the end
    assert list(out[1].items()) == [("x", 1), ("src", "b")]


def test_preserve_key_with_and_without_reserve_data(tmp_path):
    flt = parser_filter(tmp_path, "Key_Name payload", "Parser kv_pair", "Reserve_Data On",
                        "Preserve_Key On")
    assert list(run(flt, RECORDS[:1])[0]) == ["k", "v", "src", "payload", "z"]
    flt = parser_filter(tmp_path, "Key_Name payload", "Parser kv_pair", "Preserve_Key On")
    assert run(flt, RECORDS[:1]) == [{"k": "color", "v": "blue", "payload": "color=blue"}]


def test_parsed_time_replaces_record_time(tmp_path):
    flt = parser_filter(tmp_path, "Key_Name log", "Parser timed")
    out = flt.filter("t", [(T0, {"log": '{"time":"2024-03-25T10:00:00","m":1}'}),
                           (T0 + 1, {"log": '{"m":2}'})])
    assert out == [(1711360800 * 10 ** 9, {"m": 1}), (T0 + 1, {"m": 2})]


def test_key_name_accessor(tmp_path):
    flt = parser_filter(tmp_path, "Key_Name $k['raw']", "Parser json", "Reserve_Data On")
    assert run(flt, [{"k": {"raw": '{"a":1}'}, "z": 0}]) == [
        {"a": 1, "k": {"raw": '{"a":1}'}, "z": 0}]


def test_unknown_parser_is_an_error_when_none_is_left(tmp_path):
    with pytest.raises(ConfigError) as err:
        parser_filter(tmp_path, "Key_Name log", "Parser nope")
    assert err.value.key == "parser"
    flt = parser_filter(tmp_path, "Key_Name log", "Parser nope", "Parser json")
    assert run(flt, [{"log": '{"a":1}'}]) == [{"a": 1}]


def test_key_name_is_required(tmp_path):
    with pytest.raises(ConfigError) as err:
        parser_filter(tmp_path, "Parser json")
    assert "key_name" in str(err.value).lower()
