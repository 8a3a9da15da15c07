"""udp output: a real edgeship child sends to a UDP capture; each record is one datagram, in
the bytes Fluent Bit 5.1.1 sent (seen on the real binary with strace)."""
import msgpack
import pytest

from conftest import run_edgeship, wait_for
from stream_receivers import UdpCapture

pytestmark = pytest.mark.e2e

RECORD = '{"a":"\u00e9","n":1}'
LINE = b'{"date":1700000000.0,"a":"\\u00e9","n":1}'


def start(spawn, tmp_path, port, record=RECORD, **keys):
    conf = tmp_path / "fluent-bit.conf"
    extra = "".join("    %s %s\n" % pair for pair in keys.items())
    conf.write_text("[SERVICE]\n    Flush 0.2\n    Log_File %s\n"
                    "[INPUT]\n    Name dummy\n    Dummy %s\n    Samples 1\n    Copies 2\n"
                    "    Start_time_sec 1700000000\n    Start_time_nsec 5\n"
                    "    Fixed_Timestamp on\n"
                    "[OUTPUT]\n    Name udp\n    Match *\n    Port %d\n%s"
                    % (tmp_path / "log", record, port, extra))
    return spawn(["-c", str(conf)])


@pytest.mark.parametrize("keys, datagram", [
    ({"Format": "json_lines"}, LINE + b"\n"),
    ({"Format": "json"}, b"[" + LINE + b"]\n"),
    ({"Format": "json_stream"}, LINE + b"\n"),
    ({"Raw_Message_Key": "$a"}, "\u00e9\n".encode()),
])
def test_a_datagram_per_record(spawn, tmp_path, keys, datagram):
    capture = UdpCapture()
    try:
        start(spawn, tmp_path, capture.port, **keys)
        wait_for(lambda: len(capture.datagrams) >= 2)
    finally:
        capture.stop()
    assert capture.datagrams[:2] == [datagram, datagram]


def test_msgpack_is_the_default_and_sends_each_entry_as_it_is(spawn, tmp_path):
    capture = UdpCapture()
    try:
        start(spawn, tmp_path, capture.port)
        wait_for(lambda: len(capture.datagrams) >= 2)
    finally:
        capture.stop()
    for datagram in capture.datagrams[:2]:
        (stamp, meta), record = msgpack.unpackb(datagram, raw=False,
                                                ext_hook=lambda code, data: (code, data))
        assert record == {"a": "\u00e9", "n": 1} and meta == {}
        assert stamp == (0, bytes.fromhex("6553f100" "00000005"))   # EventTime 1700000000.5ns


def test_a_record_too_big_for_a_datagram_is_left_out(spawn, tmp_path):
    capture = UdpCapture()
    try:
        start(spawn, tmp_path, capture.port, record='{"big":"%s"}' % ("x" * 70000),
              Format="json_lines")
        log = tmp_path / "log"
        wait_for(lambda: log.exists() and "over the largest UDP datagram" in log.read_text())
    finally:
        capture.stop()
    assert capture.datagrams == []


def test_a_bad_raw_message_key_is_a_config_error(tmp_path):
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[INPUT]\n    Name dummy\n[OUTPUT]\n    Name udp\n    Match *\n"
                    "    Raw_Message_Key $a['\n")
    proc = run_edgeship(["--dry-run", "-c", str(conf)])
    assert proc.returncode != 0 and "Raw_Message_Key" in proc.stderr
