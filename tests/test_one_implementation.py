"""One implementation per job (DESIGN.md): the jobs that had two or three implementations,
which disagreed, stay with the one each was merged into. The behaviour of each is tested
where it lives; this guards against a second copy growing back."""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "edgeship")


def _calls_and_imports():
    """(module path, dotted call or imported name) for every module of the package."""
    for folder, dirs, files in os.walk(PACKAGE):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, ROOT)
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    yield rel, _dotted(node.func)
                elif isinstance(node, ast.ImportFrom):
                    for alias in node.names:
                        yield rel, "%s.%s" % (node.module, alias.name)
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        yield rel, alias.name


def _dotted(node):
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return "%s.%s" % (_dotted(node.value), node.attr)
    return ""


# job -> (what a second implementation would use, the only modules allowed to)
ONE_PLACE = {
    "JSON decoding (Fluent Bit's duplicate-key and number rules)": (
        ("json.loads", "json.JSONDecoder", "orjson.loads", "_json.JSONDecoder",
         "msgspec.json.Decoder", "msgspec.json.decode"),
        {"edgeship/codecs/untrusted.py"}),
    "record-accessor templates (maps rendered as Fluent Bit's JSON)": (
        ("edgeship.core.accessor.Template", "accessor.Template", "Template"),
        {"edgeship/codecs/formats.py"}),
    "config-file reading (@SET everywhere)": (
        ("ClassicReader", "edgeship.core.config.ClassicReader"),
        {"edgeship/engine/loader.py", "edgeship/core/config.py"}),
    "backoff": (("random.random", "random", "random.uniform"), {"edgeship/core/backoff.py"}),
    # Outgoing connections: the stream pools (forward, tcp, syslog, gelf), the one HTTP client
    # (HTTP outputs, kubernetes, prometheus_scrape), and the health input's bare probe.
    "client connections (net.* options, keep-alive pools)": (
        ("asyncio.open_connection", "asyncio.open_unix_connection"),
        {"edgeship/net/stream.py", "edgeship/net/http_client.py",
         "edgeship/plugins/inputs/health.py"}),
}


def test_each_merged_job_has_one_place():
    found = {job: [] for job in ONE_PLACE}
    for rel, name in _calls_and_imports():
        for job, (names, allowed) in ONE_PLACE.items():
            if name in names and rel not in allowed:
                found[job].append("%s uses %s" % (rel, name))
    assert found == {job: [] for job in ONE_PLACE}


def test_the_check_sees_a_second_copy():
    """The walk finds the calls it must: the one place of each job is found using it."""
    seen = set(_calls_and_imports())
    assert ("edgeship/codecs/untrusted.py", "json.JSONDecoder") in seen
    assert ("edgeship/codecs/formats.py", "accessor.Template") in seen
    assert ("edgeship/engine/loader.py", "ClassicReader") in seen
    assert ("edgeship/core/backoff.py", "random") in seen
