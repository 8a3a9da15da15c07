"""td output: a real edgeship child sends to a local TLS receiver answering as Treasure
Data's import API documents (``PUT /v3/table/import/DB/TABLE/msgpack.gz``, 200 with a JSON
summary; 401 for a bad key); the request is the one Fluent Bit 5.1.1 sent for the same
records, byte for byte but for the deflate stream."""
import gzip

import pytest

from conftest import run_edgeship, wait_for
from http_receiver import Receiver, response, self_signed_certificate
from http_vectors import without_length
from edgeship.plugins.outputs.td import int32, td_records

pytestmark = pytest.mark.e2e

RECORD = '{"log":"hi \u00e9","time":"own","n":-3,"f":1.5,"m":{"a":[1,null,true]}}'
# What Fluent Bit 5.1.1 sent for two copies of RECORD at 1700000000.000000005 (one chunk):
# the head (port masked) and the body once gunzipped.
FLUENT_BIT_HEAD = (b"PUT /v3/table/import/db1/tbl1/msgpack.gz HTTP/1.1\r\n"
                   b"Host: 127.0.0.1:PORT\r\nContent-Length: 94\r\n"
                   b"Authorization: TD1 5/abcdef\r\nContent-Type: application/gzip\r\n"
                   b"Connection: keep-alive\r\n\r\n")
ONE = (b"\x86\xa4time\xceeS\xf1\x00\xa3log\xa5hi \xc3\xa9\xa4time\xa3own\xa1n\xfd\xa1f"
       b"\xcb?\xf8\x00\x00\x00\x00\x00\x00\xa1m\x81\xa1a\x93\x01\xc0\xc3")
FLUENT_BIT_BODY = ONE * 2
IMPORTED = response(200, b'{"database":"db1","table":"tbl1","elapsed_time":0.02}')
UNAUTHORIZED = response(401, b'{"error":"Authentication failed","severity":"error"}',
                        reason="Unauthorized")


def config(tmp_path, port, extra=""):
    path = tmp_path / "fluent-bit.conf"
    path.write_text("[SERVICE]\n    Flush 0.5\n    Log_File %s\n"
                    "[INPUT]\n    Name dummy\n    Tag t\n    Dummy %s\n    Samples 1\n"
                    "    Copies 2\n    Fixed_Timestamp on\n    Start_time_sec 1700000000\n"
                    "    Start_time_nsec 5\n"
                    "[OUTPUT]\n    Name td\n    Match *\n    API 5/abcdef\n    Database db1\n"
                    "    Table tbl1\n    Host 127.0.0.1\n    Port %d\n    tls.verify off\n%s"
                    % (tmp_path / "log", RECORD, port, extra))
    return path


def test_the_import_request_is_the_one_fluent_bit_sends_and_a_refusal_is_retried(
        spawn, tmp_path):
    answers = [UNAUTHORIZED, IMPORTED]
    receiver = Receiver(lambda request, index: answers[min(index, 1)],
                        tls=self_signed_certificate(tmp_path))
    try:
        spawn(["-c", str(config(tmp_path, receiver.port))])
        wait_for(lambda: len(receiver.requests) >= 2, timeout=30)
        log = tmp_path / "log"
        wait_for(lambda: "HTTP status 200 OK" in log.read_text())
    finally:
        receiver.close()
    for request in receiver.requests[:2]:
        head = request.head_raw.replace(b"127.0.0.1:%d" % receiver.port, b"127.0.0.1:PORT")
        assert without_length(head) == without_length(FLUENT_BIT_HEAD)
        assert gzip.decompress(request.body) == FLUENT_BIT_BODY
        assert request.body[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    text = log.read_text()
    assert "HTTP status 401" in text and "Authentication failed" in text


def test_tls_is_on_whatever_the_tls_key_says(spawn, tmp_path):
    receiver = Receiver(lambda request, index: IMPORTED, tls=self_signed_certificate(tmp_path))
    try:
        spawn(["-c", str(config(tmp_path, receiver.port, "    tls off\n"))])
        wait_for(lambda: receiver.requests, timeout=30)
    finally:
        receiver.close()
    assert gzip.decompress(receiver.requests[0].body) == FLUENT_BIT_BODY


@pytest.mark.parametrize("drop, extra, message", [
    ("    API 5/abcdef\n", "", "error reading API key value"),
    ("    Table tbl1\n", "", "error reading Table name"),
    ("", "    Region eu\n", "invalid region in configuration"),
])
def test_what_cannot_start(tmp_path, drop, extra, message):
    path = config(tmp_path, 443, extra)
    path.write_text(path.read_text().replace(drop, "") if drop else path.read_text())
    proc = run_edgeship(["--dry-run", "-c", str(path)])
    assert proc.returncode != 0 and message in proc.stderr


def test_records_and_times_as_fluent_bit_packs_them():
    ns = 1000000000
    assert td_records([(1700000000 * ns + 5, {"log": "hi \u00e9", "time": "own", "n": -3,
                                               "f": 1.5, "m": {"a": [1, None, True]}})]) == ONE
    assert td_records([(5 * ns, {})]) == b"\x81\xa4time\x05"
    assert int32(1 << 31) == -(1 << 31)       # a time_t cast to int32, as msgpack_pack_int32
    many = {"k%d" % i: i for i in range(20)}
    assert td_records([(0, many)])[:3] == b"\xde\x00\x15"
