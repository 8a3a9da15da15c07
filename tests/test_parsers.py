"""Parser plugins (json, regex, logfmt, ltsv) against Fluent Bit 5.1.1's observed records.

The expectations come from the conformance corpus (../shared/conformance) and from Fluent
Bit's parser sources; each test states the rule it checks.
"""
import io
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeship.core.config import PARSER_SECTIONS
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Entry
from edgeship.engine.loader import Loader
from edgeship.plugins import find

CASES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "..", "shared", "conformance", "cases")
STANDARD = os.path.join(CASES, "parser_cri", "parsers.conf")  # Fluent Bit's parsers.conf


def _engine():
    """A real engine with no plugins, logging to a string: what parsers are built with."""
    return Loader(log_stream=io.StringIO()).build([])


def make(fmt, **keys):
    """A parser of format ``fmt`` built through its schema and a context, as the loader
    does."""
    cls = find("parser", fmt)
    entries = [Entry("name", "test"), Entry("format", fmt)]
    for key, value in keys.items():
        for one in (value if isinstance(value, list) else [value]):
            entries.append(Entry(key, one, "parsers.conf", 1))
    return cls(_engine().context("parser:test"), cls.schema().build(entries))


def load_file(path):
    loader = Loader(log_stream=io.StringIO())
    engine = loader.build([])
    sections = loader.reader.read_other(path, PARSER_SECTIONS)
    return {s.get("name"): loader._parser(engine, s) for s in sections if s.kind == "PARSER"}


def case_lines(case, name):
    with open(os.path.join(CASES, case, "input", name), encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


# ----------------------------------------------------------------------------- json
def test_json_objects_only_and_tricky_values():
    parser = make("json")
    records = [parser.parse(line) for line in case_lines("parser_json_values", "app.log")]
    kept = [r[1] if r else None for r in records]
    assert kept[0] == {"service": "api", "level": "info", "latency_ms": 12, "ok": True}
    assert kept[4] == {"ints": [0, -1, 42, 9007199254740993, 18446744073709551615,
                                -9223372036854775808]}
    assert kept[5]["floats"][3] == 1000.0 and isinstance(kept[5]["floats"][2], float)
    assert list(kept[7].items()) == [("mid", 1), ("dup", "second")]
    assert kept[8] == {"leading_spaces": True} and kept[9] == {"trailing": "spaces"}
    # not json, truncated, array, string, number, two objects, single quotes
    assert kept[10:15] == [None] * 5 and kept[17:] == [None, None]
    assert kept[15] == {} and kept[16] == {"key with spaces": "v", "": "empty key",
                                           "k.dot": "v2"}
    assert parser.failed == 7


def test_json_repeated_keys_at_every_depth_and_with_spaces():
    parser = make("json")
    assert list(parser.parse('{"a":1,"b":{"x":1,"x":2},"a":3}')[1].items()) == \
        [("b", {"x": 2}), ("a", 3)]
    assert list(parser.parse('{"a" : 1, "b" : 2, "a" : 3}')[1].items()) == [("b", 2), ("a", 3)]
    # in a block of lines: a repeat or a nested key among plain records
    assert [list(r.items()) for _, r in parser.parse_lines(
        ['{"x":1}', '{"a":1,"b":2,"a":3}', '{"n":{"a":1,"a":2}}', '{"y":"a\\":b"}'], 0)] == \
        [[("x", 1)], [("b", 2), ("a", 3)], [("n", {"a": 2})], [("y", 'a":b')]]
    for space in (" ", "\t", "\r", "\n"):  # whitespace hides a key from the '":' count
        assert [list(r.items()) for _, r in parser.parse_lines(
            ['{"a"%s:1,"b":2,"a":3}' % space], 0)] == [[("b", 2), ("a", 3)]]
    # '":' inside a value is not taken for a key
    assert parser.parse('{"msg":"say \\":\\" twice","n":1}')[1] == {"msg": 'say ":" twice',
                                                                    "n": 1}


def test_json_same_records_with_and_without_orjson(monkeypatch):
    from edgeship.codecs import untrusted as module
    lines = case_lines("parser_json_values", "app.log") + [
        '{"big":18446744073709551616}', '{"inf":1e400}', '{"n":NaN}', '{"s":"\\ud800"}']
    with_orjson = [module.loads_object(line) for line in lines]
    monkeypatch.setattr(module, "_fast_loads", None)
    without = [module.loads_object(line) for line in lines]
    assert repr(with_orjson) == repr(without)
    assert without[-4] == {"big": 1.8446744073709552e19} and without[-3] is None \
        and without[-2] is None


def test_json_time_key():
    parser = make("json", time_key="t", time_format="%Y-%m-%dT%H:%M:%S.%L%z")
    assert parser.parse('{"t":"2024-03-25T10:00:01.5+0100","a":1}') == \
        (1711357201500000000, {"a": 1})
    kept = make("json", time_key="t", time_format="%s", time_keep="on")
    assert kept.parse('{"t":"1711360801","a":1}') == (1711360801000000000,
                                                      {"t": "1711360801", "a": 1})
    # a time that does not parse: the field stays, the caller uses now
    assert parser.parse('{"t":"yesterday","a":1}') == (None, {"t": "yesterday", "a": 1})
    assert parser.time_failed == 1
    # numbers are not times; without Time_Format the key is ignored
    assert parser.parse('{"t":1711360801}') == (None, {"t": 1711360801})
    assert make("json", time_key="t").parse('{"t":"2024"}') == (None, {"t": "2024"})


def test_a_time_no_event_can_carry_is_a_time_that_does_not_parse():
    # Time_Strict off reads "garbage" as 1899-12-31 (Fluent Bit then loses the record, "error
    # packing event"); a year past 2106 does not fit an EventTime. Both: warned, now, kept.
    loose = make("json", time_key="t", time_format="%Y-%m-%dT%H:%M:%S", time_strict="off")
    assert loose.parse('{"t":"garbage","a":1}') == (None, {"t": "garbage", "a": 1})
    assert loose.parse('{"t":"","a":2}') == (None, {"t": "", "a": 2})
    assert loose.parse('{"t":"2024-05-0","a":3}') == (1714435200000000000, {"a": 3})
    strict = make("json", time_key="t", time_format="%Y-%m-%dT%H:%M:%S")
    for text in ("1969-12-31T23:59:59", "2200-01-01T00:00:00", "9999-12-31T23:59:59"):
        assert strict.parse('{"t":"%s"}' % text) == (None, {"t": text})
    assert strict.parse('{"t":"2106-02-07T06:28:15"}') == (4294967295000000000, {})
    assert (loose.time_failed, strict.time_failed) == (2, 3)
    now = 1795510000 * 10 ** 9
    assert loose.parse_lines(['{"t":"x"}', '{"t":"2024-05-0"}'], now) == \
        [(now, {"t": "x"}), (1714435200000000000, {})]
    # regex drops the field; logfmt and ltsv fail the text, the caller keeps the raw line
    regex = make("regex", regex=r"^(?<time>\S+) (?<msg>.*)$",
                 time_format="%Y-%m-%dT%H:%M:%S", time_strict="off")
    assert regex.parse("garbage hello") == (None, {"msg": "hello"})
    assert make("logfmt", time_key="ts", time_format="%Y-%m-%dT%H:%M:%S",
                time_strict="off").parse("ts=garbage m=x") is None
    assert make("ltsv", time_key="ts", time_format="%Y-%m-%dT%H:%M:%S",
                time_strict="off").parse("ts:garbage\tm:x") is None


# JSON texts built to hit every branch of the duplicate-key shortcut: three key names (so
# keys repeat, in a new order), nested objects, '":' and braces inside strings, whitespace
# before ':' now and then.
_JSON_KEYS = st.sampled_from(["a", "b", 'q" :'])
_JSON_SPACE = st.sampled_from([""] * 6 + [" ", "\t", "\r", "\n"])
_JSON_SCALARS = st.one_of(
    st.integers(-5, 2 ** 65).map(str),
    st.text(st.sampled_from('a ":{}\t\u00e9'), max_size=5).map(json.dumps),
    st.sampled_from(["true", "null", "1.5", "-2e3", "1e400", "NaN"]))


@st.composite
def _json_texts(draw, depth=2):
    def value(level):
        kind = draw(st.integers(0, 5 if level < depth else 0))
        if kind == 4:
            return "[" + ",".join(value(level + 1) for _ in range(draw(st.integers(0, 2)))) + "]"
        if kind == 5:
            return obj(level + 1)
        return draw(_JSON_SCALARS)

    def obj(level):
        pairs = [json.dumps(draw(_JSON_KEYS)) + draw(_JSON_SPACE) + ":" + value(level)
                 for _ in range(draw(st.integers(0, 4)))]
        return "{" + ",".join(pairs) + "}"

    text = obj(0) + draw(_JSON_SPACE)
    # Mostly objects; now and then a text that must fail.
    return draw(st.sampled_from([text] * 8 + [text[1:], "[" + text + "]", text + "x"]))


@settings(max_examples=500, deadline=None)
@given(st.lists(_json_texts(), max_size=8))
def test_json_batch_path_agrees_with_the_per_line_and_stdlib_paths(texts):
    """parse_lines (the inline shortcut) gives the events of parse() line by line, and
    both give what the standard library parser alone gives, key order included."""
    from edgeship.codecs import untrusted as module
    from edgeship.plugins.parsers._base import Parser
    now = 1711360800000000000
    batch, single = make("json"), make("json")
    assert repr(batch.parse_lines(texts, now)) == repr(Parser.parse_lines(single, texts, now))
    assert batch.failed == single.failed
    assert repr(module.loads_objects(texts)) == repr([_stdlib_object(text) for text in texts])


def _stdlib_object(text):
    """The json parser's object by the standard library decoder alone (no orjson)."""
    from edgeship.codecs import untrusted
    try:
        value = untrusted._stdlib(text)
    except ValueError:
        return None
    if type(value) is not dict or untrusted.text_nests_deeper(text, value):
        return None
    return value


def test_parse_lines_keeps_a_time_of_zero_and_fills_now_only_for_no_time():
    now = 1711360800000000000
    lines = ['{"t":"0","a":1}', '{"a":2}', 'nope', '{"t":"bad"}']
    for parser in (make("json", time_key="t", time_format="%s"),
                   make("regex", regex=r'^\{"(?:t":"(?<t>[^"]*)",)?"?(?<a>[^"]*)',
                        time_key="t", time_format="%s")):
        events = parser.parse_lines(lines, now)
        assert [e[0] if e else e for e in events] == [0, now, None, now]


# ----------------------------------------------------------------------------- regex
def test_regex_named_captures_search_and_empty_values():
    skip = make("regex", regex=r"^(?<a>[^,]*),(?<b>[^,]*),(?<c>[^,]*)$")
    keep = make("regex", regex=r"^(?<a>[^,]*),(?<b>[^,]*),(?<c>[^,]*)$",
                skip_empty_values="off")
    assert skip.parse("x,,z") == (None, {"a": "x", "c": "z"})
    assert keep.parse("x,,z") == (None, {"a": "x", "b": "", "c": "z"})
    assert skip.parse(",,") == (None, {})
    assert skip.parse("no commas") is None
    unanchored = make("regex", regex=r"id=(?<id>\d+)")
    assert unanchored.parse("user id=42 ok") == (None, {"id": "42"})
    # no group at all never parses; unnamed groups only give an empty record
    assert make("regex", regex="abc").parse("abc") is None
    assert make("regex", regex="(a)(b)").parse("ab") == (None, {})


def test_regex_time_key_types_and_failed_time():
    parser = make("regex", regex=r"^(?<time>\S+) (?<n>\d+) (?<msg>.*)$",
                  time_format="%Y-%m-%dT%H:%M:%S", types="n:integer")
    assert parser.parse("2024-03-25T10:00:01 7 hello") == (1711360801000000000,
                                                           {"n": 7, "msg": "hello"})
    # invalid time: warned, field dropped, time left to the caller (now)
    assert parser.parse("not-a-time 7 hello") == (None, {"n": 7, "msg": "hello"})
    # Time_Keep: the time stays at its place and Types apply to it; one that does not parse
    # is dropped all the same; with Skip_Empty_Values off an empty time is such a time
    kept = make("regex", regex=r"^(?<n>\d+) (?<time>\S*) (?<msg>.*)$", time_format="%s",
                time_keep="on", types="time:integer n:integer", skip_empty_values="off")
    event = kept.parse("7 1711360801 hello")
    assert event == (1711360801000000000, {"n": 7, "time": 1711360801, "msg": "hello"})
    assert list(event[1]) == ["n", "time", "msg"]
    assert kept.parse("7 soon hello") == (None, {"n": 7, "msg": "hello"})
    assert kept.parse("7  ") == (None, {"n": 7, "msg": ""})
    assert kept.time_failed == 2


def test_regex_repeated_name_keeps_the_last_nonempty():
    parser = make("regex", regex=r"(?<v>a\d)|(?<v>b\d)")
    assert parser.parse("b2") == (None, {"v": "b2"})
    assert parser.parse("a1") == (None, {"v": "a1"})


def test_bad_regex_is_a_config_error_naming_the_parser():
    with pytest.raises(ConfigError) as err:
        make("regex", regex=r"^(?<ts>[^ ]+ (?<msg>.*$")
    assert "parser:test" in str(err.value) and err.value.key == "regex"


def test_types_as_fluent_bit_casts_them():
    parser = load_file(os.path.join(CASES, "parser_types", "parsers.conf"))["typed"]
    got = [parser.parse(line)[1] for line in case_lines("parser_types", "metrics.log")]
    assert got[2] == {"name": "disk", "count": 12, "ratio": 1000.0, "up": "yes", "mask": 0,
                      "id": "x"}
    assert got[3]["mask"] == 3735928559 and got[3]["up"] is True
    assert got[4] == {"name": "temp", "count": 3, "ratio": 0.5, "up": "0", "mask": 16,
                      "id": "0x10"}
    p = make("regex", regex=r"(?<a>\S+) (?<b>\S+) (?<c>\S+)", types="a:int b:hex c:float")
    assert p.parse("5 -1 inf")[1] == {"a": "5", "b": 2 ** 64 - 1, "c": float("inf")}


# ----------------------------------------------------------------------------- decoders
def test_decode_field_as_json_in_place():
    parser = make("regex", regex=r"^(?<source>\w+) (?<payload>.*)$",
                  decode_field_as="json payload")
    got = [parser.parse(line)[1]["payload"]
           for line in case_lines("parser_decode_field_as_json", "events.log")]
    assert got == [{"temp": 21.5, "unit": "C", "tags": ["a", "b"]},
                   {"nested": {"ok": True}, "n": None}, '{"temp":', "plain words", "[1,2,3]"]
    escaped = parser.parse('s {\\"a\\":\\"b\\"}')[1]["payload"]
    assert escaped == {"a": "b"}


def test_decode_field_merges_and_rules_chain():
    merge = make("regex", regex=r"^(?<log>.*)$", decode_field="json log")
    assert list(merge.parse('{"a":1}')[1].items()) == [("log", '{"a":1}'), ("a", 1)]
    # a decoded key that repeats a record key wins, at the end
    assert list(merge.parse('{"a":1,"log":"x"}')[1].items()) == [("a", 1), ("log", "x")]
    chain = make("regex", regex=r"^(?<log>.*)$",
                 decode_field_as=["escaped log try_next", "json log"])
    assert chain.parse('line\\none')[1] == {"log": "line\none"}
    both = make("regex", regex=r"^(?<log>.*)$",
                decode_field_as=["json log try_next", "escaped_utf8 log"])
    assert both.parse('caf\\u00e9 \\"q\\"')[1] == {"log": 'café \\"q\\"'}
    mysql = make("regex", regex=r"^(?<q>.*)$", decode_field_as="mysql_quoted q")
    assert mysql.parse("'it''s\\n'")[1] == {"q": "it's\n"}
    with pytest.raises(ConfigError):
        make("json", decode_field_as="base64 log")


# ----------------------------------------------------------------------------- logfmt
def test_logfmt_case_lines():
    parser = make("logfmt")
    got = [parser.parse(line)[1] for line in case_lines("parser_logfmt", "app.log")]
    assert got[1]["query"] == 'SELECT * FROM t WHERE a = "x"'
    assert got[2] == {"ts": "2024-03-25T10:00:00Z", "bare_key": True, "level": "error",
                      "msg": "oops", "err": True}
    assert got[3] == {"unicode": "Grüße 🎉", "equals": "a=b=c", "spaces": "  padded  "}
    assert got[5] == {"key_only": True, "another_key": True}


def test_logfmt_edges():
    parser = make("logfmt")
    assert parser.parse('a="" b="unterminated') == (None, {"a": "", "b": "unterminated"})
    assert parser.parse("a=1\nb=2") == (None, {"a": "1"})
    assert parser.parse("  = \" ") is None
    assert parser.parse("a=1 a=2 b=3")[1] == {"a": "2", "b": "3"}
    strict = make("logfmt", logfmt_no_bare_keys="on")
    assert strict.parse("a=1 bare") is None and strict.parse("a=1 b=")[1] == {"a": "1",
                                                                              "b": True}
    timed = make("logfmt", time_key="ts", time_format="%Y-%m-%dT%H:%M:%SZ")
    assert timed.parse("ts=2024-03-25T10:00:00Z m=x") == (1711360800000000000, {"m": "x"})
    assert timed.parse("ts=bad m=x") is None           # logfmt: a bad time fails the text
    assert timed.parse("ts=2024-03-25T10:00:00Z") is None  # nothing left to write
    # a line break after the time field ends the record too (flb_parser_logfmt.c)
    assert timed.parse("m=x ts=2024-03-25T10:00:00Z\nn=y") == (1711360800000000000,
                                                                 {"m": "x"})


# ----------------------------------------------------------------------------- ltsv
def test_ltsv_case_lines():
    parser = load_file(os.path.join(CASES, "parser_ltsv", "parsers.conf"))["ltsv_access"]
    got = [parser.parse(line) for line in case_lines("parser_ltsv", "access.ltsv")]
    assert got[0] == (1711328401000000000, {"host": "127.0.0.1", "req": "GET /list HTTP/1.1",
                                            "status": 200, "size": 1024, "reqtime": 0.005})
    assert got[1][1]["req"] == "GET /a:b:c HTTP/1.1" and got[2][1]["empty"] == ""


def test_ltsv_stops_where_fluent_bit_stops():
    parser = make("ltsv")
    assert parser.parse("a:1\t\tb:2") == (None, {"a": "1"})
    assert parser.parse("a:1\tbad label:2\tc:3") == (None, {"a": "1"})
    assert parser.parse("a:1\r\nb:2") == (None, {"a": "1"})
    assert parser.parse("no separator") is None


# ----------------------------------------------------------------------------- standard file
REALISTIC = {
    "apache": ('192.168.0.1 - frank [10/Oct/2023:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 '
               '2326 "http://x/" "Mozilla/5.0"', {"host": "192.168.0.1", "code": "200"}),
    "apache2": ('::1 - - [25/Mar/2024:10:00:04 +0000] "OPTIONS * HTTP/1.0" 200 126 "-" "ua"',
                {"path": "*", "agent": "ua"}),
    "apache_error": ("[Mon Mar 25 10:00:01.123 2024] [core:error] [pid 42] [client 1.2.3.4:5] "
                     "AH00037: oops", {"level": "core:error", "pid": "42",
                                       "client": "1.2.3.4:5", "message": "AH00037: oops"}),
    "nginx": ('10.0.0.1 - - [25/Mar/2024:10:00:01 +0000] "GET / HTTP/1.1" 200 612 "-" '
              '"curl/8"', {"remote": "10.0.0.1", "agent": "curl/8"}),
    "k8s-nginx-ingress": (
        '10.0.0.1 - - [25/Mar/2024:10:00:01 +0000] "GET /api HTTP/1.1" 200 12 "-" "curl/8" 80 '
        '0.005 [default-api-80] [] 10.1.0.5:8080 12 0.004 200 abc123',
        {"proxy_upstream_name": "default-api-80", "upstream_status": "200",
         "reg_id": "abc123"}),
    "json": ('{"time":"25/Mar/2024:10:00:01 +0000","a":1}', {"a": 1}),
    "logfmt": ("level=info msg=ok", {"level": "info", "msg": "ok"}),
    "docker": ('{"log":"hello\\n","stream":"stdout","time":"2024-03-25T10:00:01.123456789Z"}',
               {"log": "hello\n", "time": "2024-03-25T10:00:01.123456789Z"}),
    "docker-daemon": ('time="2024-03-25T10:00:01.000000000Z" level=info msg="Daemon started"',
                      {"level": "info", "msg": "Daemon started"}),
    "syslog-rfc5424": ("<34>1 2024-03-25T10:00:01.003Z host su - ID47 - failed",
                       {"pri": "34", "message": "failed"}),
    "syslog-rfc3164-local": ("<13>Mar 25 10:00:01 sshd[42]: Accepted key",
                             {"ident": "sshd", "pid": "42", "message": "Accepted key"}),
    "syslog-rfc3164": ("<13>Mar  5 10:00:01 gw sshd[42]: Accepted key",
                       {"host": "gw", "time": "Mar  5 10:00:01", "message": "Accepted key"}),
    "mongodb": ("2024-03-25T10:00:01.123+0000 I NETWORK  [conn1] end connection 10ms",
                {"severity": "I", "component": "NETWORK", "context": "conn1"}),
    "envoy": ('[2024-03-25T10:00:01.123Z] "GET /status HTTP/1.1" 200 - 0 15 3 2 "-" "curl/8" '
              '"id-1" "svc" "10.0.0.2:80"', {"method": "GET", "protocol": "HTTP/1.1",
                                              "upstream_host": "10.0.0.2:80"}),
    "cri": ("2024-03-25T10:00:01.123456789Z stdout F hello world",
            {"stream": "stdout", "logtag": "F", "message": "hello world"}),
    "kube-custom": ("web-1_default_nginx-" + "a" * 64 + ".log",
                    {"namespace_name": "default", "container_name": "nginx",
                     "docker_id": "a" * 64}),
}


def test_standard_parsers_file_loads_and_parses_realistic_lines():
    parsers = load_file(STANDARD)
    assert set(REALISTIC) <= set(parsers)
    for name, (line, expected) in REALISTIC.items():
        result = parsers[name].parse(line)
        assert result is not None, name
        for key, value in expected.items():
            assert result[1].get(key) == value, (name, key, result)
    assert parsers["syslog-rfc5424"].parse(REALISTIC["syslog-rfc5424"][0])[0] == \
        1711360801003000000
    assert parsers["docker"].parse(REALISTIC["docker"][0])[0] == 1711360801123456789
