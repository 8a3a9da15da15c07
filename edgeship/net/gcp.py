"""Google Cloud service-account OAuth2, for the bigquery and stackdriver outputs.

Kept from Fluent Bit 5.1.1 (out_bigquery, out_stackdriver, flb_oauth2.c): the service
account comes from the ``google_service_credentials`` JSON file (or the file named by
``GOOGLE_SERVICE_CREDENTIALS``, for stackdriver first by ``GOOGLE_APPLICATION_CREDENTIALS``;
its keys read case-insensitively), else from the
``service_account_email`` / ``service_account_secret`` options (or ``SERVICE_ACCOUNT_EMAIL``
/ ``SERVICE_ACCOUNT_SECRET``). A JWT signed RS256 with the account's private key (``iss`` the
account, ``scope`` the plugin's, ``aud`` the token URI, ``iat`` now, ``exp`` 3000 s later) is
POSTed as ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<jwt>``
(form-encoded); the answer's ``access_token``, ``token_type`` and ``expires_in`` give the
``Authorization`` header (``Bearer <token>``), kept for 90 % of ``expires_in``. A credentials
file that is missing, unreadable or not a JSON object stops the start (StartError: a
warning in ``--dry-run``, where Fluent Bit does not look at it). stackdriver without a
private key asks the GCE metadata server instead (``Metadata-Flavor: Google``): the token of
``/computeMetadata/v1/instance/service-accounts/<account>/token``, the project, zone and
instance id.

Difference: the token is asked at the file's ``token_uri`` (what Google's own libraries do;
``https://oauth2.googleapis.com/token`` when the file has none, Fluent Bit's fixed URI), so
a stand-in token endpoint can be named there. A token request that fails leaves the flush
to be retried, logged once per attempt.

RS256 is PyJWT's (with cryptography): the ``gcp`` extra, imported when a plugin is built.
"""
import os
import time
from urllib.parse import quote, urlsplit

from edgeship.codecs import untrusted
from edgeship.core.errors import ConfigError, StartError
from edgeship.core.files import read_bytes
from edgeship.core.schema import Option
from edgeship.net.http_client import HttpClient, HttpError

TOKEN_URI = "https://oauth2.googleapis.com/token"
TOKEN_LIFETIME = 3000           # seconds between the JWT's iat and exp (FLB_*_TOKEN_REFRESH)
_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_MAX_FILE = 64 * 1024
_MAX_ANSWER = 64 * 1024
_FIELDS = ("type", "project_id", "private_key_id", "private_key", "client_email",
           "client_id", "auth_uri", "token_uri")

# The options of the Google Cloud outputs that name the service account.
CREDENTIAL_OPTIONS = (
    Option("google_service_credentials",
           help="service account JSON file (default: $GOOGLE_SERVICE_CREDENTIALS)"),
    Option("service_account_email",
           help="account e-mail without a credentials file ($SERVICE_ACCOUNT_EMAIL)"),
    Option("service_account_secret",
           help="account private key (PEM) without a credentials file "
                "($SERVICE_ACCOUNT_SECRET)"),
)


class TokenError(Exception):
    """No access token now: the flush is retried."""


def _jwt():
    try:
        import jwt
        from cryptography.hazmat.primitives import serialization  # noqa: F401 (RS256)
    except ImportError as exc:
        raise ConfigError("Google Cloud OAuth2 needs the gcp extra (pip install "
                          "'edgeship[gcp]'): %s" % exc)
    return jwt


def read_credentials(path):
    """The service-account fields of a credentials file; StartError naming the option."""
    key = "google_service_credentials"
    try:
        data = read_bytes(path)
    except OSError as exc:
        raise StartError("cannot open credentials file: %s: %s"
                         % (path, exc.strerror or exc), key=key)
    if len(data) > _MAX_FILE:
        raise StartError("credentials file %s is larger than %d bytes" % (path, _MAX_FILE),
                         key=key)
    try:
        doc = untrusted.loads(data)
    except ValueError as exc:
        raise StartError("invalid JSON credentials file: %s: %s" % (path, exc), key=key)
    if not isinstance(doc, dict):
        raise StartError("invalid JSON map on file: %s" % path, key=key)
    lowered = {k.lower(): v for k, v in doc.items() if isinstance(v, str)}
    return {name: lowered[name] for name in _FIELDS if name in lowered}


def service_account(conf, env_files=("GOOGLE_SERVICE_CREDENTIALS",)):
    """The account fields from a plugin's CREDENTIAL_OPTIONS, else from the first of the
    ``env_files`` variables naming a credentials file, else from the environment's
    SERVICE_ACCOUNT_EMAIL / SERVICE_ACCOUNT_SECRET (either may be missing)."""
    path = conf["google_service_credentials"]
    for name in env_files:
        path = path or os.environ.get(name)
    if path:
        return read_credentials(path)
    return {"client_email": conf["service_account_email"]
            or os.environ.get("SERVICE_ACCOUNT_EMAIL"),
            "private_key": conf["service_account_secret"]
            or os.environ.get("SERVICE_ACCOUNT_SECRET")}


class _Token:
    """An ``Authorization`` value kept until 90 % of its ``expires_in``; subclasses ask
    for a new one (``_ask``: the Response)."""

    value = None
    expires = 0.0

    def forget(self):
        """The service refused the token (revoked, expired early): ask a new one next."""
        self.value = None

    async def header(self):
        """``Bearer <token>``; TokenError when none can be had now."""
        now = time.time()
        if self.value is not None and now < self.expires:
            return self.value
        try:
            response = await self._ask(now)
        except HttpError as exc:
            raise TokenError("token request to %s failed: %s" % (self.client.label, exc))
        if response.status != 200:
            raise TokenError("token request to %s: HTTP status=%d %s" % (
                self.client.label, response.status, response.first_line()))
        try:
            doc = untrusted.loads(response.body)
            token, kind = doc["access_token"], doc["token_type"]
            lifetime = int(doc.get("expires_in", 0))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise TokenError("token answer from %s unreadable: %s" % (self.client.label, exc))
        if not isinstance(token, str) or not isinstance(kind, str) or lifetime <= 60:
            raise TokenError("token answer from %s has no usable token" % self.client.label)
        self.value = "%s %s" % (kind, token)
        self.expires = now + lifetime - lifetime // 10
        return self.value

    def close(self):
        self.client.close()


class AccessToken(_Token):
    """The ``Authorization`` value of a service account for ``scope``, asked at its token
    URI with a signed JWT. ``conf`` gives the net.* and tls.* options of the token requests
    (the plugin's)."""

    def __init__(self, conf, account, scope):
        self.jwt = _jwt()
        self.email = account.get("client_email")
        if not self.email:
            raise StartError("the credentials have no client_email",
                             key="google_service_credentials")
        if not account.get("private_key"):
            raise StartError("the credentials have no private_key",
                             key="google_service_credentials")
        self.private_key = account["private_key"]
        self.scope = scope
        self.uri = account.get("token_uri") or TOKEN_URI
        try:
            parts = urlsplit(self.uri)
            port = parts.port
        except ValueError:
            parts, port = None, None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise StartError("the credentials' token_uri is not an http(s) URL: %s" % self.uri,
                             key="google_service_credentials")
        https = parts.scheme == "https"
        self.path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        client_conf = dict(conf, tls=https, proxy=None)
        self.client = HttpClient(client_conf, parts.hostname, port or (443 if https else 80),
                                 max_response=_MAX_ANSWER)

    def assertion(self, now):
        claims = {"iss": self.email, "scope": self.scope, "aud": self.uri,
                  "exp": now + TOKEN_LIFETIME, "iat": now}
        try:
            return self.jwt.encode(claims, self.private_key, algorithm="RS256")
        except (ValueError, TypeError, self.jwt.PyJWTError) as exc:
            raise TokenError("cannot sign the JWT with the private key: %s" % exc)

    def _ask(self, now):
        body = ("grant_type=%s&assertion=%s" % (quote(_GRANT_TYPE, safe=""),
                                                self.assertion(int(now)))).encode("ascii")
        headers = [("Content-Type", "application/x-www-form-urlencoded")]
        return self.client.request("POST", self.path, headers, body)


class MetadataServer:
    """The GCE/GKE metadata server (``metadata_server``, ``$METADATA_SERVER`` or
    ``http://metadata.google.internal``): the project, zone and instance of the machine."""

    def __init__(self, conf, url):
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            parts, port = None, None
        if parts is None or parts.scheme != "http" or not parts.hostname:
            raise ConfigError("metadata_server must be http://host[:port], got '%s'" % url,
                              key="metadata_server")
        client_conf = dict(conf, tls=False, proxy=None)
        self.client = HttpClient(client_conf, parts.hostname, port or 80,
                                 max_response=_MAX_ANSWER)
        self.label = self.client.label

    def get(self, path):
        """The Response of ``GET path`` (HttpError when there is none)."""
        headers = [("User-Agent", "Fluent-Bit"), ("Content-Type", "application/text"),
                   ("Metadata-Flavor", "Google")]
        return self.client.request("GET", path, headers, b"")

    async def text(self, path):
        """The answer to ``GET path`` as text; TokenError when there is none."""
        try:
            response = await self.get(path)
        except HttpError as exc:
            raise TokenError("metadata server %s: %s" % (self.label, exc))
        if response.status != 200:
            raise TokenError("metadata server %s: %s: HTTP status=%d" % (
                self.label, path, response.status))
        return response.body.decode("utf-8", "replace").strip()

    def close(self):
        self.client.close()


class MetadataToken(_Token):
    """The access token of the machine's service account ``email`` (``default``), from the
    metadata server."""

    def __init__(self, metadata, email):
        self.metadata = metadata
        self.client = metadata.client
        self.path = "/computeMetadata/v1/instance/service-accounts/%s/token" % email

    def _ask(self, now):
        return self.metadata.get(self.path)
