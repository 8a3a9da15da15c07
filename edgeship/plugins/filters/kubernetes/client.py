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

The API server client (token, TLS, HTTP) is edgeship/net/kubernetes.py, shared with the
kubernetes_events input. Differences: ``Buffer_Size 0`` is MAX_ANSWER, not unlimited; every
connect, write and read is bounded by ``NET_TIMEOUT`` (Fluent Bit blocks its engine until
the server answers or the connection fails).
"""
import os

from edgeship.codecs import untrusted
from edgeship.core.files import read_bytes
from edgeship.net.kubernetes import ApiClient, FetchError

MIN_BUFFER = 4096
# Buffer_Size 0 means no limit in Fluent Bit; a kubelet's /pods of a full node is a few MB.
MAX_ANSWER = 64 * 1024 * 1024


class Client:
    def __init__(self, conf, log, config_dir):
        self.preload_dir = conf["kube_meta_preload_cache_dir"]
        self.use_kubelet = conf["use_kubelet"]
        self.kubelet = (conf["kubelet_host"], conf["kubelet_port"])
        # Fluent Bit's kubelet connection is plain HTTP only when a preload dir is set.
        self.kubelet_https = not self.preload_dir
        limit = conf["buffer_size"]
        if 0 < limit < MIN_BUFFER:
            log.error("[http] requested buffer size %d (bytes) needs to be greater than "
                      "minimum size allowed %d (bytes)", limit, MIN_BUFFER)
            limit = MIN_BUFFER
        self.buffer_limit = limit or MAX_ANSWER
        self.server = ApiClient(conf, log, config_dir, max_response=self.buffer_limit)
        self.api = self.server.api

    # ------------------------------------------------------------------ objects
    async def pod(self, namespace, pod):
        """The Pod object (or, with Use_Kubelet, the PodList) for ``namespace``/``pod``."""
        found = self._preloaded("%s_%s.meta" % (namespace, pod))
        if found is not None:
            return found
        if self.use_kubelet:
            host, port = self.kubelet
            return await self.server.get_json("/pods", host, port, self.kubelet_https,
                                              what="kubelet")
        return await self.server.get_json("/api/v1/namespaces/%s/pods/%s" % (namespace, pod))

    async def namespace(self, namespace):
        found = self._preloaded("%s.namespace_meta" % namespace)
        if found is not None:
            return found
        return await self.server.get_json("/api/v1/namespaces/%s" % namespace)

    def _preloaded(self, name):
        if not self.preload_dir:
            return None
        path = os.path.join(self.server.path(self.preload_dir), name)
        try:
            data = read_bytes(path)
        except OSError:
            return None
        try:
            return untrusted.loads(data)
        except ValueError as exc:
            raise FetchError("%s is not JSON: %s" % (path, exc))
