"""lua filter through lupa: Fluent Bit's callback contract, options and error handling."""
import pytest

from edgeship.core.errors import ConfigError
from filter_helpers import T0, plugin, run, section

SCRIPT = """
function keep(tag, ts, record) return 0, ts, record end
function drop(tag, ts, record) return -1, ts, record end
function modify(tag, ts, record)
    record["tag"] = tag
    record["n"] = (record["n"] or 0) + 1
    return 1, 1711360900.5, record
end
function modify_keep_time(tag, ts, record)
    record["x"] = 3.0
    return 2, 0, record
end
function split(tag, ts, record)
    return 1, ts, {{part = 1}, {part = 2}}
end
function boom(tag, ts, record)
    if record["bad"] then error("bad record") end
    return 0, ts, record
end
function table_time(tag, ts, record)
    record["sec"] = ts.sec
    ts.nsec = 7
    return 1, ts, record
end
function time_from_record(tag, ts, record)
    local t = record["t"]
    record["t"] = nil
    return 1, t, record
end
function table_past(tag, ts, record)
    ts.sec = 4294967296
    return 1, ts, record
end
function ints(tag, ts, record)
    record["f"] = 2.7
    record["empty"] = {}
    return 2, ts, record
end
"""


def lua(tmp_path, call, *lines):
    return plugin(tmp_path, section("lua", "Script s.lua", "Call " + call, *lines),
                  files={"s.lua": SCRIPT})


def test_code_0_keeps_and_minus_1_drops(tmp_path):
    assert run(lua(tmp_path, "keep"), [{"a": None, "b": [1]}]) == [{"a": None, "b": [1]}]
    assert run(lua(tmp_path, "drop"), [{"a": 1}]) == []


def test_code_1_replaces_time_and_record_keeping_key_order(tmp_path):
    out = lua(tmp_path, "modify").filter("app", [(T0, {"z": 1, "n": 1, "a": 2})])
    assert out == [(1711360900500000000, {"z": 1, "n": 2, "a": 2, "tag": "app"})]
    assert list(out[0][1]) == ["z", "n", "a", "tag"]


def test_code_2_keeps_time_and_whole_floats_become_integers(tmp_path):
    out = lua(tmp_path, "modify_keep_time").filter("t", [(T0, {"a": 1.5})])
    assert out == [(T0, {"a": 1.5, "x": 3})]


def test_array_of_records_splits(tmp_path):
    assert run(lua(tmp_path, "split"), [{"a": 1}]) == [{"part": 1}, {"part": 2}]


def test_runtime_error_keeps_record_and_counts(tmp_path):
    flt = lua(tmp_path, "boom")
    assert run(flt, [{"bad": True}, {"ok": 1}]) == [{"bad": True}, {"ok": 1}]
    assert flt.errors == 1


def test_a_returned_time_no_event_can_carry_keeps_the_record_unchanged(tmp_path):
    # Fluent Bit 5.1.1 logs "invalid table returned" and passes the record on unchanged for
    # -5, 1e12 or 2^32; edgeship does the same for any time outside 1970..2106 (an
    # infinity, or 1e30 s, would not even fit msgpack's int64 of nanoseconds).
    flt = lua(tmp_path, "time_from_record")
    bad = [{"t": -5}, {"t": 1e12}, {"t": 4294967296}, {"t": 1e30}, {"t": float("inf")},
           {"t": float("nan")}]
    out = flt.filter("t", [(T0, dict(r)) for r in bad] + [(T0, {"t": 1700000000.25})])
    assert out[:-1] == [(T0, r) for r in bad] and out[-1] == (1700000000250000000, {})
    assert flt.errors == len(bad)
    table = lua(tmp_path, "table_past", "Time_As_Table on")
    assert table.filter("t", [(T0, {"a": 1})]) == [(T0, {"a": 1})] and table.errors == 1


def test_time_as_table(tmp_path):
    out = lua(tmp_path, "table_time", "Time_As_Table on").filter("t", [(T0 + 5, {})])
    assert out == [(T0 + 7, {"sec": T0 // 10 ** 9})]


def test_type_int_key_and_type_array_key(tmp_path):
    out = run(lua(tmp_path, "ints", "Type_Int_Key f", "Type_Array_Key empty"), [{}])
    assert out == [{"f": 2, "empty": []}]


def test_inline_code(tmp_path):
    flt = plugin(tmp_path, section("lua", "Call f",
                                   'Code function f(t, ts, r) r["x"]=1 return 2, ts, r end'))
    assert run(flt, [{}]) == [{"x": 1}]


@pytest.mark.parametrize("lines,words,key", [
    (("Script s.lua", "Call nosuch"), "function 'nosuch' is not defined", "call"),
    (("Script missing.lua", "Call f"), "cannot read script", "script"),
    (("Code function f( end", "Call f"), "syntax error", "code"),
    (("Code error('at load')", "Call f"), "error running code", "code"),
    (("Call f",), "exactly one of", "script"),
])
def test_config_errors(tmp_path, lines, words, key):
    with pytest.raises(ConfigError) as err:
        plugin(tmp_path, section("lua", *lines), files={"s.lua": SCRIPT})
    assert words in str(err.value)
    assert err.value.key == key
