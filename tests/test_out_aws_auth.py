"""prometheus_remote_write aws_auth, es and opensearch AWS_Auth: edgeship's requests reach a
loopback receiver that recomputes each Authorization header with botocore (as an AWS
service does) and refuses a wrong one with 403, as AWS answers."""
import json
import os

from aws_oracle import Endpoints, aws_env, expected_authorization, sts_answer
from conftest import run_edgeship, wait_for
from http_receiver import Receiver, response

DATA = os.path.join(os.path.dirname(__file__), "data")
FIXTURE = os.path.join(DATA, "node_exporter", "fixture")
BULK_OK = json.dumps({"took": 1, "errors": False, "items": [{"create": {"status": 201}}]})


def _checking(access_key, secret_key, region, service, ok):
    """A receiver's answer: ``ok`` when botocore finds the same signature, else 403."""
    def answer(request, index):
        host = request.header("Host")
        try:
            expected = expected_authorization(request.method, host, request.path,
                                              request.headers, request.body, access_key,
                                              secret_key, region, service)
        except KeyError:   # no Authorization at all
            expected = None
        request.signature_ok = expected is not None and \
            request.header("Authorization") == expected
        if not request.signature_ok:
            return response(403, b'{"message":"The request signature we calculated does '
                                 b'not match the signature you provided."}')
        return ok
    return answer


def _checked(receiver, count=1):
    """At least ``count`` requests arrived and were checked (the receiver lists a request
    before its answer is computed)."""
    return sum(1 for r in list(receiver.requests) if hasattr(r, "signature_ok")) >= count


def _log(tmp_path):
    path = tmp_path / "edgeship.log"
    return path.read_text() if path.exists() else ""


def test_prometheus_remote_write_signs_for_aps(spawn, tmp_path):
    receiver = Receiver(_checking("ASIAPROM", "prom/secret", "us-west-2", "aps",
                                  response(200, b"")))
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(
        "[SERVICE]\n    Flush 0.2\n    Log_File %s\n"
        "[INPUT]\n    Name node_exporter_metrics\n    Tag node\n    Scrape_Interval 1\n"
        "    metrics loadavg\n    path.procfs %s/proc\n    path.sysfs %s/sys\n"
        "[OUTPUT]\n    Name prometheus_remote_write\n    Match *\n    Host 127.0.0.1\n"
        "    Port %d\n    Uri /workspaces/ws-1/api/v1/remote_write\n    AWS_Auth On\n"
        "    AWS_region us-west-2\n    add_label app edge\n"
        % (tmp_path / "edgeship.log", FIXTURE, FIXTURE, receiver.port))
    try:
        spawn(["-c", str(conf)], env=aws_env(tmp_path, AWS_ACCESS_KEY_ID="ASIAPROM",
                                          AWS_SECRET_ACCESS_KEY="prom/secret",
                                          AWS_SESSION_TOKEN="prom-session"))
        wait_for(lambda: _checked(receiver, 2), timeout=30)
    finally:
        receiver.close()
    first = receiver.requests[0]
    assert all(r.signature_ok for r in receiver.requests[:2])
    assert first.header("X-Amz-Security-Token") == "prom-session"
    assert "/us-west-2/aps/aws4_request" in first.header("Authorization")
    assert "HTTP status=403" not in _log(tmp_path)


def test_es_retries_until_credentials_exist_then_signs(spawn, tmp_path):
    receiver = Receiver(_checking("AKFILE", "file-secret", "eu-west-1", "es",
                                  response(200, BULK_OK)))
    credentials = tmp_path / "credentials"
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(
        "[SERVICE]\n    Flush 0.2\n    Log_File %s\n    scheduler.base 1\n"
        "    scheduler.cap 1\n"
        "[INPUT]\n    Name dummy\n    Dummy {\"seq\":1}\n    Samples 1\n"
        "[OUTPUT]\n    Name es\n    Match *\n    Host 127.0.0.1\n    Port %d\n"
        "    Suppress_Type_Name On\n    Retry_Limit no_limits\n    AWS_Auth On\n"
        "    AWS_Region eu-west-1\n    AWS_Profile edge\n"
        % (tmp_path / "edgeship.log", receiver.port))
    try:
        spawn(["-c", str(conf)], env=aws_env(tmp_path,
                                          AWS_SHARED_CREDENTIALS_FILE=str(credentials)))
        wait_for(lambda: "no AWS credentials" in _log(tmp_path), timeout=30)
        assert not receiver.requests
        line = [line for line in _log(tmp_path).splitlines() if "no AWS credentials" in line][0]
        assert "environment: not set" in line and "EC2 instance metadata" in line
        credentials.write_text("[edge]\naws_access_key_id = AKFILE\n"
                               "aws_secret_access_key = file-secret\n")
        wait_for(lambda: _checked(receiver), timeout=30)
    finally:
        receiver.close()
    request = receiver.requests[0]
    assert request.signature_ok and request.path == "/_bulk"
    assert request.json_lines()[1]["seq"] == 1
    assert request.header("X-Amz-Security-Token") is None


def test_opensearch_serverless_with_an_assumed_role(spawn, tmp_path):
    def sts(handler):
        expected = expected_authorization("GET", handler.headers["Host"], handler.path,
                                          list(handler.headers.items()), b"", "AKBASE",
                                          "base-secret", "eu-central-1", "sts")
        if handler.headers["Authorization"] != expected:
            return 403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>"
        return 200, sts_answer("AssumeRole", "ASIAROLE", "role-secret", "role-token",
                               "2099-01-01T00:00:00Z")
    server = Endpoints({("GET", "/"): sts})
    receiver = Receiver(_checking("ASIAROLE", "role-secret", "eu-central-1", "aoss",
                                  response(200, BULK_OK)))
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(
        "[SERVICE]\n    Flush 0.2\n    Log_File %s\n"
        "[INPUT]\n    Name dummy\n    Dummy {\"seq\":2}\n    Samples 1\n"
        "[OUTPUT]\n    Name opensearch\n    Match *\n    Host 127.0.0.1\n    Port %d\n"
        "    Suppress_Type_Name On\n    AWS_Auth On\n    AWS_Region eu-central-1\n"
        "    AWS_Service_Name aoss\n    AWS_Role_ARN arn:aws:iam::1:role/os\n"
        "    AWS_External_ID ext\n    AWS_STS_Endpoint %s\n"
        % (tmp_path / "edgeship.log", receiver.port, server.url))
    try:
        spawn(["-c", str(conf)], env=aws_env(tmp_path, AWS_ACCESS_KEY_ID="AKBASE",
                                          AWS_SECRET_ACCESS_KEY="base-secret"))
        wait_for(lambda: _checked(receiver), timeout=30)
    finally:
        receiver.close()
        server.close()
    assert receiver.requests[0].signature_ok
    assert receiver.requests[0].header("X-Amz-Security-Token") == "role-token"
    assert "ExternalId=ext" in server.requests[0][1]


def test_aws_auth_without_a_region_is_a_config_error(tmp_path):
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[INPUT]\n    Name dummy\n[OUTPUT]\n    Name es\n    Match *\n"
                    "    AWS_Auth On\n")
    done = run_edgeship(["-c", str(conf), "--dry-run"])
    assert done.returncode != 0
    assert "AWS_Region" in done.stderr or "aws_region" in done.stderr
    assert "fluent-bit.conf" in done.stderr


def _one_record(spawn, tmp_path, receiver, record, output, access_key, secret_key):
    """One dummy ``record`` through ``output`` (its section's lines after Match) to
    ``receiver``, these credentials in the environment: the first request, once checked."""
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(
        "[SERVICE]\n    Flush 0.2\n    Log_File %s\n"
        "[INPUT]\n    Name dummy\n    Dummy %s\n    Samples 1\n"
        "[OUTPUT]\n    Match *\n    Host 127.0.0.1\n    Port %d\n%s"
        % (tmp_path / "edgeship.log", json.dumps(record), receiver.port, output))
    try:
        spawn(["-c", str(conf)], env=aws_env(tmp_path, AWS_ACCESS_KEY_ID=access_key,
                                          AWS_SECRET_ACCESS_KEY=secret_key))
        wait_for(lambda: _checked(receiver), timeout=30)
    finally:
        receiver.close()
    return receiver.requests[0]


def test_http_output_signs_for_its_aws_service(spawn, tmp_path):
    receiver = Receiver(_checking("AKHTTP", "http-secret", "ap-south-1", "execute-api",
                                  response(200, b"{}")))
    request = _one_record(spawn, tmp_path, receiver, {"seq": 3},
                          "    Name http\n    URI /prod/ingest?stream=a%20b&x=1\n"
                          "    Format json_lines\n    aws_auth on\n    aws_region ap-south-1\n"
                          "    aws_service execute-api\n", "AKHTTP", "http-secret")
    assert request.signature_ok
    assert request.json_lines()[0]["seq"] == 3


def test_opentelemetry_signs_for_its_aws_service(spawn, tmp_path):
    """OTLP to an AWS endpoint (CloudWatch's OTLP logs endpoint: service "logs", Fluent Bit's
    default aws_service): the protobuf body is signed."""
    receiver = Receiver(_checking("AKOTEL", "otel-secret", "eu-central-1", "logs",
                                  response(200, b"")))
    request = _one_record(spawn, tmp_path, receiver, {"log": "signed"},
                          "    Name opentelemetry\n    aws_auth on\n"
                          "    aws_region eu-central-1\n", "AKOTEL", "otel-secret")
    assert request.signature_ok, request.header("Authorization")
    assert request.path == "/v1/logs" and b"signed" in request.body
