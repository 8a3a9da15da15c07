"""Forward upstream files: Fluent Bit's classic ``[UPSTREAM]`` / ``[NODE]`` file naming the
servers of a forward output (upstream_ha), read by the config's own reader (core/config.py):
the main file's ``@SET`` variables apply, and a relative path follows Fluent Bit's rule.
"""
from edgeship.core import forward
from edgeship.core.config import UPSTREAM_SECTIONS
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option, Schema
from edgeship.net.tls import TLS_OPTIONS

NODE_OPTIONS = (
    Option("Name", help="node name, used in logs"),
    Option("Host", default="127.0.0.1", help="host of the node"),
    Option("Port", "int", str(forward.DEFAULT_PORT), help="TCP port of the node"),
    Option("Shared_Key", help="secure-forward shared key of this node"),
    Option("Empty_Shared_Key", "bool", "off", help="use an empty shared key"),
    Option("Self_Hostname", help="host name sent in PING to this node"),
    Option("Username", help="secure-forward user name"),
    Option("Password", help="secure-forward password"),
) + TLS_OPTIONS
NODE_SCHEMA = Schema("upstream node", NODE_OPTIONS)


def read_upstream(path, reader):
    """``(name, [node conf])`` from a classic upstream file: one ``[UPSTREAM]`` with a
    Name, then one ``[NODE]`` per server. ``reader`` is the loader's ClassicReader, the one
    that read the main config file."""
    sections = reader.read_other(path, UPSTREAM_SECTIONS, (None, None, "upstream"))
    name = None
    nodes = []
    for section in sections:
        if section.kind == "UPSTREAM":
            if name is not None:
                raise ConfigError("more than one [UPSTREAM] section", section.file, section.line)
            name = section.get("name")
            if not name:
                raise ConfigError("[UPSTREAM] without a Name", section.file, section.line, "name")
            continue
        conf = NODE_SCHEMA.build(section.entries, (section.file, section.line))
        conf["where"] = (section.file, section.line)
        nodes.append(conf)
    if name is None:
        # located by the plugin at its Upstream line: an empty file has no line of its own
        raise ConfigError("no [UPSTREAM] section in upstream file '%s'" % path, key="upstream")
    if not nodes:
        raise ConfigError("upstream '%s' has no [NODE] section" % name, path)
    return name, nodes
