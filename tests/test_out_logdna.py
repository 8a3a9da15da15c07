"""logdna output: a real edgeship child posts to a local TLS receiver standing in for
LogDNA's ingestion API; the requests are those Fluent Bit 5.1.1 sent for the same records."""
import re

import pytest

from conftest import run_edgeship, wait_for
from http_receiver import Receiver, response, self_signed_certificate
from edgeship.plugins.outputs.logdna import uri_encode

pytestmark = pytest.mark.e2e

# Captured from Fluent Bit 5.1.1 (HOSTNAME=pi4), one request per record's chunk.
FLUENT_BIT_BODIES = {
    "web": (b'{"lines":[{"level":"warn","meta":{"k":1},"app":"web","file":"/var/log/x",'
            b'"hostname":"pi4","timestamp":1700000000,"line":"{\\"log\\":\\"hi \\\\u00e9\\",'
            b'\\"level\\":\\"warn\\",\\"meta\\":{\\"k\\":1},\\"n\\":2,\\"app\\":\\"web\\"}"}]}'),
    "err": (b'{"lines":[{"level":"err","file":"/var/log/x","app":"Fluent Bit",'
            b'"hostname":"pi4","timestamp":1700000001,'
            b'"line":"{\\"severity\\":\\"err\\",\\"x\\":1}"}]}'),
}


def config(tmp_path, port, extra=""):
    path = tmp_path / "fluent-bit.conf"
    path.write_text(
        "[SERVICE]\n    Flush 0.3\n    Log_File %s\n"
        "[INPUT]\n    Name dummy\n    Tag web\n    Samples 1\n    Fixed_Timestamp on\n"
        "    Dummy {\"log\":\"hi \u00e9\",\"level\":\"warn\",\"meta\":{\"k\":1},\"n\":2,"
        "\"app\":\"web\"}\n    Start_time_sec 1700000000\n    Start_time_nsec 900000000\n"
        "[INPUT]\n    Name dummy\n    Tag err\n    Samples 1\n    Fixed_Timestamp on\n"
        "    Dummy {\"severity\":\"err\",\"x\":1}\n    Start_time_sec 1700000001\n"
        "    Start_time_nsec 0\n"
        "[OUTPUT]\n    Name logdna\n    Match *\n    logdna_host 127.0.0.1\n"
        "    logdna_port %d\n    api_key KEY1\n    tags a b,c&d\n    file /var/log/x\n"
        "    mac aa:bb\n    ip 10.0.0.2\n    tls.verify off\n%s"
        % (tmp_path / "log", port, extra))
    return path


def test_requests_as_fluent_bit_sends_them(spawn, tmp_path):
    receiver = Receiver(lambda request, index: response(200, b'{"status":"ok"}'),
                        tls=self_signed_certificate(tmp_path))
    try:
        spawn(["-c", str(config(tmp_path, receiver.port))], env={"HOSTNAME": "pi4"})
        wait_for(lambda: len(receiver.requests) >= 2, timeout=30)
    finally:
        receiver.close()
    for request in receiver.requests:
        assert re.fullmatch(r"/logs/ingest\?hostname=pi4&mac=aa:bb&ip=10\.0\.0\.2&now=\d+"
                            r"&tags=a%20b,c&d", request.path), request.path
        assert request.header("Host") == "127.0.0.1"
        assert request.header("Authorization") == "Basic S0VZMTo="
        assert request.header("Content-Type") == "application/json; charset=UTF-8"
        assert request.header("User-Agent") == "Fluent-Bit"
    assert sorted(r.body for r in receiver.requests) == sorted(FLUENT_BIT_BODIES.values())


def test_exclude_promoted_keys_and_retry(spawn, tmp_path):
    answers = [response(503, b"busy"), response(200, b"ok")]
    receiver = Receiver(lambda request, index: answers[min(index, 1)],
                        tls=self_signed_certificate(tmp_path))
    try:
        spawn(["-c", str(config(tmp_path, receiver.port,
                                "    exclude_promoted_keys on\n    hostname dev1\n"
                                "    Workers 1\n"))])
        wait_for(lambda: len(receiver.requests) >= 3, timeout=30)
    finally:
        receiver.close()
    bodies = [r.body for r in receiver.requests]
    assert bodies[0] in bodies[1:]                     # the refused one came again
    assert any(b'"line":"{\\"log\\":\\"hi \\\\u00e9\\",\\"n\\":2}"' in body
               for body in bodies)
    assert any(b'"line":"{\\"x\\":1}"' in body for body in bodies)
    assert all(b'"hostname":"dev1"' in body for body in bodies)


def test_api_key_is_required(tmp_path):
    path = tmp_path / "fluent-bit.conf"
    path.write_text("[INPUT]\n    Name dummy\n[OUTPUT]\n    Name logdna\n    Match *\n")
    proc = run_edgeship(["--dry-run", "-c", str(path)])
    assert proc.returncode != 0 and "no `api_key` was set" in proc.stderr


def test_uri_encoding_keeps_what_fluent_bit_keeps():
    assert uri_encode("a b,c&d/é=?~") == "a%20b%2Cc&d/%C3%A9=?~"
