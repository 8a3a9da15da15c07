"""Config files that attack the reader: hypothesis-generated files and include trees (NUL
bytes, invalid UTF-8, control characters, huge lines, deep and cyclic includes, paths that are
directories, FIFOs, devices or too long), and every place the loader opens a file a config
names. A real ``edgeship --dry-run`` must always exit 0 or 1 in bounded time, and on 1 say
why on one ``[error] [config] file:line: ...`` line; never a traceback."""
import os
import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

EDGESHIP = [sys.executable, "-m", "edgeship"]
ERROR = re.compile(r"^\[error\] \[config\] ([^:]+):(\d+): \S")
TIMEOUT = 60  # far above any real run (0.1-1 s): only a hang reaches it


def dry_run(main, cwd, *extra):
    proc = subprocess.run(EDGESHIP + ["--dry-run", "-c", main] + list(extra), cwd=cwd,
                          capture_output=True, timeout=TIMEOUT)
    return proc.returncode, proc.stderr.decode("utf-8", "replace")


def check_outcome(code, stderr, files=None, cwd=""):
    """0 or 1; no traceback; on 1 config error lines (every error of the config: one or
    more), each with a file and a line that exist (``files``: path -> bytes; relative paths
    are from ``cwd``); returns the first (or None)."""
    assert code in (0, 1), (code, stderr[-2000:])
    assert "Traceback" not in stderr, stderr[-3000:]
    if code == 0:
        assert "configuration test is successful" in stderr, stderr[-2000:]
        return None
    errors = [line for line in stderr.splitlines() if line.startswith("[error] [config]")]
    assert errors, stderr[-2000:]
    for error in errors:
        found = ERROR.match(error)
        assert found, error
        if files is not None and found.group(1) != "<command line>":
            path, line = os.path.join(cwd, found.group(1)), int(found.group(2))
            assert path in files, (path, error)
            assert 1 <= line <= files[path].count(b"\n") + 1, (line, error)
    return errors[0]


# ------------------------------------------------------------------------- generated trees
NAMES = ["a.conf", "b.conf", "c.conf", "sub/d.conf", "sub/e.conf"]
SPECIAL_PATHS = ["sub", "fifo", "/dev/zero", "/dev/null", "/proc/self/mem", "missing.conf",
                 "sub/*.conf", "*.conf", "nomatch/*.conf", "x" * 300, "d/" * 2100 + "x",
                 "a\x00b.conf", "a.conf\r", " a.conf", "/", ""]
SECTIONS = ["[SERVICE]", "[INPUT]", "[OUTPUT]", "[FILTER]", "[PARSER]", "[INPUT", "[bogus]",
            "[MULTILINE_PARSER]", "[UPSTREAM]", "[ inputs ]"]
KEYS = ["Name", "Match", "Tag", "Flush", "Log_Level", "Parsers_File", "Log_File", "Script",
        "Call", "Dummy", "Rate", "Regex", "Format", "storage.path", "storage.type", "Upstream",
        "tls", "tls.ca_file", "Path", "Grace", "nonsense"]
VALUES = ["dummy", "null", "stdout", "lua", "*", "1", "0", "-1", "info", "json", "on",
          "${HOME}", "${UNSET:-x}", "${broken", "cb", '{"a":1}', "filesystem", "forward"]
PATHISH = NAMES + SPECIAL_PATHS


def _text(max_size):
    """Mostly printable text; sometimes any code point (NUL, controls, line separators)."""
    return st.one_of(
        st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=max_size),
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=max_size))


def _entry(indent="    "):
    return st.builds(lambda key, value: "%s%s %s" % (indent, key, value),
                     st.one_of(st.sampled_from(KEYS), st.sampled_from(KEYS), _text(8)),
                     st.one_of(st.sampled_from(VALUES), st.sampled_from(PATHISH), _text(20),
                               st.integers(1000, 300000).map(lambda n: "t" * n)))  # huge


def _part():
    """Some lines of a file: mostly well-formed sections, with includes, @SET and junk."""
    block = st.builds(lambda head, entries: [head] + entries,
                      st.sampled_from(SECTIONS), st.lists(_entry(), max_size=5))
    return st.one_of(
        block, block, block, block, block,
        st.builds(lambda word, path: ["%s %s" % (word, path)],
                  st.sampled_from(["@INCLUDE", "@include", "@INCLUDE "]),
                  st.sampled_from(PATHISH)),
        st.builds(lambda k, v: ["@SET %s=%s" % (k, v)], _text(6), _text(12)),
        st.builds(lambda v: ["@SET " + v], _text(12)),
        st.sampled_from([[""], ["# comment"], ["@unknown x"], ["\r"], ["[SERVICE]\r"]]),
        st.builds(lambda line: [line], st.one_of(_text(30), _entry(" \t"), _entry("\t"))),
    )


def _file():
    """Bytes of one file, sometimes with a run of random bytes (invalid UTF-8) inside."""
    return st.builds(_join, st.lists(_part(), max_size=6), st.binary(max_size=16),
                     st.integers(0, 200))


def _join(parts, junk, at):
    data = "\n".join(line for part in parts for line in part).encode("utf-8", "surrogatepass")
    if junk and at < 100:
        cut = min(len(data), at * 7)
        data = data[:cut] + junk + data[cut:]
    return data


TREES = st.fixed_dictionaries({"main.conf": _file()},
                              optional={name: _file() for name in NAMES})


def _build(root, tree):
    os.makedirs(os.path.join(root, "sub"), exist_ok=True)
    if not os.path.exists(os.path.join(root, "fifo")):
        os.mkfifo(os.path.join(root, "fifo"))
    files = {}
    for name in ["main.conf"] + NAMES:
        path = os.path.join(root, name)
        if name in tree:
            with open(path, "wb") as f:
                f.write(tree[name])
            files[path] = tree[name]
        elif os.path.exists(path):
            os.unlink(path)
    return files


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(tree=TREES)
def test_generated_config_trees_get_exit_0_or_located_error_lines(tmp_path_factory, tree):
    root = str(tmp_path_factory.mktemp("tree"))
    files = _build(root, tree)
    code, stderr = dry_run(os.path.join(root, "main.conf"), root)
    check_outcome(code, stderr, files, root)


SERVICE_KEYS = ["Flush", "Grace", "Log_Level", "Log_File", "Parsers_File", "Plugins_File",
                "storage.path", "storage.sync", "storage.backlog.mem_limit", "HTTP_Port"]
SKELETON = [("SERVICE", None, SERVICE_KEYS), ("INPUT", "dummy", ["Tag", "Rate", "Dummy"]),
            ("FILTER", "lua", ["Match", "Script", "Call", "Code"]),
            ("FILTER", "parser", ["Match", "Key_Name", "Parser"]),
            ("OUTPUT", "forward", ["Match", "Upstream", "tls", "tls.ca_file", "Host"]),
            ("OUTPUT", "file", ["Match", "Path", "File", "Format"])]


def _skeleton_file():
    """A well-formed config of a few sections whose values are fuzzed: the reader accepts
    it, so the loader and the plugins get the values."""
    value = st.one_of(st.sampled_from(VALUES), st.sampled_from(PATHISH), _text(20))

    def section(spec):
        kind, name, keys = spec
        head = ["[%s]" % kind] + (["    Name %s" % name] if name else [])
        pairs = st.lists(st.tuples(st.sampled_from(keys), value), max_size=3,
                         unique_by=lambda kv: kv[0])
        return pairs.map(lambda kvs: head + ["    %s %s" % kv for kv in kvs
                                             if kv[1].strip() and "\n" not in kv[1]])

    parts = st.lists(st.sampled_from(SKELETON), min_size=1, max_size=4).flatmap(
        lambda specs: st.tuples(*[section(spec) for spec in specs]))
    return parts.map(lambda ps: "\n".join(l for p in ps for l in p).encode(
        "utf-8", "surrogatepass") + b"\n")


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(main=_skeleton_file(), parsers=_file())
def test_generated_values_for_the_loader_and_plugins(tmp_path_factory, main, parsers):
    root = str(tmp_path_factory.mktemp("values"))
    files = _build(root, {"main.conf": main, "a.conf": parsers})
    code, stderr = dry_run(os.path.join(root, "main.conf"), root)
    check_outcome(code, stderr, files, root)


# ------------------------------------------------------------------------- fixed attacks
def _chain(root, depth, last="[INPUT]\n    Name dummy\n[OUTPUT]\n    Name null\n    Match *\n"):
    for i in range(depth):
        with open(os.path.join(root, "c%d.conf" % i), "w") as f:
            f.write("@INCLUDE c%d.conf\n" % (i + 1))
    with open(os.path.join(root, "c%d.conf" % depth), "w") as f:
        f.write(last)
    main = os.path.join(root, "main.conf")
    with open(main, "w") as f:
        f.write("[SERVICE]\n    Flush 1\n@INCLUDE c0.conf\n")
    return main


def test_a_deep_include_chain_loads(tmp_path):
    # 490 levels raised RecursionError; 998 files is the deepest chain under the 1000 limit.
    code, stderr = dry_run(_chain(str(tmp_path), 997), str(tmp_path))
    assert check_outcome(code, stderr) is None


def test_too_deep_an_include_chain_is_one_error_line(tmp_path):
    code, stderr = dry_run(_chain(str(tmp_path), 1500), str(tmp_path))
    line = check_outcome(code, stderr)
    assert code == 1 and "more than 1000 included files" in line


def test_an_empty_upstream_file_is_an_error_at_its_upstream_line(tmp_path):
    """Found by the generated values above: the error named the empty file with no line."""
    root = str(tmp_path)
    main = _write(os.path.join(root, "main.conf"),
                  "[SERVICE]\n[OUTPUT]\n    Name forward\n    Upstream a.conf\n")
    _write(os.path.join(root, "a.conf"), "")
    code, stderr = dry_run(main, root)
    with open(main, "rb") as f:
        line = check_outcome(code, stderr, {main: f.read(), os.path.join(root, "a.conf"): b""},
                             root)
    assert line.startswith("[error] [config] %s:4: key 'upstream': no [UPSTREAM]" % main), line


def test_an_include_cycle_names_the_chain(tmp_path):
    root = str(tmp_path)
    main = _chain(root, 300, last="@INCLUDE c150.conf\n")
    code, stderr = dry_run(main, root)
    line = check_outcome(code, stderr)
    assert line == ("[error] [config] c300.conf:1: @INCLUDE cycle: c150.conf -> c151.conf -> "
                    "c152.conf -> (147 more) -> c300.conf -> c150.conf")


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


PIPELINE = "[INPUT]\n    Name dummy\n[OUTPUT]\n    Name null\n    Match *\n"


def _bad_paths(root):
    """Paths that are no config file, with the words the error must hold."""
    os.mkfifo(os.path.join(root, "fifo"))
    os.mkdir(os.path.join(root, "dir"))
    return [("dir", "Is a directory"), ("fifo", "FIFO"), ("/dev/zero", "device"),
            ("x" * 300, "File name too long"), ("missing.conf", "No such file")]


def test_every_file_a_config_names_is_checked(tmp_path):
    """@INCLUDE, Parsers_File, a lua Script, a forward Upstream, tls.ca_file: each bad path is
    an error at the line (and key) that names it; a NUL byte anywhere is refused at its line.
    (A TLS file is checked when its plugin starts, as Fluent Bit does: --strict makes the dry
    run refuse it.)"""
    root = str(tmp_path)
    places = [
        ("@INCLUDE {}\n" + PIPELINE, 1, None),
        ("[SERVICE]\n    Parsers_File {}\n" + PIPELINE, 2, "parsers_file"),
        (PIPELINE + "[FILTER]\n    Name lua\n    Match *\n    Call cb\n    Script {}\n", 10,
         "script"),
        ("[INPUT]\n    Name dummy\n[OUTPUT]\n    Name forward\n    Match *\n"
         "    Upstream {}\n", 6, "upstream"),
        ("[INPUT]\n    Name dummy\n[OUTPUT]\n    Name forward\n    Match *\n    tls on\n"
         "    tls.ca_file {}\n", 7, "tls.ca_file"),
    ]
    for path, words in _bad_paths(root):
        for template, line, key in places:
            main = _write(os.path.join(root, "main.conf"), template.format(path))
            code, stderr = dry_run(main, root, *(["--strict"] if key == "tls.ca_file" else []))
            error = check_outcome(code, stderr)
            assert code == 1, (template, path)
            assert error.startswith("[error] [config] %s:%d: " % (main, line)), (path, error)
            assert words in error, (path, error)
            if key:
                assert "key '%s'" % key in error, error
    for template, line, _key in places:
        main = os.path.join(root, "main.conf")
        with open(main, "wb") as f:
            f.write(template.format("a\x00b.conf").encode())
        code, stderr = dry_run(main, root)
        error = check_outcome(code, stderr)
        assert code == 1 and "%s:%d: NUL byte" % (main, line) in error, error


def test_command_line_paths_that_are_no_file(tmp_path):
    root = str(tmp_path)
    os.mkdir(os.path.join(root, "dir"))
    main = _write(os.path.join(root, "main.conf"), PIPELINE)
    code, stderr = dry_run(main, root, "-R", os.path.join(root, "dir"))
    error = check_outcome(code, stderr)
    assert code == 1 and "Is a directory" in error and "key 'parsers_file'" in error
    code, stderr = dry_run(main, root, "-w", os.path.join(root, "nowhere"))
    error = check_outcome(code, stderr)
    assert code == 1 and "No such file" in error and "key 'workdir'" in error


@pytest.mark.e2e
def test_an_unusable_log_file_falls_back_to_stderr_with_an_error_line(tmp_path):
    """As Fluent Bit: a Log_File in a missing folder (or a directory, or a FIFO nobody reads)
    is an error line on stderr, and the log goes there; the config is still good."""
    root = str(tmp_path)
    os.mkfifo(os.path.join(root, "fifo"))
    for path in (os.path.join(root, "no", "such", "dir", "edgeship.log"), root,
                 os.path.join(root, "fifo")):
        main = _write(os.path.join(root, "main.conf"),
                      "[SERVICE]\n    Log_File %s\n" % path + PIPELINE)
        code, stderr = dry_run(main, root)
        assert check_outcome(code, stderr) is None
        assert re.search(r"\[error\] \[engine\] cannot open Log_File '%s' \(%s:2\): .+; "
                         r"logging to stderr instead" % (re.escape(path), re.escape(main)),
                         stderr), stderr
    # A usable Log_File gets the log lines (here a warning made while loading).
    log = os.path.join(root, "edgeship.log")
    main = _write(os.path.join(root, "main.conf"), "[SERVICE]\n    Log_File %s\n" % log
                  + PIPELINE + "[FILTER]\n    Name stdout\n")
    code, stderr = dry_run(main, root)
    assert check_outcome(code, stderr) is None and "NO match rule" not in stderr
    with open(log) as f:
        assert "NO match rule for stdout.0" in f.read()


def test_a_config_file_too_large_or_unreadable(tmp_path):
    root = str(tmp_path)
    big = os.path.join(root, "big.conf")
    with open(big, "wb") as f:
        f.truncate(64 * 1024 * 1024)  # sparse: 64 MB of NUL bytes cost no disk
    locked = _write(os.path.join(root, "locked.conf"), PIPELINE)
    os.chmod(locked, 0)
    for include, words in (("big.conf", "larger than"),
                           ("locked.conf", "Permission denied")):
        if include == "locked.conf" and os.geteuid() == 0:
            continue  # root reads any file
        main = _write(os.path.join(root, "main.conf"), "@INCLUDE %s\n" % include + PIPELINE)
        code, stderr = dry_run(main, root)
        error = check_outcome(code, stderr)
        assert code == 1 and words in error, error
