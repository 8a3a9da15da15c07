"""modify: every rule kind, every condition kind, rule order and the quirks."""
import pytest

from edgeship.core.errors import ConfigError
from filter_helpers import plugin, run, section


def modify(tmp_path, *lines):
    return plugin(tmp_path, section("modify", *lines))


def one(tmp_path, record, *lines):
    return list(run(modify(tmp_path, *lines), [record])[0].items())


def test_set_replaces_and_moves_to_end_with_string_value(tmp_path):
    assert one(tmp_path, {"count": 1, "a": 2}, "Set count 10", 'Set s "a b"') == [
        ("a", 2), ("count", "10"), ("s", "a b")]


def test_add_only_when_absent(tmp_path):
    assert one(tmp_path, {"k": "orig"}, "Add k new", "Add x y") == [("k", "orig"), ("x", "y")]
    assert one(tmp_path, {}, "Add_if_not_present x y") == [("x", "y")]


def test_remove(tmp_path):
    assert one(tmp_path, {"a": 1, "b": 2}, "Remove a", "Remove zz") == [("b", 2)]


def test_remove_wildcard_is_a_literal_prefix(tmp_path):
    record = {"Mem.total": 1, "Memx": 2, "mem.used": 3, "other": 4}
    # the '*' is taken literally: nothing starts with "Mem.*"
    assert one(tmp_path, dict(record), "Remove_wildcard Mem.*") == list(record.items())
    assert one(tmp_path, dict(record), "Remove_wildcard Mem") == [("mem.used", 3),
                                                                   ("other", 4)]


def test_remove_regex_searches_keys(tmp_path):
    assert one(tmp_path, {"x-req-id": 1, "x-id": 2, "ax-b-id": 3}, "Remove_regex ^x-.*-id$") \
        == [("x-id", 2), ("ax-b-id", 3)]


def test_rename_in_place_only_when_new_name_is_absent(tmp_path):
    assert one(tmp_path, {"a": 1, "old": 2, "z": 3}, "Rename old new") == [
        ("a", 1), ("new", 2), ("z", 3)]
    assert one(tmp_path, {"a": 1, "b": 2}, "Rename a b") == [("a", 1), ("b", 2)]


def test_hard_rename_overwrites(tmp_path):
    assert one(tmp_path, {"c": "C", "d": "D"}, "Hard_rename c d") == [("d", "C")]
    assert one(tmp_path, {"d": "D", "c": "C"}, "Hard_rename c d") == [("d", "C")]


def test_copy_inserts_right_after_the_source(tmp_path):
    out = run(modify(tmp_path, "Copy src dup"), [{"src": {"n": 1}, "z": 0}])[0]
    assert list(out) == ["src", "dup", "z"]
    out["dup"]["n"] = 2  # a real copy, not a shared map
    assert out["src"] == {"n": 1}
    assert one(tmp_path, {"e": 1, "f": 2}, "Copy e f") == [("e", 1), ("f", 2)]


def test_hard_copy_overwrites(tmp_path):
    assert one(tmp_path, {"h": "H", "g": "G"}, "Hard_copy g h") == [("g", "G"), ("h", "G")]


def test_move_to_start_and_end_are_prefix_matches(tmp_path):
    record = {"a": 1, "zfirst": 2, "zz": 3, "b": 4}
    assert one(tmp_path, dict(record), "Move_to_start z") == [
        ("zfirst", 2), ("zz", 3), ("a", 1), ("b", 4)]
    assert one(tmp_path, dict(record), "Move_to_end a") == [
        ("zfirst", 2), ("zz", 3), ("b", 4), ("a", 1)]


def test_rules_apply_in_config_order(tmp_path):
    assert one(tmp_path, {"a": 1}, "Rename a b", "Set a 2", "Copy b c") == [
        ("b", 1), ("c", 1), ("a", "2")]


CONDITION_CASES = [
    ("Key_exists user", {"user": "x"}, True),
    ("Key_exists user", {"other": 1}, False),
    ("Key_exists $k['sub']", {"k": {"sub": None}}, True),
    ("Key_does_not_exist user", {"other": 1}, True),
    ("A_key_matches ^temp_", {"temp_a": 1}, True),
    ("A_key_matches ^temp_", {"xtemp_": 1}, False),
    ("No_key_matches ^temp_", {"a": 1}, True),
    ("Key_value_equals level error", {"level": "error"}, True),
    ("Key_value_equals level 5", {"level": 5}, False),           # strings only
    ('Key_value_equals level "warn now"', {"level": "warn now"}, True),
    ("Key_value_does_not_equal level error", {"level": 5}, True),
    ("Key_value_does_not_equal level error", {}, False),        # key must exist
    ("Key_value_matches user ^a.*e$", {"user": "anne"}, True),
    ("Key_value_matches flag ^tr", {"flag": True}, True),       # booleans as true/false
    ("Key_value_does_not_match user ^a", {"user": 7}, True),
    ("Key_value_does_not_match user ^a", {}, False),
    ("Matching_keys_have_matching_values ^temp_ ^\\d+$", {"temp_a": "21", "x": "y"}, True),
    ("Matching_keys_have_matching_values ^temp_ ^\\d+$", {"temp_n": 30}, False),
    ("Matching_keys_have_matching_values ^temp_ ^\\d+$", {"none": 1}, True),
    ("Matching_keys_do_not_have_matching_values ^temp_ ^\\d+$", {"temp_a": "x1"}, True),
    ("Matching_keys_do_not_have_matching_values ^temp_ ^\\d+$", {"none": 1}, False),
]


@pytest.mark.parametrize("condition,record,holds", CONDITION_CASES)
def test_condition_kinds(tmp_path, condition, record, holds):
    out = run(modify(tmp_path, "Condition " + condition, "Set marker yes"), [record])[0]
    assert ("marker" in out) is holds


def test_every_condition_must_hold(tmp_path):
    flt = modify(tmp_path, "Condition Key_exists level", "Condition Key_value_equals level x",
                 "Set m 1")
    assert [("m" in r) for r in run(flt, [{"level": "x"}, {"level": "y"}, {}])] == [
        True, False, False]


@pytest.mark.parametrize("line,words", [
    ("Set onlykey", "Invalid operation"),
    ("Remove a b", "Invalid operation"),
    ("Condition Key_value_equals a", "takes 2 argument"),
    ("Condition Whatever a", "unknown condition"),
    ("Remove_regex (bad", "modify"),
    ('Set k "unterminated', "unterminated quote"),
])
def test_config_errors(tmp_path, line, words):
    with pytest.raises(ConfigError) as err:
        modify(tmp_path, line)
    assert words in str(err.value)


KEYS = ("a", "b", "ab", "c", "Mem.x")
RULES = ("Set", "Add", "Remove", "Remove_wildcard", "Remove_regex", "Rename", "Hard_rename",
         "Copy", "Hard_copy", "Move_to_start", "Move_to_end")


def _rule_line(kind, k1, k2):
    if kind in ("Set", "Add"):
        return "%s %s v" % (kind, k1)
    if kind == "Remove_regex":
        return "Remove_regex ^%s" % k1
    if kind in ("Remove", "Remove_wildcard", "Move_to_start", "Move_to_end"):
        return "%s %s" % (kind, k1)
    return "%s %s %s" % (kind, k1, k2)


def test_layout_plans_do_what_the_rules_do_one_by_one(tmp_path):
    """Records are rebuilt from a plan per key layout; that must equal running each rule on
    each record, whatever the rules, the layouts, and records repeating a layout."""
    import copy

    from hypothesis import given, settings, strategies as st

    rule = st.tuples(st.sampled_from(RULES), st.sampled_from(KEYS), st.sampled_from(KEYS))
    record = st.dictionaries(st.sampled_from(KEYS), st.integers() | st.lists(st.integers()),
                             max_size=5)

    @settings(max_examples=150, deadline=None)
    @given(st.lists(rule, min_size=1, max_size=4), st.lists(record, min_size=1, max_size=6))
    def check(rules, records):
        flt = modify(tmp_path, *[_rule_line(*r) for r in rules])
        batch = records + records  # every layout twice: the second time comes from the plan
        expected = []
        for r in batch:
            r = copy.deepcopy(r)
            for apply in flt.rules:
                r = apply(r)
            expected.append(list(r.items()))
        got = [list(r.items()) for r in run(flt, [copy.deepcopy(r) for r in batch])]
        assert got == expected

    check()
