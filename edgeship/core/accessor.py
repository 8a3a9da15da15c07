"""Fluent Bit record accessors and templates (flb_record_accessor.c, flb_ra_key.c, ra.l,
ra.y): the one engine behind every option that names a record value or renders text from
one (grep/modify/expect/type_converter keys, parser Key_Name, rewrite_tag NEW_TAG, the
forward output's Tag, the mqtt output's Topic, the mqtt_client input's ``$TOPIC`` tag).

An accessor names a value inside a record: ``$key``, ``$key['sub']['subsub']``, ``$key[0]``.
A template mixes literal text with accessors, ``$TAG``, ``$TAG[n]`` (the tag split on '.')
and regex captures ``$0``..``$9``.

    acc = accessor("$kubernetes['labels']['app']")
    acc.get(record)                 # the value, or None when a step is missing
    acc.lookup(record)              # the value, or MISSING (tells a missing key from null)
    Template("review.$TAG.$svc").render(record, tag="app")   # "review.app.api"

Behaviour of Fluent Bit 5.1.1, checked on the real binary:
- A key name is ``[_A-Za-z][A-Za-z0-9_.-/]*``: ``$my-key`` and ``$id/temp`` are one key
  each. In a template a key stops at '.', ' ', ',' or '"' outside quotes, so ``$log.level``
  reads ``log`` followed by the text ``.level``. Subkeys use single quotes (a doubled ''
  is a quote); a character the lexer does not know is skipped, as flex does; anything
  else (``$``, ``$a-$b``, ``$k[``) is an invalid accessor: a config error.
- Text that does not start with ``$`` names one top-level key literally (``Key_exists
  user``).
- Subkeys apply only when the key's value is a map or an array; on any other value the
  value itself is found (``$log['x']`` with ``log`` a string is that string). A missing
  step, an index past the end, a map step on an array, is missing.
- Rendered: strings as they are, true/false, null, integers ``%d``, floats ``%f``, maps as
  their JSON, bytes as hex; an array, a missing key or capture adds nothing. ``$TAG[n]``
  past the last part adds nothing; ``$TAG[0]`` of a tag without dots is the whole tag.
  Callers decide what an empty result means (the forward output then keeps the record's
  tag, the mqtt output writes ``_``, rewrite_tag keeps the record).
- Parsing quirks kept so a template renders the same text: ``$10`` is capture 1 then
  ``0``; ``$TAG[n`` without ``]`` is part n then the text ``[n``; one character left
  after the last key (``app.$svc.``) is dropped; a ``$`` ending the text is dropped.

Maps are rendered by ``map_text`` (default: the json module); CPython code builds its
templates with ``edgeship.codecs.formats.record_template``, which renders them with Fluent
Bit's JSON. Pure logic: runs on MicroPython too.
"""
import json

MISSING = object()

# Template part kinds.
TEXT, KEY, CAPTURE, TAG, TAG_PART = "text", "key", "capture", "tag", "tag_part"


class Accessor:
    """A top-level key and a path of subkeys (str for maps, int for arrays)."""

    def __init__(self, key, path=(), pattern=None):
        self.key = key
        self.path = tuple(path)
        self.pattern = pattern if pattern is not None else key

    def lookup(self, record):
        """The value, or MISSING when the key or a step of the path is absent."""
        value = record.get(self.key, MISSING) if isinstance(record, dict) else MISSING
        if not self.path or not isinstance(value, (dict, list)):
            return value            # flb_ra_key: subkeys only apply to maps and arrays
        for step in self.path:
            if isinstance(step, int):
                if not isinstance(value, list) or step >= len(value):
                    return MISSING
                value = value[step]
            else:
                if not isinstance(value, dict):
                    return MISSING
                value = value.get(step, MISSING)
                if value is MISSING:
                    return MISSING
        return value

    def get(self, record, default=None):
        value = self.lookup(record)
        return default if value is MISSING else value

    def __repr__(self):
        return "Accessor(%r)" % self.pattern


# ---------------------------------------------------------------------------------- lexer
def _is_ident_start(c):
    return c == "_" or ("a" <= c <= "z") or ("A" <= c <= "Z")


def _is_ident_char(c):
    return _is_ident_start(c) or ("0" <= c <= "9") or c in ".-/"


def _tokens(text):
    """ra.l: INTEGER, STRING ('...' with '' for a quote), IDENTIFIER and the punctuation
    '$', '[', ']'; blanks are ignored and unknown characters skipped."""
    out = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c in " \t\n":
            i += 1
        elif "0" <= c <= "9":
            if c == "0":
                out.append(("int", 0))
                i += 1
                continue
            j = i
            while j < n and "0" <= text[j] <= "9":
                j += 1
            out.append(("int", int(text[i:j])))
            i = j
        elif c == "'":
            j = i + 1
            chars = []
            while j < n:
                if text[j] == "'":
                    if j + 1 < n and text[j + 1] == "'":
                        chars.append("'")
                        j += 2
                        continue
                    break
                chars.append(text[j])
                j += 1
            if j >= n:
                raise ValueError("unterminated quote in record accessor '%s'" % text)
            out.append(("str", "".join(chars)))
            i = j + 1
        elif _is_ident_start(c):
            j = i + 1
            while j < n and _is_ident_char(text[j]):
                j += 1
            out.append(("ident", text[i:j]))
            i = j
        elif c in "$[],.;":
            out.append((c, c))
            i += 1
        else:
            i += 1  # flex's default rule: report and skip
    return out


def parse_key(text):
    """``$key['sub'][0]`` -> Accessor; ValueError when it does not follow ra.y."""
    toks = _tokens(text)
    if len(toks) < 2 or toks[0][0] != "$" or toks[1][0] != "ident":
        raise ValueError("invalid record accessor '%s': expected $key, $key['sub'] or "
                         "$key[0]" % text)
    path = []
    i = 2
    while i < len(toks):
        if (i + 2 < len(toks) and toks[i][0] == "[" and toks[i + 2][0] == "]"
                and toks[i + 1][0] in ("str", "int")):
            path.append(toks[i + 1][1])
            i += 3
            continue
        raise ValueError("invalid record accessor '%s': unexpected '%s'"
                         % (text, toks[i][1]))
    return Accessor(toks[1][1], path, text)


# ------------------------------------------------------------------------------- templates
def _key_end(text, start):
    """Where a ``$key...`` reference ends: at '.', ' ', ',' or '"' outside a quoted subkey."""
    quotes = 0
    end = start + 1
    while end < len(text):
        c = text[end]
        if c == "'":
            quotes += 1
        elif c == "." and quotes % 2 == 1:
            pass
        elif c in '. ,"':
            break
        end += 1
    return end


def _atoi(text):
    """C atoi: blanks, a sign, then digits; 0 when there are none."""
    i = 0
    n = len(text)
    while i < n and text[i] in " \t\n\r\f\v":
        i += 1
    sign = 1
    if i < n and text[i] in "+-":
        sign = -1 if text[i] == "-" else 1
        i += 1
    j = i
    while j < n and "0" <= text[j] <= "9":
        j += 1
    return sign * int(text[i:j]) if j > i else 0


def parse_template(text):
    """Split ``text`` into parts (kind, value) exactly as ra_parse_buffer does, including
    where it resumes after a part (the character after ``$TAG`` or ``$TAG[n]`` is never
    read as a new ``$``) and which tail text it keeps."""
    parts = []
    n = len(text)
    pre = 0
    end = 0         # ra_parse_buffer's 'end': it decides whether the tail text is kept
    i = 0
    while i < n:
        if text[i] != "$":
            i += 1
            continue
        if i > pre:
            parts.append((TEXT, text[pre:i]))
        pre = i
        nxt = i + 1
        if nxt >= n:
            break           # a '$' ending the text
        if "0" <= text[nxt] <= "9":
            # atoi reads every digit, but only one character is consumed ($10 -> $1 + "0")
            parts.append((CAPTURE, _atoi(text[nxt:])))
            pre = nxt + 1
            i = nxt + 1
            continue
        if text.startswith("TAG", nxt):
            if nxt + 4 < n:
                end = -1
                if text[nxt + 3] == "[":
                    bracket = nxt + 3
                    close = text.find("]", bracket)
                    end = close - bracket if close >= 0 else -1
                    parts.append((TAG_PART, _atoi(text[bracket + 1:])))
                    pre = bracket + end + 1
                    i = pre + 1
                    continue
            parts.append((TAG, None))
            pre = nxt + 3
            i = pre + 1
            continue
        end = _key_end(text, i)
        parts.append((KEY, parse_key(text[i:end])))
        pre = end
        i = end + 1
    # The tail: kept when it runs past the last key by more than one character (or the
    # whole template is one character and a '$').
    if ((i - 1 > end and pre < i) or i == 1) and pre < n:
        parts.append((TEXT, text[pre:]))
    return parts


def to_text(value, map_text=None):
    """A value as Fluent Bit writes it into a template (ra_translate_keymap), or None when
    it writes nothing (an array)."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return "%d" % value
    if isinstance(value, float):
        return "%f" % value
    if isinstance(value, dict):
        if map_text is not None:
            return map_text(value)
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, (bytes, bytearray)):
        return "".join(["%02x" % b for b in value])
    if isinstance(value, list):
        return None     # "[ra key] cannot process key value"
    return str(value)


class Template:
    """Text with accessors, $TAG, $TAG[n] and $0..$9 in it. ``map_text(dict) -> str``
    renders a map value (see the module docstring)."""

    def __init__(self, text, map_text=None):
        self.text = text
        self.parts = parse_template(text)
        self.map_text = map_text
        self.is_static = True
        for kind, _ in self.parts:
            if kind in (KEY, CAPTURE):
                self.is_static = False

    def render(self, record, tag=None, match=None):
        """The text for ``record``; a missing key or capture adds nothing."""
        out = []
        for kind, value in self.parts:
            if kind == TEXT:
                out.append(value)
            elif kind == KEY:
                found = value.lookup(record)
                if found is not MISSING:
                    found = to_text(found, self.map_text)
                    if found is not None:
                        out.append(found)
            elif kind == CAPTURE:
                if match is not None:
                    try:
                        group = match.group(value)
                    except IndexError:
                        group = None
                    if group is not None:
                        out.append(group)
            elif tag is not None:
                if kind == TAG:
                    out.append(tag)
                else:
                    pieces = tag.split(".")
                    if 0 <= value < len(pieces):
                        out.append(pieces[value])
        return "".join(out)


    def render_checked(self, record, tag=None):
        """The text for ``record``, or None when one of its keys is missing from it
        (flb_ra_translate_check: the caller falls back to a fixed name)."""
        for kind, value in self.parts:
            if kind == KEY and value.lookup(record) is MISSING:
                return None
        return self.render(record, tag)


def accessor(text):
    """The single value a pattern names, as flb_ra_get_kv_pair reads it: the first part of
    the template. Text without a leading ``$`` is one literal top-level key. Returns None
    when the first part is no key ($TAG, $0); raises ValueError on a bad accessor."""
    parts = parse_template(text)
    if not parts:
        return None
    kind, value = parts[0]
    if kind == TEXT:
        return Accessor(value)
    if kind == KEY:
        return value
    return None
