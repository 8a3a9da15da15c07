"""YAML text to the plain tree the config reader (edgeship.core.config) turns into sections.

PyYAML composes the document without resolving types (Fluent Bit reads every value as its
scalar text: ``on``, ``0.2`` and ``'*'`` stay text) and keeps each node's line, so every
config error names file:line. A key written twice in one mapping stays twice, as in Fluent
Bit (libyaml does not refuse duplicates either).

The tree, which the core reader consumes (pure data, nothing of PyYAML):

    ("map", line, [(key text, key line, node), ...])
    ("list", line, [node, ...])
    ("scalar", line, text)

Differences: anchors and aliases are read (Fluent Bit refuses them); several documents in
one file are an error naming the second one's line.
"""
import yaml

from edgeship.core.errors import ConfigError


def parse(text, path):
    """The tree of ``text`` (the contents of ``path``), or None for an empty document."""
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError("invalid YAML: %s" % (exc.problem or exc.context), path, line)
    except yaml.YAMLError as exc:
        raise ConfigError("invalid YAML: %s" % exc, path)
    if len(nodes) > 1:
        raise ConfigError("one YAML document per file", path, nodes[1].start_mark.line + 1)
    return _tree(nodes[0], path, 0) if nodes else None


# Deeper nesting than any config uses is refused before Python's recursion limit.
MAX_DEPTH = 64


def _tree(node, path, depth):
    line = node.start_mark.line + 1
    if depth > MAX_DEPTH:
        raise ConfigError("YAML nested more than %d levels" % MAX_DEPTH, path, line)
    if isinstance(node, yaml.ScalarNode):
        return ("scalar", line, node.value)
    if isinstance(node, yaml.SequenceNode):
        return ("list", line, [_tree(item, path, depth + 1) for item in node.value])
    items = []
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise ConfigError("a YAML key must be text", path, key.start_mark.line + 1)
        items.append((key.value, key.start_mark.line + 1, _tree(value, path, depth + 1)))
    return ("map", line, items)
