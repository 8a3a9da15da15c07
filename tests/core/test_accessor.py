"""Record accessors and templates (edgeship/core/accessor.py); runs under MicroPython too."""
from edgeship.core.accessor import (CAPTURE, KEY, MISSING, TAG, TAG_PART, TEXT, Template,
                                    accessor, parse_key, parse_template, to_text)

RECORD = {"log": "x", "k8s": {"labels": {"app": "pay"}, "ports": [80, 443], "n": None},
          "a.b": 1, "list": [{"x": "deep"}]}


def raises_value_error(fn, *args):
    try:
        fn(*args)
    except ValueError:
        return True
    return False


def test_top_level_key():
    acc = accessor("$log")
    assert acc.key == "log" and acc.path == ()
    assert acc.get(RECORD) == "x"


def test_nested_map_and_array_steps():
    assert accessor("$k8s['labels']['app']").get(RECORD) == "pay"
    assert accessor("$k8s['ports'][1]").get(RECORD) == 443
    assert accessor("$list[0]['x']").get(RECORD) == "deep"


def test_missing_steps_are_missing_not_errors():
    assert accessor("$k8s['labels']['nope']").lookup(RECORD) is MISSING
    assert accessor("$k8s['ports'][5]").lookup(RECORD) is MISSING
    assert accessor("$log['sub']").lookup(RECORD) is MISSING      # a string is no map
    assert accessor("$k8s[0]").lookup(RECORD) is MISSING          # a map is no array
    assert accessor("$nope").get(RECORD, "dflt") == "dflt"


def test_null_value_is_found():
    assert accessor("$k8s['n']").lookup(RECORD) is None


def test_plain_text_is_one_literal_key():
    # Fluent Bit: a pattern without '$' names a top-level key literally (modify conditions)
    acc = accessor("a.b")
    assert acc.key == "a.b" and acc.get(RECORD) == 1


def test_key_name_stops_at_dot_outside_quotes():
    # "$log.level" reads "log" (the rest is template text), as Fluent Bit cuts at '.'
    assert accessor("$log.level").key == "log"
    assert accessor("$k8s['a.b']").path == ("a.b",)


def test_doubled_quote_in_subkey():
    assert parse_key("$m['it''s']").path == ("it's",)


def test_bad_accessors_raise():
    assert raises_value_error(parse_key, "$x-req-id")       # '-' skipped: two identifiers
    assert raises_value_error(parse_key, "$k['unterminated")
    assert raises_value_error(parse_key, "$k[")
    assert raises_value_error(parse_key, "$")


def test_unknown_character_at_the_end_is_skipped_like_flex():
    assert parse_key("$key-").key == "key"


def test_tag_and_captures_are_not_keys():
    assert accessor("$TAG") is None
    assert accessor("$1") is None


def test_template_parts():
    parts = parse_template("review.$TAG.$svc")
    assert parts[0] == (TEXT, "review.")
    assert parts[1] == (TAG, None)
    assert parts[2] == (TEXT, ".")
    assert parts[3][0] == KEY and parts[3][1].key == "svc"
    assert parse_template("$TAG[2]x") == [(TAG_PART, 2), (TEXT, "x")]
    assert parse_template("a$1b") == [(TEXT, "a"), (CAPTURE, 1), (TEXT, "b")]


def test_template_render_tag_parts_and_missing_keys():
    tpl = Template("$TAG[0]-$TAG[1]-$TAG[9].$missing.$log")
    assert tpl.render(RECORD, tag="app.web") == "app-web-..x"
    # a key runs to the next '.', ' ', ',' or '"': "$a-$b" is one (invalid) key
    assert raises_value_error(Template, "$a-$b")
    assert Template("$TAG[0]").render({}, tag="nodots") == "nodots"


def test_template_values_as_text():
    assert to_text(True) == "true" and to_text(None) == "null"
    assert to_text(7) == "7" and to_text(1.5) == "1.500000"
    assert to_text({"a": 1}) == '{"a":1}'


class FakeMatch:
    def __init__(self, groups):
        self.groups = groups

    def group(self, n):
        if n >= len(self.groups):
            raise IndexError(n)
        return self.groups[n]


def test_template_captures():
    tpl = Template("alert.$1.$2.$3")
    assert tpl.render({}, match=FakeMatch(["error", "error", None])) == "alert.error.."
    assert not tpl.is_static and Template("x.$TAG").is_static
