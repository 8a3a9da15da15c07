"""Issue 14's conformance list, each case run on the Fluent Bit 5.1.1 binary (dummy or tail
-> filter -> stdout json_lines) and its records written here: record accessors on nested
maps and array indexes in grep Regex/Exclude and the parser filter's Key_Name, Logical_Op
with accessors, logfmt values with escaped quotes, CRLF line endings with each parser."""
import json

import pytest
from conftest import run_edgeship
from filter_helpers import plugin, run, section

from edgeship.core.errors import ConfigError

RECORD = {"a": {"b": ["xyz", 5, True], "c": {"d": "hello", "x y": "sp"}}, "n": 12, "f": 1.5,
          "t": True, "z": None}
OTHER = {"a": {"b": ["no", "q"], "c": {"d": "bye"}}, "n": 2}

# (grep lines, does RECORD pass, does OTHER pass), as Fluent Bit 5.1.1 decided.
GREP_CASES = [
    (["Regex $a['b'][0] ^x"], True, False),
    (["Exclude $a['c']['d'] hel"], False, True),
    (["Regex $a['b'][1] 5"], False, False),         # numbers never match
    (["Regex $a['b'][2] true"], False, False),      # nor booleans
    (["Regex n ^12$"], False, False),
    (["Regex $a['b'] xyz"], False, False),          # nor arrays
    (["Regex a hello"], False, False),              # nor maps
    (["Regex a['c']['d'] hello"], True, False),     # grep adds the '$' itself
    (["Exclude $a['q'] .*"], True, True),           # a missing value never matches
    (["Regex $a['b'][0] ^(xyz|no)$", "Regex $a['c']['d'] hello", "Logical_Op and"],
     True, False),
    (["Exclude $a['b'][0] xyz", "Exclude $a['c']['d'] bye", "Logical_Op or"], False, False),
    (["Regex $a['b'][9] .", "Regex $a['c']['d'] bye", "Logical_Op or"], False, True),
]


def test_grep_accessors_as_fluent_bit(tmp_path):
    for lines, record_passes, other_passes in GREP_CASES:
        flt = plugin(tmp_path, section("grep", *lines))
        assert run(flt, [RECORD, OTHER]) == \
            [r for r, ok in ((RECORD, record_passes), (OTHER, other_passes)) if ok], lines
    # The key ends at the first space: Fluent Bit refuses the cut accessor too.
    with pytest.raises(ConfigError, match="record accessor"):
        plugin(tmp_path, section("grep", "Regex $a['c']['x y'] sp"))


PARSERS = """[PARSER]
    Name kv
    Format logfmt
[PARSER]
    Name js
    Format json
[PARSER]
    Name re
    Format regex
    Regex ^(?<msg>.*)$
[PARSER]
    Name re2
    Format regex
    Regex ^(?<k>\\w+)=(?<v>.*)$
"""
SOURCE = {"a": {"b": ['k=1 m="x y"', '{"j":2}'], "c": {"d": "k=2"}}, "log": "k=3"}


def test_parser_filter_key_name_accessors_as_fluent_bit(tmp_path):
    cases = [
        (("Key_Name $a['c']['d']", "Parser kv", "Reserve_Data on"), [dict({"k": "2"}, **SOURCE)]),
        (("Key_Name $a['c']['d']", "Parser kv"), [{"k": "2"}]),
        (("Key_Name $a['b'][0]", "Parser kv"), [{"k": "1", "m": "x y"}]),
        (("Key_Name $a['b'][1]", "Parser js", "Reserve_Data on", "Preserve_Key on"),
         [dict({"j": 2}, **SOURCE)]),
    ]
    for lines, expected in cases:
        flt = plugin(tmp_path, section("parser", *lines), parsers=PARSERS)
        assert run(flt, [SOURCE]) == expected, lines


def tail_records(tmp_path, data, parser):
    (tmp_path / "in.log").write_bytes(data)
    (tmp_path / "parsers.conf").write_text(PARSERS)
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[SERVICE]\n    Flush 0.1\n    Parsers_File parsers.conf\n"
                    "[INPUT]\n    Name tail\n    Path %s\n    Read_From_Head on\n"
                    "    Exit_On_Eof on\n%s"
                    "[OUTPUT]\n    Name file\n    Match *\n    Path %s\n    Format plain\n"
                    % (tmp_path / "in.log", "    Parser %s\n" % parser if parser else "",
                       tmp_path))
    (tmp_path / "tail.0").unlink() if (tmp_path / "tail.0").exists() else None
    proc = run_edgeship(["-c", str(conf)])
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in (tmp_path / "tail.0").read_text().splitlines()]


def test_logfmt_escaped_quotes_as_fluent_bit(tmp_path):
    lines = ['a="x\\\\" b=2', 'b="\\"q\\"" c=3', 'c="unterminated d=4', 'e="a\\nb" f=\\"g',
             'm="a\\"b\\"c"']
    assert tail_records(tmp_path, "\n".join(lines).encode() + b"\n", "kv") == [
        {"a": "x\\", "b": "2"}, {"b": '"q"', "c": "3"}, {"c": "unterminated d=4"},
        {"e": "a\nb", "f": "\\", "g": True}, {"m": 'a"b"c'}]


def test_crlf_lines_with_each_parser_as_fluent_bit(tmp_path):
    data = b'k=1 m=a\r\n{"j":"x"}\r\nplain\r\n\r\nlast=1\r\n'
    expected = {
        "kv": [{"k": "1", "m": "a"}, {"{": True, "j": True, ":": True, "x": True, "}": True},
               {"plain": True}, {"log": "\r"}, {"last": "1"}],
        "js": [{"log": "k=1 m=a\r"}, {"j": "x"}, {"log": "plain\r"}, {"log": "\r"},
               {"log": "last=1\r"}],
        "re": [{"msg": "k=1 m=a"}, {"msg": '{"j":"x"}'}, {"msg": "plain"}, {"msg": "\r"},
               {"msg": "last=1"}],
        "re2": [{"k": "k", "v": "1 m=a"}, {"log": '{"j":"x"}\r'}, {"log": "plain\r"},
                {"log": "\r"}, {"k": "last", "v": "1"}],
        None: [{"log": "k=1 m=a"}, {"log": '{"j":"x"}'}, {"log": "plain"}, {"log": "\r"},
               {"log": "last=1"}],
    }
    for parser, records in expected.items():
        assert tail_records(tmp_path, data, parser) == records, parser
