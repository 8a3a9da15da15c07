"""One JSON decoder (edgeship.codecs.untrusted) with Fluent Bit's rules at every input.

The inputs once disagreed on a key given twice: the json parser kept the last value at the
later position, the mqtt and mqtt_client payloads and stdin at the first. Fluent Bit 5.1.1
keeps both keys in its record, and every JSON output shows the last value at the later
position (checked on the real binary with the json parser, in_mqtt and in_stdin), which is
what every input gives now. Numbers: integers beyond 64 bits become floats, NaN is refused,
1e400 is refused except by stdin, which reads it as infinity as in_stdin does.
"""
import json

import pytest

from edgeship.codecs import payload, untrusted
from edgeship.core.mqtt_codec import PUBLISH
from filter_helpers import load
from test_stdin import out_file_events, run_stdin

REPEATED = '{"a":1,"b":{"x":1,"y":2,"x":3},"a":3}'
# What Fluent Bit's JSON outputs show for REPEATED, key order included.
FLUENT_BIT = [("b", {"y": 2, "x": 3}), ("a", 3)]


def items(value):
    return [(k, dict(v) if isinstance(v, dict) else v) for k, v in value.items()]


@pytest.mark.parametrize("orjson", [True, False])
def test_the_decoder_keeps_the_last_value_at_the_later_position(monkeypatch, orjson):
    if not orjson:
        monkeypatch.setattr(untrusted, "_fast_loads", None)
    for data in (REPEATED, REPEATED.encode(), REPEATED.replace(":", " : ")):
        value = untrusted.loads(data)
        assert items(value) == FLUENT_BIT and list(value["b"]) == ["y", "x"]
    assert items(untrusted.loads_object(REPEATED)) == FLUENT_BIT
    value, end = untrusted.raw_decode(" " + REPEATED + " {}", 1)
    assert items(value) == FLUENT_BIT and end == len(REPEATED) + 1
    assert untrusted.loads('[{"k":1,"j":0,"k":2}]') == [{"j": 0, "k": 2}]
    assert list(untrusted.loads('[{"k":1,"j":0,"k":2}]')[0]) == ["j", "k"]
    # Fluent Bit's numbers
    assert untrusted.loads('{"n":99999999999999999999}') == {"n": 1e20}
    for refused in ('{"n":NaN}', '{"n":1e400}', '{"n":-Infinity}'):
        with pytest.raises(ValueError):
            untrusted.loads(refused)
    assert untrusted.raw_decode('{"n":1e400}', overflow_ok=True)[0] == {"n": float("inf")}


def test_mqtt_input_payload_keys_and_the_topic_key(tmp_path):
    """in_mqtt on the real binary: payload {"a":1,"b":2,"a":3,"topic":"mine"} on topic s/1
    came out of its JSON output as {"b":2,"a":3,"topic":"mine"}."""
    plugin = load(tmp_path, "[INPUT]\n    Name mqtt\n    Port 0\n").inputs[0]
    events = plugin._records([(PUBLISH, "s/1", b'{"a":1,"b":2,"a":3,"topic":"mine"}'),
                              (PUBLISH, "s/2", REPEATED.encode())], 7)
    assert [items(record) for _, record in events] == [
        [("b", 2), ("a", 3), ("topic", "mine")], [("topic", "s/2")] + FLUENT_BIT]


def test_mqtt_client_payloads_follow_the_same_rule(tmp_path):
    plugin = load(tmp_path, "[INPUT]\n    Name mqtt_client\n    Topic x/#\n").inputs[0]
    assert [items(r) for r in plugin._records("x/1", REPEATED.encode())] == \
        [[("topic", "x/1")] + FLUENT_BIT]
    assert [items(r) for r in plugin._records("x/1", b'{"topic":"t","v":1}')] == \
        [[("topic", "t"), ("v", 1)]]
    lines = b'{"k":1,"j":0,"k":2}\n{"z":1}\n'
    assert [list(r) for r in payload.records(payload.values("json", lines), "log")] == \
        [["j", "k"], ["z"]]


def test_dummy_record_follows_the_same_rule(tmp_path):
    plugin = load(tmp_path, "[INPUT]\n    Name dummy\n    Dummy %s\n" % REPEATED).inputs[0]
    assert items(plugin._batch(0)[0][1]) == FLUENT_BIT


def test_json_parser_follows_the_same_rule(tmp_path):
    engine = load(tmp_path, "", parsers="[PARSER]\n    Name j\n    Format json\n")
    assert items(engine.parsers["j"].parse(REPEATED)[1]) == FLUENT_BIT


def test_stdin_follows_the_same_rule_and_reads_1e400_as_infinity(tmp_path):
    proc, out = run_stdin(tmp_path, REPEATED + '\n{"n":NaN}\n{"big":1e400}\n{"end":1}\n')
    assert proc.returncode == 0, proc.stderr
    records = [e[2] for e in out_file_events(out)]
    assert [items(r) for r in records[:1]] == [FLUENT_BIT]
    # out_file writes infinity as null (Fluent Bit writes inf, which is not JSON)
    assert records[1:] == [{"big": None}, {"end": 1}]
    assert "invalid JSON message, skipping" in proc.stderr
    assert json.loads(REPEATED) == {"a": 3, "b": {"x": 3, "y": 2}}  # the stdlib's order differs
