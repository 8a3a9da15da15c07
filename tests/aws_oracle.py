"""What an AWS service does with a signed request, done by botocore (an independent SigV4
implementation): recompute the Authorization header from the headers the request lists in
SignedHeaders, and compare. Also a loopback HTTP server answering as the AWS credential
endpoints document (ECS container endpoint, EC2 IMDSv2, STS), and as the EC2 instance
metadata service answers an instance's metadata, identity document and tags."""
import datetime
import http.server
import threading
from unittest import mock

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

# Every variable the credentials chain reads: a test's edgeship sees only those it sets.
AWS_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
           "AWS_DEFAULT_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
           "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
           "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
           "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
           "EKS_POD_EXECUTION_ROLE", "AWS_EC2_METADATA_SERVICE_ENDPOINT")


def aws_env(tmp_path, **extra):
    """The environment of an edgeship under test: no AWS variable of the machine's, a HOME
    without ~/.aws, and ``extra``."""
    env = dict((name, "") for name in AWS_ENV)
    env["HOME"] = str(tmp_path / "home")
    env.update(extra)
    return env


def expected_authorization(method, host, uri, headers, body, access_key, secret_key,
                           region, service, s3=False):
    """botocore's Authorization for the request as received (``headers``: [(name, value)])."""
    authorization = dict((k.lower(), v) for k, v in headers)["authorization"]
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    chosen = [(k, v) for k, v in headers if k.lower() in signed and k.lower() != "host"]
    token = dict((k.lower(), v) for k, v in headers).get("x-amz-security-token")
    amz_date = dict((k.lower(), v) for k, v in headers)["x-amz-date"]
    request = AWSRequest(method=method, url="http://%s%s" % (host, uri), data=body,
                         headers=dict(chosen))
    request.headers["Host"] = host
    signer = (S3SigV4Auth if s3 else SigV4Auth)(Credentials(access_key, secret_key, token),
                                               service, region)
    moment = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
    with mock.patch("botocore.auth.get_current_datetime", return_value=moment):
        signer.add_auth(request)
    return request.headers["Authorization"]


class Endpoints:
    """A loopback HTTP server; ``routes[(method, path)]`` -> (status, body bytes) or a
    callable(handler) returning one. Every request is kept as (method, path, headers)."""

    def __init__(self, routes, port=0):
        self.routes = routes
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(length) if length else b""
                outer.requests.append((self.command, self.path, dict(self.headers)))
                route = outer.routes.get((self.command, self.path.split("?")[0]))
                if route is None:
                    status, body = 404, b"not found"
                else:
                    status, body = route(self) if callable(route) else route
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def sts_answer(action, access_key, secret_key, token, expiration):
    return ("<%sResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><%sResult>"
            "<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey>"
            "<SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>"
            "</%sResult></%sResponse>" % (action, action, access_key, secret_key, token,
                                          expiration, action, action)).encode()


def imds_routes(paths, token="imds-token"):
    """Endpoints routes answering as the EC2 instance metadata service: ``paths`` {path:
    body bytes}, each also with a trailing slash. With ``token``, IMDSv2 only (AWS's
    "http-tokens required"): PUT /latest/api/token with a TTL header gets ``token``, a GET
    without it gets 401. Without, IMDSv1: no token asked for."""
    def guarded(body):
        def answer(handler):
            if token is not None and handler.headers.get("X-aws-ec2-metadata-token") != token:
                return 401, b""
            return 200, body
        return answer

    def put_token(handler):
        if not handler.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return 400, b"missing ttl"
        return 200, token.encode()
    routes = {}
    if token is not None:
        routes[("PUT", "/latest/api/token")] = put_token
    for path, body in paths.items():
        routes[("GET", path)] = routes[("GET", path + "/")] = guarded(body)
    return routes
