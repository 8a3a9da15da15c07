"""Fluent Bit record accessors (flb_record_accessor.c, ra.l, ra.y).

An accessor names a value inside a record: ``$key``, ``$key['sub']['subsub']``, ``$key[0]``.
A template mixes literal text with accessors, ``$TAG``, ``$TAG[n]`` (the tag split on '.')
and regex captures ``$0``..``$9``; rewrite_tag builds its new tag from one.

    acc = accessor("$kubernetes['labels']['app']")
    acc.get(record)                 # the value, or None when a step is missing
    acc.lookup(record)              # the value, or MISSING (tells a missing key from null)
    Template("review.$TAG.$svc").render(record, tag="app")   # "review.app.api"

Quirks kept from Fluent Bit: text that does not start with ``$`` names one top-level key
literally (``Key_exists user``); a key name stops at '.', ' ', ',' or '"' outside quotes, so
``$log.level`` reads ``log`` followed by the text ``.level``; subkeys use single quotes only
(a doubled '' is a quote); a character the lexer does not know is skipped, as flex does.
Pure logic: runs on MicroPython too.
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
        for step in self.path:
            if value is MISSING:
                return MISSING
            if isinstance(step, int):
                if not isinstance(value, list) or step >= len(value):
                    return MISSING
                value = value[step]
            else:
                if not isinstance(value, dict):
                    return MISSING
                value = value.get(step, MISSING)
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
    return _is_ident_start(c) or ("0" <= c <= "9") or c == "."


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


def parse_template(text):
    """Split ``text`` into parts (kind, value) as ra_parse_buffer does."""
    parts = []
    pre = 0
    i = 0
    n = len(text)
    while i < n:
        if text[i] != "$" or i + 1 >= n:
            i += 1
            continue
        if i > pre:
            parts.append((TEXT, text[pre:i]))
        nxt = i + 1
        if "0" <= text[nxt] <= "9":
            j = nxt
            while j < n and "0" <= text[j] <= "9":
                j += 1
            # atoi reads every digit, but only one character is consumed ($10 -> $10 + "0")
            parts.append((CAPTURE, int(text[nxt:j])))
            i = pre = nxt + 1
            continue
        if text.startswith("TAG", nxt):
            after = nxt + 3
            if after < n and text[after] == "[":
                close = text.find("]", after)
                if close > after:
                    digits = ""
                    for c in text[after + 1:close]:
                        if not ("0" <= c <= "9"):
                            break
                        digits += c
                    parts.append((TAG_PART, int(digits) if digits else 0))
                    i = pre = close + 1
                    continue
            parts.append((TAG, None))
            i = pre = after
            continue
        end = _key_end(text, i)
        parts.append((KEY, parse_key(text[i:end])))
        i = pre = end
    if pre < n:
        parts.append((TEXT, text[pre:]))
    return parts


def to_text(value):
    """A value as Fluent Bit writes it into a template (ra_translate_keymap)."""
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
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


class Template:
    """Text with accessors, $TAG, $TAG[n] and $0..$9 in it."""

    def __init__(self, text):
        self.text = text
        self.parts = parse_template(text)
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
                    out.append(to_text(found))
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
                    if value < len(pieces):
                        out.append(pieces[value])
        return "".join(out)


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
