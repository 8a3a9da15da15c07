"""edgeship.text.multiline: Fluent Bit's multiline parsers (built-in and [MULTILINE_PARSER])."""
import io
import os

import pytest

from edgeship.core.config import Section
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Entry
from edgeship.engine.loader import Loader
from edgeship.plugins.parsers.json import JsonParser
from edgeship.text import multiline

CASES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "..", "shared", "conformance", "cases")


def engine():
    """A real engine with no plugins: where multiline parsers are looked up."""
    return Loader(log_stream=io.StringIO()).build([])


def get(name, where=None):
    """The multiline parser ``name`` as a plugin's context gets it."""
    where = where or engine()
    return where.multiline(name, where.log)


def run(parser, lines, flush=True):
    stream = parser.stream("file")
    events = []
    for number, line in enumerate(lines):
        events.extend(stream.feed(number, line))
    if flush:
        events.extend(stream.flush())
    return events


def logs(events):
    return [record["log"] for _, record in events]


def section(*entries):
    sec = Section("MULTILINE_PARSER", "parsers.conf", 1)
    sec.entries = [Entry(k, v, "parsers.conf", i + 2) for i, (k, v) in enumerate(entries)]
    return sec


def test_python_tracebacks_as_fluent_bit():
    with open(os.path.join(CASES, "tail_multiline_python", "input", "worker.log")) as f:
        lines = f.read().split("\n")[:-1]
    events = run(get("python"), lines)
    assert logs(events)[0] == "worker starting\n"
    assert logs(events)[1].startswith("Traceback (most recent call last):\n  File ")
    assert logs(events)[1].endswith("RuntimeError: disk quota exceeded\n")
    assert [t for t, _ in events] == [0, 1, 7, 8, 11]
    assert len(events) == 5


def test_java_stack_trace():
    lines = ["Exception in thread \"main\" java.lang.IllegalStateException: boom",
             "\tat com.example.App.run(App.java:10)",
             "Caused by: java.io.IOException: disk",
             "\t... 3 more",
             "next line"]
    assert logs(run(get("java"), lines)) == [
        "\n".join(lines[:4]) + "\n", "next line\n"]


def test_go_panic_and_ruby_error():
    go = ["panic: runtime error: index out of range", "", "goroutine 1 [running]:",
          "main.main()", "\t/app/main.go:8 +0x1d", "exit status 2"]
    assert logs(run(get("go"), go))[0] == "\n".join(go[:5]) + "\n"
    ruby = ["app.rb:3:in `divide': divided by 0 (ZeroDivisionError)",
            "\tfrom app.rb:3:in `/'", "\tfrom app.rb:7:in `<main>'", "done"]
    assert logs(run(get("ruby"), ruby)) == [
        "\n".join(ruby[:3]) + "\n", "done\n"]


def test_open_group_waits_until_flush():
    stream = get("python").stream("f")
    assert stream.feed(5, "Traceback (most recent call last):") == []
    assert stream.feed(6, '  File "x.py", line 1, in <module>') == []
    assert stream.pending
    assert stream.flush() == [(5, {"log": 'Traceback (most recent call last):\n'
                                          '  File "x.py", line 1, in <module>\n'})]
    assert not stream.pending and stream.flush() == []


def test_docker_joins_partial_lines_per_stream():
    lines = ['{"log":"part one, ","stream":"stdout","time":"2024-03-25T10:00:01.1Z"}',
             '{"log":"err\\n","stream":"stderr","time":"2024-03-25T10:00:01.2Z"}',
             '{"log":"a, ","stream":"stdout","time":"2024-03-25T10:00:02.0Z"}',
             '{"log":"b\\n","stream":"stdout","time":"2024-03-25T10:00:03.0Z"}',
             "not json"]
    events = run(get("docker"), lines)
    # The stderr line leaves the stdout group open (Fluent Bit 5.1.1, tail and filter).
    assert events == [
        (1711360801200000000, {"log": "err\n", "stream": "stderr",
                               "time": "2024-03-25T10:00:01.2Z"}),
        (1711360801100000000, {"log": "part one, a, b\n", "stream": "stdout",
                               "time": "2024-03-25T10:00:01.1Z"}),
        (4, {"log": "not json"})]


def test_cri_joins_until_f():
    lines = ["2024-03-25T10:00:01.000000001Z stdout P hello ",
             "2024-03-25T10:00:01.000000002Z stdout F world",
             "2024-03-25T10:00:02Z stderr F alone"]
    events = run(get("cri"), lines)
    assert events[0] == (1711360801000000001, {"time": "2024-03-25T10:00:01.000000001Z",
                                               "stream": "stdout", "_p": "P",
                                               "log": "hello world"})
    assert events[1][1]["log"] == "alone" and len(events) == 2


def test_custom_regex_rules_from_a_section():
    parser = multiline.from_section(section(
        ("name", "stack_lines"), ("type", "regex"), ("flush_timeout", "1000"),
        ("rule", r'"start_state"  "/^\d{4}-\d{2}-\d{2} /"  "cont"'),
        ("rule", r'"cont" "/^\s+/" "cont"')))
    assert parser.flush_timeout == 1.0
    with open(os.path.join(CASES, "config_parser_and_multiline_in_parsers_file", "input",
                           "app.log")) as f:
        lines = f.read().split("\n")[:-1]
    assert logs(run(parser, lines)) == [
        "2024-03-25 INFO service started\n",
        "2024-03-25 ERROR request failed\n    at handler (app.js:10)\n"
        "    at router (app.js:42)\n",
        "2024-03-25 WARN retrying\n  attempt 2\n", "-- end of log --\n"]


def test_endswith_equal_negate_and_key_content_with_a_pre_parser():
    where = engine()
    where.parsers["j"] = JsonParser(where.context("parser:j"), JsonParser.schema().build(
        [Entry("name", "j"), Entry("format", "json")]))
    where.multiline_parsers["cont"] = multiline.from_section(section(
        ("name", "cont"), ("type", "endswith"), ("match_string", "\\"), ("negate", "on"),
        ("key_content", "msg"), ("parser", "j")))
    parser = get("cont", where)
    events = run(parser, ['{"msg":"a \\\\","n":1}', '{"msg":"b","n":2}', '{"msg":"c","n":3}'])
    assert [r for _, r in events] == [{"msg": "a \\b", "n": 1}, {"msg": "c", "n": 3}]
    eq = multiline.from_section(section(("name", "e"), ("type", "eq"), ("match_string", "END")))
    assert logs(run(eq, ["x", "y", "END", "z"])) == ["x\ny\nEND\n", "z\n"]


def test_several_parsers_the_first_that_takes_the_line_wins():
    both = multiline.group([get("python"),
                            get("java")])
    lines = ["Traceback (most recent call last):", '  File "a.py", line 1, in <module>',
             "    x()", "ValueError: bad", "java.lang.RuntimeException: x", "\tat A.b(A.java:1)",
             "end"]
    assert logs(run(both, lines)) == ["\n".join(lines[:4]) + "\n", "\n".join(lines[4:6]) + "\n",
                                      "end\n"]


def test_buffer_limit_cuts_and_flushes():
    parser = get("python")
    parser.buffer_limit = 50
    events = run(parser, ["Traceback (most recent call last):", '  File "' + "x" * 80 + '"'])
    assert len(logs(events)[0]) <= 51 and logs(events)[0].startswith("Traceback")


def test_configuration_errors():
    with pytest.raises(KeyError):
        get("nope")
    with pytest.raises(ConfigError) as err:
        multiline.from_section(section(("name", "x"), ("type", "regex"),
                                       ("rule", '"cont" "/a/" "cont"')))
    assert "start_state" in str(err.value)
    with pytest.raises(ConfigError) as err:
        multiline.from_section(section(("name", "x"), ("type", "regex"),
                                       ("rule", '"start_state" "/(/" "cont"')))
    assert err.value.line == 4
    with pytest.raises(ConfigError):
        multiline.from_section(section(("name", "x"), ("type", "sometimes")))
    with pytest.raises(ConfigError):
        multiline.from_section(section(("name", "x"), ("type", "endswith")))
    where = engine()
    where.multiline_parsers["p"] = multiline.from_section(section(
        ("name", "p"), ("type", "eq"), ("match_string", "F"), ("parser", "missing")))
    with pytest.raises(ConfigError):
        get("p", where)


def test_split_rule_tokens():
    assert multiline.split_rule(r'"a, b"  "/x \"y\"/"  "c"') == ["a, b", '/x "y"/', "c"]
    assert multiline.split_rule("start_state /x/ cont") == ["start_state", "/x/", "cont"]
