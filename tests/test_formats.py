"""edgeship.codecs.formats against the bytes Fluent Bit 5.1.1 wrote in the conformance corpus, and
the fast JSON path against a plain reference encoder of Fluent Bit's rules."""
import importlib.util
import json
import math
import os
import re
import sys

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeship.codecs import formats
from conftest import SHARED

CASES = os.path.join(SHARED, "conformance", "cases")
T0 = 1711360801 * formats.NS


def load_without_orjson():
    """A second copy of edgeship.codecs.formats, loaded as if orjson were not installed."""
    saved = sys.modules.get("orjson")
    sys.modules["orjson"] = None  # makes "import orjson" raise ImportError
    try:
        spec = importlib.util.spec_from_file_location("formats_without_orjson",
                                                      formats.__file__)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.modules["orjson"] = saved
    assert module.orjson is None
    return module


PURE = load_without_orjson()
both = pytest.mark.parametrize("fmt", [formats, PURE], ids=["orjson", "pure-python"])


def expected(case, name):
    with open(os.path.join(CASES, case, "expected", name), "rb") as f:
        return f.read()


_OUT_FILE_LINE = re.compile(rb"^(\S+): \[(\d+)\.(\d{9}), (.*)\]$")


def out_file_events(data):
    """(tag, events) back from Fluent Bit's out_file text."""
    events, tag = [], None
    for line in data.splitlines():
        tag, sec, nsec, body = _OUT_FILE_LINE.match(line).groups()
        events.append((int(sec) * formats.NS + int(nsec), json.loads(body)))
    return tag.decode(), events


def csv_times(data):
    return [int(line.split(b",")[0].replace(b".", b"")) for line in data.splitlines()]


def jsonl_records(data):
    return [json.loads(line) for line in data.splitlines() if line]


# --------------------------------------------------------------------------- corpus bytes

@both
def test_json_of_tricky_values_matches_fluent_bit(fmt):
    data = expected("parser_json_values", "app.jsonl")
    lines = [line for line in data.split(b"\n") if line]
    assert fmt.json_batch([json.loads(line) for line in lines]) == lines


def test_out_file_format_matches_fluent_bit_for_every_case_that_uses_it():
    for case, name in (("output_default_format", "edge.rec"), ("parser_ltsv", "records.txt"),
                       ("parser_cri", "pod.txt"), ("parser_syslog_rfc5424", "syslog.txt"),
                       ("parser_apache2_time", "access.txt"),
                       ("parser_time_formats", "times.txt")):
        data = expected(case, name)
        tag, events = out_file_events(data)
        assert formats.render_out_file(tag, events) == data, case


def rec_log_events():
    """The records of the output_* cases (input/rec.log through the json parser)."""
    return out_file_events(expected("output_default_format", "edge.rec"))[1]


def test_csv_delimiters_and_header_match_fluent_bit():
    events = rec_log_events()
    assert formats.render_csv(events) == expected("output_csv_delimiters", "comma.csv")
    assert formats.render_csv(events, "\t") == expected("output_csv_delimiters", "tab.tsv")
    # 'Delimiter ;' is not understood: the default comma is used.
    assert formats.check_delimiter(";") is None
    assert formats.render_csv(events) == expected("output_csv_delimiters", "semicolon.csv")
    header = formats.csv_header(events[0][1])
    assert header + formats.render_csv(events) == expected("output_csv_delimiters", "header.csv")


def test_ltsv_matches_fluent_bit():
    events = rec_log_events()
    assert formats.render_ltsv(events) == expected("output_ltsv_template", "records.ltsv")
    # 'Delimiter space' works, 'Label_Delimiter =' is ignored (':' stays).
    assert formats.check_delimiter("=") is None
    assert formats.render_ltsv(events, formats.check_delimiter("space"), ":") == \
        expected("output_ltsv_template", "custom.ltsv")
    tag, ltsv_events = out_file_events(expected("parser_ltsv", "records.txt"))
    assert formats.render_ltsv(ltsv_events) == expected("parser_ltsv", "records.ltsv")


def test_template_matches_fluent_bit():
    events = rec_log_events()
    template = formats.Template("[{time}] {host}: {msg} n={n} missing={nope}")
    assert template.render(events) == expected("output_ltsv_template", "template.txt")
    assert formats.Template("{time} {message}").render(events) == \
        expected("output_ltsv_template", "default-template.txt")


def test_csv_and_template_of_parsed_lines_match_fluent_bit():
    csv = expected("parser_movie_log_seed", "movies.csv")
    records = jsonl_records(expected("parser_movie_log_seed", "movies.jsonl"))
    events = list(zip(csv_times(csv), records))
    assert formats.render_csv(events) == csv
    assert formats.Template("{time} {user} {method} {path}").render(events) == \
        expected("parser_movie_log_seed", "movies.txt")
    assert formats.render_plain(events) == expected("parser_movie_log_seed", "movies.jsonl")

    csv = expected("parser_nginx_csv", "nginx.csv")
    records = jsonl_records(expected("parser_nginx_csv", "nginx.jsonl"))
    assert formats.render_csv(list(zip(csv_times(csv), records))) == csv


# --------------------------------------------------------------------------- JSON rules

@both
def test_json_floats_use_fluent_bit_notation(fmt):
    cases = {2.5: "2.5", 3.0: "3.0", 1000.0: "1000.0", 1e-07: "1e-07", 6.02e23: "6.02e+23",
             0.1: "0.1", 123456789.123456789: "123456789.1234568", 1e300: "1e+300",
             1e16: "10000000000000000.0", -0.0: "-0.0", 2.0 ** 63: "9.223372036854776e+18",
             -2.0 ** 63: "-9223372036854775808.0", 1711360801.5: "1711360801.5"}
    for value, text in cases.items():
        assert fmt.json_float(value) == text, value
        assert fmt.to_json({"f": value}) == b'{"f":' + text.encode() + b"}"
    # Not JSON in Fluent Bit (nan, inf); null here.
    assert fmt.to_json([math.nan, math.inf, -math.inf]) == b"[null,null,null]"


def test_every_orjson_float_notation_takes_the_exact_path():
    # orjson 3.11.5, the last release for Python 3.9, writes exponents without '+'.
    for text in (b'{"f":6.02e23}', b'{"f":6.02e+23}', b'[1e-07]', b'[1.5]', b'{"a":[2.5e300]}'):
        assert formats._has_float(text), text
    assert not formats._has_float(b'{"n":602,"s":"e23 x"}')


@both
def test_json_escapes_like_fluent_bit(fmt):
    text = 'q" b\\ s/ \n\r\t\b\f \x00\x01\x0b\x1b\x1f\x7f é ✓ 🚀'
    assert fmt.to_json(text) == (
        b'"q\\" b\\\\ s/ \\n\\r\\t\\b\\f \\u0000\\u0001\\u000b\\u001b\\u001f\\u007f '
        b'\\u00e9 \\u2713 \\ud83d\\ude80"')
    # Non-ASCII and DEL in keys too.
    assert fmt.to_json({"clé\x7f": 1}) == b'{"cl\\u00e9\\u007f":1}'


@both
def test_json_of_values_orjson_refuses(fmt):
    # Raw bytes (msgpack bin), a byte that was not UTF-8 (surrogate escape), 2**64 and
    # beyond, non-string keys.
    record = {"bin": b"ab\xff", "bad": "x\udcff", "big": 2 ** 64, "neg": -2 ** 63,
              1: "one", b"k": "v", 2.5: (1, None), None: "t", "é": "ü"}
    assert fmt.to_json(record) == (
        b'{"bin":"ab\\ue0ff","bad":"x\\ue0ff","big":18446744073709551616,'
        b'"neg":-9223372036854775808,"1":"one","k":"v","2.5":[1,null],"null":"t",'
        b'"\\u00e9":"\\u00fc"}')


@both
def test_json_batch_keeps_records_apart(fmt):
    # The batch separator must not be confused with record text.
    records = [{"a": ",\x00,"}, {}, {"b": [1, {"c": "},{"}]}, {"d": 1.5}]
    assert fmt.json_batch(records) == [
        b'{"a":",\\u0000,"}', b"{}", b'{"b":[1,{"c":"},{"}]}', b'{"d":1.5}']
    assert fmt.json_batch([]) == []


def _reference_str(text):
    short = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b",
             "\f": "\\f"}
    out = []
    for char in text:
        if char in short:
            out.append(short[char])
        elif ord(char) < 0x20 or ord(char) >= 0x7f:
            units = char.encode("utf-16-be")
            for i in range(0, len(units), 2):
                out.append("\\u%02x%02x" % (units[i], units[i + 1]))
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def reference_json(value):
    """Fluent Bit's msgpack2json rules, written out one value at a time."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == int(value) and -2.0 ** 63 <= value < 2.0 ** 63:
            return "%.1f" % value
        return "%.16g" % value
    if isinstance(value, str):
        return _reference_str(value)
    if isinstance(value, list):
        return "[" + ",".join(reference_json(v) for v in value) + "]"
    return "{" + ",".join(reference_json(k) + ":" + reference_json(v)
                          for k, v in value.items()) + "}"


_scalars = (st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 64 - 1)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)


@settings(max_examples=120, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=6), _values, max_size=6), max_size=8))
def test_json_batch_equals_reference_encoder(records):
    wanted = [reference_json(r).encode() for r in records]
    assert formats.json_batch(records) == wanted
    assert PURE.json_batch(records) == wanted


# --------------------------------------------------------------------------- dates

def test_date_formats():
    t = 1711360801123456789
    assert formats.date_json(t, "double") == b"1711360801.123457"
    assert formats.date_json(T0, "double") == b"1711360801.0"
    assert formats.date_json(t, "epoch") == b"1711360801"
    assert formats.date_json(t, "epoch_ms") == b"1711360801123"
    assert formats.date_json(t, "epoch_millis") == b"1711360801123"
    assert formats.date_json(t, "iso8601") == b'"2024-03-25T10:00:01.123456Z"'
    assert formats.date_json(t, "java_sql_timestamp") == b'"2024-03-25 10:00:01.123456"'
    assert formats.date_key_option("false") is None
    assert formats.date_key_option("Off") is None
    assert formats.date_key_option("@timestamp") == "@timestamp"


def test_json_events_put_the_date_first_unless_the_record_has_that_key():
    events = [(T0, {"a": 1}), (T0 + 500000000, {}), (T0, {"x": 1, "date": "mine"}),
              (T0, {"f": 0.5, "é": "ü"})]
    assert formats.json_events(events, "date") == [
        b'{"date":1711360801.0,"a":1}', b'{"date":1711360801.5}',
        b'{"x":1,"date":"mine"}', b'{"date":1711360801.0,"f":0.5,"\\u00e9":"\\u00fc"}']
    assert formats.json_events(events[:1], None) == [b'{"a":1}']
    assert formats.json_events(events[:1], 'k"1', "iso8601") == [
        b'{"k\\"1":"2024-03-25T10:00:01.000000Z","a":1}']


def test_render_json_formats():
    events = [(T0, {"a": 1}), (T0, {"b": "x"})]
    assert formats.render_json(events, "json", "date", "epoch") == \
        b'[{"date":1711360801,"a":1},{"date":1711360801,"b":"x"}]'
    assert formats.render_json(events, "json_lines") == b'{"a":1}\n{"b":"x"}\n'
    assert formats.render_json(events, "json_stream") == b'{"a":1}{"b":"x"}'



_times = st.sampled_from([T0, T0, T0 + 500000000, 0, 1711360801123456789])
_keys = st.sampled_from(["date", "a", "\u00e9"]) | st.text(max_size=4)
_events = st.lists(st.tuples(_times, st.dictionaries(_keys, _values, max_size=4)), max_size=8)


@settings(max_examples=150, deadline=None)
@given(_events, st.sampled_from([None, "date", "\u00e9"]), st.sampled_from(formats.DATE_FORMATS))
def test_batch_renderings_equal_the_per_record_rules(events, date_key, date_format):
    """render_json, render_out_file, render_plain and the MQTT batch payloads (joined runs
    of events at one time) give what the per-record rules give, with and without orjson."""
    from edgeship.codecs import payload
    for fmt in (formats, PURE):
        parts = fmt.json_events(events, date_key, date_format)
        assert fmt.render_json(events, "json", date_key, date_format) == \
            b"[" + b",".join(parts) + b"]"
        assert fmt.render_json(events, "json_lines", date_key, date_format) == \
            b"".join([p + b"\n" for p in parts])
        assert fmt.render_json(events, "json_stream", date_key, date_format) == b"".join(parts)
        plain = [reference_json(record).encode() for _, record in events]
        assert fmt.render_plain(events) == b"".join([p + b"\n" for p in plain])
        assert fmt.render_out_file("t.x", events) == b"".join([
            b"t.x: [%d.%09d, %s]\n" % (t // formats.NS, t % formats.NS, p)
            for (t, _), p in zip(events, plain)])
    maps = [record if date_key is None or date_key in record else
            dict([(date_key, json.loads(formats.date_json(t, date_format)))]
                 + list(record.items())) for t, record in events]
    assert payload.dated_maps(events, date_key, date_format) == maps
    assert payload.encode_batch("msgpack", events, date_key, date_format) == \
        msgpack.packb(maps, use_bin_type=True)


def test_msgpack_batch_keeps_raw_bytes_of_a_lone_surrogate():
    from edgeship.codecs import payload
    assert payload.encode_batch("msgpack", [(T0, {"a": "x\udcff"})], "d", "epoch") == \
        b"\x91\x82\xa1d\xce\x66\x01\x4b\x21\xa1a\xa2x\xff"


# --------------------------------------------------------------------------- msgpack print

def test_msgpack_print_of_the_reference_example():
    events = [(T0, {"k": "v", "f": 1.5, "b": True, "n": None}),
              (T0 + 5, {"l": [1, "a", []], "m": {"k": {}}, "raw": b'a"\x01', "s": 'q"ü\t'})]
    assert formats.render_msgpack_print("my.tag", events) == (
        b'[0] my.tag: [[1711360801.000000000, {}], {"k"=>"v", "f"=>1.500000, "b"=>true, '
        b'"n"=>nil}]\n'
        b'[1] my.tag: [[1711360801.000000005, {}], {"l"=>[1, "a", []], "m"=>{"k"=>{}}, '
        b'"raw"=>"a\\"\\x01", "s"=>"q"\xc3\xbc\t"}]\n')


def test_csv_and_ltsv_skip_empty_records_and_keep_raw_bytes():
    events = [(T0, {}), (T0, {"s": "a\udcffb", "x": 1e300})]
    assert formats.render_csv(events) == b'1711360801.000000000,"a\xffb",' + \
        b"%f" % 1e300 + b"\n"
    assert formats.render_ltsv(events, ",", "=") == \
        b'"time"=1711360801.000000,"s"="a\xffb","x"=' + b"%f" % 1e300 + b"\n"


def test_template_brace_rules():
    template = formats.Template("{a{b} {} {t} {tim} {timex} {x} {unclosed")
    line = template.render([(T0, {"b": "B", "x": [1, "y"]})])
    assert line == (b"{aB 1711360801.000000 1711360801.000000 1711360801.000000 {timex} "
                    b'[1, "y"] {unclosed\n')
    assert formats.Template("").render([(T0, {})]) == b"\n"


def test_check_delimiter():
    assert [formats.check_delimiter(v) for v in ("tab", "\\t", "TAB", "space", "Comma", ";",
                                                 "\t", None)] == \
        ["\t", "\t", "\t", " ", ",", None, None, None]


@both
def test_json_escape_unicode_off_writes_utf8_and_still_escapes_controls(fmt):
    """[SERVICE] json.escape_unicode off (Fluent Bit's vector out_http_json_escape_unicode_off):
    non-ASCII as UTF-8 bytes, in values and keys; quotes, controls and DEL still escaped;
    a raw byte that is no UTF-8 still becomes U+E0XX."""
    records = [{"uni": "h\u00e9llo \u2713 \U0001f600", "\u043a\u043b\u044e\u0447": "x"},
               {"ctl": "q\"\\\n\x01\x7f", "f": 0.1, "raw": b"\xff".decode("utf-8", "surrogateescape")},
               {"plain": "ascii"}]
    try:
        fmt.escape_unicode(False)
        off = fmt.json_batch(records)
    finally:
        fmt.escape_unicode(True)
    assert off == [
        '{"uni":"h\u00e9llo \u2713 \U0001f600","\u043a\u043b\u044e\u0447":"x"}'.encode(),
        b'{"ctl":"q\\"\\\\\\n\\u0001\\u007f","f":0.1,"raw":"\xee\x83\xbf"}',
        b'{"plain":"ascii"}']
    on = fmt.json_batch(records)
    assert on[0] == (b'{"uni":"h\\u00e9llo \\u2713 \\ud83d\\ude00",'
                     b'"\\u043a\\u043b\\u044e\\u0447":"x"}')
    assert on[1:] == [off[1].replace(b"\xee\x83\xbf", b"\\ue0ff"), off[2]]
