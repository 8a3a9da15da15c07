"""tcp and udp inputs: a real edgeship child, raw sockets as senders; record shapes as Fluent
Bit 5.1.1's vectors (in_tcp_*, in_udp_*)."""
import json
import os
import socket
import time

import pytest

from conftest import SHARED, free_port, run_edgeship, wait_for
from listener import Listener

pytestmark = pytest.mark.e2e

VECTORS = os.path.join(SHARED, "reference", "vectors")


def vector(name):
    with open(os.path.join(VECTORS, name + ".json"), encoding="utf-8") as f:
        return json.load(f)


def printed_records(vec):
    """The records Fluent Bit printed (json_lines without its date key)."""
    records = []
    for line in vec["printed_json_lines"]:
        record = json.loads(line)
        record.pop("date")
        records.append(record)
    return records


def tcp_listener(spawn, tmp_path, **keys):
    port = free_port()
    input_keys = {"Name": "tcp", "Listen": "127.0.0.1", "Port": port, "Tag": "tcp.in"}
    input_keys.update(keys)
    listener = Listener(spawn, tmp_path, input_keys)
    listener.port = port
    return listener


def send_tcp(port, writes, pause=0.05):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    for data in writes:
        sock.sendall(data)
        time.sleep(pause)
    return sock


@pytest.mark.parametrize("name", ["in_tcp_format_json", "in_tcp_format_json_invalid"])
def test_tcp_json_stream_as_the_vectors(spawn, tmp_path, name):
    vec = vector(name)
    listener = tcp_listener(spawn, tmp_path)
    writes = [bytes.fromhex(s["client_sent_hex"]) for s in vec["stimulus"]]
    sock = send_tcp(listener.port, writes)
    expected = printed_records(vec)
    assert listener.wait_records(len(expected)) == expected
    assert all(tag == "tcp.in" for tag, _, _ in listener.events())
    if name.endswith("invalid"):
        wait_for(lambda: "invalid JSON message, skipping" in listener.log())
    sock.close()


def test_tcp_malformed_json_is_logged_once_per_read_and_the_connection_stays(spawn, tmp_path):
    listener = tcp_listener(spawn, tmp_path)
    sock = send_tcp(listener.port, [b'{"a":1}\nbad one\n{"b":\nnot json}\n42\n{"c":3}\n'])
    assert listener.wait_records(2) == [{"a": 1}, {"c": 3}]
    wait_for(lambda: "invalid JSON message, skipping: 'bad one\\n' (3 in this read)"
             in listener.log())
    sock.sendall(b'{"after":true}\n')           # the same connection still works
    assert listener.wait_records(3)[-1] == {"after": True}
    sock.close()


def test_tcp_a_character_cut_between_two_reads_is_decoded_whole(spawn, tmp_path):
    listener = tcp_listener(spawn, tmp_path)
    text = '{"u":"\u2713 h\u00e9"}\n'.encode("utf-8")
    cut = text.index(b"\xe2") + 1
    sock = send_tcp(listener.port, [text[:cut], text[cut:]], pause=0.3)
    assert listener.wait_records(1) == [{"u": "\u2713 h\u00e9"}]
    sock.close()


def test_tcp_source_address_key(spawn, tmp_path):
    listener = tcp_listener(spawn, tmp_path, Source_Address_Key="src")
    sock = send_tcp(listener.port, [b'{"a":1}\n[1,2]\n'])
    here = "tcp://127.0.0.1:%d" % sock.getsockname()[1]
    assert listener.wait_records(2) == [{"a": 1, "src": here}, {"msg": [1, 2], "src": here}]
    sock.close()


@pytest.mark.parametrize("name,keys", [
    ("in_tcp_format_none_newline", {}),
    ("in_tcp_format_none_separator", {"Separator": "|"}),
])
def test_tcp_format_none_as_the_vectors(spawn, tmp_path, name, keys):
    vec = vector(name)
    listener = tcp_listener(spawn, tmp_path, Format="none", **keys)
    writes = [bytes.fromhex(s["client_sent_hex"]) for s in vec["stimulus"]]
    sock = send_tcp(listener.port, writes)
    expected = printed_records(vec)
    assert listener.wait_records(len(expected)) == expected
    sock.close()


def test_tcp_format_none_skips_empty_pieces_and_emits_the_last_at_close(spawn, tmp_path):
    # Fluent Bit stops at the empty piece (in_tcp_format_none_separator_empty_piece) and
    # never emits b, c, d; edgeship emits every piece, the unterminated last one at close.
    listener = tcp_listener(spawn, tmp_path, Format="none", Separator="|")
    sock = send_tcp(listener.port, [b"a||b|", b"c|", b"d|tail"])
    assert listener.wait_records(4) == [{"log": "a"}, {"log": "b"}, {"log": "c"},
                                        {"log": "d"}]
    sock.close()
    assert listener.wait_records(5)[-1] == {"log": "tail"}


def test_tcp_a_record_longer_than_buffer_size_comes_in_pieces(spawn, tmp_path):
    listener = tcp_listener(spawn, tmp_path, Format="none", Chunk_Size=1, Buffer_Size=2)
    sock = send_tcp(listener.port, [b"x" * 5000 + b"\nshort\n"])
    records = listener.wait_records(4)
    assert [len(r["log"]) for r in records] == [2048, 2048, 904, 5]
    wait_for(lambda: "record longer than Buffer_Size (2048 bytes)" in listener.log())
    sock.close()


def test_tcp_parser_forces_format_none_and_keeps_what_does_not_parse(spawn, tmp_path):
    parsers = tmp_path / "parsers.conf"
    parsers.write_text("[PARSER]\n    Name kv\n    Format regex\n"
                       "    Regex ^(?<key>[a-z]+)=(?<value>.*)$\n")
    port = free_port()
    listener = Listener(spawn, tmp_path, {"Name": "tcp", "Listen": "127.0.0.1", "Port": port,
                                          "Parser": "kv", "Source_Address_Key": "src"},
                        parsers=str(parsers))
    sock = send_tcp(port, [b"a=1\n???\n"])
    here = "tcp://127.0.0.1:%d" % sock.getsockname()[1]
    assert listener.wait_records(2) == [{"key": "a", "value": "1", "src": here},
                                        {"log": "???", "src": here}]
    assert "switching format from 'json' to 'none'" in listener.log()
    sock.close()


def test_tcp_unknown_parser_and_bad_options_are_config_errors(tmp_path):
    proc = run_edgeship(["-i", "tcp", "-p", "parser=nope", "-o", "null", "--dry-run"])
    assert proc.returncode != 0 and "requested parser 'nope' not found" in proc.stderr
    proc = run_edgeship(["-i", "tcp", "-p", "format=xml", "-o", "null", "--dry-run"])
    assert proc.returncode != 0 and "format" in proc.stderr.lower()


def test_udp_with_a_stock_parser_and_no_parsers_file(spawn, tmp_path):
    listener = udp_listener(spawn, tmp_path, Parser="syslog-rfc3164")
    send_udp(listener.port, [b"<13>Jan  2 03:04:05 host1 app[42]: via udp\n"])
    assert listener.wait_records(1) == [{"pri": "13", "time": "Jan  2 03:04:05",
                                         "host": "host1", "ident": "app", "pid": "42",
                                         "message": "via udp"}]


def udp_listener(spawn, tmp_path, **keys):
    port = free_port()
    input_keys = {"Name": "udp", "Listen": "127.0.0.1", "Port": port, "Tag": "udp.in"}
    input_keys.update(keys)
    listener = Listener(spawn, tmp_path, input_keys)
    listener.port = port
    return listener


def send_udp(port, datagrams):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for data in datagrams:
        sock.sendto(data, ("127.0.0.1", port))
    return sock


def test_udp_json_as_the_vector(spawn, tmp_path):
    vec = vector("in_udp_format_json")
    listener = udp_listener(spawn, tmp_path)
    send_udp(listener.port, [bytes.fromhex(s["datagram_hex"]) for s in vec["stimulus"]])
    expected = printed_records(vec)
    assert listener.wait_records(len(expected)) == expected


def test_udp_format_none_and_source_address(spawn, tmp_path):
    listener = udp_listener(spawn, tmp_path, Format="none", Source_Address_Key="src")
    sock = send_udp(listener.port, [b"one\ntwo\n", b"three"])
    here = "udp://127.0.0.1:%d" % sock.getsockname()[1]
    # The datagram's last piece is a record too (Fluent Bit drops it).
    assert listener.wait_records(3) == [{"log": "one", "src": here}, {"log": "two", "src": here},
                                        {"log": "three", "src": here}]


def test_udp_malformed_json_is_skipped_and_logged(spawn, tmp_path):
    listener = udp_listener(spawn, tmp_path)
    send_udp(listener.port, [b'{"a":', b'{"b":2}', b"nope"])
    assert listener.wait_records(1) == [{"b": 2}]
    wait_for(lambda: "invalid JSON message, skipping" in listener.log())
    assert listener.records() == [{"b": 2}]
