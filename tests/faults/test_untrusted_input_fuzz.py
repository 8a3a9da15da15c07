"""Untrusted bytes at every input boundary (forward, mqtt, mqtt_client, stdin): random nested
records, nesting 10..100000 levels deep, huge strings, NUL bytes, invalid UTF-8, cut frames,
and PackedForward frames full of invalid entries. The bounded decoder is checked in process
against reference walks; then real edgeship processes take the same inputs over real
sockets, a real Mosquitto and a stdin pipe, and must answer every message (forward ack,
PUBACK), never show a traceback or die, deliver every valid record, and report the count of
every record they dropped.

Depth rule under test (edgeship.codecs.untrusted): a value of at most MAX_DEPTH (64) levels
of maps and arrays is kept, a deeper one is dropped and counted (kept as text by mqtt_client
and by a Parser).
"""
import gzip
import itertools
import json
import os
import re
import socket
import struct
import subprocess

import msgpack
import paho.mqtt.client as paho
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import EDGESHIP, accepts_connections, free_port, wait_for
from edgeship.codecs import untrusted
from edgeship.codecs.msgpack import MsgpackCodec
from edgeship.core import forward, mqtt_codec
from edgeship.engine.loader import Loader
from mosquitto import Broker

CODEC = MsgpackCodec()
T = 1704164645 * forward.NS
LIMIT = untrusted.MAX_DEPTH
IDS = itertools.count(1)
PROCESS_SETTINGS = settings(max_examples=30, deadline=None, database=None,
                            suppress_health_check=[HealthCheck.too_slow,
                                                   HealthCheck.function_scoped_fixture,
                                                   HealthCheck.data_too_large])

# ------------------------------------------------------------------------------ inputs
# Nesting: mostly around the limit, some far past msgpack's and Python's own (1024, 1000).
levels = st.one_of(st.integers(10, 80), st.integers(80, 3000), st.integers(3000, 100000))

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2 ** 63, 2 ** 64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.text(alphabet=st.sampled_from("a\x00\u00e9\U0001f600\"\\\n"), max_size=20))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=10)
huge = st.one_of(st.just(0), st.integers(0, 200000))


def nested_json(depth, maps):
    """JSON text of ``depth`` levels of arrays (or maps)."""
    if maps:
        return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)
    return "[" * depth + "]" * depth


def nested_msgpack(depth, maps):
    if maps:
        return b"\x81\xa1a" * (depth - 1) + b"\x80"
    return b"\x91" * (depth - 1) + b"\x90"


def depth_of(value):
    """Reference: levels of maps and arrays, walked with an explicit stack."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


class Record:
    """A record to send: ``{"id", "body", "big", "d": <nested levels>}``. It nests
    ``depth`` levels (the record is the first) and must arrive iff depth <= LIMIT."""

    def __init__(self, body, big, nested, maps):
        self.id = next(IDS)
        self.body = body
        self.big = "x" * big + "\x00"
        self.nested = nested
        self.maps = maps
        self.depth = max(1 + depth_of(body), 1 + nested)

    @property
    def kept(self):
        return self.depth <= LIMIT

    def msgpack(self):
        head = CODEC.packb({"id": self.id, "body": self.body, "big": self.big,
                            "bad": "\udcff\udcfe"})      # invalid UTF-8 on the wire
        return bytes((head[0] + 1,)) + head[1:] + b"\xa1d" + nested_msgpack(self.nested,
                                                                              self.maps)

    def json(self):
        head = json.dumps({"id": self.id, "body": self.body, "big": self.big})
        return head[:-1] + ',"d":' + nested_json(self.nested, self.maps) + "}"


records = st.builds(Record, values, huge, st.one_of(st.integers(1, 63), levels), st.booleans())


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def logged_counts(path, pattern):
    if not os.path.exists(path):
        return 0
    with open(path, encoding="utf-8", errors="replace") as f:
        return sum(int(n) for n in re.findall(pattern, f.read()))


def text_of(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def write_conf(path, text):
    path.write_text(text)
    return str(path)


SERVICE = ("[SERVICE]\n    Flush 0.1\n    Grace 1\n    Log_File {log}\n"
           "    scheduler.base 1\n    scheduler.cap 1\n")
FILE_OUTPUT = ("[OUTPUT]\n    Name file\n    Match *\n    Path {out}\n    File out.jsonl\n"
               "    Format plain\n    Mkdir on\n    Retry_Limit no_limits\n")


# ------------------------------------------------------------------------------ in process
@settings(max_examples=300, deadline=None)
@given(values, levels, st.booleans(), st.booleans())
def test_json_depth_rule_matches_a_reference_walk(value, depth, maps, wrap):
    text = json.dumps(value)
    if wrap:
        text = '{"v":%s,"d":%s}' % (text, nested_json(depth, maps))
    expected = depth_of(json.loads(text)) if depth < 900 or not wrap else depth + 1
    for data in (text, text.encode()):
        if expected <= LIMIT:
            assert untrusted.loads(data) == json.loads(text)
        else:
            with pytest.raises(untrusted.TooDeep):
                untrusted.loads(data)
        if isinstance(data, str):
            if expected <= LIMIT:
                assert untrusted.raw_decode(" " + data, 1) == (json.loads(text), len(data) + 1)
            else:
                with pytest.raises(untrusted.TooDeep):
                    untrusted.raw_decode(" " + data, 1)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), levels)
def test_json_decoding_of_any_bytes_raises_only_value_error(junk, depth):
    for data in (junk, b"[" * depth + junk, junk + b"\x00" + b'{"a":' * depth):
        try:
            untrusted.loads(data)
        except ValueError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(values.map(lambda v: ("value", v)), levels.map(lambda d: ("deep", d))),
                max_size=6),
       st.sampled_from(["", "cut", "junk"]))
def test_msgpack_values_reads_on_after_a_deep_value(parts, tail):
    """msgpack's decoder gives up past 1024 levels: that value, and only that one, is
    unreadable; a cut or broken tail ends the list with one unreadable."""
    unreadable = object()
    data = b""
    expected = []
    for kind, item in parts:
        if kind == "value":
            data += msgpack.packb(item)
            expected.append(("value", item))
        else:
            data += nested_msgpack(item, item % 2 == 0)
            expected.append(("unreadable", None) if item > 1023 else ("depth", item))
    if tail == "cut":
        data += msgpack.packb({"cut": "x" * 40})[:-5]
        expected.append(("unreadable", None))
    elif tail == "junk":
        data += b"\xc1\x00"
        expected.append(("unreadable", None))
    got = untrusted.msgpack_values(data, unreadable, raw=False, strict_map_key=False)
    assert len(got) == len(expected)
    for have, (kind, want) in zip(got, expected):
        if kind == "value":
            assert have == want
        elif kind == "depth":
            assert depth_of(have) == want
        else:
            assert have is unreadable


@settings(max_examples=300, deadline=None)
@given(st.one_of(values.map(msgpack.packb), levels.map(lambda d: nested_msgpack(d, d % 2))),
       st.integers(1, 5000))
def test_scanner_finds_the_end_of_any_value_fed_in_pieces(data, step):
    scanner = untrusted.Scanner()
    buffer = bytearray()
    end = None
    for i in range(0, len(data), step):
        buffer += data[i:i + step]
        end = scanner.scan(buffer)
        if end is not None:
            break
    assert end == len(data) == len(buffer)


@settings(max_examples=300, deadline=None)
@given(st.lists(values, max_size=8), st.lists(levels, max_size=3))
def test_too_deep_finds_exactly_the_deep_records(bodies, depths):
    batch = [{"v": body} for body in bodies]
    batch += [json.loads('{"d":%s}' % nested_json(d, d % 2)) for d in depths if d < 500]
    want = [i for i, record in enumerate(batch) if depth_of(record) > LIMIT]
    assert untrusted.too_deep(batch) == want


@settings(max_examples=200, deadline=None)
@given(st.lists(records, min_size=1, max_size=5))
def test_json_parser_refuses_deep_objects_and_keeps_the_rest(items):
    """Every path of the json parser (a block of lines, one text, orjson or not) bounds the
    depth before any recursive step (a 900-level line once raised RecursionError)."""
    texts = [item.json() for item in items]
    block = untrusted.loads_objects(texts)
    for item, text, parsed in zip(items, texts, block):
        assert (parsed is not None) == item.kept
        assert (untrusted.loads_object(text) is not None) == item.kept
        # the standard library path, taken without orjson or when orjson refuses a text
        assert (untrusted._object_from(text, untrusted._REFUSED) is not None) == item.kept
        if item.kept:
            assert parsed == untrusted.loads_object(text) == json.loads(text)


def test_a_message_that_raises_is_counted_and_acknowledged(tmp_path):
    """mqtt_client: a message that raises while made into records (here a topic that is not
    UTF-8, which a broker should never pass on) is dropped, counted, logged once, and its
    PUBACK goes with the batch; the other messages of the batch are records."""
    conf = tmp_path / "in.conf"
    log = tmp_path / "log"
    conf.write_text("[SERVICE]\n    Log_File %s\n[INPUT]\n    Name mqtt_client\n"
                    "    Topic in/#\n    Tag in\n[OUTPUT]\n    Name null\n    Match nothing\n"
                    % log)
    loader = Loader(environ=dict(os.environ))
    plugin = loader.build(loader.read(str(conf))).inputs[0]
    acked = []
    plugin._acknowledge = lambda acks, generation: acked.extend(acks)
    messages = []
    for mid, topic, body in ((1, b"in/a", b'{"a":1}'), (2, b"in/\xff", b'{"b":2}'),
                             (3, b"in/c", nested_json(5000, True).encode()),
                             (4, b"in/d", b'{"d":4}')):
        message = paho.MQTTMessage(mid=mid, topic=topic)
        message.payload, message.qos = body, 1
        messages.append(message)
    plugin.inbox = messages
    plugin._drain()
    assert sorted(acked) == [(1, 1), (2, 1), (3, 1), (4, 1)]
    assert plugin.failed == 1 and plugin.too_deep == 1
    assert plugin.context.counters["records"] == 3
    assert text_of(log).count("could not be made into records") == 1


# ------------------------------------------------------------------------------ forward
INVALID_ENTRIES = [b"\xc0", b"\x01", b"\x91\x01", b"\x92\xa1x\x80", b"\x92\xc0\x80",
                   b"\x92\x92\xc0\x80\x80"]


def forward_frames(mode, items, chunk):
    """The frame(s) of one example; items are Records or invalid entry bytes (PackedForward
    only: in Forward mode Fluent Bit closes on an invalid entry, and so do we)."""
    def entry(item):
        if isinstance(item, Record):
            return b"\x92" + forward.pack_event_time(T) + item.msgpack()
        return item
    if mode == "message":
        return [b"\x94\xa2fz" + forward.pack_event_time(T) + item.msgpack()
                + forward.options_map("%s-%d" % (chunk, i)) for i, item in enumerate(items)]
    entries = b"".join(entry(item) for item in items)
    if mode == "forward":
        return [b"\x93\xa2fz" + forward.array_header(len(items)) + entries
                + forward.options_map(chunk)]
    if mode == "gzip":
        return [b"\x93\xa2fz" + forward.pack_bin(gzip.compress(entries))
                + forward.options_map(chunk, compressed="gzip")]
    return [b"\x93\xa2fz" + forward.pack_bin(entries) + forward.options_map(chunk)]


def read_acks(sock, count):
    unpacker = msgpack.Unpacker(raw=False)
    acks = []
    while len(acks) < count:
        data = sock.recv(65536)
        assert data, "connection closed before every ack came"
        unpacker.feed(data)
        acks.extend(reply["ack"] for reply in unpacker)
    return acks


@pytest.fixture
def forward_receiver(tmp_path, spawn):
    port = free_port()
    log, out = tmp_path / "recv.log", tmp_path / "out"
    conf = write_conf(tmp_path / "recv.conf", SERVICE.format(log=log)
                      + "[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port %d\n" % port
                      + FILE_OUTPUT.format(out=out))
    child = spawn(["-c", conf])
    wait_for(lambda: accepts_connections(port))
    child.port, child.log, child.out = port, str(log), str(out / "out.jsonl")
    return child


def test_forward_input_answers_every_frame_and_drops_only_what_is_too_deep(forward_receiver):
    child = forward_receiver
    sent = {"kept": set(), "dropped": 0, "frames": 0}

    @PROCESS_SETTINGS
    @given(st.sampled_from(["forward", "packed", "gzip", "message"]),
           st.lists(records, min_size=1, max_size=5),
           st.lists(st.sampled_from(INVALID_ENTRIES), max_size=4),
           st.integers(1, 70000), st.sampled_from([None, 0.1, 0.5, 0.9]))
    def throw(mode, items, invalid, step, cut):
        if mode in ("packed", "gzip"):
            items = items + invalid
        chunk = "c%d" % next(IDS)
        frames = forward_frames(mode, items, chunk)
        if cut is not None:
            # A frame cut short on its own connection: closed and counted, nothing else lost.
            with socket.create_connection(("127.0.0.1", child.port), timeout=30) as conn:
                conn.sendall(frames[0][:max(1, int(len(frames[0]) * cut))])
        with socket.create_connection(("127.0.0.1", child.port), timeout=60) as conn:
            stream = b"".join(frames)
            for i in range(0, len(stream), step):
                conn.sendall(stream[i:i + step])
            acks = read_acks(conn, len(frames))
        # Acks name their chunk; one with nothing left to deliver comes before the others.
        if mode == "message":
            assert sorted(acks) == sorted("%s-%d" % (chunk, i) for i in range(len(items)))
        else:
            assert acks == [chunk]
        for item in items:
            if isinstance(item, Record) and item.kept:
                sent["kept"].add(item.id)
            else:
                sent["dropped"] += 1
        sent["frames"] += len(frames)

    throw()
    delivered = [record["id"] for record in read_jsonl(child.out)]
    assert sorted(delivered) == sorted(sent["kept"])
    wait_for(lambda: logged_counts(child.log, r"dropped (\d+) entries") == sent["dropped"])
    log = text_of(child.log)
    assert log.count("dropped") <= sent["frames"]          # once per read, not per record
    assert "Traceback" not in log and child.proc.poll() is None


def test_many_invalid_packed_entries_are_read_in_one_pass(forward_receiver):
    """2,000,000 invalid entries in one 2 MB PackedForward frame. The old reader copied the
    rest of the entry list once per bad entry (about 2e12 copies for this frame: hours);
    read in one pass it is acked well inside the socket's generous bound."""
    child = forward_receiver
    good = [Record([], 0, 1, False) for _ in range(3)]
    entry = [b"\x92" + forward.pack_event_time(T) + record.msgpack() for record in good]
    bad = b"\xc0" * 1000000
    payload = entry[0] + bad + entry[1] + bad + entry[2]
    frame = b"\x93\xa2fz" + forward.pack_bin(payload) + forward.options_map("many")
    with socket.create_connection(("127.0.0.1", child.port), timeout=120) as conn:
        conn.sendall(frame)
        assert read_acks(conn, 1) == ["many"]
    assert sorted(r["id"] for r in read_jsonl(child.out)) == [r.id for r in good]
    assert logged_counts(child.log, r"dropped (\d+) entries") == 2000000


# ------------------------------------------------------------------------------ mqtt listener
CONNECT = bytes.fromhex("101200044d5154540402003c000670792d726177")


def publish_packet(topic, payload, packet_id):
    body = mqtt_codec.write_bytes(topic.encode("utf-8")) + struct.pack(">H", packet_id) + payload
    return mqtt_codec.packet(mqtt_codec.PUBLISH, 1 << 1, body)


def test_mqtt_listener_pubacks_every_message_and_keeps_its_connection(tmp_path, spawn):
    port = free_port()
    log, out = tmp_path / "mqtt.log", tmp_path / "out"
    conf = write_conf(tmp_path / "mqtt.conf", SERVICE.format(log=log)
                      + "[INPUT]\n    Name mqtt\n    Listen 127.0.0.1\n    Port %d\n"
                        "    Buffer_Size 1M\n    Tag mq\n" % port
                      + FILE_OUTPUT.format(out=out))
    child = spawn(["-c", conf])
    wait_for(lambda: accepts_connections(port))
    sent = {"kept": set(), "deep": 0}
    junk = st.one_of(st.binary(min_size=1, max_size=200),                  # not JSON
                     st.builds(lambda r, cut: r.json().encode()[:cut], records,
                               st.integers(1, 40)),                        # cut short
                     st.just(b'{"a":"\xff\xfe\x00"}'), st.just(b"[1,2]"))  # bad UTF-8, array

    @PROCESS_SETTINGS
    @given(st.lists(st.one_of(records, junk), min_size=1, max_size=6))
    def throw(messages):
        packets = b""
        for packet_id, message in enumerate(messages, 1):
            body = message.json().encode("utf-8", "surrogatepass") \
                if isinstance(message, Record) else message
            packets += publish_packet("dev/\u00e9", body, packet_id)
        with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
            conn.sendall(CONNECT + packets + b"\xc0\x00")           # ... then PINGREQ
            want = 4 + 4 * len(messages) + 2
            replies = b""
            while len(replies) < want:
                data = conn.recv(65536)
                assert data, "connection closed: %r" % replies
                replies += data
        acks = [replies[i:i + 4] for i in range(4, 4 + 4 * len(messages), 4)]
        assert acks == [b"\x40\x02" + struct.pack(">H", i) for i in range(1, len(messages) + 1)]
        assert replies[-2:] == b"\xd0\x00"
        for message in messages:
            if isinstance(message, Record):
                if message.kept:
                    sent["kept"].add(message.id)
                else:
                    sent["deep"] += 1

    throw()
    wait_for(lambda: sorted(r["id"] for r in read_jsonl(str(out / "out.jsonl"))
                            if "id" in r) == sorted(sent["kept"]))
    wait_for(lambda: logged_counts(str(log), r"nested deeper than 64 levels: (\d+)")
             == sent["deep"])
    assert "Traceback" not in text_of(log) and child.proc.poll() is None


# ------------------------------------------------------------------------------ mqtt_client
def test_mqtt_client_keeps_deep_payloads_as_text_and_acknowledges_them(tmp_path, spawn):
    broker = Broker(tmp_path / "broker").start()
    try:
        log, out = tmp_path / "client.log", tmp_path / "out"
        conf = write_conf(tmp_path / "client.conf", SERVICE.format(log=log)
                          + "[INPUT]\n    Name mqtt_client\n    Port %d\n    Topic in/#\n"
                            "    QoS 1\n    Client_Id fuzz-in\n    Tag in\n" % broker.port
                          + FILE_OUTPUT.format(out=out))
        child = spawn(["-c", conf])
        from paho.mqtt.enums import CallbackAPIVersion
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id="fuzz-pub")
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        path = str(out / "out.jsonl")

        def send(body):
            client.publish("in/x", body, qos=1).wait_for_publish(10)

        # Subscribed once a probe arrives.
        def probe_arrived():
            send(b'{"probe":1}')
            return any(r.get("probe") for r in read_jsonl(path))
        wait_for(probe_arrived, timeout=30, interval=0.3)
        sent = {"kept": set(), "text": []}

        @settings(PROCESS_SETTINGS, max_examples=15)
        @given(st.lists(records, min_size=1, max_size=4))
        def throw(items):
            for item in items:
                body = item.json().encode("utf-8", "surrogatepass")
                send(body)
                if item.kept:
                    sent["kept"].add(item.id)
                else:
                    sent["text"].append(body.decode("utf-8", "replace"))

        throw()
        send(b'{"last":1}')
        wait_for(lambda: any(r.get("last") for r in read_jsonl(path)), timeout=60)
        got = read_jsonl(path)
        assert sorted(r["id"] for r in got if "id" in r) == sorted(sent["kept"])
        assert sorted(r["log"] for r in got if "log" in r) == sorted(sent["text"])
        assert logged_counts(str(log), r"(\d+) payload\(s\) nested deeper") == len(sent["text"])
        # Every message was acknowledged: after a restart on the same persistent session the
        # broker sends nothing again.
        assert child.proc.poll() is None, text_of(log)
        child.proc.terminate()
        child.proc.wait(timeout=20)
        lines_before = len(read_jsonl(path))
        again = spawn(["-c", conf])
        send(b'{"after_restart":1}')
        wait_for(lambda: any(r.get("after_restart") for r in read_jsonl(path)), timeout=30)
        assert len(read_jsonl(path)) == lines_before + 1
        text = text_of(log)
        assert "Traceback" not in text and "input stopped" not in text
        assert again.proc.poll() is None
        client.loop_stop()
        client.disconnect()
    finally:
        broker.kill()


# ------------------------------------------------------------------------------ stdin
def stdin_run(tmp_path, data, *options):
    out = tmp_path / "out"
    args = ["-f", "0.1", "-i", "stdin", "-t", "in", "-p", "buffer_size=1M"] + list(options) \
        + ["-o", "file", "-m", "*", "-p", "path=%s" % out, "-p", "file=out.jsonl",
           "-p", "format=plain", "-p", "mkdir=on"]
    proc = subprocess.run(EDGESHIP + args, input=data, capture_output=True, timeout=60)
    return proc, read_jsonl(str(out / "out.jsonl"))


# Junk lines that cannot open a value running over the next lines ('[' or '{' would swallow
# the next line, as stdin reads values across lines).
stdin_junk = st.binary(max_size=100).filter(lambda b: not set(b"\n[{") & set(b))
stdin_lines = st.lists(st.one_of(records, stdin_junk), min_size=1, max_size=8)


def _stdin_bytes(lines):
    return b"".join((line.json().encode("utf-8", "surrogatepass")
                     if isinstance(line, Record) else line) + b"\n" for line in lines)


@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(stdin_lines)
def test_stdin_skips_and_counts_deep_values_and_ends_at_eof(tmp_path_factory, lines):
    tmp_path = tmp_path_factory.mktemp("stdin")
    proc, got = stdin_run(tmp_path, _stdin_bytes(lines))
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0 and "Traceback" not in stderr, stderr
    records_sent = [line for line in lines if isinstance(line, Record)]
    assert sorted(r["id"] for r in got if "id" in r) == sorted(
        r.id for r in records_sent if r.kept)
    assert logged_counts_text(stderr, r"nested deeper than 64 levels, skipping \((\d+)") == \
        sum(1 for r in records_sent if not r.kept)


@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(stdin_lines)
def test_stdin_with_the_json_parser_keeps_deep_lines_raw(tmp_path_factory, lines):
    tmp_path = tmp_path_factory.mktemp("stdin_parser")
    (tmp_path / "parsers.conf").write_text("[PARSER]\n    Name j\n    Format json\n")
    proc, got = stdin_run(tmp_path, _stdin_bytes(lines), "-p", "parser=j",
                          "-R", str(tmp_path / "parsers.conf"))
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr
    records_sent = [line for line in lines if isinstance(line, Record)]
    assert sorted(r["id"] for r in got if "id" in r) == sorted(
        r.id for r in records_sent if r.kept)
    raw = [r["log"] for r in got if "log" in r]
    for record in records_sent:
        if not record.kept:
            assert record.json().encode("utf-8", "surrogatepass").decode("utf-8", "replace") \
                in raw


def logged_counts_text(text, pattern):
    return sum(int(n) for n in re.findall(pattern, text))
