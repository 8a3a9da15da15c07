"""Plugin registry: a plugin called NAME of kind K lives in ``edgeship.plugins.K.NAME`` (a
module, or a package when it outgrows one file, as tail does) and exposes its class as
``PLUGIN``. Modules are imported only when a config names them, so start-up stays fast.
Names starting with ``_`` are helpers shared by plugins, never plugins."""
import importlib
import os

KINDS = {"input": "inputs", "filter": "filters", "output": "outputs", "parser": "parsers"}


def _module_name(name):
    return name.strip().lower().replace("-", "_")


def find(kind, name):
    """The plugin class of ``kind`` called ``name``, or None when there is none."""
    module = _module_name(name)
    if not module.isidentifier() or module.startswith("_"):
        return None
    try:
        mod = importlib.import_module("edgeship.plugins.%s.%s" % (KINDS[kind], module))
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.endswith("." + module):
            return None
        raise
    return getattr(mod, "PLUGIN", None)


def names(kind):
    """Every plugin name of ``kind``, sorted."""
    folder = os.path.join(os.path.dirname(__file__), KINDS[kind])
    found = []
    for entry in os.listdir(folder):
        if entry.startswith("_"):
            continue
        if entry.endswith(".py"):
            found.append(entry[:-3])
        elif os.path.isfile(os.path.join(folder, entry, "__init__.py")):
            found.append(entry)
    return sorted(found)
