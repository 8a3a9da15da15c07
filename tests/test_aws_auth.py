"""SigV4 signing (checked against botocore's signer) and the credentials chain (real files,
environment variables, and loopback servers answering as the ECS container endpoint,
EC2 IMDSv2 and STS document)."""
import asyncio
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from aws_oracle import AWS_ENV, Endpoints, expected_authorization, sts_answer
from edgeship.net import aws

CREDS = aws.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SESSION = aws.Credentials("ASIAEXAMPLE", "c2VjcmV0L2tleQ==", "FwoGZXIvYXdzE//token+/=")


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def run(coro):
    return asyncio.run(coro)


REQUESTS = [
    # method, host, uri, headers, body, service, credentials, s3
    ("POST", "aps-workspaces.us-west-2.amazonaws.com",
     "/workspaces/ws-1234/api/v1/remote_write",
     [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy"),
      ("X-Prometheus-Remote-Write-Version", "0.1.0"), ("User-Agent", "Fluent-Bit")],
     b"\x00\x01snappy", "aps", CREDS, False),
    ("POST", "search-x.eu-west-1.es.amazonaws.com", "/_bulk",
     [("Content-Type", "application/x-ndjson"), ("X-Custom", "  two   spaces ")],
     b'{"create":{}}\n{"a":1}\n', "es", SESSION, False),
    ("GET", "127.0.0.1:8080", "/?Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr"
     "&RoleSessionName=s%20n&Version=2011-06-15&ExternalId=a%2Bb%3D%26", [], b"", "sts",
     CREDS, False),
    ("GET", "h:1", "/a/b/../c/./d%20e?b=2&a=1&a=0&empty=&tilde=~x", [], b"", "execute-api",
     SESSION, False),
    ("PUT", "bucket.s3.eu-west-1.amazonaws.com", "/logs/2024/tag%20x/file%2B1.gz",
     [("Content-Type", "application/gzip"), ("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==")],
     b"gzipped bytes", "s3", SESSION, True),
    ("POST", "logs.us-east-1.amazonaws.com", "/", [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", "Logs_20140328.PutLogEvents")], b"", "logs", CREDS, False),
]


@pytest.mark.parametrize("method,host,uri,headers,body,service,creds,s3", REQUESTS)
def test_signature_equals_botocore(method, host, uri, headers, body, service, creds, s3):
    signed = aws.sign(creds, "us-west-2", service, method, host, uri, headers, body,
                      now=1700000000 + len(uri), s3=s3)
    ours = dict(signed)["Authorization"]
    assert ours == expected_authorization(method, host, uri, signed, body, creds.access_key,
                                          creds.secret_key, "us-west-2", service, s3)
    names = ours.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert "host" in names and "x-amz-date" in names and "user-agent" not in names
    assert ("x-amz-security-token" in names) == bool(creds.token)
    assert dict(signed)["X-Amz-Date"] == time.strftime("%Y%m%dT%H%M%SZ",
                                                       time.gmtime(1700000000 + len(uri)))


def test_a_previous_authorization_is_replaced_and_s3_states_the_payload_hash():
    signed = aws.sign(CREDS, "eu-west-1", "s3", "PUT", "b.s3.amazonaws.com", "/k", [
        ("Authorization", "Basic eDp5")], b"", s3=True)
    assert [v for k, v in signed if k == "Authorization"][0].startswith("AWS4-HMAC-SHA256 ")
    assert len([k for k, _ in signed if k == "Authorization"]) == 1
    assert dict(signed)["X-Amz-Content-Sha256"] == \
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


# ---------------------------------------------------------------------- providers
def test_environment_first(clean_env):
    clean_env.setenv("AWS_ACCESS_KEY_ID", "AKENV")
    clean_env.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    clean_env.setenv("AWS_SESSION_TOKEN", "tok")
    got = run(aws.credentials_chain("us-east-1").get())
    assert (got.access_key, got.secret_key, got.token) == ("AKENV", "secret", "tok")


def test_shared_credentials_file_profile_order(clean_env, tmp_path):
    path = tmp_path / "credentials"
    path.write_text("[default]\naws_access_key_id = AKDEF\naws_secret_access_key = s0\n"
                    "# comment\n[edge]\naws_access_key_id=AKEDGE\naws_secret_access_key=s1\n"
                    "aws_session_token = t1\n")
    clean_env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
    assert run(aws.ProfileProvider().fetch()).access_key == "AKDEF"
    clean_env.setenv("AWS_PROFILE", "edge")
    got = run(aws.ProfileProvider().fetch())
    assert (got.access_key, got.token) == ("AKEDGE", "t1")
    # the plugin's profile option comes before AWS_PROFILE
    assert run(aws.ProfileProvider("default").fetch()).access_key == "AKDEF"
    with pytest.raises(aws.CredentialsError, match="profile 'nope'"):
        run(aws.ProfileProvider("nope").fetch())


def test_home_credentials_and_config_file(clean_env, tmp_path):
    home = tmp_path / "home" / ".aws"
    home.mkdir(parents=True)
    (home / "config").write_text("[profile ops]\naws_access_key_id = AKCFG\n"
                                 "aws_secret_access_key = s2\nregion = eu-west-1\n")
    assert run(aws.ProfileProvider("ops").fetch()).access_key == "AKCFG"
    (home / "credentials").write_text("[ops]\naws_access_key_id = AKCRED\n"
                                      "aws_secret_access_key = s3\n")
    assert run(aws.ProfileProvider("ops").fetch()).access_key == "AKCRED"


def _ecs_json(key, expiration="2099-01-01T00:00:00Z"):
    return json.dumps({"RoleArn": "arn:aws:iam::1:role/task", "AccessKeyId": key,
                       "SecretAccessKey": "ecs-secret", "Token": "ecs-token",
                       "Expiration": expiration}).encode()


def test_ecs_relative_and_full_uri_with_token(clean_env, tmp_path):
    server = Endpoints({("GET", "/v2/credentials/abc"): (200, _ecs_json("AKECS")),
                        ("GET", "/full"): lambda h: (
                            (200, _ecs_json("AKFULL"))
                            if h.headers.get("Authorization") == "tok-from-file"
                            else (401, b"no"))})
    try:
        clean_env.setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc")
        got = run(aws.ContainerProvider(ecs_host="127.0.0.1:%d" % server.port).fetch())
        assert (got.access_key, got.token) == ("AKECS", "ecs-token")
        assert got.expiration == 4070908800
        clean_env.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        clean_env.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.url + "/full")
        clean_env.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong")
        with pytest.raises(aws.CredentialsError, match="HTTP 401"):
            run(aws.ContainerProvider().fetch())
        token = tmp_path / "token"
        token.write_text("tok-from-file\n")
        clean_env.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token))
        assert run(aws.ContainerProvider().fetch()).access_key == "AKFULL"
        clean_env.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com/creds")
        with pytest.raises(aws.CredentialsError, match="https, loopback or link-local"):
            run(aws.ContainerProvider().fetch())
    finally:
        server.close()


def test_imds_v2_token_then_role_credentials(clean_env):
    def token(handler):
        assert handler.headers["X-aws-ec2-metadata-token-ttl-seconds"] == "21600"
        return 200, b"imds-token"

    def guarded(body):
        return lambda h: (200, body) if h.headers.get("X-aws-ec2-metadata-token") == \
            "imds-token" else (401, b"")
    server = Endpoints({
        ("PUT", "/latest/api/token"): token,
        ("GET", "/latest/meta-data/iam/security-credentials/"): guarded(b"edge-role\n"),
        ("GET", "/latest/meta-data/iam/security-credentials/edge-role"):
            guarded(json.dumps({"Code": "Success", "AccessKeyId": "AKIMDS",
                                "SecretAccessKey": "imds-secret", "Token": "t",
                                "Expiration": "2099-01-01T00:00:00Z"}).encode())})
    try:
        got = run(aws.ImdsProvider("127.0.0.1:%d" % server.port).fetch())
        assert (got.access_key, got.secret_key) == ("AKIMDS", "imds-secret")
        assert [r[0] for r in server.requests] == ["PUT", "GET", "GET"]
    finally:
        server.close()


def test_web_identity_then_assume_role_signed(clean_env, tmp_path):
    def web_identity(handler):
        query = parse_qs(urlsplit(handler.path).query)
        assert query["Action"] == ["AssumeRoleWithWebIdentity"]
        assert query["WebIdentityToken"] == ["eyJ.projected+token/="]
        assert query["RoleArn"] == ["arn:aws:iam::1:role/irsa"]
        assert query["RoleSessionName"] == ["pod-session"]
        return 200, sts_answer("AssumeRoleWithWebIdentity", "AKIRSA", "irsa-secret",
                               "irsa-token", "2099-01-01T00:00:00Z")

    def assume_role(handler):
        query = parse_qs(urlsplit(handler.path).query)
        if query["Action"] != ["AssumeRole"]:
            return web_identity(handler)
        headers = list(handler.headers.items())
        expected = expected_authorization("GET", handler.headers["Host"], handler.path,
                                          headers, b"", "AKIRSA", "irsa-secret",
                                          "eu-west-1", "sts")
        if handler.headers["Authorization"] != expected:
            return 403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>"
        assert query["RoleArn"] == ["arn:aws:iam::2:role/logs"]
        assert query["ExternalId"] == ["ext-1"]
        return 200, sts_answer("AssumeRole", "AKROLE", "role-secret", "role-token",
                               "2099-01-01T00:00:00.000Z")
    server = Endpoints({("GET", "/"): assume_role})
    try:
        token = tmp_path / "token"
        token.write_text("eyJ.projected+token/=\n")
        clean_env.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
        clean_env.setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/irsa")
        clean_env.setenv("AWS_ROLE_SESSION_NAME", "pod-session")
        chain = aws.credentials_chain("eu-west-1", server.url, None,
                                      "arn:aws:iam::2:role/logs", "ext-1")
        got = run(chain.get())
        assert (got.access_key, got.token) == ("AKROLE", "role-token")
        assert len(server.requests) == 2
        # cached: no new request while they are fresh
        assert run(chain.get()).access_key == "AKROLE" and len(server.requests) == 2
    finally:
        server.close()


def test_sts_error_and_no_credentials_name_each_provider(clean_env, tmp_path):
    server = Endpoints({("GET", "/"): (403, b"<ErrorResponse><Error><Code>AccessDenied</Code>"
                                            b"<Message>Not authorized</Message></Error>"
                                            b"</ErrorResponse>")})
    try:
        token = tmp_path / "token"
        token.write_text("t")
        clean_env.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
        clean_env.setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/irsa")
        chain = aws.CachedCredentials([aws.EnvProvider(), aws.ProfileProvider(),
                                       aws.WebIdentityProvider("eu-west-1", server.url)])
        with pytest.raises(aws.NoCredentials) as info:
            run(chain.get())
        text = str(info.value)
        assert "environment: not set" in text
        assert "shared credentials file: not set" in text
        assert "AccessDenied Not authorized" in text
    finally:
        server.close()


def test_expiring_credentials_are_fetched_again(clean_env):
    answers = []

    def credentials(handler):
        answers.append(1)
        soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 30))
        return 200, _ecs_json("AK%d" % len(answers), soon)
    server = Endpoints({("GET", "/c"): credentials})
    try:
        clean_env.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.url + "/c")
        chain = aws.CachedCredentials([aws.EnvProvider(), aws.ContainerProvider()])

        async def twice():
            return (await chain.get()).access_key, (await chain.get()).access_key
        # 30 s left is inside the 60 s refresh window: every use fetches again
        assert run(twice()) == ("AK1", "AK2")
    finally:
        server.close()


def test_signer_retries_without_credentials(clean_env):
    signer = aws.Signer(aws.CachedCredentials([aws.EnvProvider()]), "eu-west-1", "es")
    with pytest.raises(aws.NoCredentials, match="environment: not set"):
        run(signer.sign("POST", "h", "/_bulk", [], b""))
    clean_env.setenv("AWS_ACCESS_KEY_ID", "AK")
    clean_env.setenv("AWS_SECRET_ACCESS_KEY", "SK")
    headers = run(signer.sign("POST", "h", "/_bulk", [], b""))
    assert dict(headers)["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AK/")
