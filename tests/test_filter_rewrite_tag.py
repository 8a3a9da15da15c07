"""rewrite_tag: first matching rule, tag templates, KEEP, re-entry through the other
filters, the loop guard, and configuration errors."""
import pytest

from edgeship.core.errors import ConfigError
from filter_helpers import T0, capture, captured, emit, load, section


def records_of(rows):
    return [(tag, record) for tag, (_, record) in rows]


def test_rules_keep_and_templates(tmp_path):
    engine = load(tmp_path, section(
        "rewrite_tag", r"Rule $level ^(error|fatal)$ alert.$1 false",
        r"Rule $level ^warn$ review.$TAG.$svc true", match="app")
        + capture(tmp_path, "app") + capture(tmp_path, "alert.*")
        + capture(tmp_path, "review.*"))
    records = [{"level": "info"}, {"level": "error", "svc": "api"},
               {"level": "warn", "svc": "web"}, {"svc": "db"}, {"level": 3}]
    emit(engine, "app", [(T0 + i, r) for i, r in enumerate(records)])
    got = captured(engine)
    assert records_of(got["app"]) == [("app", r) for r in (records[0], records[2],
                                                            records[3], records[4])]
    assert records_of(got["alert.*"]) == [("alert.error", records[1])]
    assert records_of(got["review.*"]) == [("review.app.web", records[2])]


def test_kept_record_and_copy_are_independent(tmp_path):
    engine = load(tmp_path, section("rewrite_tag", "Rule $a ^x$ copy true", match="app")
                  + section("record_modifier", "Record marked yes", match="copy")
                  + capture(tmp_path, "*"))
    emit(engine, "app", [(T0, {"a": "x"})])
    # the copy (original time kept) goes through first, then the original goes on
    assert captured(engine)["*"] == [("copy", (T0, {"a": "x", "marked": "yes"})),
                                     ("app", (T0, {"a": "x"}))]


def test_rule_matching_its_own_output_does_not_loop(tmp_path):
    # The copy goes through every filter of its new tag except this rewrite_tag.
    engine = load(tmp_path, section("rewrite_tag", "Rule $a .* $TAG false", match="*")
                  + section("record_modifier", "Record seen yes", match="*")
                  + capture(tmp_path, "*"))
    emit(engine, "app", [(T0, {"a": "x"})])
    assert captured(engine)["*"] == [("app", (T0, {"a": "x", "seen": "yes"}))]


def test_nested_key_and_tag_part(tmp_path):
    engine = load(tmp_path, section("rewrite_tag", "Rule $k['lvl'] ^(e)rr $TAG[1].$0.$1 false",
                                    match="a.b") + capture(tmp_path, "*"))
    emit(engine, "a.b", [(T0, {"k": {"lvl": "error"}})])
    assert [tag for tag, _ in captured(engine)["*"]] == ["b.err.e"]


@pytest.mark.parametrize("rule,words", [
    ("$a ^x$ newtag", "$KEY REGEX NEW_TAG KEEP"),
    ("$a (bad new true", "could not compile regex"),
    ("$a x new maybe", "KEEP must be true or false"),
    ("$a|$b x new true", "invalid record accessor"),
])
def test_config_errors(tmp_path, rule, words):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, section("rewrite_tag", "Rule " + rule))
    assert words in str(err.value)
    assert (err.value.line, err.value.key) == (6, "rule")   # the Rule line itself


def test_emitter_options_accepted(tmp_path):
    engine = load(tmp_path, section("rewrite_tag", "Rule $a x y true", "Emitter_Name re",
                                    "Emitter_Storage.type memory",
                                    "Emitter_Mem_Buf_Limit 5M"))
    assert engine.filters[0].plugin.emitter_name == "re"
