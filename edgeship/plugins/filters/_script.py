"""The script file of a scripting filter (lua, python)."""
import os

from edgeship.core.errors import ConfigError
from edgeship.core.files import read_bytes


def read_script(plugin):
    """``(path, source)`` of the plugin's Script option. A relative path is taken from the
    main config file's directory, as Fluent Bit does, so a config runs from any cwd."""
    path = plugin.conf["script"]
    if not os.path.isabs(path):
        path = os.path.join(plugin.context.config_dir, path)
    try:
        data = read_bytes(path)
    except OSError as exc:
        raise ConfigError("%s: cannot read script '%s': %s" % (plugin.name, path,
                                                               exc.strerror or exc),
                          key="script")
    try:
        return path, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Neither runtime can carry other bytes through (lupa decodes Lua strings as UTF-8).
        raise ConfigError("%s: script '%s' is not UTF-8 (byte %d)" % (plugin.name, path,
                                                                    exc.start),
                          key="script")
