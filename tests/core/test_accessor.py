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
    assert accessor("$k8s['labels']['app']['x']").lookup(RECORD) is MISSING  # "pay" is no map
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


def test_subkeys_of_a_value_that_is_no_map_or_array_find_the_value():
    # flb_ra_key: subkeys apply only when the key's value is a map or an array (checked on
    # Fluent Bit 5.1.1: grep Regex $log['sub'] ^x$ keeps {"log": "x"}).
    assert accessor("$log['sub']").lookup(RECORD) == "x"
    assert accessor("$log[3]['a']").get(RECORD) == "x"


def test_dash_and_slash_belong_to_key_names():
    # ra.l: IDENTIFIER is [_A-Za-z][A-Za-z0-9_.-/]*; $my-key and $id/temp read one key each
    assert accessor("$x-req-id").key == "x-req-id"
    assert accessor("$id/temp").get({"id/temp": 5}) == 5
    assert accessor("$m['a']").key == "m" and parse_key("$a-b['c-d']").path == ("c-d",)


def test_bad_accessors_raise():
    assert raises_value_error(parse_key, "$a|$b")           # '|' skipped: '$' 'a' '$' 'b'
    assert raises_value_error(parse_key, "$k['unterminated")
    assert raises_value_error(parse_key, "$k[")
    assert raises_value_error(parse_key, "$")


def test_unknown_character_is_skipped_like_flex():
    assert parse_key("$key|").key == "key" and parse_key("$key-").key == "key-"


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
    assert to_text(b"\x00\xff") == "00ff"        # binary: hex, as ra_translate_keymap
    assert to_text([1, 2]) is None                  # an array writes nothing


# What Fluent Bit 5.1.1 wrote for rewrite_tag's NEW_TAG with tag app.web.x and this record
# (run on the real binary; the template is cut at spaces by the Rule, so none appear).
FB_RECORD = {"log": "x", "my-key": "dash", "id/temp": "slash", "m": {"a": 1, "b": "x"},
             "l": [1, 2], "n": None, "s": "str", "f": 1.5, "t": True, "e": ""}
FB_RENDERED = {
    "A,$my-key,$m,$l,$n,$missing,$TAG[1],$TAG[7],$s['x'],$f,$t,$e,$m['a'],$id/temp,Z":
        'A,dash,{"a":1,"b":"x"},,null,,web,,str,1.500000,true,,1,slash,Z',
    "A.$log.": "A.x",                 # one character after the last key is dropped
    "$log,": "x",
    "Z$log..": "Zx..",
    "A.$log.x": "A.x.x",
    "A$": "A$",
    "q.$TAG.": "q.app.web.x.",
    "q.$TAG[1].": "q.web.",
    "A.$TAG[1": "A.web[1",            # no ']': part 1, then the text from '['
    "$TAG$TAG": "app.web.x$TAG",      # the character after $TAG is never a new '$'
    "$TAG[0]$TAG[1]": "app$TAG[1]",
    "x.$TAG[1]$log": "x.web$log",
}


def test_templates_render_what_fluent_bit_renders():
    for text, want in FB_RENDERED.items():
        assert Template(text).render(FB_RECORD, tag="app.web.x") == want, text


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
