"""grep: legacy rule order, AND/OR, accessors, string-only matching, config errors."""
import pytest

from edgeship.core.errors import ConfigError
from filter_helpers import plugin, run, section

EVENTS = [
    {"level": "error", "svc": "api", "code": 500, "msg": "upstream timeout"},
    {"level": "info", "svc": "api", "code": "200", "msg": "healthcheck ok"},
    {"level": "error", "svc": "web", "code": "502", "msg": "pool exhausted"},
    {"level": ["error"], "svc": "api", "msg": "level is an array"},
    {"svc": "db", "msg": "no level"},
]


def test_legacy_first_matching_regex_keeps_at_once(tmp_path):
    # Quirk: 'Regex svc ^api$' is never checked for records the first Regex keeps.
    flt = plugin(tmp_path, section("grep", "Exclude msg ^pool", "Regex level error",
                                   "Regex svc ^api$"))
    assert [r["msg"] for r in run(flt, EVENTS)] == ["upstream timeout"]


def test_legacy_exclude_after_a_matching_regex_is_not_checked(tmp_path):
    flt = plugin(tmp_path, section("grep", "Regex level error", "Exclude msg ^pool"))
    assert [r["msg"] for r in run(flt, EVENTS)] == ["upstream timeout", "pool exhausted"]


def test_regex_searches_and_only_strings_match(tmp_path):
    flt = plugin(tmp_path, section("grep", "Regex code ^5"))
    # the integer 500 does not match; "502" does; missing keys never match
    assert [r["msg"] for r in run(flt, EVENTS)] == ["pool exhausted"]
    flt = plugin(tmp_path, section("grep", "Regex msg time"))
    assert [r["msg"] for r in run(flt, EVENTS)] == ["upstream timeout"]


def test_exclude_drops_matches_and_keeps_non_strings(tmp_path):
    flt = plugin(tmp_path, section("grep", "Exclude level ^err"))
    assert [r["msg"] for r in run(flt, EVENTS)] == ["healthcheck ok", "level is an array",
                                                     "no level"]


def test_and_with_nested_accessors(tmp_path):
    flt = plugin(tmp_path, section("grep", "Logical_Op AND",
                                   "Regex $k['labels']['app'] ^pay",
                                   "Regex $k['ns'] ^prod-"))
    records = [{"k": {"labels": {"app": "payments"}, "ns": "prod-eu"}},
               {"k": {"labels": {"app": "payments"}, "ns": "staging"}},
               {"k": {"labels": {"app": 7}, "ns": "prod-eu"}},
               {"k": {"ns": "prod-eu"}}]
    assert run(flt, records) == records[:1]


def test_or_with_excludes_drops_when_any_matches(tmp_path):
    flt = plugin(tmp_path, section("grep", "Logical_Op or", "Exclude svc ^db$",
                                   "Exclude msg ^pool"))
    assert [r["msg"] for r in run(flt, EVENTS)] == ["upstream timeout", "healthcheck ok",
                                                     "level is an array"]


def test_and_with_excludes_drops_only_when_all_match(tmp_path):
    flt = plugin(tmp_path, section("grep", "Logical_Op AND", "Exclude svc ^api$",
                                   "Exclude level ^error$"))
    assert [r["msg"] for r in run(flt, EVENTS)] == ["healthcheck ok", "pool exhausted",
                                                     "level is an array", "no level"]


def test_regex_is_the_rest_of_the_line(tmp_path):
    flt = plugin(tmp_path, section("grep", "Regex msg upstream timeout"))
    assert [r["msg"] for r in run(flt, EVENTS)] == ["upstream timeout"]


@pytest.mark.parametrize("lines,words", [
    (("Logical_Op AND", "Regex a x", "Exclude b y"), "Both 'regex' and 'exclude'"),
    (("Regex level (unclosed",), "could not compile regex"),
    (("Regex justakey",), "expected field and regular expression"),
    (("Regex $x[0 z",), "invalid record accessor"),
    (("Logical_Op XOR", "Regex a b"), "expected one of"),
])
def test_config_errors(tmp_path, lines, words):
    with pytest.raises(ConfigError) as err:
        plugin(tmp_path, section("grep", *lines))
    assert words in str(err.value)
    assert "fluent-bit.conf" in str(err.value)
