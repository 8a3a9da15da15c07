"""azure output: a real edgeship process sends to a loopback receiver that checks the
SharedKey signature as Azure's HTTP Data Collector API documents it (its own HMAC-SHA256 of
the string to sign, keyed with the base64-decoded workspace key; 403 when it differs): the
requests Fluent Bit 5.1.1 sent for the same config and records (tests/data/azure/), byte for
byte but for the date and the signature that depends on it; a 403 retried then dropped and
logged; a 5xx retried then delivered; Log_Type_Key; the shared key's base64 as Fluent Bit
reads it; config and start errors."""
import base64
import datetime
import email.utils
import hashlib
import hmac
import os
import re
import shutil

import pytest

from conftest import Child, run_edgeship, wait_for
from http_receiver import Receiver, response

from edgeship.plugins.outputs.azure import decode_shared_key

DATA = os.path.join(os.path.dirname(__file__), "data", "azure")
RECORDS = os.path.join(os.path.dirname(__file__), "data", "nrlogs")
KEY = "c2VjcmV0LWtleS1mb3ItdGVzdHM="
# Fluent Bit puts '<Customer_ID>.' in front of a Host that does not hold the id: an id that
# is part of the loopback address keeps the Host as given.
CUSTOMER_ID = "127.0.0.1"


def _read(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def azure_answer(key=KEY, failures=()):
    """Azure's check of a Data Collector request: 403 unless its Authorization is the
    documented signature; ``failures`` are answers given first, for signed requests."""
    secret = base64.b64decode(key)

    def answer(request, index):
        date = request.header("x-ms-date")
        string_to_sign = "\n".join(["POST", request.header("Content-Length"),
                                    request.header("Content-Type"), "x-ms-date:" + date,
                                    "/api/logs"])
        expected = base64.b64encode(hmac.new(secret, string_to_sign.encode(),
                                             hashlib.sha256).digest()).decode()
        sent = email.utils.parsedate_to_datetime(date)
        skew = abs((datetime.datetime.now(datetime.timezone.utc) - sent).total_seconds())
        if request.header("Authorization") != "SharedKey %s:%s" % (CUSTOMER_ID, expected) \
                or skew > 900 or len(request.body) != int(request.header("Content-Length")):
            return response(403, b'{"Error":"InvalidAuthorization","Message":"An invalid '
                                 b'scheme was specified in the Authorization header"}')
        if index < len(failures):
            return failures[index]
        return response(200, b"")
    return answer


def _workdir(tmp_path, conf_text, port):
    for name in ("parsers.conf", "records.jsonl"):
        shutil.copy(os.path.join(RECORDS, name), str(tmp_path / name))
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(conf_text.replace("PORT", str(port)))
    return str(conf)


def _masked(head, port):
    head = head.replace(b"127.0.0.1:%d" % port, b"127.0.0.1:PORT")
    head = re.sub(rb"x-ms-date: [^\r]*", b"x-ms-date: DATE", head)
    return re.sub(rb"(SharedKey 127\.0\.0\.1:)[A-Za-z0-9+/=]{44}", rb"\1SIGNATURE", head)


@pytest.mark.parametrize("name", ["default", "time_generated"])
def test_requests_are_the_ones_fluent_bit_sent_and_azure_accepts_them(name, tmp_path):
    receiver = Receiver(azure_answer())
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
    assert _masked(got.head_raw, receiver.port) == _read(name + ".head")
    assert got.body == _read(name + ".body")
    assert "HTTP status=403" not in err and "error" not in err.lower()


def _e2e_conf(tmp_path, extra):
    return ("[SERVICE]\n    Flush 0.2\n    Grace 5\n    Log_File %s\n    scheduler.base 1\n"
            "    scheduler.cap 1\n    Parsers_File parsers.conf\n"
            "[INPUT]\n    Name tail\n    Path records.jsonl\n    Tag app.logs\n"
            "    Parser json_ts\n    Read_From_Head true\n    Refresh_Interval 1\n"
            "[OUTPUT]\n    Name azure\n    Match *\n    Customer_ID %s\n    Host 127.0.0.1\n"
            "    Port PORT\n    tls off\n%s" % (tmp_path / "edgeship.log", CUSTOMER_ID, extra))


def _log(tmp_path):
    path = tmp_path / "edgeship.log"
    return path.read_text() if path.exists() else ""


def _append(tmp_path, line):
    with open(str(tmp_path / "records.jsonl"), "a") as f:
        f.write(line + "\n")


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
def test_a_wrong_key_is_refused_403_retried_then_dropped_and_logged(tmp_path):
    # A valid base64 key that is not the workspace's: Azure answers 403; Fluent Bit retries
    # every status but 2xx, so with Retry_Limit 1 it is sent twice and dropped.
    def steps(receiver):
        wait_for(lambda: "dropped" in _log(tmp_path), timeout=30)

    wrong = base64.b64encode(b"another key").decode()
    receiver = _run(tmp_path, azure_answer(), "    Shared_Key %s\n    Retry_Limit 1\n" % wrong,
                    steps)
    first, again = receiver.requests[:2]
    assert first.body == again.body == _read("default.body")
    log = _log(tmp_path)
    assert "HTTP status=403" in log and "chunk of 6 records (tag app.logs) dropped" in log


@pytest.mark.e2e
def test_a_5xx_is_retried_then_delivered_and_nothing_is_lost(tmp_path):
    def steps(receiver):
        wait_for(lambda: len(receiver.requests) >= 2, timeout=30)
        _append(tmp_path, '{"ts":"2024-01-02T03:05:00.000000000Z","log":"later"}')
        wait_for(lambda: len(receiver.requests) >= 3, timeout=30)

    busy = response(503, b'{"Error":"ServiceUnavailable"}')
    receiver = _run(tmp_path, azure_answer(failures=[busy]),
                    "    Shared_Key %s\n    Retry_Limit 5\n" % KEY, steps)
    failed, delivered, later = receiver.requests[:3]
    assert failed.body == delivered.body == _read("default.body")
    assert b'"log":"later"' in later.body and len(receiver.requests) == 3
    log = _log(tmp_path)
    assert "HTTP status=503" in log and "dropped" not in log


@pytest.mark.e2e
def test_log_type_key_sends_each_record_under_its_own_log_type(tmp_path):
    # Fluent Bit would send the whole chunk under the last value found; here each record
    # keeps its own, a record without the key (or with a value Azure refuses) goes under
    # Log_Type.
    for kind in ("audit", "app", "audit", None, "bad-name"):
        _append(tmp_path, '{"ts":"2024-01-02T03:05:00.000000000Z","log":"x"%s}'
                % (',"k":{"t":"%s"}' % kind if kind else ""))

    def steps(receiver):
        wait_for(lambda: len(receiver.requests) >= 3, timeout=30)

    shutil.copy(os.path.join(RECORDS, "parsers.conf"), str(tmp_path / "parsers.conf"))
    receiver = Receiver(azure_answer())
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(_e2e_conf(tmp_path, "    Shared_Key %s\n    Log_Type base\n"
                                        "    Log_Type_Key $k['t']\n" % KEY)
                    .replace("PORT", str(receiver.port)))
    child = Child(["-c", str(conf)], cwd=str(tmp_path))
    try:
        steps(receiver)
        code, _, err = child.terminate()
    finally:
        child.kill()
        receiver.close()
    assert code == 0, err
    sent = {r.header("Log-Type"): r.body for r in receiver.requests}
    assert sorted(sent) == ["app", "audit", "base"] and len(receiver.requests) == 3
    assert sent["audit"].count(b'"audit"') == 2 and sent["app"].count(b'"t":') == 1
    assert sent["base"].count(b'"log":"x"') == 2 and b"bad-name" in sent["base"]
    assert "not a valid Log-Type in 2 records" in _log(tmp_path)


@pytest.mark.parametrize("text, key", [
    (KEY, b"secret-key-for-tests"),
    ("c2VjcmV0", b"secret"),
    # Fluent Bit's decoder drops an incomplete last group and takes line breaks and spaces
    # before them: the realconf case's "secret" is a key there.
    ("secret", base64.b64decode("secr")),
    ("c2Vj\r\ncmV0  \n", b"secret"),
    ("", b""),
])
def test_the_shared_key_is_decoded_as_fluent_bit_decodes_it(text, key):
    assert decode_shared_key(text) == key


@pytest.mark.parametrize("text", ["c2Vj cmV0", "c2Vj!mV0", "c2V===", "c2==cmV0", " c2Vj"])
def test_what_fluent_bit_cannot_decode_is_refused(text):
    with pytest.raises(ValueError):
        decode_shared_key(text)


def _conf(tmp_path, lines):
    conf = tmp_path / "az.conf"
    conf.write_text("[INPUT]\n    Name dummy\n\n[OUTPUT]\n    Name azure\n    Match *\n"
                    + "".join("    %s\n" % line for line in lines))
    return str(conf)


def test_a_key_fluent_bit_cannot_decode_warns_in_dry_run_and_stops_a_run(tmp_path):
    conf = _conf(tmp_path, ["Customer_ID ws", "Shared_Key not*base64"])
    proc = run_edgeship(["-c", conf, "--dry-run"])
    assert proc.returncode == 0, proc.stderr
    assert conf + ":8: key 'shared_key'" in proc.stderr and "error decoding" in proc.stderr
    proc = run_edgeship(["-c", conf])
    assert proc.returncode != 0 and "error decoding shared_key" in proc.stderr


@pytest.mark.parametrize("lines, where, message", [
    (["Shared_Key %s" % KEY], ":4: key 'customer_id'", "'customer_id' is not defined"),
    (["Customer_ID ws"], ":4: key 'shared_key'", "'shared_key' is not defined"),
    (["Customer_ID ws", "Shared_Key %s" % KEY, "Log_Type_Key $a["],
     ":9: key 'log_type_key'", "invalid log_type_key"),
    (["Customer_ID ws", "Shared_Key %s" % KEY, "Header X y"], ":9: key 'header'", "unknown"),
])
def test_what_cannot_work_is_a_config_error(tmp_path, lines, where, message):
    conf = _conf(tmp_path, lines)
    proc = run_edgeship(["-c", conf, "--dry-run"])
    assert proc.returncode != 0
    assert message in proc.stderr and conf + where in proc.stderr


@pytest.mark.parametrize("host, expected", [
    (None, "ws1.ods.opinsights.azure.com:443"),
    (".example.net", "ws1.example.net:443"),
    ("logs.example.net", "ws1.logs.example.net:443"),
    ("ws1.example.net", "ws1.example.net:443"),
])
def test_the_host_is_composed_from_the_customer_id_as_fluent_bit_does(tmp_path, host, expected):
    log = tmp_path / "edgeship.log"
    conf = tmp_path / "az.conf"
    conf.write_text("[SERVICE]\n    Log_File %s\n[INPUT]\n    Name dummy\n[OUTPUT]\n"
                    "    Name azure\n    Match *\n    Customer_ID ws1\n    Shared_Key %s\n%s"
                    % (log, KEY, "    Host %s\n" % host if host else ""))
    child = Child(["-c", str(conf)], cwd=str(tmp_path))
    try:
        wait_for(lambda: log.exists() and "sends tags matching" in log.read_text())
    finally:
        child.kill()
    assert "to customer_id=ws1 host=%s\n" % expected in log.read_text()
