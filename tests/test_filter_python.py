"""python filter: a function per batch, with or without the tag, and its failures."""
import pytest

from edgeship.core.errors import ConfigError
from filter_helpers import plugin, run, section

SCRIPT = """
def double(events):
    return [(t, dict(r, n=r["n"] * 2)) for t, r in events if r["n"] > 0]

def tagged(tag, events):
    for _, r in events:
        r["tag"] = tag
    return events

def boom(events):
    raise RuntimeError("boom")

def wrong(events):
    return "not a batch"

def far_future(events):
    return [(2 ** 70, r) for _, r in events]

def before_1970(events):
    return [(-1, r) for _, r in events]
"""


def py(tmp_path, call):
    return plugin(tmp_path, section("python", "Script f.py", "Call " + call),
                  files={"f.py": SCRIPT})


def test_batch_in_batch_out(tmp_path):
    assert run(py(tmp_path, "double"), [{"n": 1}, {"n": 0}, {"n": 3}]) == [{"n": 2}, {"n": 6}]


def test_function_taking_the_tag(tmp_path):
    assert run(py(tmp_path, "tagged"), [{}], tag="app") == [{"tag": "app"}]


# A time outside 1970..2106 could not be stored (2 ** 70 ns overflows msgpack's int64).
@pytest.mark.parametrize("call", ["boom", "wrong", "far_future", "before_1970"])
def test_errors_pass_the_batch_on_unchanged(tmp_path, call):
    flt = py(tmp_path, call)
    assert run(flt, [{"n": 1}]) == [{"n": 1}]
    assert flt.errors == 1


@pytest.mark.parametrize("files,call,words", [
    ({"f.py": SCRIPT}, "nosuch", "is not defined"),
    ({"f.py": "def f(:\n"}, "f", "syntax error"),
    ({}, "f", "cannot read script"),
])
def test_config_errors(tmp_path, files, call, words):
    with pytest.raises(ConfigError) as err:
        plugin(tmp_path, section("python", "Script f.py", "Call " + call), files=files)
    assert words in str(err.value)


def test_a_relative_script_path_follows_fluent_bits_rule(tmp_path, monkeypatch):
    """One rule for every relative path a config names (core.config.locate): the current
    directory when the file is there, else the main config file's directory. The script
    filters once only looked in the config's directory."""
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    (elsewhere / "f.py").write_text("def f(events):\n    return [(0, {'from': 'cwd'})]\n")
    monkeypatch.chdir(elsewhere)
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    files = {"f.py": "def f(events):\n    return [(0, {'from': 'conf'})]\n",
             "g.py": "def g(events):\n    return [(0, {'from': 'conf'})]\n"}
    flt = plugin(conf_dir, section("python", "Script f.py", "Call f"), files=files)
    assert run(flt, [{}]) == [{"from": "cwd"}]
    flt = plugin(conf_dir, section("python", "Script g.py", "Call g"), files=files)
    assert run(flt, [{}]) == [{"from": "conf"}]
