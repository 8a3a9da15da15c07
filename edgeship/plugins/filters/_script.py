"""The script file of a scripting filter (lua, python)."""
from edgeship.core.errors import ConfigError
from edgeship.core.files import read_bytes


def read_script(plugin):
    """``(path, source)`` of the plugin's Script option. A relative path follows Fluent
    Bit's rule (core.config.locate): the current directory when the file is there, else the
    main config file's directory, so a config runs from any cwd."""
    path = plugin.context.config_files.locate(plugin.conf["script"])
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
