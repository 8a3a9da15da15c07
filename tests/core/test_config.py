"""Classic config reader rules (reference section 1), with an in-memory file system."""
from edgeship.core.config import (MAIN_SECTIONS, PARSER_SECTIONS, UPSTREAM_SECTIONS,
                                  ClassicReader, Variables, expand, locate)
from edgeship.core.errors import ConfigError


class MemFiles:
    def __init__(self, files):
        self.files = files

    def read(self, path):
        if path not in self.files:
            raise OSError(2, "No such file or directory")
        return self.files[path]

    def glob(self, pattern):
        prefix, _, suffix = pattern.partition("*")
        return sorted(p for p in self.files if p.startswith(prefix) and p.endswith(suffix))

    def identity(self, path):
        if path not in self.files:
            raise OSError(2, "No such file or directory")
        return path


def read(files, environ=None, main="/etc/main.conf"):
    reader = ClassicReader(MemFiles(files), Variables(environ or {}, "host-1"))
    return reader.read_main(main)


def error_of(files, environ=None):
    try:
        read(files, environ)
    except ConfigError as exc:
        return exc
    raise AssertionError("no ConfigError")


def test_sections_keys_comments_and_case():
    sections = read({"/etc/main.conf": (
        "# comment\n"
        "[service]\n"
        "  Flush 1\n"
        "  # indented comment\n"
        "\n"
        "[INPUT]\n"
        "  Name  TAIL\r\n"
        "  Path  /var/log/*.log  # not a comment\n"
        "[outputs]\n"
        "  Name stdout\n")})
    kinds = [s.kind for s in sections]
    assert kinds == ["SERVICE", "INPUT", "OUTPUT"]
    tail = sections[1]
    assert tail.get("NAME") == "TAIL"
    assert tail.get("path") == "/var/log/*.log  # not a comment"
    assert tail.entries[0].line == 7 and tail.entries[0].file == "/etc/main.conf"


def test_section_name_prefix_quirk():
    sections = read({"/etc/main.conf": "[INP]\n    Name dummy\n"})
    assert sections[0].kind == "INPUT"


def test_indentation_is_fixed_by_the_first_entry():
    err = error_of({"/etc/main.conf": "[INPUT]\n    Name dummy\n  Tag x\n"})
    assert err.line == 3 and "indentation" in err.message
    err = error_of({"/etc/main.conf": "[INPUT]\n    Name dummy\n      Tag x\n"})
    assert err.line == 3 and "extra indentation" in err.message
    err = error_of({"/etc/main.conf": "[INPUT]\nName dummy\n"})
    assert err.line == 2


def test_tab_is_not_a_separator():
    err = error_of({"/etc/main.conf": "[INPUT]\n    Name\tdummy\n"})
    assert "undefined value" in err.message and err.line == 2


def test_bad_header_and_unknown_section():
    assert "bad header" in error_of({"/etc/main.conf": "[INPUT\n    Name x\n"}).message
    # Fluent Bit ignores an unknown section: the reader notes it for the loader's warning.
    reader = ClassicReader(MemFiles({"/etc/main.conf": "[BOGUS]\n    Name x\n[INPUT]\n"
                                     "    Name dummy\n"}), Variables({}))
    sections = reader.read_main("/etc/main.conf")
    assert [(s.kind, s.entries[0].value) for s in sections] == [("INPUT", "dummy")]
    assert ["unknown section [BOGUS] ignored"] == [n.message for n in reader.notes]
    assert reader.notes[0].line == 1


def test_entry_indented_twice_is_an_entry_as_in_fluent_bit():
    reader = ClassicReader(MemFiles({"/etc/main.conf": "[INPUT]\n  Name dummy\n    Rate 3\n"}),
                           Variables({}))
    sections = reader.read_main("/etc/main.conf")
    assert [(e.key, e.value) for e in sections[0].entries] == [("name", "dummy"), ("rate", "3")]
    assert (reader.notes[0].line, reader.notes[0].key) == (3, "rate")
    err = error_of({"/etc/main.conf": "[INPUT]\n  Name dummy\n      Rate 3\n"})
    assert "extra indentation level" in err.message


def test_parser_section_only_in_parsers_file():
    err = error_of({"/etc/main.conf": "[PARSER]\n    Name p\n"})
    assert "parsers file" in err.message
    reader = ClassicReader(MemFiles({"/p.conf": "[PARSER]\n    Name p\n    Format json\n"}),
                           Variables({}))
    assert reader.read_other("/p.conf", PARSER_SECTIONS)[0].get("format") == "json"


def test_set_applies_everywhere_and_wins_over_environment():
    sections = read({"/etc/main.conf": (
        "[INPUT]\n    Name dummy\n    Tag ${SITE}.${UNSET}x\n    Path ${MISSING:-def}\n"
        "@SET SITE=plant-7\n")}, {"SITE": "env-site", "EMPTY": ""})
    assert sections[0].get("tag") == "plant-7.x"
    assert sections[0].get("path") == "def"


def test_empty_environment_value_counts_as_unset():
    sections = read({"/etc/main.conf": "[INPUT]\n    Name ${E:-dummy}\n    Tag ${HOSTNAME}\n"},
                    {"E": ""})
    assert sections[0].get("name") == "dummy"
    assert sections[0].get("tag") == "host-1"


def test_fallbacks_come_after_set_and_environment():
    def with_fallback(environ, text):
        variables = Variables(environ, "host-1")
        variables.fallbacks["CONF_DIR"] = "/etc/edge"
        reader = ClassicReader(MemFiles({"/etc/main.conf": text}), variables)
        return reader.read_main("/etc/main.conf")[0].get("path")
    section = "[INPUT]\n    Name tail\n    Path ${CONF_DIR}/a.log\n"
    assert with_fallback({}, section) == "/etc/edge/a.log"
    assert with_fallback({"CONF_DIR": ""}, section) == "/etc/edge/a.log"
    assert with_fallback({"CONF_DIR": "/env"}, section) == "/env/a.log"
    assert with_fallback({"CONF_DIR": "/env"}, section + "@SET CONF_DIR=/set\n") == "/set/a.log"


def test_include_relative_glob_and_own_indent():
    sections = read({
        "/etc/main.conf": "@INCLUDE inputs.conf\n@include conf.d/*.conf\n[SERVICE]\n    Flush 1\n",
        "/etc/inputs.conf": "[INPUT]\n  Name dummy\n",
        "/etc/conf.d/a.conf": "[OUTPUT]\n\tName null\n\tMatch *\n",
    })
    assert [s.kind for s in sections] == ["INPUT", "OUTPUT", "SERVICE"]
    assert sections[1].entries[0].file == "/etc/conf.d/a.conf"


def test_include_errors_name_the_line():
    err = error_of({"/etc/main.conf": "[SERVICE]\n    Flush 1\n@INCLUDE nope/*.conf\n"})
    assert err.line == 3 and "no match" in err.message
    err = error_of({"/etc/main.conf": "@INCLUDE missing.conf\n"})
    assert err.line == 1 and err.file == "/etc/main.conf"
    err = error_of({"/etc/main.conf": "[SERVICE]\n    Flush 1\n@INCLUDE a.conf\n@INCLUDE a.conf\n",
                    "/etc/a.conf": "\n"})
    assert "more than once" in err.message and err.line == 4


def test_a_deep_include_chain_reads_without_recursion():
    # Deeper than any interpreter's recursion limit (CPython 1000, MicroPython far less).
    depth = 990
    files = {"/etc/main.conf": "@INCLUDE c0.conf\n[OUTPUT]\n    Name null\n"}
    for i in range(depth):
        files["/etc/c%d.conf" % i] = "@INCLUDE c%d.conf\n[INPUT]\n  Name in%d\n" % (i + 1, i)
    files["/etc/c%d.conf" % depth] = "[INPUT]\n\tName last\n"
    sections = read(files)
    # The deepest file's sections come first: each include is read where its line stands.
    names = [s.get("name") for s in sections]
    assert names == ["last"] + ["in%d" % i for i in range(depth - 1, -1, -1)] + ["null"]
    assert sections[0].file == "/etc/c%d.conf" % depth and sections[0].line == 1
    # After its includes, each file goes on with its own indent and section.
    files["/etc/c0.conf"] = "[INPUT]\n  Name first\n@INCLUDE c1.conf\n  Tag after\n"
    sections = read(files)
    first = [s for s in sections if s.get("name") == "first"][0]
    assert first.get("tag") == "after" and first.entry("tag").line == 4


def test_one_rule_for_relative_paths():
    # Fluent Bit: as given when something is there (the current directory), else from the
    # main config file's directory; absolute paths and configs without a directory as is.
    files = MemFiles({"here.conf": "", "/etc/there.conf": ""})
    assert locate(files, "here.conf", "/etc") == "here.conf"
    assert locate(files, "there.conf", "/etc") == "/etc/there.conf"
    assert locate(files, "/abs.conf", "/etc") == "/abs.conf"
    assert locate(files, "there.conf", "") == "there.conf"


def test_other_files_share_the_main_files_set_variables_and_path_rule():
    """An upstream (or parsers) file is read by the reader of the main file: its @SET
    values expand there, and its relative path follows the one rule."""
    reader = ClassicReader(MemFiles({
        "/etc/main.conf": "@SET PORT=24225\n[INPUT]\n    Name dummy\n",
        "/etc/up.conf": "[UPSTREAM]\n    Name u\n[NODE]\n    Name n\n    Port ${PORT}\n",
    }), Variables({}))
    reader.read_main("/etc/main.conf")
    sections = reader.read_other("up.conf", UPSTREAM_SECTIONS)
    assert sections[1].get("port") == "24225" and sections[1].file == "/etc/up.conf"
    # A second output naming the same file reads it again: no "included more than once".
    assert reader.read_other("up.conf", UPSTREAM_SECTIONS)[1].get("port") == "24225"


def test_too_many_included_files_is_an_error_at_the_line():
    files = {"/etc/main.conf": "@INCLUDE c0.conf\n"}
    for i in range(1200):
        files["/etc/c%d.conf" % i] = "@INCLUDE c%d.conf\n" % (i + 1)
    err = error_of(files)
    assert "more than 1000 included files" in err.message
    assert err.file == "/etc/c998.conf" and err.line == 1


def test_include_cycle_names_the_chain_and_the_line():
    err = error_of({"/etc/main.conf": "[SERVICE]\n    Flush 1\n@INCLUDE a.conf\n",
                    "/etc/a.conf": "\n@INCLUDE b.conf\n",
                    "/etc/b.conf": "@INCLUDE a.conf\n"})
    assert err.file == "/etc/b.conf" and err.line == 1
    assert "cycle" in err.message and "/etc/a.conf -> /etc/b.conf -> /etc/a.conf" in err.message
    err = error_of({"/etc/main.conf": "@INCLUDE main.conf\n"})
    assert "cycle" in err.message and err.line == 1


class BadPaths(MemFiles):
    """Paths the operating system refuses, as edgeship.core.files reports them."""

    def read(self, path):
        if path.endswith("dir"):
            raise OSError(21, "Is a directory")
        if path.endswith("fifo"):
            raise OSError(22, "not a regular file (a FIFO, socket or device)")
        return MemFiles.read(self, path)

    def identity(self, path):
        if len(path) > 255:
            raise OSError(36, "File name too long")
        if path.endswith("dir") or path.endswith("fifo"):
            return path
        return MemFiles.identity(self, path)

    def glob(self, pattern):
        if "[" in pattern:
            raise OSError(22, "bad pattern")
        return MemFiles.glob(self, pattern)


def test_every_path_error_is_a_config_error_at_the_line():
    for include, reason in (("conf.dir", "Is a directory"), ("/run/fifo", "FIFO"),
                            ("x" * 300, "too long"), ("[*", "bad pattern")):
        files = BadPaths({"/etc/main.conf": "[SERVICE]\n    Flush 1\n@INCLUDE %s\n" % include})
        try:
            ClassicReader(files, Variables({})).read_main("/etc/main.conf")
        except ConfigError as exc:
            assert exc.file == "/etc/main.conf" and exc.line == 3, include
            assert reason in exc.message and include[:20] in exc.message
        else:
            raise AssertionError("no ConfigError for %s" % include)
    # A parsers or upstream file: the error names the entry that named it.
    reader = ClassicReader(BadPaths({}), Variables({}))
    try:
        reader.read_other("/etc/parsers.dir", PARSER_SECTIONS, ("/etc/main.conf", 7, "parsers_file"))
    except ConfigError as exc:
        assert (exc.file, exc.line, exc.key) == ("/etc/main.conf", 7, "parsers_file")
        assert "/etc/parsers.dir" in exc.message and "Is a directory" in exc.message
    else:
        raise AssertionError("no ConfigError")


def test_a_nul_byte_is_refused_at_its_line():
    for text, line in (("@INCLUDE a\0b.conf\n", 1),
                       ("[SERVICE]\n    Flush 1\n    Parsers_File p\0.conf\n", 3),
                       ("[INPUT]\n    Name dummy\n\0\n", 3)):
        err = error_of({"/etc/main.conf": text})
        assert err.line == line and "NUL" in err.message, text


def test_an_error_is_one_line_whatever_its_text_holds():
    err = ConfigError("bad\nvalue\r\u2028x", "/etc/a\nb.conf", 3, "k")
    text = str(err)
    assert "\n" not in text and "\r" not in text and "\u2028" not in text
    assert text.startswith("/etc/a\\u000ab.conf:3: key 'k': bad")


def test_missing_main_file():
    err = error_of({})
    assert err.file == "/etc/main.conf" and "could not open" in err.message


def test_expand_default_and_unterminated():
    look = {"A": "1"}.get
    assert expand("x${A}y${B:-2}z", look) == "x1y2z"
    try:
        expand("${A", look, "f", 3, "k")
    except ConfigError as exc:
        assert exc.line == 3 and exc.key == "k"
    else:
        raise AssertionError("no error")


def test_main_sections_constant():
    assert "PARSER" not in MAIN_SECTIONS
