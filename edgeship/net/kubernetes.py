"""The Kubernetes API server client of the kubernetes filter (pod, namespace and kubelet
lookups) and the kubernetes_events input (event LIST and WATCH). Fluent Bit has a copy of
this in each plugin (kube_meta.c, in_kubernetes_events); here there is one.

- ``Kube_URL`` ``http[s]://host[:port]`` is read as Fluent Bit reads it: port 443 when none is
  given (whatever the scheme), anything after the port's digits ignored.
- Authorization: ``Bearer <token>``, the token file read before the first request and again
  once older than ``Kube_Token_TTL`` (or, for the filter, ``Kube_Token_Command``'s output).
  No token: no request.
- TLS with ``Kube_CA_File``/``Kube_CA_Path`` (relative to the config's directory),
  ``tls.verify``, ``tls.verify_hostname``, ``tls.vhost``; HTTP through the one client,
  edgeship/net/http_client.py, one upstream per (host, port, scheme).

Difference: the token loses surrounding whitespace (Fluent Bit's filter sends a token file's
final newline inside the header; real service account tokens have none).
"""
import asyncio
import os
import time

from edgeship.codecs import untrusted
from edgeship.core.errors import ConfigError
from edgeship.core.files import read_bytes
from edgeship.net.http_client import HttpClient, HttpError

# Every connect, write and read of a request is bounded by this (Fluent Bit has no bound).
NET_TIMEOUT = 10.0
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount/"


class FetchError(Exception):
    """No answer to use: the message says why (the caller logs it)."""


def parse_url(url):
    """Kube_URL -> (host, port, https); ValueError for another scheme."""
    for scheme, https in (("http://", False), ("https://", True)):
        if url.startswith(scheme):
            rest = url[len(scheme):]
            host, colon, port = rest.partition(":")
            number = 443
            if colon:
                digits = ""
                for char in port:
                    if not char.isdigit():
                        break
                    digits += char
                number = int(digits) if digits else 0
            return host, number, https
    raise ValueError("Kube_URL must start with http:// or https://, got '%s'" % url)


class ApiClient:
    """Requests to the API server (and, for the filter, the kubelet) with the token.

    ``conf`` is the plugin's converted section (kube_url, kube_ca_file, kube_ca_path,
    kube_token_file, kube_token_ttl, tls.*; kube_token_command when it has one).
    ``close`` sends ``Connection: close`` (the filter's requests) instead of keeping the
    connection (the events input's LIST pages and WATCH share one, as in Fluent Bit)."""

    def __init__(self, conf, log, config_dir, max_response=None, close=True):
        self.log = log
        self.config_dir = config_dir
        self.api = parse_url(conf["kube_url"])
        self.token_file = conf["kube_token_file"]
        self.token_command = conf.get("kube_token_command")
        self.token_ttl = conf["kube_token_ttl"]
        self.token = None
        self.token_read_at = None
        self.max_response = max_response
        self.close_connections = close
        # What HttpClient reads of a section, for each upstream it is made for.
        self.http_conf = {
            "tls.verify": conf["tls.verify"],
            "tls.verify_hostname": conf.get("tls.verify_hostname", False),
            "tls.vhost": conf["tls.vhost"], "tls.ca_file": self.path(conf["kube_ca_file"]),
            "tls.ca_path": self.path(conf["kube_ca_path"]),
            "net.connect_timeout": NET_TIMEOUT, "net.io_timeout": NET_TIMEOUT,
            "net.keepalive": not close, "net.keepalive_idle_timeout": NET_TIMEOUT,
            "net.keepalive_max_recycle": 1 if close else 2000, "net.tcp_keepalive": False}
        self.upstreams = {}     # (host, port, https) -> HttpClient

    def path(self, path):
        """``path`` relative to the config's directory."""
        if path and not os.path.isabs(path):
            return os.path.join(self.config_dir, path)
        return path

    def upstream(self, host=None, port=None, https=None):
        """The HttpClient of ``host:port`` (the API server when not given)."""
        if host is None:
            host, port, https = self.api
        upstream = self.upstreams.get((host, port, https))
        if upstream is None:
            conf = dict(self.http_conf, host=host, port=port, tls=https)
            try:
                upstream = HttpClient(conf, max_response=self.max_response)
            except ConfigError as exc:
                raise FetchError("TLS: %s" % exc)
            self.upstreams[(host, port, https)] = upstream
        return upstream

    async def headers(self):
        """The request headers in Fluent Bit's order, the token read when due."""
        token = await self._token()
        headers = [("User-Agent", "Fluent-Bit")]
        if self.close_connections:
            headers.append(("Connection", "close"))
        if token is not None:
            headers.append(("Authorization", b"Bearer " + token))
        return headers

    async def get(self, path, host=None, port=None, https=None, what="kube api"):
        """The Response to ``GET path``; FetchError when none came back."""
        headers = await self.headers()
        upstream = self.upstream(host, port, https)
        try:
            return await upstream.request("GET", path, headers, b"")
        except HttpError as exc:
            raise FetchError("%s upstream connection error (%s): %s"
                             % (what, upstream.label, exc))

    async def get_json(self, path, host=None, port=None, https=None, what="kube api"):
        """The JSON of a 200 answer to ``GET path``; FetchError for anything else."""
        response = await self.get(path, host, port, https, what)
        if response.truncated:
            raise FetchError("GET %s: the answer is over %d bytes" % (path, self.max_response))
        if response.status != 200:
            raise FetchError("GET %s: HTTP status %d %s"
                             % (path, response.status, response.first_line()[:200]))
        try:
            return untrusted.loads(response.body)
        except ValueError as exc:
            raise FetchError("GET %s: the answer is not JSON: %s" % (path, exc))

    async def _token(self):
        """The token bytes, read again once older than Kube_Token_TTL."""
        now = time.monotonic()
        if self.token is not None and now - self.token_read_at < self.token_ttl:
            return self.token
        if self.token_command:
            proc = await asyncio.create_subprocess_shell(
                self.token_command, stdout=asyncio.subprocess.PIPE)
            out, _ = await asyncio.wait_for(proc.communicate(), NET_TIMEOUT)
            if proc.returncode != 0 or not out:
                raise FetchError("failed to refresh token: '%s' gave none"
                                 % self.token_command)
            token = out.strip()
        else:
            try:
                token = read_bytes(self.path(self.token_file)).strip()
            except OSError as exc:
                raise FetchError("cannot open %s (%s): failed to refresh token"
                                 % (self.token_file, exc.strerror or exc))
        self.log.info(" token updated")
        self.token = token
        self.token_read_at = now
        return token

    def close(self):
        for upstream in self.upstreams.values():
            upstream.close()
        self.upstreams = {}
