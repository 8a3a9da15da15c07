"""From a record tag to pod, namespace and container (kube_regex.h, parse_regex_tag_data).

The tag loses ``len(Kube_Tag_Prefix)`` characters (the prefix itself is not compared, as in
Fluent Bit) and the rest is searched (not anchored at the start) with the default regex or
the ``Regex_Parser``'s; its named groups ``pod_name``, ``namespace_name``, ``container_name``,
``docker_id`` and ``container_hash`` are used, the first value of each."""
from edgeship.text.onigmo import capture_fields, compile_onigmo

DEFAULT_REGEX = (r"(?<pod_name>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*)"
                 r"_(?<namespace_name>[^_]+)_(?<container_name>.+)-(?<docker_id>[a-z0-9]{64})"
                 r"\.log$")
FIELDS = ("pod_name", "namespace_name", "container_name", "docker_id", "container_hash")


class TagMeta:
    """What the tag says about its pod; ``key`` is the metadata cache key."""
    __slots__ = FIELDS + ("key",)

    def __init__(self, values, with_docker_id):
        for name in FIELDS:
            setattr(self, name, values.get(name))
        parts = [self.namespace_name, self.pod_name]
        if self.container_name:
            parts.append(self.container_name)
        if with_docker_id and self.docker_id:
            parts.append(self.docker_id)
        self.key = ":".join(parts) if self.pod_name and self.namespace_name else None


class TagParser:
    def __init__(self, prefix, regex=None, cache_use_docker_id=False):
        """``regex``: a compiled regex (a Regex_Parser's), else the default one."""
        self.prefix = prefix
        self.regex = regex if regex is not None else compile_onigmo(DEFAULT_REGEX)
        self.fields = [(name, numbers) for name, numbers in capture_fields(self.regex)
                       if name in FIELDS]
        self.with_docker_id = cache_use_docker_id

    def parse(self, tag):
        """A TagMeta, or a (level, message) pair when the tag cannot be used."""
        if len(self.prefix) + 1 >= len(tag):
            return ("error", "incoming record tag (%s) is shorter than kube_tag_prefix value "
                             "(%s), skip filter" % (tag, self.prefix))
        found = self.match(tag[len(self.prefix):])
        if found is None:
            return ("warn", "invalid pattern for given tag %s" % tag)
        return found

    def match(self, text):
        """The TagMeta the regex finds in ``text`` (Use_Journal: a CONTAINER_NAME), or None."""
        match = self.regex.search(text)
        if match is None:
            return None
        values = {}
        for name, numbers in self.fields:
            for number in numbers:
                value = match.group(number)
                if value is not None:
                    values[name] = value
                    break
        return TagMeta(values, self.with_docker_id)
