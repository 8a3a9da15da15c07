"""Fluent Bit's regexes are Onigmo with Ruby syntax; this translates them to Python ``re``.

Used by parsers, grep, rewrite_tag, Match_Regex, Tag_Regex and multiline rules alike.

What the translation covers (Ruby syntax, UTF-8, as Fluent Bit compiles it):

- ``(?<name>...)`` and ``(?'name'...)`` named groups; ``\\k<name>`` back references. A name
  used twice is legal in Ruby; Python refuses it, so the repeats are renamed and
  ``capture_fields`` maps them back.
- Once a pattern has a named group, plain ``(...)`` groups do not capture (Ruby rule).
- ``^``/``$`` are line anchors (MULTILINE always on); Ruby's ``m`` option and ``(?m)`` are
  Python's DOTALL; ``\\A``, ``\\z``, ``\\Z``, ``\\h``, ``\\H``, ``\\R``, ``\\e``, ``\\x{HH}``.
- ``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII only, as in Ruby (re.ASCII).
- POSIX brackets ``[[:alpha:]]`` and ``[[:^digit:]]``; a nested class ``[a-z[0-9]]`` (union).
- An inline option group ``(?i)`` in the middle of a pattern applies to the rest of its
  group, as in Ruby (Python only accepts global flags at the very start).

Anything Python cannot express (``\\g<name>`` calls, ``&&`` class intersection, ``\\p{..}``,
``\\G``, ``\\K``) raises ValueError with the reason, so the config error names it.
"""
import re

_FLAG_LETTERS = {"i": re.IGNORECASE, "m": re.DOTALL, "x": re.VERBOSE}
_INLINE_LETTERS = {"i": "i", "m": "s", "x": "x"}
_DUP_PREFIX = "_dup"

_POSIX = {"alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z",
          "lower": "a-z", "space": " \\t\\n\\r\\f\\v", "xdigit": "0-9a-fA-F",
          "punct": "!-/:-@\\[-`{-~", "word": "a-zA-Z0-9_", "blank": " \\t",
          "cntrl": "\\x00-\\x1f\\x7f", "print": "\\x20-\\x7e", "graph": "\\x21-\\x7e",
          "ascii": "\\x00-\\x7f"}
_UNSUPPORTED_ESCAPES = {"g": "subexpression calls (\\g)", "G": "\\G", "K": "\\K",
                        "p": "property classes (\\p{...})", "P": "property classes (\\P{...})",
                        "X": "\\X"}
_GROUP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RENAMED = re.compile(_DUP_PREFIX + r"[0-9]+_")


class _Translator:
    def __init__(self, pattern):
        self.src = pattern
        self.n = len(pattern)
        self.out = []
        self.names = {}
        self.capture_plain = not _has_named_group(pattern)
        # One entry per open group: True when an inline "(?i)" turned the rest of this
        # group into a scoped group, whose extra ")" must be written at its close.
        self.stack = []

    def run(self):
        i = 0
        while i < self.n:
            c = self.src[i]
            if c == "\\":
                i = self._escape(i, in_class=False)
            elif c == "[":
                i = self._char_class(i)
            elif c == "(":
                i = self._open_group(i)
            elif c == ")":
                if self.stack and self.stack.pop():
                    self.out.append(")")
                self.out.append(")")
                i += 1
            else:
                self.out.append(c)
                i += 1
        while self.stack:
            if self.stack.pop():
                self.out.append(")")
        if self.stack_extra_at_top:
            self.out.append(")" * self.stack_extra_at_top)
        return "".join(self.out)

    stack_extra_at_top = 0

    # -------------------------------------------------------------- escapes
    def _escape(self, i, in_class):
        if i + 1 >= self.n:
            raise ValueError("pattern ends with a lone backslash")
        nxt = self.src[i + 1]
        out = self.out
        if nxt == "h":
            out.append("0-9a-fA-F" if in_class else "[0-9a-fA-F]")
        elif nxt == "H":
            if in_class:
                raise ValueError("\\H inside a character class is not supported")
            out.append("[^0-9a-fA-F]")
        elif nxt == "z":
            out.append("\\Z")
        elif nxt == "Z":
            out.append("(?=\\n?\\Z)")
        elif nxt == "e":
            out.append("\\x1b")
        elif nxt == "R" and not in_class:
            out.append("(?:\\r\\n|[\\n\\v\\f\\r\\x85\\u2028\\u2029])")
        elif nxt == "x" and i + 2 < self.n and self.src[i + 2] == "{":
            end = self.src.find("}", i + 3)
            if end < 0:
                raise ValueError("unterminated \\x{...}")
            out.append("\\U%08x" % int(self.src[i + 3:end], 16))
            return end + 1
        elif nxt == "k" and i + 2 < self.n and self.src[i + 2] in "<'":
            close = ">" if self.src[i + 2] == "<" else "'"
            end = self.src.find(close, i + 3)
            if end < 0:
                raise ValueError("unterminated \\k<name>")
            name = self.src[i + 3:end]
            if name.lstrip("-").isdigit():
                raise ValueError("numbered \\k<n> back references are not supported")
            out.append("(?P=%s)" % name)
            return end + 1
        elif nxt in _UNSUPPORTED_ESCAPES:
            raise ValueError("%s are not supported" % _UNSUPPORTED_ESCAPES[nxt])
        else:
            out.append(self.src[i:i + 2])
        return i + 2

    # -------------------------------------------------------------- classes
    def _char_class(self, i):
        """Copy a bracket expression starting at ``i``; returns the index after it."""
        self.out.append("[")
        i += 1
        if i < self.n and self.src[i] == "^":
            self.out.append("^")
            i += 1
        if i < self.n and self.src[i] == "]":
            self.out.append("\\]")
            i += 1
        i = self._class_body(i)
        self.out.append("]")
        return i

    def _class_body(self, i):
        while i < self.n:
            c = self.src[i]
            if c == "]":
                return i + 1
            if c == "\\":
                i = self._escape(i, in_class=True)
                continue
            if c == "[":
                if self.src.startswith("[:", i):
                    end = self.src.find(":]", i + 2)
                    if end > 0:
                        name = self.src[i + 2:end]
                        negate = name.startswith("^")
                        ranges = _POSIX.get(name.lstrip("^"))
                        if ranges is None:
                            raise ValueError("unknown POSIX bracket [:%s:]" % name)
                        if negate:
                            raise ValueError("negated POSIX bracket [:%s:] inside a larger "
                                             "class is not supported" % name)
                        self.out.append(ranges)
                        i = end + 2
                        continue
                if i + 1 < self.n and self.src[i + 1] == "^":
                    raise ValueError("a negated nested character class is not supported")
                # A nested class is a union in Ruby: its members simply join the outer set.
                i = self._class_body(i + 1)
                continue
            if c == "&" and self.src.startswith("&&", i):
                raise ValueError("character class intersection (&&) is not supported")
            if c in "-|~" and i + 1 < self.n and self.src[i + 1] == c:
                # Python warns about "--", "||", "~~" (future set operations): escape them.
                self.out.append(c + "\\" + c)
                i += 2
                continue
            self.out.append(c)
            i += 1
        raise ValueError("premature end of char-class")

    # -------------------------------------------------------------- groups
    def _open_group(self, i):
        src = self.src
        if not src.startswith("(?", i):
            self.out.append("(" if self.capture_plain else "(?:")
            self.stack.append(False)
            return i + 1
        if i + 2 >= self.n:
            raise ValueError("end pattern in group")
        kind = src[i + 2]
        if kind in "<'" and i + 3 < self.n and src[i + 3] not in "=!":
            close = ">" if kind == "<" else "'"
            end = src.find(close, i + 3)
            if end < 0:
                raise ValueError("invalid group name")
            name = src[i + 3:end]
            if not _GROUP_NAME.fullmatch(name):
                raise ValueError("invalid group name <%s>" % name)
            seen = self.names.get(name, 0)
            self.names[name] = seen + 1
            if seen:
                name = "%s%d_%s" % (_DUP_PREFIX, seen, name)
            self.out.append("(?P<%s>" % name)
            self.stack.append(False)
            return end + 1
        if kind == "#":
            end = src.find(")", i)
            if end < 0:
                raise ValueError("end pattern in group")
            return end + 1
        if kind in "imx-":
            # Option group: "(?imx-imx)" or "(?imx-imx:subexp)".
            j = i + 2
            while j < self.n and src[j] in "imx-":
                j += 1
            if j >= self.n or src[j] not in ":)":
                raise ValueError("undefined group option")
            flags = self._inline_flags(src[i + 2:j])
            if src[j] == ":":
                self.out.append("(?%s:" % flags if flags else "(?:")
                self.stack.append(False)
                return j + 1
            # "(?i)": the options apply up to the end of the enclosing group.
            if flags:
                self.out.append("(?%s:" % flags)
                if self.stack:
                    self.stack[-1] = True
                else:
                    self.stack_extra_at_top += 1
            return j + 1
        if kind == ">" or kind in ":=!" or (kind == "<" and src[i + 3:i + 4] in ("=", "!")):
            self.out.append(src[i:i + (4 if kind == "<" else 3)])
            self.stack.append(False)
            return i + (4 if kind == "<" else 3)
        raise ValueError("unsupported group syntax '%s'" % src[i:i + 3])

    @staticmethod
    def _inline_flags(letters):
        on, _, off = letters.partition("-")
        on = "".join(_INLINE_LETTERS[c] for c in on)
        off = "".join(_INLINE_LETTERS[c] for c in off)
        return on + ("-" + off if off else "")


def _has_named_group(pattern):
    return re.search(r"\(\?(?:<(?![=!])|')", pattern) is not None


def translate(pattern):
    """Ruby/Onigmo syntax -> Python syntax; raises ValueError for what Python lacks."""
    return _Translator(pattern).run()


def split_delimiters(text):
    """``/pattern/imx`` -> (pattern, "imx"); a bare pattern -> (pattern, "").

    Same rules as flb_regex.c: an unknown option letter, or no option letter at all but
    'o', leaves the text as a literal pattern (only a trailing '/' is then stripped).
    """
    if len(text) >= 2 and text[0] == "/":
        end = text.rfind("/")
        letters = text[end + 1:]
        if end > 0 and letters and all(ch in "imxo" for ch in letters) \
                and letters.strip("o"):
            return text[1:end], letters.replace("o", "")
        if text[-1] == "/":
            return text[1:-1], ""
    return text, ""


def compile_onigmo(text, options=""):
    """Compile a Fluent Bit regex; raises ValueError with the reason when it is invalid.

    Ruby's ``^``/``$`` are line anchors, so MULTILINE is always on; Ruby's ``m`` option is
    Python's DOTALL.
    """
    pattern, letters = split_delimiters(text)
    flags = re.MULTILINE | re.ASCII
    for letter in letters + options:
        flags |= _FLAG_LETTERS.get(letter, 0)
    try:
        return re.compile(translate(pattern), flags)
    except re.error as exc:
        raise ValueError("%s (in /%s/)" % (exc, pattern))


def capture_fields(compiled):
    """The named captures of ``compiled`` as [(name, [group numbers])], in the order the
    names first appear (Onigmo's order); a name used twice has two group numbers."""
    fields = []
    by_name = {}
    for name, number in sorted(compiled.groupindex.items(), key=lambda item: item[1]):
        renamed = _RENAMED.match(name)
        if renamed:
            name = name[renamed.end():]
        if name in by_name:
            by_name[name].append(number)
        else:
            by_name[name] = [number]
            fields.append((name, by_name[name]))
    return fields
