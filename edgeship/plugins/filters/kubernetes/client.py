"""Where pod and namespace objects come from: the preload cache directory, the API server or
the kubelet (kube_meta.c get_meta_file_info, get_meta_info_from_request, refresh_token).

- ``<Kube_Meta_Preload_Cache_Dir>/<namespace>_<pod>.meta`` (a Pod; with Use_Kubelet a
  PodList) and ``<dir>/<namespace>.namespace_meta``, read whole; a missing file falls back
  to the network.
- API server: ``GET /api/v1/namespaces/<ns>/pods/<pod>`` and ``GET /api/v1/namespaces/<ns>``
  on ``Kube_URL``; kubelet: ``GET /pods`` on ``Kubelet_Host:Kubelet_Port`` (namespaces always
  from the API server). One connection per request, HTTP/1.1, headers in Fluent Bit's order:
  Host (no port for TLS to 443), Content-Length: 0, User-Agent: Fluent-Bit, Connection: close,
  Authorization: Bearer <the token file as it is>. TLS with ``Kube_CA_File``/
  ``Kube_CA_Path``, ``tls.verify``, ``tls.verify_hostname``, ``tls.vhost``. Only a 200
  answer counts; a response (headers and body) larger than ``Buffer_Size`` (at least 4096)
  gives nothing.
- The token file is read before the first request and again once older than
  ``Kube_Token_TTL``; ``Kube_Token_Command`` runs a command instead. No token: no request.

HTTP is the one client, edgeship/net/http_client.py (one per upstream; ``Connection: close``
means no connection is kept). Differences: ``Buffer_Size 0`` is MAX_ANSWER, not unlimited;
every connect, write and read is bounded by ``NET_TIMEOUT`` (Fluent Bit blocks its engine
until the server answers or the connection fails); the token loses surrounding whitespace
(Fluent Bit sends a token file's final newline inside the header; real service account
tokens have none).
"""
import asyncio
import os
import time

from edgeship.codecs import untrusted
from edgeship.core.errors import ConfigError
from edgeship.core.files import read_bytes
from edgeship.net.http_client import HttpClient, HttpError

NET_TIMEOUT = 10.0
MIN_BUFFER = 4096
# Buffer_Size 0 means no limit in Fluent Bit; a kubelet's /pods of a full node is a few MB.
MAX_ANSWER = 64 * 1024 * 1024


class FetchError(Exception):
    """No object: the message says why (logged once per fetch)."""


class Client:
    def __init__(self, conf, log, config_dir):
        self.log = log
        self.config_dir = config_dir
        self.preload_dir = conf["kube_meta_preload_cache_dir"]
        self.use_kubelet = conf["use_kubelet"]
        self.api = parse_url(conf["kube_url"])
        self.kubelet = (conf["kubelet_host"], conf["kubelet_port"])
        # Fluent Bit's kubelet connection is plain HTTP only when a preload dir is set.
        self.kubelet_https = not self.preload_dir
        self.token_file = conf["kube_token_file"]
        self.token_command = conf["kube_token_command"]
        self.token_ttl = conf["kube_token_ttl"]
        self.token = None
        self.token_read_at = None
        limit = conf["buffer_size"]
        if 0 < limit < MIN_BUFFER:
            log.error("[http] requested buffer size %d (bytes) needs to be greater than "
                      "minimum size allowed %d (bytes)", limit, MIN_BUFFER)
            limit = MIN_BUFFER
        self.buffer_limit = limit or MAX_ANSWER
        # What HttpClient reads of an output's section, for each upstream it is made for.
        self.http_conf = {
            "tls.verify": conf["tls.verify"], "tls.verify_hostname": conf["tls.verify_hostname"],
            "tls.vhost": conf["tls.vhost"], "tls.ca_file": self._path(conf["kube_ca_file"]),
            "tls.ca_path": self._path(conf["kube_ca_path"]),
            "net.connect_timeout": NET_TIMEOUT, "net.io_timeout": NET_TIMEOUT,
            "net.keepalive": False, "net.keepalive_idle_timeout": 0,
            "net.keepalive_max_recycle": 1, "net.tcp_keepalive": False}
        self.upstreams = {}     # (host, port, https) -> HttpClient

    def _path(self, path):
        if path and not os.path.isabs(path):
            return os.path.join(self.config_dir, path)
        return path

    # ------------------------------------------------------------------ objects
    async def pod(self, namespace, pod):
        """The Pod object (or, with Use_Kubelet, the PodList) for ``namespace``/``pod``."""
        found = self._preloaded("%s_%s.meta" % (namespace, pod))
        if found is not None:
            return found
        if self.use_kubelet:
            host, port = self.kubelet
            return await self._get(host, port, self.kubelet_https, "/pods")
        host, port, https = self.api
        return await self._get(host, port, https, "/api/v1/namespaces/%s/pods/%s"
                               % (namespace, pod))

    async def namespace(self, namespace):
        found = self._preloaded("%s.namespace_meta" % namespace)
        if found is not None:
            return found
        host, port, https = self.api
        return await self._get(host, port, https, "/api/v1/namespaces/%s" % namespace)

    def _preloaded(self, name):
        if not self.preload_dir:
            return None
        path = os.path.join(self._path(self.preload_dir), name)
        try:
            data = read_bytes(path)
        except OSError:
            return None
        try:
            return untrusted.loads(data)
        except ValueError as exc:
            raise FetchError("%s is not JSON: %s" % (path, exc))

    # ------------------------------------------------------------------ HTTP
    async def _get(self, host, port, https, path):
        token = await self._token()
        headers = [("User-Agent", "Fluent-Bit"), ("Connection", "close")]
        if token is not None:
            headers.append(("Authorization", b"Bearer " + token))
        try:
            response = await self._upstream(host, port, https).request("GET", path, headers, b"")
        except HttpError as exc:
            raise FetchError("%s upstream connection error (%s:%d): %s"
                             % ("kubelet" if self.use_kubelet and path == "/pods"
                                else "kube api", host, port, exc))
        if response.truncated:
            raise FetchError("GET %s: the answer is over Buffer_Size (%d bytes)"
                             % (path, self.buffer_limit))
        if response.status != 200:
            raise FetchError("GET %s: HTTP status %d" % (path, response.status))
        try:
            return untrusted.loads(response.body)
        except ValueError as exc:
            raise FetchError("GET %s: the answer is not JSON: %s" % (path, exc))

    def _upstream(self, host, port, https):
        upstream = self.upstreams.get((host, port, https))
        if upstream is None:
            conf = dict(self.http_conf, host=host, port=port, tls=https)
            try:
                upstream = HttpClient(conf, max_response=self.buffer_limit)
            except ConfigError as exc:
                raise FetchError("TLS: %s" % exc)
            self.upstreams[(host, port, https)] = upstream
        return upstream

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
                token = read_bytes(self._path(self.token_file)).strip()
            except OSError as exc:
                raise FetchError("cannot open %s (%s): failed to refresh token"
                                 % (self.token_file, exc.strerror or exc))
        self.log.info(" token updated")
        self.token = token
        self.token_read_at = now
        return token


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
