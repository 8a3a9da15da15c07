"""The script file of a scripting filter (lua, python)."""
import os

from edgeship.core.errors import ConfigError


def read_script(plugin):
    """``(path, source)`` of the plugin's Script option. A relative path is taken from the
    main config file's directory, as Fluent Bit does, so a config runs from any cwd."""
    path = plugin.conf["script"]
    if not os.path.isabs(path):
        path = os.path.join(plugin.engine.config_dir or ".", path)
    try:
        with open(path) as f:
            return path, f.read()
    except OSError as exc:
        raise ConfigError("%s: cannot read script '%s': %s" % (plugin.name, path, exc),
                          key="script")
