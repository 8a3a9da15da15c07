"""statsd input: a real edgeship child fed real UDP datagrams; the records and metrics as
Fluent Bit 5.1.1 printed them for the same datagrams (checked on the real binary)."""
import socket

import pytest

from conftest import Printed, free_port, wait_for
from listener import Listener, section
from edgeship.plugins.inputs.statsd import StatsdError, parse_line

pytestmark = pytest.mark.e2e


def send(port, datagrams):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for data in datagrams:
            sock.sendto(data, ("127.0.0.1", port))


def statsd_listener(spawn, tmp_path, **keys):
    port = free_port()
    input_keys = {"Name": "statsd", "Listen": "127.0.0.1", "Port": port, "Tag": "stats"}
    input_keys.update(keys)
    listener = Listener(spawn, tmp_path, input_keys)
    listener.port = port
    return listener


def test_lines_become_the_records_fluent_bit_makes(spawn, tmp_path):
    listener = statsd_listener(spawn, tmp_path)
    send(listener.port, [b"a:1|c", b"b:2.5|g\n", b"c:-3|g", b"u:bob|s",
                         b"x:1|c|@0.5\ny:7|c", b"q:5|h|@0|#k:v", b"w:1|c\n\nv:2|c"])
    assert listener.wait_records(9) == [
        {"type": "counter", "bucket": "a", "value": 1.0, "sample_rate": 1.0},
        {"type": "gauge", "bucket": "b", "value": 2.5, "incremental": 0},
        {"type": "gauge", "bucket": "c", "value": -3.0, "incremental": 1},
        {"type": "set", "bucket": "u", "value": "bob"},
        {"type": "counter", "bucket": "x", "value": 1.0, "sample_rate": 0.5},
        {"type": "counter", "bucket": "y", "value": 7.0, "sample_rate": 1.0},
        {"type": "counter", "bucket": "q", "value": 5.0, "sample_rate": 1.0},
        {"type": "counter", "bucket": "w", "value": 1.0, "sample_rate": 1.0},
        {"type": "counter", "bucket": "v", "value": 2.0, "sample_rate": 1.0}]
    assert {tag for tag, _, _ in listener.events()} == {"stats"}


def test_a_timer_is_a_timer_record(spawn, tmp_path):
    listener = statsd_listener(spawn, tmp_path)
    send(listener.port, [b"t:320|ms|@0.1"])
    assert listener.wait_records(1) == [
        {"type": "timer", "bucket": "t", "value": 320.0, "sample_rate": 0.1}]


def test_a_bad_line_ends_its_datagram_and_the_input_carries_on(spawn, tmp_path):
    listener = statsd_listener(spawn, tmp_path)
    send(listener.port, [b"ok:1|c\nnocolon\nlost:2|c", b"z:1", b"cut:3|c\0junk:4|c",
                         b"after:5|g"])
    records = listener.wait_records(3)
    assert [r["bucket"] for r in records] == ["ok", "cut", "after"]
    wait_for(lambda: "no bucket name found" in listener.log()
             or "no metric type found" in listener.log())
    assert listener.child.proc.poll() is None


def test_metrics_on_turns_each_datagram_into_a_metrics_context(spawn, tmp_path):
    port = free_port()
    conf = tmp_path / "edgeship.conf"
    conf.write_text(section("SERVICE", {"Flush": "0.1", "Log_File": tmp_path / "log"})
                    + section("INPUT", {"Name": "statsd", "Listen": "127.0.0.1",
                                        "Port": port, "Metrics": "on"})
                    + section("OUTPUT", {"Name": "stdout", "Match": "*"}))
    child = spawn(["-c", str(conf)])
    wait_for(lambda: "listening on" in (tmp_path / "log").read_text()
             if (tmp_path / "log").exists() else False)
    send(port, [b"a:1|c", b"c:-3|g|#env:prod,host:x", b"t:320|ms|@0.1", b"u:bob|s",
                b"x:1|c|@0.5\ny:7|c"])
    printed = Printed(child)
    wait_for(lambda: len(printed.metrics()) >= 6)
    assert printed.metrics() == ["a = 1", 'c{incremental="true",env="prod",host="x"} = -3',
                              "t = 3200", "u = 0", "x = 2", "y = 7"]


@pytest.mark.parametrize("line, parsed", [
    ("a:1|c", ("a", "1", "c", 1.0, None)),
    ("a:1|msx|@0.25|#k:v", ("a", "1", "ms", 0.25, "k:v")),
    ("a:1|m", ("a", "1", "c", 1.0, None)),
    ("a:b:1|", ("a", "b:1", "c", 1.0, None)),
    ("a:1|s|@junk", ("a", "1", "s", 1.0, None)),
    ("a:1|g|@-2", ("a", "1", "g", -2.0, None)),
])
def test_parse_line_reads_as_fluent_bit(line, parsed):
    assert parse_line(line) == parsed


@pytest.mark.parametrize("line, message", [("abc", "no bucket name found"),
                                           ("a:1", "no metric type found")])
def test_parse_line_refuses(line, message):
    with pytest.raises(StatsdError, match=message):
        parse_line(line)
