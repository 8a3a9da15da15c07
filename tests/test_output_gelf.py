"""[OUTPUT] gelf: the bytes Fluent Bit 5.1.1 sent (vectors), a GELF receiver as Graylog
documents it (TCP: NUL-delimited messages; UDP: chunks reassembled by message id, then gzip
or zlib decompressed), the encoder's rules, and a receiver that is down, comes back or
closes mid-stream."""
import gzip
import json
import os
import socket
import threading
import zlib

import pytest

from conftest import wait_for
from mosquitto import Certs
from edgeship.codecs.gelf import GelfEncoder, GelfError
from edgeship.plugins.outputs.gelf import udp_datagrams
from stream_receivers import (TcpCapture, UdpCapture, load_vector, run_tcp_vector,
                              run_udp_vector, vector_names)

# Vectors edgeship reproduces byte for byte.
BYTE_EQUAL = ["out_gelf_tcp", "out_gelf_tcp_tag_key_full_message_timestamp",
              "out_gelf_udp_uncompressed"]
# Deliberate differences: vector -> what edgeship sends instead.
DIFFERENCES = {
    # Fluent Bit deflates with miniz, edgeship with zlib (level 6, as the forward output):
    # the same gzip header, other compressed bytes of the same text.
    "out_gelf_udp_compressed": "same gzip header and decompressed text",
    # Both: the chunks of a gzip member; zlib's member is longer than miniz's here, and the
    # 8-byte message id is random in both.
    "out_gelf_udp_chunked": "chunk layout, decompressed text",
}


def test_every_vector_is_compared():
    assert vector_names("out_gelf_") == sorted(BYTE_EQUAL + list(DIFFERENCES))


@pytest.mark.parametrize("name", BYTE_EQUAL[:2])
def test_tcp_bytes_equal_fluent_bit(tmp_path, spawn, name):
    want, got = run_tcp_vector(tmp_path, spawn, name)
    assert got == want


def test_udp_uncompressed_datagrams_equal_fluent_bit(tmp_path, spawn):
    want, got = run_udp_vector(tmp_path, spawn, BYTE_EQUAL[2])
    assert got == want


def test_udp_compressed_datagrams_hold_fluent_bit_text(tmp_path, spawn):
    want, got = run_udp_vector(tmp_path, spawn, "out_gelf_udp_compressed")
    assert [d[:10] for d in got] == [d[:10] for d in want]
    assert [gzip.decompress(d) for d in got] == [gzip.decompress(d) for d in want]


def reassembled(datagrams):
    assert len({d[2:10] for d in datagrams}) == 1      # one message id
    count = datagrams[0][11]
    assert [(d[:2], d[10], d[11]) for d in datagrams] == \
        [(b"\x1e\x0f", n, count) for n in range(count)]
    return b"".join(d[12:] for d in datagrams)


def test_udp_chunks_hold_fluent_bit_text(tmp_path, spawn):
    want, got = run_udp_vector(tmp_path, spawn, "out_gelf_udp_chunked",
                               done=lambda got: got and len(got) == got[0][11])
    assert all(len(d) == 112 for d in got[:-1]) and len(got[-1]) <= 112
    assert gzip.decompress(reassembled(got)) == gzip.decompress(reassembled(want))


# ---------------------------------------------------------------------------------------------
# A GELF receiver (Graylog's documented inputs)

def decode_payload(data):
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:1] == b"\x78":
        return zlib.decompress(data)
    return data


class GelfReceiver:
    """GELF over TCP (NUL-terminated messages) or UDP (plain, gzip, zlib, chunked) on a
    free port; ``messages`` holds the decoded JSON objects."""

    def __init__(self, transport):
        self.messages = []
        self.partial = {}
        if transport == "udp":
            self.capture = UdpCapture()
            threading.Thread(target=self._udp, daemon=True).start()
        else:
            self.capture = TcpCapture()
        self.transport = transport
        self.port = self.capture.port

    def _udp(self):
        seen = 0
        while True:
            datagrams = self.capture.datagrams
            while seen < len(datagrams):
                self._datagram(datagrams[seen])
                seen += 1
            threading.Event().wait(0.01)

    def _datagram(self, data):
        if data[:2] == b"\x1e\x0f":
            message_id, seq, count = data[2:10], data[10], data[11]
            parts = self.partial.setdefault(message_id, {})
            parts[seq] = data[12:]
            if len(parts) < count:
                return
            data = b"".join(parts[n] for n in range(count))
            del self.partial[message_id]
        self.messages.append(json.loads(decode_payload(data)))

    def received(self):
        if self.transport == "udp":
            return list(self.messages)
        data = self.capture.data()
        return [json.loads(m) for m in data.split(b"\0")[:-1]]

    def stop(self):
        self.capture.stop()


def gelf_config(tmp_path, port, lines_file, **output):
    keys = {"Name": "gelf", "Match": "*", "Host": "127.0.0.1", "Port": str(port),
            "Gelf_Short_Message_Key": "log", "Retry_Limit": "no_limits"}
    keys.update(output)
    text = ("[SERVICE]\n    Flush 0.2\n    Grace 2\n    scheduler.base 0.2\n"
            "    scheduler.cap 0.5\n    Log_File %s\n" % (tmp_path / "edgeship.log"))
    text += ("[INPUT]\n    Name tail\n    Path %s\n    Read_From_Head on\n    Tag app.gelf\n"
             % lines_file)
    text += "[OUTPUT]\n" + "".join("    %s %s\n" % kv for kv in keys.items())
    path = tmp_path / "edgeship.conf"
    path.write_text(text)
    return str(path)


def append(path, first, last, width=0):
    """Lines ``n=<i> <width random hex digits>`` (random: gzip cannot shrink them much)."""
    with open(path, "a") as f:
        f.write("".join("n=%d %s\n" % (i, os.urandom(width // 2).hex())
                        for i in range(first, last)))


def numbers(messages):
    return sorted(int(m["short_message"].split()[0][2:]) for m in messages)


def logged(tmp_path, text):
    path = tmp_path / "edgeship.log"
    return path.exists() and text in path.read_text()


@pytest.mark.e2e
@pytest.mark.parametrize("mode, options", [
    ("tcp", {}), ("udp", {}), ("udp", {"Compress": "off"}),
    # Messages of ~3 kB of random hex: gzip keeps ~1.6 kB, above Packet_Size 200: chunked.
    ("udp", {"Packet_Size": "200", "Compress": "off"})])
def test_receiver_gets_every_record(tmp_path, spawn, mode, options):
    receiver = GelfReceiver(mode)
    try:
        lines = tmp_path / "in.jsonl"
        chunked = "Packet_Size" in options
        count = 40 if chunked else 200
        append(lines, 0, count, 3000 if chunked else 10)
        spawn(["-c", gelf_config(tmp_path, receiver.port, lines, Mode=mode,
                                 Gelf_Tag_Key="fluent_tag", **options)])
        wait_for(lambda: len(receiver.received()) >= count, timeout=30)
        got = receiver.received()
        assert numbers(got) == list(range(count))
        assert {(m["version"], m["_fluent_tag"]) for m in got} == {("1.1", "app.gelf")}
        if chunked:
            assert any(d[:2] == b"\x1e\x0f" for d in receiver.capture.datagrams)
    finally:
        receiver.stop()


def test_tcp_receiver_down_then_up_loses_nothing(tmp_path, spawn):
    receiver = GelfReceiver("tcp")
    receiver.capture.stop()
    try:
        lines = tmp_path / "in.jsonl"
        append(lines, 0, 300)
        spawn(["-c", gelf_config(tmp_path, receiver.port, lines, Mode="tcp")])
        wait_for(lambda: logged(tmp_path, "could not deliver"))
        receiver.capture.start()
        wait_for(lambda: len(receiver.received()) >= 300, timeout=30)
        assert numbers(receiver.received()) == list(range(300))
    finally:
        receiver.stop()


def test_tcp_receiver_closing_mid_stream_then_gone_then_back(tmp_path, spawn):
    receiver = GelfReceiver("tcp")
    try:
        lines = tmp_path / "in.jsonl"
        append(lines, 0, 100)
        spawn(["-c", gelf_config(tmp_path, receiver.port, lines, Mode="tcp")])
        wait_for(lambda: len(receiver.received()) >= 100)
        receiver.capture.close_connections()
        append(lines, 100, 200)
        wait_for(lambda: len(receiver.received()) >= 200)
        receiver.capture.stop()
        append(lines, 200, 400)
        wait_for(lambda: logged(tmp_path, "could not deliver"), timeout=30)
        receiver.capture.start()
        wait_for(lambda: len(set(numbers(receiver.received()))) >= 400, timeout=30)
        assert sorted(set(numbers(receiver.received()))) == list(range(400))
        assert len(receiver.capture.connections) >= 3
    finally:
        receiver.stop()


def test_udp_receiver_gone_then_back_loses_nothing(tmp_path, spawn):
    """A closed UDP port answers ICMP port unreachable: the connected socket's next send
    fails (ECONNREFUSED) and the chunk is retried until a receiver is there again."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    lines = tmp_path / "in.jsonl"
    append(lines, 0, 50)
    spawn(["-c", gelf_config(tmp_path, port, lines, Mode="udp")])
    wait_for(lambda: logged(tmp_path, "could not deliver"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    sock.settimeout(20)
    got = []
    try:
        while len(set(got)) < 50:
            got.append(int(json.loads(decode_payload(sock.recv(65536)))["short_message"]
                           .split()[0][2:]))
    finally:
        sock.close()
    assert set(got) == set(range(50))


# ---------------------------------------------------------------------------------------------
# The encoder (also the http output's Format gelf)

def test_http_format_gelf_vector_byte_for_byte():
    vec = load_vector("out_http_format_gelf_keys")
    events = [(1704164645123456789, json.loads(vec["input_file_lines"][0]))]
    record = events[0][1]
    record.pop("ts")
    encoder = GelfEncoder(short_message_key="msg", host_key="host", level_key="level",
                          full_message_key="app")
    want = vec["requests"][0]["body"].encode().split(b"\n")[0]
    assert encoder.messages("app.logs", events) == ([want], [], [])


def test_records_that_cannot_be_encoded():
    encoder = GelfEncoder()
    messages, errors, warnings = encoder.messages("t", [
        (0, {"msg": "no short message"}),
        (0, {"short_message": "bad level", "level": -1}),
        (0, {"short_message": "ok", "level": "WARNING", "id": 5, "host": "h"}),
        (0, {"short_message": "odd level", "level": "loud"})])
    assert errors == ["missing short_message key",
                      "level must be a non-negative integer or a string"]
    assert messages[0] == (b'{"version":"1.1", "short_message":"ok", "level":4, "host":"h", '
                           b'"timestamp":0.000}')
    assert warnings == ["level is 'loud', but should be in 0..7 or a syslog keyword"]


def test_values_inside_arrays_stay_json():
    (message,), _, _ = GelfEncoder().messages("t", [(1500000000, {
        "short_message": "m", "a": ['q"uote', {"k": 1, "n": {"x": True}}, [1, 2.5]],
        "m": {"deep": {"er": None}}, "f": float("nan")})])
    decoded = json.loads(message)
    assert decoded["_a"] == 'q"uote, k=1n_x=true, 1, 2.500000'
    assert decoded["_m_deep_er"] is None and decoded["_f"] is None
    assert decoded["timestamp"] == 1.5


def test_udp_chunking_limits():
    assert udp_datagrams(b"x" * 10, 100, False) == [b"x" * 10]
    assert udp_datagrams(b"x" * 10, 100, True)[0][:10] == bytes.fromhex("1f8b08000000000000ff")
    big = os.urandom(51000)     # does not compress: 51 kB and a few bytes of gzip
    chunks = udp_datagrams(big, 1000, False)
    assert len(chunks) == 52 and [(c[10], c[11]) for c in chunks] == [(n, 52) for n in range(52)]
    assert gzip.decompress(reassembled(chunks)) == big
    with pytest.raises(ValueError):
        udp_datagrams(big, 100, False)


def test_tls_mode(tmp_path, spawn):
    certs = Certs(str(tmp_path / "certs"))
    capture = TcpCapture(ssl_ctx=certs.server_context())
    try:
        lines = tmp_path / "in.jsonl"
        append(lines, 0, 20)
        spawn(["-c", gelf_config(tmp_path, capture.port, lines, Mode="tls",
                                 **{"tls.ca_file": certs.ca})])
        wait_for(lambda: capture.data().count(b"\0") >= 20)
        assert numbers(json.loads(m) for m in capture.data().split(b"\0")[:-1]) == \
            list(range(20))
    finally:
        capture.stop()
