"""bigquery output: a real edgeship process gets its access token from a stand-in of Google's
OAuth2 token endpoint (tests/gcp_oauth.py: verifies the RS256 JWT with the public key of a
key made here) and streams into a loopback insertAll receiver that checks the bearer token
and answers as BigQuery documents (200, ``insertErrors`` for refused rows): the request and
body Fluent Bit builds, the token cached and asked again after a 401, 5xx retried without
loss, insertErrors, a refused JWT, and the credentials file checked at start."""
import json
import os
import shutil

import pytest

from conftest import Child, run_edgeship, wait_for
from gcp_oauth import PROJECT, TokenEndpoint, new_key
from http_receiver import Receiver, response

SCOPE = "https://www.googleapis.com/auth/bigquery.insertdata"
RECORDS = os.path.join(os.path.dirname(__file__), "data", "nrlogs")
URI = "/bigquery/v2/projects/%s/datasets/edge/tables/readings/insertAll"
INSERTED = response(200, b'{"kind":"bigquery#tableDataInsertAllResponse"}')


def _records():
    with open(os.path.join(RECORDS, "records.jsonl")) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    for row in rows:
        del row["ts"]
    return rows


class BigQuery:
    """insertAll as BigQuery answers it: 401 unless the bearer token is one the token
    endpoint issued; then the test's answers in turn, INSERTED after them."""

    def __init__(self, tokens, answers=()):
        self.tokens = tokens
        self.answers = list(answers)
        self.receiver = Receiver(self._answer)
        self.requests = self.receiver.requests
        self.port = self.receiver.port

    def _answer(self, request, index):
        if request.header("Authorization") not in ["Bearer " + t for t in self.tokens.issued]:
            return response(401, b'{"error":{"code":401,"status":"UNAUTHENTICATED"}}')
        return self.answers.pop(0) if self.answers else INSERTED

    def close(self):
        self.receiver.close()


@pytest.fixture
def tokens():
    endpoint = TokenEndpoint(SCOPE)
    yield endpoint
    endpoint.close()


def _conf(tmp_path, tokens, bigquery, extra="", credentials=None):
    shutil.copy(os.path.join(RECORDS, "parsers.conf"), str(tmp_path / "parsers.conf"))
    shutil.copy(os.path.join(RECORDS, "records.jsonl"), str(tmp_path / "records.jsonl"))
    credentials = credentials or tokens.credentials(tmp_path / "creds.json")
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(
        "[SERVICE]\n    Flush 0.2\n    Grace 5\n    Log_File %s\n    scheduler.base 1\n"
        "    scheduler.cap 1\n    Parsers_File parsers.conf\n"
        "[INPUT]\n    Name tail\n    Path records.jsonl\n    Tag sensors\n    Parser json_ts\n"
        "    Read_From_Head true\n    Refresh_Interval 1\n"
        "[OUTPUT]\n    Name bigquery\n    Match *\n    google_service_credentials %s\n"
        "    dataset_id edge\n    table_id readings\n    Host 127.0.0.1\n    Port %d\n"
        "    tls off\n%s" % (tmp_path / "edgeship.log", credentials, bigquery.port, extra))
    return str(conf)


def _log(tmp_path):
    path = tmp_path / "edgeship.log"
    return path.read_text() if path.exists() else ""


def _run(tmp_path, tokens, bigquery, steps, extra="", credentials=None):
    conf = _conf(tmp_path, tokens, bigquery, extra, credentials)
    child = Child(["-c", conf], cwd=str(tmp_path))
    try:
        steps()
        code, _, err = child.terminate()
    finally:
        child.kill()
        bigquery.close()
    assert code == 0, err


def _append(tmp_path, message):
    with open(str(tmp_path / "records.jsonl"), "a") as f:
        f.write('{"ts":"2024-01-02T03:05:00.000000000Z","log":"%s"}\n' % message)


@pytest.mark.e2e
def test_rows_are_streamed_with_a_token_from_the_service_account(tmp_path, tokens):
    bigquery = BigQuery(tokens)

    def steps():
        wait_for(lambda: bigquery.requests, timeout=30)
        _append(tmp_path, "second chunk")
        wait_for(lambda: len(bigquery.requests) >= 2, timeout=30)

    _run(tmp_path, tokens, bigquery, steps, "    ignore_unknown_values on\n")
    first, second = bigquery.requests
    assert first.method == "POST" and first.path == URI % PROJECT
    assert [(k, v) for k, v in first.headers if k != "Host"] == [
        ("Content-Length", str(len(first.body))), ("User-Agent", "Fluent-Bit"),
        ("Content-Type", "application/json"), ("Authorization", "Bearer ya29.test-token-0"),
        ("Connection", "keep-alive")]
    assert first.body.startswith(b'{"kind":"bigquery#tableDataInsertAllRequest",'
                                 b'"skipInvalidRows":false,"ignoreUnknownValues":true,'
                                 b'"rows":[{"json":{"message":"first","level":"info",')
    assert json.loads(first.body)["rows"] == [{"json": row} for row in _records()]
    assert json.loads(second.body)["rows"] == [{"json": {"log": "second chunk"}}]
    # One token for both chunks: it is kept until 90 % of expires_in.
    assert tokens.issued == ["ya29.test-token-0"] and not tokens.refused
    assert second.header("Authorization") == "Bearer ya29.test-token-0"


@pytest.mark.e2e
def test_a_401_asks_a_new_token_and_a_5xx_is_retried_without_loss(tmp_path, tokens):
    # The first token is revoked once issued (the receiver stops taking it): the insert is
    # answered 401, the retry asks a new token; then a 503, then the rows go in.
    bigquery = BigQuery(tokens, [response(503, b'{"error":{"code":503}}')])

    def revoke_first(request, index, answer=bigquery._answer):
        if request.header("Authorization") == "Bearer ya29.test-token-0":
            return response(401, b'{"error":{"code":401,"status":"UNAUTHENTICATED"}}')
        return answer(request, index)
    bigquery.receiver.answer = revoke_first

    def steps():
        wait_for(lambda: len(bigquery.requests) >= 3, timeout=40)

    _run(tmp_path, tokens, bigquery, steps, "    Retry_Limit 5\n")
    refused, busy, inserted = bigquery.requests[:3]
    assert refused.header("Authorization") == "Bearer ya29.test-token-0"
    assert busy.header("Authorization") == inserted.header("Authorization") == \
        "Bearer ya29.test-token-1"
    assert refused.body == busy.body == inserted.body and len(bigquery.requests) == 3
    log = _log(tmp_path)
    assert "HTTP status=401" in log and "HTTP status=503" in log and "dropped" not in log


@pytest.mark.e2e
def test_a_jwt_signed_with_another_key_gets_no_token_and_nothing_is_sent(tmp_path, tokens):
    bigquery = BigQuery(tokens)
    credentials = tokens.credentials(tmp_path / "other.json", key=new_key())

    def steps():
        wait_for(lambda: "dropped" in _log(tmp_path), timeout=30)

    _run(tmp_path, tokens, bigquery, steps, "    Retry_Limit 1\n", credentials)
    assert len(tokens.refused) == 2 and "Signature verification failed" in tokens.refused[0]
    assert not bigquery.requests and not tokens.issued
    log = _log(tmp_path)
    assert "cannot retrieve oauth2 token" in log and "HTTP status=400" in log


INSERT_ERRORS = response(200, json.dumps({
    "kind": "bigquery#tableDataInsertAllResponse",
    "insertErrors": [{"index": 1, "errors": [{"reason": "invalid", "location": "x",
                                              "message": "no such field: x."}]},
                     {"index": 0, "errors": [{"reason": "stopped", "message": ""}]}]}))


@pytest.mark.e2e
@pytest.mark.parametrize("skip, logged", [
    (False, "refused the request's rows (2 with errors, invalid: no such field: x.)"),
    (True, "refused 2 of 6 rows, the others were inserted (invalid: no such field: x.)"),
])
def test_insert_errors_are_logged_and_not_retried(tmp_path, tokens, skip, logged):
    bigquery = BigQuery(tokens, [INSERT_ERRORS])

    def steps():
        wait_for(lambda: "refused" in _log(tmp_path), timeout=30)
        _append(tmp_path, "after")
        wait_for(lambda: len(bigquery.requests) >= 2, timeout=30)

    _run(tmp_path, tokens, bigquery, steps,
         "    skip_invalid_rows %s\n    Retry_Limit 5\n" % ("on" if skip else "off"))
    assert len(bigquery.requests) == 2 and b'"log":"after"' in bigquery.requests[1].body
    assert b'"skipInvalidRows":%s' % (b"true" if skip else b"false") in bigquery.requests[0].body
    log = _log(tmp_path)
    assert logged in log
    assert ("chunk of 6 records (tag sensors) dropped" in log) != skip


def test_the_credentials_file_is_read_at_start_as_fluent_bit_does(tmp_path):
    # The realconf case: a credentials path of the machine it runs on. Fluent Bit's dry run
    # does not read it; its start fails without it.
    conf = tmp_path / "bq.conf"
    conf.write_text("[INPUT]\n    Name dummy\n[OUTPUT]\n    Name bigquery\n    Match *\n"
                    "    google_service_credentials %s\n    dataset_id d\n    table_id t\n"
                    % (tmp_path / "absent.json"))
    proc = run_edgeship(["-c", str(conf), "--dry-run"])
    assert proc.returncode == 0, proc.stderr
    assert "cannot open credentials file" in proc.stderr and \
        "key 'google_service_credentials'" in proc.stderr
    proc = run_edgeship(["-c", str(conf)])
    assert proc.returncode != 0 and "cannot open credentials file" in proc.stderr


def test_google_service_credentials_from_the_environment(tmp_path, tokens):
    conf = tmp_path / "bq.conf"
    conf.write_text("[INPUT]\n    Name dummy\n[OUTPUT]\n    Name bigquery\n    Match *\n"
                    "    dataset_id d\n    table_id t\n")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    proc = run_edgeship(["-c", str(conf), "--dry-run"],
                        env=dict(os.environ, GOOGLE_SERVICE_CREDENTIALS=str(bad)))
    assert proc.returncode == 0 and "invalid JSON map on file: %s" % bad in proc.stderr
    good = tokens.credentials(tmp_path / "creds.json")
    proc = run_edgeship(["-c", str(conf), "--dry-run"],
                        env=dict(os.environ, GOOGLE_SERVICE_CREDENTIALS=good))
    assert proc.returncode == 0 and proc.stderr == "configuration test is successful\n", \
        proc.stderr


@pytest.mark.parametrize("lines, key, message", [
    (["table_id t"], "dataset_id", "property 'dataset_id' is not defined"),
    (["dataset_id d"], "table_id", "property 'table_id' is not defined"),
    (["dataset_id d", "table_id t", "service_account_email a@b"], "service_account_secret",
     "service_account_secret/private_key is not defined"),
    (["dataset_id d", "table_id t", "service_account_email a@b",
      "service_account_secret KEY"], "project_id", "no 'project_id' configured"),
])
def test_what_cannot_work_is_a_config_error(tmp_path, lines, key, message):
    conf = tmp_path / "bq.conf"
    conf.write_text("[INPUT]\n    Name dummy\n[OUTPUT]\n    Name bigquery\n    Match *\n"
                    + "".join("    %s\n" % line for line in lines))
    env = {k: v for k, v in os.environ.items() if k not in (
        "GOOGLE_SERVICE_CREDENTIALS", "SERVICE_ACCOUNT_EMAIL", "SERVICE_ACCOUNT_SECRET")}
    proc = run_edgeship(["-c", str(conf), "--dry-run"], env=env)
    assert proc.returncode != 0
    assert message in proc.stderr and "key '%s'" % key in proc.stderr
