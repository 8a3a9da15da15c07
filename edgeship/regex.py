"""Fluent Bit's regexes are Onigmo with Ruby syntax; this translates them to Python ``re``.

Used by parsers, grep, rewrite_tag, Match_Regex, Tag_Regex and multiline rules alike.
"""
import re

_FLAG_LETTERS = {"i": re.IGNORECASE, "m": re.DOTALL, "x": re.VERBOSE}


def translate(pattern):
    """Ruby/Onigmo syntax -> Python syntax (named groups, \\h, \\z)."""
    out = []
    i = 0
    n = len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt == "h":
                out.append("0-9a-fA-F" if in_class else "[0-9a-fA-F]")
            elif nxt == "H":
                out.append("[^0-9a-fA-F]")
            elif nxt == "z":
                out.append("\\Z")
            elif nxt == "Z":
                out.append("(?=\\n?\\Z)")
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            elif c == "[" and pattern.startswith("[:", i):
                end = pattern.find(":]", i)
                if end > 0:
                    out.append(_POSIX.get(pattern[i + 2:end], pattern[i:end + 2]))
                    i = end + 2
                    continue
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":
                out.append("\\]")
                i += 1
            continue
        if c == "(" and pattern.startswith("(?<", i) and i + 3 < n and pattern[i + 3] not in "=!":
            out.append("(?P<")
            i += 3
            continue
        out.append(c)
        i += 1
    return "".join(out)


_POSIX = {"alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z",
          "lower": "a-z", "space": "\\s", "xdigit": "0-9a-fA-F", "punct": "!-/:-@\\[-`{-~",
          "word": "\\w", "blank": " \\t", "cntrl": "\\x00-\\x1f\\x7f", "print": "\\x20-\\x7e",
          "graph": "\\x21-\\x7e"}


def split_delimiters(text):
    """``/pattern/imx`` -> (pattern, "imx"); a bare pattern -> (pattern, "")."""
    if len(text) >= 2 and text[0] == "/":
        end = text.rfind("/")
        if end > 0 and all(ch in "imx" for ch in text[end + 1:]):
            return text[1:end], text[end + 1:]
    return text, ""


def compile_onigmo(text, options=""):
    """Compile a Fluent Bit regex; raises ValueError with the reason when it is invalid.

    Ruby's ``^``/``$`` are line anchors, so MULTILINE is always on; Ruby's ``m`` option is
    Python's DOTALL.
    """
    pattern, letters = split_delimiters(text)
    flags = re.MULTILINE
    for letter in letters + options:
        flags |= _FLAG_LETTERS.get(letter, 0)
    try:
        return re.compile(translate(pattern), flags)
    except re.error as exc:
        raise ValueError("%s (in /%s/)" % (exc, pattern))
