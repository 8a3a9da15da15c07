"""http output: the requests Fluent Bit 5.1.1 sent (vectors), byte for byte, and the status
rules; real sockets, a real edgeship process."""
import re

import msgpack
import pytest

from http_receiver import response
from http_vectors import (assert_same_gzip_request, captured_body, captured_head,
                          head_without_host, load, names, replay, without_length)

# Deliberate differences from the vectors (README "Where edgeship differs").
DIFFERENCES = {
    # zlib's deflate stream, not miniz's: the same text once gunzipped, other bytes (and so
    # another Content-Length).
    "out_http_compress_gzip": "gzip",
    # edgeship's chunks pack maps with the smallest header, Fluent Bit's with map32
    # (codecs/entries.py): the same entries once decoded, a shorter body.
    "out_http_format_msgpack": "msgpack",
    # Fluent Bit drops the whole chunk when a record has no short_message; edgeship leaves
    # out only that record (here: all of them, so nothing is sent either).
    "out_http_format_gelf_no_keys": "skip",
    # dummy Metadata is not supported by the dummy input.
    "out_http_record_metadata_internal": "skip",
}


def _entries(data):
    unpacker = msgpack.Unpacker(strict_map_key=False, raw=False)
    unpacker.feed(data)
    return list(unpacker)


SENT_ONCE = ["out_http_status_400_no_retry"]


def first_request_cases():
    return [n for n in names("out_http_") if DIFFERENCES.get(n) != "skip"]


@pytest.mark.parametrize("name", first_request_cases())
def test_requests_as_fluent_bit_sent_them(name, tmp_path):
    vec = load(name)
    receiver, err = replay(vec, tmp_path)
    sent = receiver.requests
    for index, captured in enumerate(vec["requests"]):
        got = sent[index]
        if DIFFERENCES.get(name) == "gzip":
            assert_same_gzip_request(got, captured, receiver.port)
            assert got.body[:10] == captured_body(captured)[:10]
            continue
        if DIFFERENCES.get(name) == "msgpack":
            assert _entries(got.body) == _entries(captured_body(captured))
            assert without_length(head_without_host(got.head_raw, receiver.port)) == \
                without_length(captured_head(captured))
            continue
        assert head_without_host(got.head_raw, receiver.port) == captured_head(captured)
        assert got.body == captured_body(captured)
    if name in SENT_ONCE:
        assert len(sent) == 1
        assert "HTTP status=400" in err and '{"error":"bad request"}' in err


def test_a_dropped_400_is_not_sent_again(tmp_path):
    """Fluent Bit drops a chunk answered 400; a second chunk then goes through, and the first
    is never sent again."""
    vec = load("out_http_status_400_no_retry")
    answers = [response(400, b'{"error":"bad request"}\nsecond line'), response()]

    def answer(request, index):
        return answers[min(index, 1)]

    receiver, err = replay(vec, tmp_path, count=1, answer=answer,
                           settle=lambda r: _append_and_wait(tmp_path, r))
    bodies = [r.body for r in receiver.requests]
    assert len(bodies) == 2 and b"later" in bodies[1] and b"first" not in bodies[1]
    assert "second line" not in err and "bad request" in err


def _append_and_wait(tmp_path, receiver):
    from conftest import wait_for
    with open(str(tmp_path / "records.jsonl"), "a") as f:
        f.write('{"ts":"2024-01-02T03:04:08.000000000Z","msg":"later"}\n')
    wait_for(lambda: len(receiver.requests) >= 2)


def test_through_a_proxy_as_fluent_bit_sends_it(tmp_path):
    """Checked on Fluent Bit 5.1.1: the absolute URI, Proxy-Connection first, the server's
    Host; sent to the proxy's address (here the receiver plays the proxy)."""
    vec = load("out_http_format_json_lines")
    receiver, _ = replay(vec, tmp_path, config_edit=lambda c: re.sub(
        r"(?m)^\s*Host\s+127\.0\.0\.1\n\s*Port\s+(\d+)",
        r"    Host backend.invalid\n    Port 8080\n    Proxy http://127.0.0.1:\1", c))
    got = receiver.requests[0]
    assert got.head_raw == (b"POST http://backend.invalid:8080/ HTTP/1.1\r\n"
                            b"Proxy-Connection: KeepAlive\r\n"
                            b"Host: backend.invalid:8080\r\n"
                            b"Content-Length: 682\r\n"
                            b"Content-Type: application/x-ndjson\r\n"
                            b"User-Agent: Fluent-Bit\r\n"
                            b"Connection: keep-alive\r\n\r\n")
    assert got.body == captured_body(vec["requests"][0])


def test_body_key_and_headers_key_send_one_request_per_record(tmp_path):
    """Bytes checked on Fluent Bit 5.1.1: the record's headers first, then Header_Tag and
    User-Agent; the body as it is. A header with a line break cannot be sent: that record is
    dropped with a log line, the others go."""
    vec = load("out_http_format_json_lines")
    vec = dict(vec, input_file_lines=[
        '{"ts":"2024-01-02T03:04:05.123456789Z","payload":"raw text one",'
        '"hdrs":{"X-A":"1","Content-Type":"text/plain"}}',
        '{"ts":"2024-01-02T03:04:05.2Z","payload":"bad","hdrs":{"X-C":"a\\r\\nX-Evil: 1"}}',
        '{"ts":"2024-01-02T03:04:06.123456789Z","payload":"two","hdrs":{"X-B":"2"}}'])
    receiver, err = replay(vec, tmp_path, count=2, config_edit=lambda c: c.replace(
        "Format json_lines", "Format json_lines\n    Body_Key $payload\n    Headers_Key $hdrs\n"
                             "    Header_Tag X-Tag"))
    got = [head_without_host(r.head_raw, receiver.port) + r.body for r in receiver.requests]
    assert got == [
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\nContent-Length: 12\r\nX-A: 1\r\n"
        b"Content-Type: text/plain\r\nX-Tag: app.logs\r\nUser-Agent: Fluent-Bit\r\n"
        b"Connection: keep-alive\r\n\r\nraw text one",
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\nContent-Length: 3\r\nX-B: 2\r\n"
        b"X-Tag: app.logs\r\nUser-Agent: Fluent-Bit\r\nConnection: keep-alive\r\n\r\ntwo"]
    assert "cannot send a request" in err


def test_format_gelf_leaves_out_only_the_records_gelf_cannot_carry(tmp_path):
    """Fluent Bit's no_keys vector: no record has a short_message, nothing is sent and the
    error is logged. With one record that has one, that record alone is sent (Fluent Bit
    would drop the chunk)."""
    vec = load("out_http_format_gelf_no_keys")

    def exit_on_eof(config):
        return config.replace("Read_From_Head true", "Read_From_Head true\n    Exit_On_Eof on")

    receiver, err = replay(vec, tmp_path, config_edit=exit_on_eof, until_exit=True)
    assert receiver.requests == []
    assert "3 of 3 records could not be encoded to GELF and are left out (missing " \
           "short_message key)" in err
    lines = vec["input_file_lines"] + ['{"ts":"2024-01-02T03:04:08.0Z","short_message":"ok"}']
    (tmp_path / "second").mkdir()
    receiver, err = replay(dict(vec, input_file_lines=lines), tmp_path / "second",
                           answer=lambda request, index: response(), config_edit=exit_on_eof,
                           until_exit=True)
    assert [r.body for r in receiver.requests] == [
        b'{"version":"1.1", "short_message":"ok", "timestamp":1704164648.000}\n']
    assert "3 of 4 records could not be encoded to GELF" in err
