"""edgeship.text.onigmo: Onigmo (Ruby syntax) patterns as Python re, with Fluent Bit's options."""
import pytest

from edgeship.text.onigmo import capture_fields, compile_onigmo, split_delimiters


def fields(pattern, text):
    regex = compile_onigmo(pattern)
    match = regex.search(text)
    return {name: [match.group(n) for n in numbers]
            for name, numbers in capture_fields(regex)} if match else None


def test_named_groups_and_plain_groups():
    assert fields(r"^(?<a>\w+) (x|y) (?'b'\d+)$", "hi y 42") == {"a": ["hi"], "b": ["42"]}
    # with named groups, plain parentheses do not capture (Ruby)
    assert compile_onigmo(r"(?<a>x)(y)").groups == 1
    assert compile_onigmo(r"(x)(y)").groups == 2
    assert fields(r"(?<v>a)|(?<v>b)", "b") == {"v": [None, "b"]}
    assert fields(r"(?<w>o+)\k<w>", "oooo") == {"w": ["oo"]}


def test_delimiters_and_options():
    assert split_delimiters("/abc/i") == ("abc", "i")
    assert split_delimiters("/abc/") == ("abc", "")
    assert split_delimiters("/var/log/app.log") == ("/var/log/app.log", "")
    assert split_delimiters("/abc/o") == ("/abc/o", "")
    assert compile_onigmo("/ab.c/m").search("AB\nc") is None
    assert compile_onigmo("/ab.c/mi").search("AB\nc")
    assert compile_onigmo("/a b # comment\n/x").search("ab")


def test_line_anchors_and_string_anchors():
    regex = compile_onigmo(r"^b$")
    assert regex.search("a\nb\nc")
    assert compile_onigmo(r"\Ab\z").search("a\nb") is None
    assert compile_onigmo(r"b\Z").search("ab\n")
    assert compile_onigmo(r"b\z").search("ab\n") is None


def test_ruby_escapes_and_classes():
    assert compile_onigmo(r"^\h+$").search("00ff") and not compile_onigmo(r"^\h+$").search("g")
    assert compile_onigmo(r"[\h-]+").fullmatch("a-f")
    assert compile_onigmo(r"[[:alpha:]]+[[:digit:]]").fullmatch("abc1")
    assert compile_onigmo(r"[a-c[x-z]]+").fullmatch("axbz")
    assert compile_onigmo(r"\d").search("\u0663") is None   # ASCII digits, as in Ruby
    assert compile_onigmo(r"\x{41}\e").search("A\x1b")
    assert compile_onigmo(r"a\Rb").search("a\r\nb")
    assert compile_onigmo(r"[+--]").fullmatch("-")


def test_inline_options_apply_to_the_rest_of_their_group():
    assert compile_onigmo(r"a(?i)b").fullmatch("aB")
    assert compile_onigmo(r"(a(?i)b)c").fullmatch("aBc")
    assert compile_onigmo(r"(a(?i)b)c").fullmatch("aBC") is None
    assert compile_onigmo(r"(?m:a.b)").fullmatch("a\nb")


@pytest.mark.parametrize("pattern", [r"^(?<ts>[^ ]+ (?<msg>.*$", r"[abc", r"\g<x>", r"[a&&b]",
                                     r"\p{Alpha}", r"(?<1a>x)", "a\\"])
def test_invalid_or_unsupported_patterns_raise_value_error(pattern):
    with pytest.raises(ValueError):
        compile_onigmo(pattern)
