"""The ``kubernetes`` and ``kubernetes_namespace`` maps, and the ``fluentbit.io/*`` annotation
properties, from a Pod (or Namespace) object (kube_meta.c merge_pod_meta,
merge_namespace_meta, extract_container_hash; kube_property.c).

``kubernetes`` keys, in Fluent Bit's order, each only when known: pod_name, namespace_name
(from the tag), pod_id (metadata.uid), labels, annotations, ownerReferences (each when its
option is on), host (spec.nodeName), pod_ip (status.podIP), container_name, docker_id (the
tag's, else the container's status entry), container_hash, container_image (that entry's
imageID and image). The entry is looked for in containerStatuses, then initContainerStatuses.
"""
from edgeship.core.schema import TRUE_WORDS


class Options:
    """The filter options the maps depend on."""
    def __init__(self, conf):
        self.labels = conf["labels"]
        self.annotations = conf["annotations"]
        self.owner_references = conf["owner_references"]
        self.namespace_labels = conf["namespace_labels"]
        self.namespace_annotations = conf["namespace_annotations"]
        self.logging_parser = conf["k8s-logging.parser"]
        self.logging_exclude = conf["k8s-logging.exclude"]


class Props:
    """The annotation properties of one pod's container (flb_kube_props); None = unset."""
    __slots__ = ("stdout_parser", "stderr_parser", "stdout_exclude", "stderr_exclude")

    def __init__(self):
        self.stdout_parser = self.stderr_parser = None
        self.stdout_exclude = self.stderr_exclude = None


class PodMeta:
    """What a cache entry holds: the ``kubernetes`` map (None: no metadata) and the props."""
    __slots__ = ("kubernetes", "props")

    def __init__(self, kubernetes, props):
        self.kubernetes = kubernetes
        self.props = props


def from_tag(tag_meta):
    """Use_Tag_For_Meta: the map from the tag alone."""
    return {name: getattr(tag_meta, name)
            for name in ("pod_name", "namespace_name", "container_name", "docker_id")
            if getattr(tag_meta, name) is not None}


def pod_map(pod, tag_meta, opts, parser_exists, log):
    """The ``kubernetes`` map and the props for ``tag_meta``'s container of ``pod`` (a Pod
    object; {} when a kubelet PodList did not hold it)."""
    meta = _map_at(pod, "metadata")
    spec = _map_at(pod, "spec")
    status = _map_at(pod, "status")
    docker_id = tag_meta.docker_id
    container_hash = tag_meta.container_hash
    image = None
    if status is not None and not (docker_id and container_hash):
        entry = _container_status(status, tag_meta.container_name)
        if entry is not None:
            docker_id = docker_id or _after_scheme(entry.get("containerID"))
            container_hash = container_hash or _after_scheme(entry.get("imageID"))
            image = entry.get("image") if isinstance(entry.get("image"), str) else None
    out = {}
    if tag_meta.pod_name is not None:
        out["pod_name"] = tag_meta.pod_name
    if tag_meta.namespace_name is not None:
        out["namespace_name"] = tag_meta.namespace_name
    if meta is not None:
        if "uid" in meta:
            out["pod_id"] = meta["uid"]
        if opts.labels and "labels" in meta:
            out["labels"] = meta["labels"]
        if opts.annotations and "annotations" in meta:
            out["annotations"] = meta["annotations"]
        if opts.owner_references and "ownerReferences" in meta:
            out["ownerReferences"] = meta["ownerReferences"]
    if spec is not None and "nodeName" in spec:
        out["host"] = spec["nodeName"]
    if status is not None and "podIP" in status:
        out["pod_ip"] = status["podIP"]
    if tag_meta.container_name is not None:
        out["container_name"] = tag_meta.container_name
    if docker_id:
        out["docker_id"] = docker_id
    if container_hash:
        out["container_hash"] = container_hash
    if image:
        out["container_image"] = image
    props = Props()
    annotations = meta.get("annotations") if meta is not None else None
    if isinstance(annotations, dict):
        for key, value in annotations.items():
            if isinstance(key, str) and len(key) > 13 and key.startswith("fluentbit.io/") \
                    and isinstance(value, str):
                _set_prop(props, key[13:], value, tag_meta, opts, parser_exists, log)
    return PodMeta(out, props)


def namespace_map(namespace, name, opts):
    """The ``kubernetes_namespace`` map from a Namespace object (None when it is missing)."""
    out = {"name": name}
    meta = _map_at(namespace, "metadata") if namespace is not None else None
    if meta is not None:
        if opts.namespace_labels and "labels" in meta:
            out["labels"] = meta["labels"]
        if opts.namespace_annotations and "annotations" in meta:
            out["annotations"] = meta["annotations"]
    return out


def find_in_pod_list(pod_list, tag_meta):
    """Use_Kubelet: the Pod of ``items`` named as the tag says, or {}."""
    items = pod_list.get("items") if isinstance(pod_list, dict) else None
    for item in items if isinstance(items, list) else ():
        meta = _map_at(item, "metadata")
        if meta is not None and meta.get("name") == tag_meta.pod_name \
                and meta.get("namespace") == tag_meta.namespace_name:
            return item
    return {}


def _map_at(obj, key):
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else None


def _container_status(status, container):
    for key in ("containerStatuses", "initContainerStatuses"):
        entries = status.get(key)
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, dict) and entry.get("name") == container:
                return entry
    return None


def _after_scheme(value):
    """``containerd://abc`` -> ``abc``; a value with a ':' but no '/' after it (an image
    digest) stays whole; no ':' at all: None (extract_hash)."""
    if not isinstance(value, str) or len(value) <= 1 or ":" not in value:
        return None
    colon = value.index(":")
    rest = value[colon + 1:]
    stripped = rest.lstrip("/")
    if len(stripped) == len(rest):
        return value
    return stripped or None


def _set_prop(props, name, value, tag_meta, opts, parser_exists, log):
    """One ``fluentbit.io/<name>`` annotation: parser or exclude, optionally ``_stdout`` /
    ``_stderr`` and ``-<container>`` (flb_kube_prop_set)."""
    where = "(ns='%s' pod_name='%s')" % (tag_meta.namespace_name, tag_meta.pod_name)
    if name.startswith("parser"):
        kind, rest = "parser", name[6:]
    elif name.startswith("exclude"):
        kind, rest = "exclude", name[7:]
    else:
        log.warn("unknown annotation 'fluentbit.io/%s' %s", name, where)
        return
    streams = ("stdout", "stderr")
    if rest.startswith("_"):
        if rest[1:7] not in streams:
            log.warn("invalid stream in annotation 'fluentbit.io/%s' %s", name, where)
            return
        streams = (rest[1:7],)
        rest = rest[7:]
    container = None
    if rest.startswith("-"):
        container = rest[1:]
        if not container:
            log.warn("invalid container in annotation 'fluentbit.io/%s' %s", name, where)
            return
        rest = ""
    if rest:
        log.warn("invalid annotation 'fluentbit.io/%s' %s", name, where)
        return
    if container is not None and container != tag_meta.container_name:
        return
    if kind == "parser":
        if not opts.logging_parser:
            log.warn("annotation 'fluentbit.io/parser' not allowed %s", where)
            return
        if not parser_exists(value):
            log.warn("annotation parser '%s' not found (ns='%s' pod_name='%s', "
                     "container_name='%s')", value, tag_meta.namespace_name,
                     tag_meta.pod_name, tag_meta.container_name)
            return
        setting = value
    else:
        if not opts.logging_exclude:
            log.warn("annotation 'fluentbit.io/exclude' not allowed %s", where)
            return
        setting = value.strip().lower() in TRUE_WORDS
    # A container-specific annotation beats a general one, whatever their order.
    for stream in streams:
        attr = "%s_%s" % (stream, kind)
        if container is not None or getattr(props, attr) is None:
            setattr(props, attr, setting)
