"""AWS request signing (Signature Version 4) and credentials, for every HTTP output.

SigV4 is written here with hashlib and hmac: botocore (the reference signer) is several MB
of Python with a startup cost and memory a Pi cannot spare for one HMAC chain per request;
the tests check this signer against botocore's ``SigV4Auth`` as an independent oracle.

Kept from Fluent Bit 5.1.1 (src/aws/, flb_signv4.c):
- The standard credentials chain, first provider that answers wins and is kept until it
  fails: environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
  ``AWS_SESSION_TOKEN``); the shared credentials file (``AWS_SHARED_CREDENTIALS_FILE`` or
  ``~/.aws/credentials``, then ``AWS_CONFIG_FILE`` or ``~/.aws/config``) for the plugin's
  profile option, else ``AWS_PROFILE``, ``AWS_DEFAULT_PROFILE``, ``default``; EKS web
  identity (``AWS_WEB_IDENTITY_TOKEN_FILE`` + ``AWS_ROLE_ARN``, optional
  ``AWS_ROLE_SESSION_NAME`` -> STS ``AssumeRoleWithWebIdentity``); ECS/EKS container
  credentials (``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`` on 169.254.170.2, or
  ``AWS_CONTAINER_CREDENTIALS_FULL_URI``, which must be https, loopback or the link-local
  ECS/EKS hosts, with ``AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE)`` as ``Authorization``);
  EC2 instance metadata, IMDSv2 (a PUT for a token, then the role's credentials; ``Imds``,
  which the aws filter uses too).
- ``EKS_POD_EXECUTION_ROLE`` (Fargate) assumes that role on top of the chain; the plugin's
  role_arn (+ external_id) assumes its role with STS ``AssumeRole`` signed by the chain's
  credentials, at ``sts_endpoint`` or ``https://sts.<region>.amazonaws.com``.
- Credentials that expire are refreshed when less than 60 s are left (FLB_AWS_REFRESH_WINDOW).
- No credentials: the flush is retried, with one error line naming what each provider lacked.

Differences: ``credential_process`` in the config file is not run (no subprocess on the
send path); IMDSv1 is not tried when the token PUT fails (AWS recommends v2 only); the
credential endpoints over https verify the host name (Fluent Bit's default does not); the
IMDS address can be moved with AWS_EC2_METADATA_SERVICE_ENDPOINT, as in the AWS SDKs
(Fluent Bit always asks 169.254.169.254).
"""
import asyncio
import datetime
import hashlib
import hmac
import os
import re
import secrets
import time
from urllib.parse import quote, unquote

from edgeship.codecs import untrusted
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option, Schema
from edgeship.net.http_client import (HTTP_CLIENT_OPTIONS, TLS_ON_NET_OPTIONS, HttpClient,
                                      HttpError, address_options, split_url)

# The aws_* options of the HTTP outputs that sign (prometheus_remote_write, es, opensearch);
# each adds its own service option (aws_service / aws_service_name).
AWS_AUTH_OPTIONS = (
    Option("aws_auth", "bool", "off", help="sign requests with AWS SigV4"),
    Option("aws_region", help="AWS region of the service (needed with aws_auth)"),
    Option("aws_sts_endpoint", help="STS endpoint URL for aws_role_arn"),
    Option("aws_role_arn", help="IAM role assumed with STS AssumeRole"),
    Option("aws_external_id", help="external id for aws_role_arn"),
    Option("aws_profile", help="profile of the shared credentials file"),
)

# The net.* and tls.* options of the AWS outputs (cloudwatch_logs, s3, kinesis_*): TLS on by
# default.
AWS_NET_OPTIONS = TLS_ON_NET_OPTIONS
USER_AGENT = ("User-Agent", "aws-fluent-bit-plugin")

REFRESH_WINDOW = 60            # seconds before expiry when credentials are fetched again
ECS_HOST = "169.254.170.2"
IMDS_HOST = "169.254.169.254"
_LINK_LOCAL_HOSTS = ("169.254.170.2", "169.254.170.23", "fd00:ec2::23")
_METADATA_TIMEOUT = 1.0        # IMDS and the container endpoint answer at once or not at all
_STS_TIMEOUT = 10.0
_MAX_TOKEN_FILE = 64 * 1024
_UNRESERVED = "-_.~"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# Headers a proxy may change or a client adds late: never signed (botocore's list).
_NOT_SIGNED = frozenset(("connection", "expect", "keep-alive", "proxy-authenticate",
                         "proxy-authorization", "te", "trailer", "transfer-encoding",
                         "upgrade", "user-agent", "x-amzn-trace-id", "authorization",
                         "content-length"))
_CLIENT_CONF = None


class NoCredentials(Exception):
    """No provider of the chain gave credentials (the message says why, per provider)."""


class Credentials:
    __slots__ = ("access_key", "secret_key", "token", "expiration")

    def __init__(self, access_key, secret_key, token=None, expiration=None):
        self.access_key = access_key
        self.secret_key = secret_key
        self.token = token or None
        self.expiration = expiration   # epoch seconds, None: does not expire

    def fresh(self, now=None):
        return self.expiration is None or \
            self.expiration - (now or time.time()) > REFRESH_WINDOW


# ---------------------------------------------------------------------- signing
def _hmac(key, text):
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def _canonical_path(path, s3):
    if s3:   # S3 signs the path as sent, without normalizing or encoding it again
        return path or "/"
    segments = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in (".", ""):
            segments.append(segment)
    normal = "/" + "/".join(segments)
    if path.endswith("/") and normal != "/":
        normal += "/"
    return quote(normal, safe="/~")


def _canonical_query(query):
    pairs = []
    for item in query.split("&") if query else ():
        key, _, value = item.partition("=")
        pairs.append((quote(unquote(key), safe=_UNRESERVED),
                      quote(unquote(value), safe=_UNRESERVED)))
    return "&".join("%s=%s" % pair for pair in sorted(pairs))


def sign(credentials, region, service, method, host, uri, headers, body, now=None,
         s3=False, unsigned_payload=False):
    """The headers of a request signed with SigV4: ``headers`` (``[(name, value)]``, the
    ones sent besides Host and Content-Length) without any Authorization, then X-Amz-Date,
    X-Amz-Security-Token (session credentials), X-Amz-Content-Sha256 (s3) and
    Authorization. ``host`` is the Host header as sent; ``uri`` the request target
    (path and query, already percent-encoded)."""
    when = time.gmtime(now if now is not None else time.time())
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", when)
    day = amz_date[:8]
    if unsigned_payload:
        payload_hash = UNSIGNED_PAYLOAD
    else:
        payload_hash = hashlib.sha256(body).hexdigest()
    out = [(name, value) for name, value in headers if name.lower() != "authorization"]
    out.append(("X-Amz-Date", amz_date))
    if credentials.token:
        out.append(("X-Amz-Security-Token", credentials.token))
    if s3:
        out.append(("X-Amz-Content-Sha256", payload_hash))
    signed = {"host": [host]}
    for name, value in out:
        lower = name.lower()
        if lower not in _NOT_SIGNED:
            signed.setdefault(lower, []).append(" ".join(str(value).split()))
    names = sorted(signed)
    path, _, query = uri.partition("?")
    canonical = "\n".join((
        method.upper(), _canonical_path(path, s3), _canonical_query(query),
        "".join("%s:%s\n" % (name, ",".join(signed[name])) for name in names),
        ";".join(names), payload_hash))
    scope = "%s/%s/%s/aws4_request" % (day, region, service)
    to_sign = "\n".join(("AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode("utf-8")).hexdigest()))
    key = _hmac(("AWS4" + credentials.secret_key).encode("utf-8"), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    out.append(("Authorization",
                "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                % (credentials.access_key, scope, ";".join(names), signature)))
    return out


class Signer:
    """Signs an output's requests with the credentials of ``provider``."""

    def __init__(self, provider, region, service, s3=False):
        self.provider = provider
        self.region = region
        self.service = service
        self.s3 = s3

    async def sign(self, method, host, uri, headers, body):
        """The signed header list; NoCredentials when there are none."""
        credentials = await self.provider.get()
        return sign(credentials, self.region, self.service, method, host, uri, headers, body,
                    s3=self.s3)


def endpoint_conf(conf, endpoint, port):
    """The HttpClient conf of an AWS output (``conf``: its net.*/tls.* options) for
    ``endpoint``, ``[https://|http://]host[:port]`` (http turns TLS off; without a port,
    ``port``). ConfigError naming ``endpoint`` when it is none of those."""
    client_conf = dict(conf)
    scheme, _, rest = endpoint.rpartition("://")
    host, _, given = rest.split("/", 1)[0].partition(":")
    if scheme not in ("", "https", "http") or not host:
        raise ConfigError("endpoint must be [https://]host[:port], got '%s'" % endpoint,
                          key="endpoint")
    if scheme == "http":
        client_conf["tls"] = False
    try:
        client_conf["port"] = int(given) if given else port
    except ValueError:
        raise ConfigError("bad port in endpoint '%s'" % endpoint, key="endpoint")
    client_conf["host"] = host
    return client_conf


# ---------------------------------------------------------------------- HTTP for credentials
def _client_conf(host, port, https):
    global _CLIENT_CONF
    if _CLIENT_CONF is None:
        _CLIENT_CONF = Schema("aws", address_options(80) + HTTP_CLIENT_OPTIONS).build([])
    conf = dict(_CLIENT_CONF)
    conf.update({"host": host, "port": port, "tls": https, "tls.verify_hostname": https,
                 "net.keepalive": False})
    return conf


async def _request(url, method="GET", headers=(), body=b"", timeout=_STS_TIMEOUT):
    """The Response of one request to ``url``; HttpError when none came."""
    https, host, port, path = split_url(url)
    conf = _client_conf(host, port, https)
    conf["net.connect_timeout"] = timeout
    conf["net.io_timeout"] = timeout
    client = HttpClient(conf)
    try:
        return await client.request(method, path, list(headers), body)
    finally:
        client.close()


def _parse_time(text):
    """Epoch seconds of an ISO 8601 UTC time (``2019-11-09T13:34:41Z``, fractions allowed)."""
    text = text.strip().rstrip("Z").split("+")[0]
    base = text.split(".")[0]
    moment = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S")
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


def _from_json(body, where):
    try:
        doc = untrusted.loads(body)
        credentials = Credentials(doc["AccessKeyId"], doc["SecretAccessKey"], doc.get("Token"),
                                  _parse_time(doc["Expiration"]) if doc.get("Expiration")
                                  else None)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise CredentialsError("%s: unusable answer (%s)" % (where, exc))
    if not isinstance(credentials.access_key, str) or not isinstance(credentials.secret_key,
                                                                      str):
        raise CredentialsError("%s: unusable answer" % where)
    return credentials


def _xml_value(body, name):
    found = re.search(r"<%s>([^<]*)</%s>" % (name, name), body)
    return found.group(1).strip() if found else None


def _from_sts(response, where):
    body = response.body.decode("utf-8", "replace")
    if response.status != 200:
        code = _xml_value(body, "Code") or "HTTP %d" % response.status
        raise CredentialsError("%s: %s %s" % (where, code, _xml_value(body, "Message") or ""))
    access_key = _xml_value(body, "AccessKeyId")
    secret_key = _xml_value(body, "SecretAccessKey")
    if not access_key or not secret_key:
        raise CredentialsError("%s: no credentials in the answer" % where)
    expiration = _xml_value(body, "Expiration")
    try:
        expiration = _parse_time(expiration) if expiration else None
    except ValueError:
        expiration = None
    return Credentials(access_key, secret_key, _xml_value(body, "SessionToken"), expiration)


def _query(pairs):
    return "&".join("%s=%s" % (k, quote(v, safe=_UNRESERVED)) for k, v in pairs)


def sts_url(sts_endpoint, region):
    return sts_endpoint or "https://sts.%s.amazonaws.com" % region


def _session_name():
    return secrets.token_hex(16)


# ---------------------------------------------------------------------- providers
class CredentialsError(Exception):
    """A provider that applies here could not give credentials (the reason)."""


class Provider:
    """Fetches credentials; ``fetch()`` returns None when the provider does not apply here
    (its variables are not set) and raises CredentialsError when it applies and fails."""
    label = ""

    async def fetch(self):
        raise NotImplementedError


class EnvProvider(Provider):
    label = "environment"

    async def fetch(self):
        access_key = os.environ.get("AWS_ACCESS_KEY_ID")
        secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY")
        if not access_key or not secret_key:
            return None
        return Credentials(access_key, secret_key, os.environ.get("AWS_SESSION_TOKEN"))


def _ini_sections(path):
    """{section: {key: value}} of an AWS ini file; None when it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read(1024 * 1024)
    except OSError:
        return None
    sections, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1].strip(), {})
        elif current is not None and "=" in line:
            key, _, value = line.partition("=")
            current[key.strip().lower()] = value.strip()
    return sections


class ProfileProvider(Provider):
    label = "shared credentials file"

    def __init__(self, profile=None):
        self.profile = profile or os.environ.get("AWS_PROFILE") \
            or os.environ.get("AWS_DEFAULT_PROFILE") or "default"

    def _paths(self):
        home = os.environ.get("HOME")
        credentials = os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or (
            home and os.path.join(home, ".aws", "credentials"))
        config = os.environ.get("AWS_CONFIG_FILE") or (
            home and os.path.join(home, ".aws", "config"))
        return credentials, config

    async def fetch(self):
        credentials_path, config_path = self._paths()
        names = ((credentials_path, (self.profile,)),
                 (config_path, ("profile " + self.profile,) +
                  (("default",) if self.profile == "default" else ())))
        readable = False
        for path, sections in names:
            found = _ini_sections(path) if path else None
            if found is None:
                continue
            readable = True
            for section in sections:
                values = found.get(section) or {}
                if values.get("aws_access_key_id") and values.get("aws_secret_access_key"):
                    return Credentials(values["aws_access_key_id"],
                                       values["aws_secret_access_key"],
                                       values.get("aws_session_token"))
        if not readable:
            return None
        raise CredentialsError("profile '%s' has no aws_access_key_id/aws_secret_access_key "
                               "in %s" % (self.profile, credentials_path))


class WebIdentityProvider(Provider):
    """EKS IAM roles for service accounts: the projected token traded at STS."""
    label = "web identity (EKS)"

    def __init__(self, region, sts_endpoint):
        self.region = region
        self.sts_endpoint = sts_endpoint

    async def fetch(self):
        token_file = os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE")
        role_arn = os.environ.get("AWS_ROLE_ARN")
        if not token_file or not role_arn:
            return None
        try:
            with open(token_file, "rb") as handle:
                token = handle.read(_MAX_TOKEN_FILE).decode("utf-8", "replace").strip()
        except OSError as exc:
            raise CredentialsError("cannot read %s: %s" % (token_file, exc.strerror or exc))
        query = _query((("Version", "2011-06-15"), ("Action", "AssumeRoleWithWebIdentity"),
                        ("RoleSessionName", os.environ.get("AWS_ROLE_SESSION_NAME")
                         or _session_name()),
                        ("RoleArn", role_arn), ("WebIdentityToken", token)))
        url = sts_url(self.sts_endpoint, self.region).rstrip("/") + "/?" + query
        try:
            response = await _request(url)
        except (HttpError, ValueError) as exc:
            raise CredentialsError("STS AssumeRoleWithWebIdentity: %s" % exc)
        return _from_sts(response, "STS AssumeRoleWithWebIdentity")


class ContainerProvider(Provider):
    """ECS task role (and EKS pod identity) credentials from the container endpoint."""
    label = "container endpoint (ECS)"

    def __init__(self, ecs_host=ECS_HOST):
        self.ecs_host = ecs_host

    def _url(self):
        relative = os.environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        if relative:
            return "http://%s%s" % (self.ecs_host, relative)
        full = os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        if not full:
            return None
        try:
            https, host, _, _ = split_url(full, default_https=False)
        except ValueError as exc:
            raise CredentialsError(str(exc))
        if not (https or host.startswith("127.") or host in _LINK_LOCAL_HOSTS
                or host == "::1" or host.startswith("fe80:")):
            raise CredentialsError("AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, "
                                   "loopback or link-local, got %s" % full)
        return full

    async def fetch(self):
        url = self._url()
        if url is None:
            return None
        token = os.environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        token_file = os.environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
        if token_file:
            try:
                with open(token_file, "rb") as handle:
                    token = handle.read(_MAX_TOKEN_FILE).decode("utf-8", "replace")
            except OSError as exc:
                raise CredentialsError("cannot read %s: %s" % (token_file,
                                                               exc.strerror or exc))
        headers = [("Authorization", token.strip())] if token and token.strip() else []
        try:
            response = await _request(url, headers=headers, timeout=_METADATA_TIMEOUT * 5)
        except (HttpError, ValueError) as exc:
            raise CredentialsError("%s: %s" % (url, exc))
        if response.status != 200:
            raise CredentialsError("%s: HTTP %d" % (url, response.status))
        return _from_json(response.body, url)


class ImdsError(Exception):
    """The instance metadata service gave no answer (``status`` None) or not a 200."""

    def __init__(self, message, status=None):
        Exception.__init__(self, message)
        self.status = status


class Imds:
    """GET requests to the EC2 instance metadata service (IMDS), as Fluent Bit's flb_aws_imds
    makes them: with ``v2``, a token (PUT /latest/api/token, 6 h) is asked for before the
    first request and again when the service answers 401; IMDSv1 sends no token. The
    address is ``host`` ("host[:port]"), else the AWS SDKs' AWS_EC2_METADATA_SERVICE_ENDPOINT
    ("http://host[:port]"), else 169.254.169.254."""

    def __init__(self, host=None, v2=True):
        if host:
            self.base = "http://%s" % host
        else:
            self.base = (os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT")
                         or "http://" + IMDS_HOST).rstrip("/")
        self.v2 = v2
        self.token = None

    async def _refresh_token(self):
        response = await _request(self.base + "/latest/api/token", "PUT",
                                  [("X-aws-ec2-metadata-token-ttl-seconds", "21600")],
                                  timeout=_METADATA_TIMEOUT)
        if response.status != 200 or not response.body:
            raise ImdsError("IMDSv2 token: HTTP %d" % response.status, response.status)
        self.token = response.body.decode("latin-1").strip()

    async def _get(self, path):
        headers = [("X-aws-ec2-metadata-token", self.token)] if self.v2 else []
        return await _request(self.base + path, headers=headers, timeout=_METADATA_TIMEOUT)

    async def get(self, path):
        """The body (bytes) of the 200 answer to GET ``path``; ImdsError otherwise."""
        try:
            if self.v2 and self.token is None:
                await self._refresh_token()
            response = await self._get(path)
            if self.v2 and response.status == 401:     # the token expired
                await self._refresh_token()
                response = await self._get(path)
        except (HttpError, OSError, ValueError) as exc:
            raise ImdsError("%s: %s" % (self.base, exc))
        if response.status != 200:
            raise ImdsError("%s: HTTP %d" % (path, response.status), response.status)
        return response.body


class ImdsProvider(Provider):
    """EC2 instance role credentials from the instance metadata service, IMDSv2."""
    label = "EC2 instance metadata"

    def __init__(self, host=None):
        self.imds = Imds(host)

    async def fetch(self):
        path = "/latest/meta-data/iam/security-credentials/"
        try:
            roles = await self.imds.get(path)
            role = roles.decode("utf-8", "replace").strip().split("\n")[0].strip()
            if not role:
                raise CredentialsError("no instance role")
            body = await self.imds.get(path + quote(role))
        except ImdsError as exc:
            raise CredentialsError(str(exc))
        return _from_json(body, self.imds.base)


class AssumeRoleProvider(Provider):
    """STS AssumeRole signed with the credentials of ``base``."""

    def __init__(self, base, role_arn, region, sts_endpoint=None, external_id=None):
        self.base = base
        self.role_arn = role_arn
        self.region = region
        self.sts_endpoint = sts_endpoint
        self.external_id = external_id
        self.label = "STS AssumeRole %s" % role_arn

    async def fetch(self):
        credentials = await self.base.get()
        pairs = [("Version", "2011-06-15"), ("Action", "AssumeRole"),
                 ("RoleSessionName", _session_name()), ("RoleArn", self.role_arn)]
        if self.external_id:
            pairs.append(("ExternalId", self.external_id))
        url = sts_url(self.sts_endpoint, self.region).rstrip("/") + "/?" + _query(pairs)
        try:
            https, host, port, target = split_url(url)
        except ValueError as exc:
            raise CredentialsError(str(exc))
        host_header = host if https and port == 443 else "%s:%s" % (host, port)
        headers = sign(credentials, self.region, "sts", "GET", host_header, target, [], b"")
        try:
            response = await _request(url, headers=headers)
        except HttpError as exc:
            raise CredentialsError("STS AssumeRole: %s" % exc)
        return _from_sts(response, "STS AssumeRole %s" % self.role_arn)


class CachedCredentials:
    """Credentials from the first of ``providers`` that gives some, kept until they are
    about to expire (then the same provider first, the others after it)."""

    def __init__(self, providers):
        self.providers = list(providers)
        self.credentials = None
        self.current = None
        self._lock = None

    def invalidate(self):
        """The service refused the credentials: fetch them again on the next request."""
        self.credentials = None

    async def get(self):
        credentials = self.credentials
        if credentials is not None and credentials.fresh():
            return credentials
        if self._lock is None:   # created on the loop (Python 3.9 binds it at creation)
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.credentials is not None and self.credentials.fresh():
                return self.credentials
            order = list(self.providers)
            if self.current is not None:
                order.remove(self.current)
                order.insert(0, self.current)
            reasons = []
            for provider in order:
                try:
                    found = await provider.fetch()
                except CredentialsError as exc:
                    reasons.append("%s: %s" % (provider.label, exc))
                    continue
                except NoCredentials as exc:
                    reasons.append("%s: %s" % (provider.label, exc))
                    continue
                if found is None:
                    reasons.append("%s: not set" % provider.label)
                    continue
                self.credentials, self.current = found, provider
                return found
            raise NoCredentials("; ".join(reasons))


def credentials_chain(region, sts_endpoint=None, profile=None, role_arn=None,
                      external_id=None):
    """Fluent Bit's managed chain: the standard providers, EKS_POD_EXECUTION_ROLE assumed on
    top of them when set, the plugin's role_arn on top of that."""
    pod_role = os.environ.get("EKS_POD_EXECUTION_ROLE")
    standard = [EnvProvider(), ProfileProvider(profile)]
    if not pod_role:
        standard.append(WebIdentityProvider(region, sts_endpoint))
    standard += [ContainerProvider(), ImdsProvider()]
    chain = CachedCredentials(standard)
    if pod_role:
        chain = CachedCredentials([AssumeRoleProvider(chain, pod_role, region, sts_endpoint)])
    if role_arn:
        chain = CachedCredentials([AssumeRoleProvider(chain, role_arn, region, sts_endpoint,
                                                      external_id)])
    return chain
