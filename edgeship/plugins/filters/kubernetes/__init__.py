"""kubernetes filter: add pod metadata to container logs (filter_kubernetes).

    tag        the tag -> pod, namespace, container (Kube_Tag_Prefix, Regex_Parser)
    client     pod and namespace objects: preload cache dir, API server, kubelet (h11)
    meta       the ``kubernetes`` / ``kubernetes_namespace`` maps, annotation properties
    merge      Merge_Log

Behaviour of Fluent Bit 5.1.1 kept:
- The record gets ``kubernetes`` (then ``kubernetes_namespace`` with Namespace_Labels or
  Namespace_Annotations) after its own keys, laid out as Fluent Bit's (see ``meta``). A tag
  shorter than the prefix (error) or that the regex does not match (warning) leaves the batch
  untouched. Use_Tag_For_Meta: the map from the tag alone, no network; Dummy_Meta: a
  ``dummy`` key holding the time; Use_Journal: each record's ``CONTAINER_NAME`` instead of the
  tag.
- Metadata is cached per namespace:pod:container (+docker_id with Cache_Use_Docker_ID), kept
  for Kube_Meta_Cache_TTL (0: until evicted; 256 entries); namespaces for
  Kube_Meta_Namespace_Cache_TTL. A failed lookup is not cached: the records go on without
  ``kubernetes`` (Merge_Log still applies) and the next batch asks again.
- K8S-Logging.Exclude / K8S-Logging.Parser: the pod's ``fluentbit.io/exclude[_stream][-container]``
  drops the record, ``fluentbit.io/parser...`` parses ``log`` for Merge_Log; not enabled:
  warned and ignored. A record without ``stream`` is dropped only when both streams are
  excluded and never gets the annotation parser (as in Fluent Bit).

Differences (README "Where edgeship differs"):
- Lookups never block: a batch whose pod is not cached waits (its ack open, later batches of
  the same pod behind it) while the other pods' batches flow; every request is bounded by
  ``net.kubernetes.NET_TIMEOUT``. Fluent Bit blocks its engine on each request.
- An expired entry is still used when its refetch fails (Fluent Bit evicts it: no metadata).
- A Use_Journal record whose CONTAINER_NAME is missing or does not match passes unchanged
  (Fluent Bit drops it). Key names are compared exactly (Fluent Bit also takes a key that is a
  prefix of ``stream``). A container status entry's fields come from that entry only.
- The local pod check at start-up (Kube_Namespace_File present) only logs; the
  ``fluentbit_logs`` input does not exist; aws_* pod association options are accepted and
  do nothing; DNS_Retries/DNS_Wait_Time are not needed (the connect retries on every batch).
"""
import asyncio
import os
import time

import msgpack

from edgeship.codecs.msgpack import UNPACK_OPTIONS, packb
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import Filter
from edgeship.plugins.filters.kubernetes import client, meta, merge, tag as tags
from edgeship.text.onigmo import compile_onigmo

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount/"
CACHE_ENTRIES = 256
JOURNAL_REGEX = (r"^(?<name_prefix>[^_]+)_(?<container_name>[^\._]+)(\.(?<container_hash>[^_]+))?"
                 r"_(?<pod_name>[^_]+)_(?<namespace_name>[^_]+)_[^_]+_[^_]+$")
_AWS = ("aws_use_pod_association", "use_pod_association", "aws_pod_association_host",
        "aws_pod_association_endpoint", "aws_pod_association_port",
        "aws_pod_service_map_ttl", "aws_pod_service_map_refresh_interval",
        "aws_pod_service_preload_cache_dir", "aws_pod_association_host_server_ca_file",
        "aws_pod_association_host_client_cert_file", "aws_pod_association_host_client_key_file",
        "aws_pod_association_host_tls_debug", "aws_pod_association_host_tls_verify",
        "set_platform")


class KubernetesFilter(Filter):
    name = "kubernetes"
    description = "Filter to append Kubernetes metadata"
    options = (
        Option("Buffer_Size", "size", "32K",
               help="largest API answer, headers included (at least 4096; 0: 64 MiB)"),
        Option("tls.debug", "int", "0", compat=True),
        Option("tls.verify", "bool", "true", help="verify the API server's certificate"),
        Option("tls.vhost", help="TLS server name (default: the host)"),
        Option("tls.verify_hostname", "bool", "off", help="check the certificate's host name"),
        Option("Merge_Log", "bool", "false", help="parse the log field and add its keys"),
        Option("Merge_Parser", help="[PARSER] for Merge_Log instead of JSON"),
        Option("Merge_Log_Key", help="put the merged keys under this key"),
        Option("Merge_Log_Trim", "bool", "true", help="cut trailing newlines of merged values"),
        Option("Keep_Log", "bool", "true", help="keep the log field after a merge"),
        Option("Kube_URL", default="https://kubernetes.default.svc",
               help="API server, http[s]://host[:port]"),
        Option("Kube_Meta_Preload_Cache_Dir",
               help="directory of <namespace>_<pod>.meta files read before the network"),
        Option("Kube_CA_File", default=SERVICE_ACCOUNT + "ca.crt", help="CA of the API server"),
        Option("Kube_CA_Path", help="directory of CA certificates"),
        Option("Kube_Tag_Prefix", default="kube.var.log.containers.",
               help="tag prefix cut before the regex"),
        Option("Kube_Namespace_File", default=SERVICE_ACCOUNT + "namespace",
               help="present when running in a pod"),
        Option("Kube_Token_File", default=SERVICE_ACCOUNT + "token",
               help="bearer token for the API server"),
        Option("Kube_Token_Command", help="command printing the token"),
        Option("Labels", "bool", "true", help="add the pod's labels"),
        Option("Annotations", "bool", "true", help="add the pod's annotations"),
        Option("Owner_References", "bool", "false", help="add the pod's ownerReferences"),
        Option("Namespace_Labels", "bool", "false", help="add the namespace's labels"),
        Option("Namespace_Annotations", "bool", "false", help="add the namespace's annotations"),
        Option("Namespace_Metadata_Only", "bool", "false", help="only the namespace map"),
        Option("K8S-Logging.Parser", "bool", "false",
               help="honour the fluentbit.io/parser annotation"),
        Option("K8S-Logging.Exclude", "bool", "false",
               help="honour the fluentbit.io/exclude annotation"),
        Option("Use_Journal", "bool", "false", help="pod from each record's CONTAINER_NAME"),
        Option("Regex_Parser", help="regex [PARSER] for the tag instead of the default"),
        Option("Dummy_Meta", "bool", "false", help="add dummy metadata (testing)"),
        Option("DNS_Retries", "int", "6", compat=True),
        Option("DNS_Wait_Time", "time", "30", compat=True),
        Option("Cache_Use_Docker_ID", "bool", "false", help="the cache key holds the docker id"),
        Option("Use_Tag_For_Meta", "bool", "false", help="metadata from the tag only"),
        Option("Use_Kubelet", "bool", "false", help="ask the kubelet's /pods instead"),
        Option("Kubelet_Host", default="127.0.0.1", help="kubelet host"),
        Option("Kubelet_Port", "int", "10250", min=1, max=65535, help="kubelet port"),
        Option("Kube_Token_TTL", "time", "10m", help="read the token again after this"),
        Option("Kube_Meta_Cache_TTL", "time", "0", help="refetch pod metadata after this (0: never)"),
        Option("Kube_Meta_Namespace_Cache_TTL", "time", "15m",
               help="refetch namespace metadata after this"),
    ) + tuple(Option(key, compat=True) for key in _AWS)

    def configure(self):
        conf = self.conf
        self.dummy = conf["dummy_meta"]
        self.journal = conf["use_journal"]
        self.tag_only = conf["use_tag_for_meta"]
        self.opts = meta.Options(conf)
        self.want_pod = not conf["namespace_metadata_only"]
        self.want_namespace = conf["namespace_labels"] or conf["namespace_annotations"]
        regex = None
        if self.journal:
            regex = compile_onigmo(JOURNAL_REGEX)
        elif conf["regex_parser"]:
            try:
                parser = self.context.parser(conf["regex_parser"])
            except KeyError:
                raise ConfigError("invalid parser '%s'" % conf["regex_parser"],
                                  key="regex_parser")
            if parser.format != "regex":
                raise ConfigError("invalid parser type '%s'" % conf["regex_parser"],
                                  key="regex_parser")
            regex = parser.regex
        self.tags = tags.TagParser("" if self.journal else conf["kube_tag_prefix"], regex,
                                   conf["cache_use_docker_id"])
        merge_parser = None
        if conf["merge_parser"]:
            try:
                merge_parser = self.context.parser(conf["merge_parser"])
            except KeyError:
                self.log.error("parser '%s' is not registered", conf["merge_parser"])
        self.merge = merge.Merger(merge_parser, conf["merge_log_key"], conf["merge_log_trim"],
                                  conf["keep_log"]) if conf["merge_log"] else None
        try:
            self.client = client.Client(conf, self.log, self.context.config_dir)
        except ValueError as exc:
            raise ConfigError(str(exc), key="kube_url")
        self.pod_ttl = conf["kube_meta_cache_ttl"]
        self.namespace_ttl = conf["kube_meta_namespace_cache_ttl"]
        self.pods = {}          # cache key -> (fetched at, packed kubernetes map, Props)
        self.namespaces = {}    # namespace -> (fetched at, packed map)
        self.fetching = {}      # ("pod"|"ns", key) -> asyncio.Task
        self.waiting = {}       # tag -> the future of its last batch still waiting
        self._announce()

    def _announce(self):
        if self.dummy:
            self.log.warn("using Dummy Metadata")
            return
        if self.tag_only:
            self.log.info("no network access required (OK)")
            return
        host, port, https = self.client.api
        self.log.info("https=%d host=%s port=%d", https, host, port)
        path = self.conf["kube_namespace_file"]
        if not os.path.isfile(path):
            self.log.warn("cannot open %s", path)
            self.log.info("Fluent Bit not running in a POD")

    # ------------------------------------------------------------------ the batch
    def filter(self, tag, events):
        if self.dummy:
            dummy = {"dummy": time.asctime()}
            return [(t, self._with(r, dict(dummy), None)) for t, r in events]
        if self.journal:
            metas = [self._journal_meta(record) for _, record in events]
        else:
            found = self.tags.parse(tag)
            if isinstance(found, tuple):
                getattr(self.log, found[0])("%s", found[1])
                return events
            metas = [found] * len(events)
        missing = self._missing(metas)
        prior = self.waiting.get(tag)
        if not missing and prior is None:
            return self._apply(events, metas)
        tasks = [self._fetch(kind, key, tag_meta) for kind, key, tag_meta in missing]
        if prior is not None:       # a batch of this tag still waits: stay behind it
            tasks.append(prior)
        future = asyncio.ensure_future(self._after(tasks, events, metas))
        self.waiting[tag] = future
        # Registered before the engine's own callback, which runs right after this one.
        future.add_done_callback(lambda done: self._done_waiting(tag, done))
        return future

    def _done_waiting(self, tag, future):
        if self.waiting.get(tag) is future:
            del self.waiting[tag]

    async def _after(self, tasks, events, metas):
        await asyncio.wait(tasks)
        return self._apply(events, metas)

    def _journal_meta(self, record):
        name = record.get("CONTAINER_NAME")
        return self.tags.match(name) if isinstance(name, str) else None

    def _missing(self, metas):
        """[(kind, key, tag meta)] of what the batch needs and the cache lacks (fresh)."""
        if self.tag_only:
            return []
        now = time.monotonic()
        missing = []
        seen = set()
        for tag_meta in metas:
            if tag_meta is None or tag_meta in seen:
                continue
            seen.add(tag_meta)
            if self.want_pod and tag_meta.key is not None \
                    and not _fresh(self.pods.get(tag_meta.key), self.pod_ttl, now):
                missing.append(("pod", tag_meta.key, tag_meta))
            if self.want_namespace and tag_meta.namespace_name is not None and not _fresh(
                    self.namespaces.get(tag_meta.namespace_name), self.namespace_ttl, now):
                missing.append(("ns", tag_meta.namespace_name, tag_meta))
        return missing

    def _fetch(self, kind, key, tag_meta):
        """The task filling the cache for ``key`` (one per key at a time)."""
        task = self.fetching.get((kind, key))
        if task is None:
            task = asyncio.ensure_future(self._fill(kind, key, tag_meta))
            self.fetching[(kind, key)] = task
        return task

    async def _fill(self, kind, key, tag_meta):
        try:
            if kind == "pod":
                obj = await self.client.pod(tag_meta.namespace_name, tag_meta.pod_name)
                if self.client.use_kubelet:
                    obj = meta.find_in_pod_list(obj, tag_meta)
                pod_meta = meta.pod_map(obj, tag_meta, self.opts, self._parser_exists,
                                        self.log)
                _store(self.pods, key, (time.monotonic(), packb(pod_meta.kubernetes),
                                        pod_meta.props))
            else:
                obj = await self.client.namespace(key)
                _store(self.namespaces, key, (time.monotonic(),
                                              packb(meta.namespace_map(obj, key, self.opts))))
        except client.FetchError as exc:
            self.log.error("no metadata for %s %s: %s", "pod" if kind == "pod" else
                           "namespace", key, exc)
        except Exception as exc:  # a bug must not leave the batch waiting
            self.log.error("no metadata for %s: %r", key, exc)
        finally:
            del self.fetching[(kind, key)]

    def _parser_exists(self, name):
        try:
            self.context.parser(name)
        except KeyError:
            return False
        return True

    # ------------------------------------------------------------------ records
    def _apply(self, events, metas):
        out = []
        no_props = meta.Props()
        dropped = 0
        for (time_ns, record), tag_meta in zip(events, metas):
            if tag_meta is None:            # Use_Journal without a usable CONTAINER_NAME
                out.append((time_ns, record))
                continue
            kubernetes = namespace = None
            props = no_props
            if self.tag_only:
                kubernetes = meta.from_tag(tag_meta)
            elif self.want_pod and tag_meta.key is not None:
                cached = self.pods.get(tag_meta.key)
                if cached is not None:
                    kubernetes = msgpack.unpackb(cached[1], **UNPACK_OPTIONS)
                    props = cached[2]
            if self.want_namespace and tag_meta.namespace_name is not None:
                cached = self.namespaces.get(tag_meta.namespace_name)
                if cached is not None:
                    namespace = msgpack.unpackb(cached[1], **UNPACK_OPTIONS)
            stream = record.get("stream")
            parser = None
            if stream == "stdout":
                if props.stdout_exclude:
                    dropped += 1
                    continue
                parser = props.stdout_parser
            elif stream == "stderr":
                if props.stderr_exclude:
                    dropped += 1
                    continue
                parser = props.stderr_parser
            elif props.stdout_exclude and props.stderr_exclude:
                dropped += 1
                continue
            if self.merge is not None:
                if parser is not None:
                    parser = self.context.parser(parser)
                time_ns, record = self.merge.apply(time_ns, record, parser)
            out.append((time_ns, self._with(record, kubernetes, namespace)))
        self.dropped += dropped
        return out

    @staticmethod
    def _with(record, kubernetes, namespace):
        if kubernetes is None and namespace is None:
            return record
        if kubernetes is not None:
            record.pop("kubernetes", None)
            record["kubernetes"] = kubernetes
        if namespace is not None:
            record.pop("kubernetes_namespace", None)
            record["kubernetes_namespace"] = namespace
        return record


def _fresh(entry, ttl, now):
    return entry is not None and (ttl <= 0 or now - entry[0] < ttl)


def _store(cache, key, value):
    cache.pop(key, None)
    if len(cache) >= CACHE_ENTRIES:
        del cache[next(iter(cache))]     # the oldest entry
    cache[key] = value


PLUGIN = KubernetesFilter
