"""slack output: a real edgeship child posts to a local TLS receiver standing in for Slack's
incoming webhook; the request is the one Fluent Bit 5.1.1 sent for the same records."""
import pytest

from conftest import run_edgeship, wait_for
from http_receiver import Receiver, response, self_signed_certificate

pytestmark = pytest.mark.e2e

RECORD = '{"log":"hi \\"q\\" \u00e9","n":1.5,"m":{"a":[1,null,true]}}'
# What Fluent Bit 5.1.1 posted for two emissions of two copies of RECORD at 1700000000.000000005.
LINE = ('[\\"timestamp\\": 1700000000.000000005, {\\"log\\"=>\\"hi \\"q\\" \\u00e9\\", '
        '\\"n\\"=>1.500000, \\"m\\"=>{\\"a\\"=>[1, nil, true]}}]\\n')
FLUENT_BIT_BODY = ('{"text":"%s"}' % (LINE * 4)).encode()


def config(tmp_path, webhook):
    path = tmp_path / "fluent-bit.conf"
    path.write_text("[SERVICE]\n    Flush 0.5\n    Log_File %s\n"
                    "[INPUT]\n    Name dummy\n    Dummy %s\n    Samples 2\n    Copies 2\n"
                    "    Start_time_sec 1700000000\n    Start_time_nsec 5\n"
                    "    Fixed_Timestamp on\n    Rate 20\n"
                    "[OUTPUT]\n    Name slack\n    Match *\n    Webhook %s\n"
                    "    tls.verify off\n" % (tmp_path / "log", RECORD, webhook))
    return path


def test_a_chunk_is_one_message_as_fluent_bit_posts_it(spawn, tmp_path):
    answers = [response(500, b"busy"), response(200, b"ok", content_type="text/html")]
    receiver = Receiver(lambda request, index: answers[min(index, 1)],
                        tls=self_signed_certificate(tmp_path))
    try:
        spawn(["-c", str(config(tmp_path, "https://127.0.0.1:%d/services/T/B/X"
                                % receiver.port))])
        wait_for(lambda: len(receiver.requests) >= 2, timeout=30)
    finally:
        receiver.close()
    first, second = receiver.requests[:2]
    assert first.method == "POST" and first.path == "/services/T/B/X"
    assert first.header("Content-Type") == "application/json"
    assert first.header("User-Agent") == "Fluent-Bit"
    assert first.body == FLUENT_BIT_BODY
    assert second.body == first.body                 # the 500 was retried
    log = tmp_path / "log"
    wait_for(lambda: "HTTP status=200 ok" in log.read_text())


def test_a_webhook_that_is_not_https_cannot_start(tmp_path):
    path = config(tmp_path, "http://127.0.0.1:9/services/T/B/X")
    dry = run_edgeship(["--dry-run", "-c", str(path)])
    assert dry.returncode == 0 and "we expected 'https'" in (tmp_path / "log").read_text()
    run = run_edgeship(["-c", str(path)])
    assert run.returncode != 0 and "we expected 'https'" in run.stderr
