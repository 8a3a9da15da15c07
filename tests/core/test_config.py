"""Classic config reader rules (reference section 1), with an in-memory file system."""
from edgeship.core.config import MAIN_SECTIONS, PARSER_SECTIONS, ClassicReader, Variables, expand
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
    err = error_of({"/etc/main.conf": "[BOGUS]\n    Name x\n"})
    assert "unknown section" in err.message and err.line == 1


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
    err = error_of({"/etc/main.conf": "@INCLUDE main.conf\n"})
    assert "more than once" in err.message


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
