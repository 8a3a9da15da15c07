"""nrlogs output: a real edgeship process sends to a loopback receiver answering as New Relic's
Log API does (202 with a requestId): the requests Fluent Bit 5.1.1 sent for the same config
and records (tests/data/nrlogs/), byte for byte; license_key over api_key; gzip; a 4xx retried
as Fluent Bit does then dropped and logged; a 5xx retried then delivered; config errors."""
import gzip
import os
import shutil

import pytest

from conftest import Child, run_edgeship, wait_for
from http_receiver import Receiver, response
from http_vectors import without_length

DATA = os.path.join(os.path.dirname(__file__), "data", "nrlogs")
ACCEPTED = response(202, b'{"requestId":"6a3e4d2c-0000-4000-8000-000000000000"}',
                    reason="Accepted")


def _read(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def _workdir(tmp_path, conf_text, port):
    for name in ("parsers.conf", "records.jsonl"):
        shutil.copy(os.path.join(DATA, name), str(tmp_path / name))
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(conf_text.replace("127.0.0.1:PORT", "127.0.0.1:%d" % port))
    return str(conf)


def _masked(head, port):
    return head.replace(b"127.0.0.1:%d" % port, b"127.0.0.1:PORT")


@pytest.mark.parametrize("name", ["api_key", "license_key_gzip"])
def test_requests_are_the_ones_fluent_bit_sent(name, tmp_path):
    receiver = Receiver(lambda request, index: ACCEPTED)
    conf = _workdir(tmp_path, _read(name + ".conf").decode(), receiver.port)
    child = Child(["-c", conf], cwd=str(tmp_path))
    try:
        wait_for(lambda: receiver.requests, timeout=30)
        code, _, err = child.terminate()
    finally:
        child.kill()
        receiver.close()
    assert code == 0, err
    assert len(receiver.requests) == 1
    got = receiver.requests[0]
    head, body = _masked(got.head_raw, receiver.port), got.body
    if name.endswith("gzip"):
        # zlib's deflate, not miniz's: the same text once decompressed, another length.
        assert gzip.decompress(body) == gzip.decompress(_read(name + ".body"))
        assert without_length(head) == without_length(_read(name + ".head"))
        assert gzip.decompress(body) == _read("api_key.body")
    else:
        assert head == _read(name + ".head")
        assert body == _read(name + ".body")


def _e2e_conf(tmp_path, extra=""):
    # No tls key: an http:// base_uri is plain HTTP (Fluent Bit would speak TLS to it).
    return ("[SERVICE]\n    Flush 0.2\n    Grace 5\n    Log_File %s\n    scheduler.base 1\n"
            "    scheduler.cap 1\n    Parsers_File parsers.conf\n"
            "[INPUT]\n    Name tail\n    Path records.jsonl\n    Tag app.logs\n"
            "    Parser json_ts\n    Read_From_Head true\n    Refresh_Interval 1\n"
            "[OUTPUT]\n    Name nrlogs\n    Match *\n    base_uri http://127.0.0.1:PORT/log/v1\n"
            "    api_key NRAK-KEY\n    compress off\n%s" % (tmp_path / "edgeship.log", extra))


def _log(tmp_path):
    path = tmp_path / "edgeship.log"
    return path.read_text() if path.exists() else ""


def _append(tmp_path, message):
    with open(str(tmp_path / "records.jsonl"), "a") as f:
        f.write('{"ts":"2024-01-02T03:05:00.000000000Z","log":"%s"}\n' % message)


def _run(tmp_path, answer, extra, steps):
    receiver = Receiver(answer)
    conf = _workdir(tmp_path, _e2e_conf(tmp_path, extra), receiver.port)
    child = Child(["-c", conf], cwd=str(tmp_path))
    try:
        steps(receiver)
        code, _, err = child.terminate()
    finally:
        child.kill()
        receiver.close()
    assert code == 0, err
    return receiver


@pytest.mark.e2e
def test_a_4xx_is_retried_as_fluent_bit_does_then_dropped_and_logged(tmp_path):
    # Fluent Bit's nrlogs retries every status but 200-205: with Retry_Limit 1 a 403 is sent
    # twice, then the chunk is dropped and logged; the next chunk goes through.
    def steps(receiver):
        wait_for(lambda: "dropped" in _log(tmp_path), timeout=30)
        _append(tmp_path, "after")
        wait_for(lambda: len(receiver.requests) >= 3, timeout=30)

    receiver = _run(tmp_path, lambda request, index: response(403, b'{"error":"bad key"}')
                    if index < 2 else ACCEPTED, "    Retry_Limit 1\n", steps)
    first, again, after = receiver.requests[:3]
    assert first.body == again.body and b'"message":"first"' in first.body
    assert b'"message":"after"' in after.body and b"first" not in after.body
    assert first.header("X-Insert-Key") == "NRAK-KEY" and first.path == "/log/v1"
    log = _log(tmp_path)
    assert "HTTP status=403" in log and "chunk of 6 records (tag app.logs) dropped" in log


@pytest.mark.e2e
def test_a_5xx_is_retried_then_delivered(tmp_path):
    def steps(receiver):
        wait_for(lambda: len(receiver.requests) >= 2, timeout=30)
        _append(tmp_path, "later")
        wait_for(lambda: len(receiver.requests) >= 3, timeout=30)

    receiver = _run(tmp_path, lambda request, index: response(503, b"busy")
                    if index == 0 else ACCEPTED, "    Retry_Limit 5\n", steps)
    failed, delivered, later = receiver.requests[:3]
    assert failed.body == delivered.body == _read("api_key.body")
    assert b'"message":"later"' in later.body and len(receiver.requests) == 3
    log = _log(tmp_path)
    assert "HTTP status=503" in log and "dropped" not in log


def _dry_run(tmp_path, lines):
    conf = tmp_path / "nr.conf"
    conf.write_text("[INPUT]\n    Name dummy\n\n[OUTPUT]\n    Name nrlogs\n    Match *\n"
                    + "".join("    %s\n" % line for line in lines))
    return run_edgeship(["-c", str(conf), "--dry-run"]), str(conf)


@pytest.mark.parametrize("lines, where, message", [
    ([], ":4: key 'api_key'", "no 'api_key' or 'license_key' was configured"),
    (["api_key k", "base_uri ftp://h/x"], ":8: key 'base_uri'", "base_uri must be"),
    (["api_key k", "base_uri http://h:port/x"], ":8: key 'base_uri'", "base_uri must be"),
    (["api_key k", "header X-A b"], "", "header"),
])
def test_what_cannot_work_is_a_config_error(tmp_path, lines, where, message):
    proc, conf = _dry_run(tmp_path, lines)
    assert proc.returncode != 0
    assert message in proc.stderr and conf + where in proc.stderr


def test_either_key_and_any_compress_value_are_accepted(tmp_path):
    proc, _ = _dry_run(tmp_path, ["license_key L", "compress brotli"])
    assert proc.returncode == 0, proc.stderr
    assert "unknown compress encoding value 'brotli'" in proc.stderr
    proc, _ = _dry_run(tmp_path, ["api_key A", "base_uri https://log-api.eu.newrelic.com/log/v1",
                                  "tls.verify off"])
    assert proc.returncode == 0, proc.stderr
