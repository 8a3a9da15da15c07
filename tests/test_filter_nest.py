"""nest: nest and lift, prefixes, wildcards, non-map values, config checks."""
import pytest

from edgeship.core.errors import ConfigError
from filter_helpers import plugin, run, section


def test_nest_exact_and_prefix_wildcards_at_the_end(tmp_path):
    flt = plugin(tmp_path, section("nest", "Operation nest", "Wildcard kube_*",
                                   "Wildcard host", "Nest_under kubernetes"))
    out = run(flt, [{"msg": "a", "kube_pod": "p", "host": "h", "hostname": "kept", "z": 1},
                    {"msg": "c"}])
    assert list(out[0].items()) == [("msg", "a"), ("hostname", "kept"), ("z", 1),
                                    ("kubernetes", {"kube_pod": "p", "host": "h"})]
    assert out[1] == {"msg": "c"}


def test_nest_add_prefix_and_exclude(tmp_path):
    flt = plugin(tmp_path, section("nest", "Operation nest", "Wildcard http.*",
                                   "Wildcard_exclude http.secret", "Nest_under req",
                                   "Add_prefix r_"))
    out = run(flt, [{"http.url": "/x", "http.secret": "s", "kubernetes": "string"}])
    assert out == [{"http.secret": "s", "kubernetes": "string", "req": {"r_http.url": "/x"}}]


def test_lift_add_prefix_non_map_and_missing(tmp_path):
    flt = plugin(tmp_path, section("nest", "Operation lift", "Nested_under data",
                                   "Add_prefix data."))
    out = run(flt, [{"id": 1, "data": {"t": 2, "deep": {"x": 1}}, "tail": "end"},
                    {"id": 2, "data": "not a map"}, {"id": 3}, {"id": 4, "data": {}}])
    assert list(out[0].items()) == [("id", 1), ("tail", "end"), ("data.t", 2),
                                    ("data.deep", {"x": 1})]
    assert out[1:] == [{"id": 2, "data": "not a map"}, {"id": 3}, {"id": 4}]


def test_lift_remove_prefix_and_existing_key_takes_last_place(tmp_path):
    flt = plugin(tmp_path, section("nest", "Operation lift", "Nested_under meta",
                                   "Remove_prefix m_"))
    out = run(flt, [{"host": "old", "meta": {"m_host": "a", "keep": "c"}, "z": 0}])
    assert list(out[0].items()) == [("z", 0), ("host", "a"), ("keep", "c")]


@pytest.mark.parametrize("lines,key", [
    (("Operation nest", "Wildcard a"), "nest_under"),
    (("Operation nest", "Nest_under x"), "wildcard"),
    (("Operation lift",), "nested_under"),
    (("Operation lift", "Nested_under x", "Add_prefix a", "Remove_prefix b"), "remove_prefix"),
    (("Operation sideways", "Nested_under x"), "operation"),
])
def test_config_errors(tmp_path, lines, key):
    with pytest.raises(ConfigError) as err:
        plugin(tmp_path, section("nest", *lines))
    assert err.value.key == key
