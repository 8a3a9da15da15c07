"""DESIGN.md's layer table, enforced: every module's imports (module level and inside
functions alike) are read with ``ast`` and checked against the layers its layer may import.

A new import that breaks the table fails here: move the code to the layer where every user
may import it, do not loosen the table. The table's revision proposed in issue 10 is explicit
below.
"""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "edgeship")

# Top-level folders of the package and their layer; cli.py, __main__.py and __init__.py are
# the front's entry points, the only modules allowed loose at the top.
LAYER_OF_FOLDER = {"core": "core", "codecs": "codecs", "text": "text", "net": "net",
                   "storage": "storage", "engine": "engine", "plugins": "plugins",
                   "http": "front"}
TOP_FILES = {"__init__.py", "__main__.py", "cli.py"}
# Folders of package data, not code: no layer, and no module may hide in them.
DATA_FOLDERS = {"examples": "the example configs and deployment files (edgeship examples)",
                "etc": "the stock parsers file (Fluent Bit's stock parser names)"}

# The engine's plugin API: what a plugin module may import from the engine.
PLUGIN_API = {"edgeship.engine.plugin", "edgeship.engine.ack"}
REGISTRY = "edgeship.plugins"   # find() and names(); imports no plugin itself

# DESIGN.md's table: the other layers each layer may import.
TABLE = {
    "core": set(),
    "codecs": {"core"},
    "text": {"core"},
    "net": {"core", "codecs"},
    "storage": {"core"},
    "engine": {"core", "storage"},
    "plugins": {"core", "codecs", "net", "text", "plugin API"},
}
# Proposed revision of the table (issue 10's closing note): the loader turns config into
# plugin instances, so it finds plugins by name in the registry, and it compiles Match_Regex
# (text.onigmo) and [MULTILINE_PARSER] sections (text.multiline); the engine builds the
# pre-parsers of built-in multiline parsers the same way. Storage keeps chunks in Fluent
# Bit's format, so it packs and reads them with the one entry encoder (codecs.entries).
PROPOSED_REVISION = {
    "engine": {"text", "plugin registry"},
    "storage": {"codecs"},
}

# Modules MicroPython has (../shared/reference/micropython.md, "Modules present in the unix
# port"; tests/core runs there), without the ones for the network, threads, the loop or the
# board (socket, select, asyncio, ssl, _thread, machine): core's protocols stay sans-IO. A
# module outside this list only inside ``try: ... except ImportError``, as core/forward/wire.py
# imports zlib.
MICROPYTHON_MODULES = {"array", "binascii", "collections", "errno", "gc", "hashlib", "heapq",
                       "io", "json", "math", "micropython", "os", "random", "re", "struct",
                       "sys", "time"}


def _modules():
    """(path relative to ROOT, dotted module name, is a package, ast tree) of every module."""
    for folder, dirs, files in os.walk(PACKAGE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, ROOT)
            parts = rel[:-3].split(os.sep)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            with open(path, encoding="utf-8") as f:
                yield rel.replace(os.sep, "/"), ".".join(parts), is_package, ast.parse(f.read())


def _catches_import_error(handler):
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError")
               for n in names)


def _guarded_nodes(tree):
    """Import nodes inside ``try: ... except ImportError``."""
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers):
            for stmt in node.body:
                guarded.update(id(n) for n in ast.walk(stmt))
    return guarded


def _is_module(dotted):
    path = os.path.join(ROOT, *dotted.split("."))
    return os.path.isfile(path + ".py") or os.path.isfile(os.path.join(path, "__init__.py"))


def _imports(module, is_package, tree):
    """(line, imported module, guarded) for every import in ``tree``; ``from x import y``
    counts as importing ``x.y`` when that is a module of the package."""
    guarded = _guarded_nodes(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, id(node) in guarded
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")
                if not is_package:
                    package.pop()
                package = package[:len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            for alias in node.names:
                target = base + "." + alias.name
                yield node.lineno, target if _is_module(target) else base, id(node) in guarded


def _layer(dotted):
    """The layer an edgeship module belongs to; None for anything outside the package."""
    parts = dotted.split(".")
    if parts[0] != "edgeship":
        return None
    if dotted in PLUGIN_API:
        return "plugin API"
    if dotted == REGISTRY:
        return "plugin registry"
    if len(parts) == 1 or parts[1] in ("cli", "__main__"):
        return "front"
    return LAYER_OF_FOLDER.get(parts[1], "unknown folder '%s'" % parts[1])


def _own_layer(rel):
    parts = rel.split("/")
    return LAYER_OF_FOLDER.get(parts[1]) if len(parts) > 2 else "front"


def _crossings():
    """(module path, line, imported module, importer's layer, imported layer) of every import
    of another layer of the package."""
    for rel, module, is_package, tree in _modules():
        layer = _own_layer(rel)
        for line, target, _ in _imports(module, is_package, tree):
            target_layer = _layer(target)
            if target_layer is None:
                continue
            if target.split(".")[:2] == module.split(".")[:2]:
                continue        # its own layer (the registry is the plugins layer's own)
            yield rel, line, target, layer, target_layer


def _breaks_table(layer, target_layer):
    if layer == "front":
        return False
    allowed = TABLE[layer] | PROPOSED_REVISION.get(layer, set())
    return target_layer not in allowed


def test_nothing_is_loose_at_the_top_of_the_package():
    loose = []
    for name in sorted(os.listdir(PACKAGE)):
        path = os.path.join(PACKAGE, name)
        if name == "__pycache__":
            continue
        if os.path.isdir(path) and name in DATA_FOLDERS:
            code = [os.path.join(folder, f) for folder, _, files in os.walk(path)
                    for f in files if f.endswith(".py")]
            if code:
                loose.append("%s/ is package data, yet holds %s" % (name, code))
        elif os.path.isdir(path):
            if name not in LAYER_OF_FOLDER:
                loose.append("%s/ (which layer?)" % name)
            elif not os.path.isfile(os.path.join(path, "__init__.py")):
                loose.append("%s/ has no __init__.py" % name)
        elif name.endswith(".py") and name not in TOP_FILES:
            loose.append(name)
    assert loose == [], "only the CLI entry points live at the top: %s" % loose


def test_every_import_follows_the_layer_table():
    broken = ["%s:%d imports %s: %s may not import %s" % (rel, line, target, layer, target_layer)
              for rel, line, target, layer, target_layer in _crossings()
              if _breaks_table(layer, target_layer)]
    assert broken == [], "\n".join(broken)


def test_plugins_see_the_engine_only_through_their_context():
    """DESIGN's narrow plugin context: no plugin (nor the text helpers they build) names an
    ``engine`` object or attribute; everything comes through ``self.context``."""
    found = []
    for rel, _, _, tree in _modules():
        if not rel.startswith(("edgeship/plugins/", "edgeship/text/")):
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr == "engine") or \
                    (isinstance(node, (ast.Name, ast.arg)) and
                     getattr(node, "id", getattr(node, "arg", None)) == "engine"):
                found.append("%s:%d" % (rel, node.lineno))
    assert found == [], found


def test_core_imports_only_core_and_what_micropython_has():
    bad = []
    for rel, module, is_package, tree in _modules():
        if not rel.startswith("edgeship/core/"):
            continue
        for line, target, guarded in _imports(module, is_package, tree):
            if target.split(".")[0] == "edgeship":
                if not target.startswith("edgeship.core"):
                    bad.append("%s:%d imports %s" % (rel, line, target))
            elif target.split(".")[0] not in MICROPYTHON_MODULES and not guarded:
                bad.append("%s:%d imports %s, not in MICROPYTHON_MODULES (guard it with "
                           "try/except ImportError, or keep it out of core)" % (rel, line, target))
    assert bad == [], "\n".join(bad)


def test_the_checks_see_what_they_must():
    """A check that sees nothing passes everything: the walk finds every layer, imports inside
    functions and under try/except ImportError, and resolves relative imports."""
    found = {rel: [(target, guarded) for _, target, guarded in _imports(module, is_package, tree)]
             for rel, module, is_package, tree in _modules()}
    assert {_own_layer(rel) for rel in found} == set(TABLE) | {"front"}
    assert ("edgeship.engine.plugin", False) in found["edgeship/plugins/outputs/null.py"]
    assert ("zlib", True) in found["edgeship/core/forward/wire.py"]
    assert ("edgeship.text.onigmo", False) in found["edgeship/engine/loader.py"]  # in a method
    tree = ast.parse("from ..core import files\nfrom . import upstream\nfrom .tls import x\n")
    assert [target for _, target, _ in _imports("edgeship.net.tls", False, tree)] == \
        ["edgeship.core.files", "edgeship.net.upstream", "edgeship.net.tls"]
    assert _layer("edgeship.engine.ack") == "plugin API"
    assert _layer("edgeship.engine.log") == "engine"
    assert _breaks_table("codecs", "net") and _breaks_table("plugins", "engine")
    assert not _breaks_table("plugins", "plugin API") and not _breaks_table("front", "engine")
