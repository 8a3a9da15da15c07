"""Plugin options declared once, as data: validation, ``-h`` output and docs all read them.

A plugin lists its options as ``Option`` objects. ``Schema.build`` checks the entries of a
config section against them (unknown key, single-value key repeated, missing required key,
bad value, a number out of its ``min``/``max`` range, a value outside its ``choices``) and
returns a ``Conf``: a plain dict of converted values keyed by lowercase option name, which
``Conf.bind`` also sets as attributes of the plugin for the options that name one (``attr``).
An option marked ``compat`` is accepted and does nothing; ``-h`` says so. A schema refuses
an option declared twice (a name or alias given by two options).
"""
from edgeship.core.errors import ConfigError

TRUE_WORDS = ("true", "on", "yes")
FALSE_WORDS = ("false", "off", "no")


def to_bool(text):
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("expected a boolean (true/on/yes or false/off/no), got '%s'" % text)


def _number_with_unit(text, units, what, examples):
    """A non-negative number followed by an optional unit of ``units`` ((suffix, factor)
    pairs, longer suffixes first), multiplied by the unit's factor."""
    word = text.strip().lower()
    factor = 1
    for suffix, mult in units:
        if word.endswith(suffix):
            word, factor = word[:-len(suffix)].strip(), mult
            break
    try:
        number = float(word)
    except ValueError:
        raise ValueError("expected %s such as %s, got '%s'" % (what, examples, text))
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError("expected %s such as %s, got '%s'" % (what, examples, text))
    if number < 0:
        raise ValueError("%s cannot be negative: '%s'" % (what, text))
    return number * factor


# Fluent Bit sizes are decimal: 1K = 1000 (flb_utils_size_to_bytes).
_SIZE_UNITS = (("kb", 1000), ("mb", 1000000), ("gb", 1000000000),
               ("k", 1000), ("m", 1000000), ("g", 1000000000), ("b", 1))


def to_size(text):
    """Bytes as an int: 512, 32k, 5M, 1.5G; false/off/no mean 0."""
    if text.strip().lower() in FALSE_WORDS:
        return 0
    return int(_number_with_unit(text, _SIZE_UNITS, "a size", "512, 32k or 5M"))


# A few keys use binary units: 1K = 1024 (flb_utils_size_to_binary_bytes).
_BINARY_UNITS = (("kb", 1024), ("mb", 1048576), ("gb", 1073741824),
                 ("k", 1024), ("m", 1048576), ("g", 1073741824), ("b", 1))


def to_binary_size(text):
    """Bytes as an int, binary units: 2MB = 2097152."""
    return int(_number_with_unit(text, _BINARY_UNITS, "a size", "512, 32K or 2MB"))


_TIME_UNITS = (("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400))


def to_seconds(text):
    """Seconds as a float: plain number, or with suffix ms, s, m, h, d."""
    return _number_with_unit(text, _TIME_UNITS, "a time", "5, 10s, 2m or 1h")


def to_int(text):
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError("expected an integer, got '%s'" % text)


def atoi_text(text):
    """The integer C's atoi reads at the start of ``text`` ("60" of "60  # a minute"), or
    None when no digit starts it (atoi's 0 there would hide a typo)."""
    body = text.lstrip(" \t\n\v\f\r")
    sign = body[:1] if body[:1] in ("+", "-") else ""
    end = len(sign)
    while end < len(body) and "0" <= body[end] <= "9":
        end += 1
    return body[:end] if end > len(sign) else None


def to_float(text):
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError("expected a number, got '%s'" % text)


def to_list(text):
    """A comma-separated list, items trimmed, empty items dropped."""
    return [item.strip() for item in text.split(",") if item.strip()]


def to_str(text):
    return text


CONVERTERS = {
    "str": to_str, "int": to_int, "float": to_float, "bool": to_bool,
    "size": to_size, "binary_size": to_binary_size, "time": to_seconds, "list": to_list,
}


NUMBER_KINDS = ("int", "float", "size", "binary_size", "time")


def _number_text(value):
    if isinstance(value, float) and value == int(value):
        return "%d" % value
    return str(value)


class Option:
    """One declared option.

    ``kind`` is one of CONVERTERS; ``choices`` restricts the value (lowercased words, or
    numbers for a number kind); ``min`` and ``max`` bound a number kind (inclusive), ``above``
    from below (exclusive: "greater than 0" for intervals); ``multiple`` makes
    a repeated key accumulate into a list instead of being an error; ``aliases`` are other
    accepted spellings (Whitelist_key for Allowlist_key); ``last_wins`` lets a repeat
    replace the earlier value; ``attr`` names the plugin attribute the value is bound to;
    ``compat`` marks an option accepted for compatibility that has no effect; ``prefix``
    makes the name a prefix: every key starting with it (Parser_1, Parser_2 for ``Parser_``)
    is one of its values, collected in config order (Fluent Bit's STR_PREFIX).
    """

    def __init__(self, name, kind="str", default=None, help="", multiple=False,
                 required=False, choices=None, aliases=(), last_wins=False, min=None,
                 max=None, above=None, attr=None, compat=False, prefix=False):
        if kind not in CONVERTERS:
            raise ValueError("unknown option kind %r" % kind)
        bounded = min is not None or max is not None or above is not None
        if bounded and kind not in NUMBER_KINDS:
            raise ValueError("option %s: min/max need a number kind, not %r" % (name, kind))
        self.name = name
        self.key = name.lower()
        self.kind = kind
        self.default = default
        self.help = help
        self.multiple = multiple
        self.required = required
        self.choices = tuple(choices) if choices is not None else None
        self.aliases = tuple(a.lower() for a in aliases)
        # Generic instance keys (Match, Tag, Alias): a repeat replaces, as in Fluent Bit.
        self.last_wins = last_wins
        self.min = min
        self.max = max
        self.above = above
        self.attr = attr
        self.compat = compat
        self.prefix = prefix
        if prefix:
            self.multiple = True

    def convert(self, text):
        value = CONVERTERS[self.kind](text)
        if self.choices is not None:
            low = value.lower() if isinstance(value, str) else value
            if low not in self.choices:
                raise ValueError("expected one of %s, got '%s'"
                                 % (", ".join([str(c) for c in self.choices]), text))
            value = low
        if (self.min is not None and value < self.min) \
                or (self.max is not None and value > self.max) \
                or (self.above is not None and value <= self.above):
            raise ValueError("expected %s, got '%s'" % (self.range_text(), text))
        return value

    def range_text(self):
        """The allowed range in words: "16 or more", "0 to 65535", "more than 0"."""
        low = None if self.min is None else _number_text(self.min)
        high = None if self.max is None else _number_text(self.max)
        if self.above is not None:
            words = "more than %s" % _number_text(self.above)
            return words if high is None else "%s and at most %s" % (words, high)
        if high is None:
            return "%s or more" % low
        if low is None:
            return "%s or less" % high
        return "%s to %s" % (low, high)

    def default_value(self):
        if self.multiple:
            return []
        if isinstance(self.default, str) and self.kind != "str":
            return self.convert(self.default)
        return self.default

    def marks(self):
        """What ``-h`` and the man page say of the option beside its help: the default, the
        choices, the range, the aliases and the required/repeatable/compatibility marks."""
        marks = []
        if self.default not in (None, ""):
            marks.append("default: %s" % self.default)
        if self.choices:
            marks.append("one of: %s" % ", ".join([str(c) for c in self.choices]))
        if self.min is not None or self.max is not None or self.above is not None:
            marks.append(self.range_text())
        if self.aliases:
            marks.append("also: %s" % ", ".join(self.aliases))
        if self.required:
            marks.append("required")
        if self.prefix:
            marks.append("any key starting with %s" % self.name)
        elif self.multiple:
            marks.append("repeatable")
        if self.compat:
            marks.append("compatibility only: accepted, no effect")
        return marks

    def describe(self, width=26):
        """One help line: name (padded to ``width``), type, help, then the marks in
        brackets (help texts hold parentheses of their own)."""
        marks = self.marks()
        name = self.name + " " * (width - len(self.name))   # MicroPython: no ljust, no %*s
        text = ("%s %-6s %s" % (name, self.kind, self.help)).rstrip()
        return text + "".join([" [%s]" % mark for mark in marks])


class Entry:
    """One ``key value`` line of a config section, with where it was written."""

    def __init__(self, key, value, file=None, line=None):
        self.key = key.lower()
        self.value = value
        self.file = file
        self.line = line

    def __repr__(self):
        return "Entry(%r, %r, %s:%s)" % (self.key, self.value, self.file, self.line)


class Conf(dict):
    """The converted values of a section, keyed by lowercase option name. ``ordered`` also
    lists every repeatable entry as (key, value, Entry) in config order, for plugins whose
    rules interleave several keys (grep Regex/Exclude, modify operations). ``bindings``:
    (attribute, key) of the options bound to attributes, set by ``bind``."""

    def __init__(self):
        super().__init__()
        self.ordered = []
        self.bindings = ()

    def bind(self, target):
        """Set the bound options' values as attributes of ``target`` (the plugin)."""
        for attr, key in self.bindings:
            setattr(target, attr, self[key])


class Schema:
    """The options of one plugin (plus the common keys its kind accepts)."""

    def __init__(self, owner, options):
        self.owner = owner
        self.options = list(options)
        self.by_key = {}
        for opt in self.options:
            for key in (opt.key,) + opt.aliases:
                if key in self.by_key:
                    # A plugin bug, found by the test that builds every plugin's schema.
                    raise ValueError("%s: option '%s' is declared twice" % (owner, key))
                self.by_key[key] = opt
        self.bindings = tuple([(opt.attr, opt.key) for opt in self.options if opt.attr])
        self.prefixed = [opt for opt in self.options if opt.prefix]

    def find(self, key):
        """The option a (lowercase) key sets, or None."""
        opt = self.by_key.get(key)
        if opt is None:
            for candidate in self.prefixed:
                if key.startswith(candidate.key) and len(key) > len(candidate.key):
                    return candidate
        return opt

    def allowed(self):
        return ", ".join(sorted(o.key for o in self.options))

    def build(self, entries, where=None, lenient=None):
        """Validate ``entries`` (a list of Entry) and return ``{key: value}``.

        ``where`` is (file, line) of the section header, used when an error has no line.
        ``lenient(option, entry, error)``, when given, is asked about a value that does not
        convert: it returns the text to convert instead, or raises ``error``.
        """
        values = Conf()
        seen = {}
        for entry in entries:
            opt = self.find(entry.key)
            if opt is None:
                raise ConfigError(
                    "%s: unknown configuration property '%s'. The following properties are "
                    "allowed: %s" % (self.owner, entry.key, self.allowed()),
                    entry.file, entry.line, entry.key,
                    (entry.key, sorted(self.by_key)))
            try:
                value = opt.convert(entry.value)
            except ValueError as exc:
                error = ConfigError("%s: invalid value: %s" % (self.owner, exc),
                                    entry.file, entry.line, entry.key)
                if lenient is None:
                    raise error
                try:
                    value = opt.convert(lenient(opt, entry, error))
                except ValueError:
                    raise error
            if opt.multiple:
                values.setdefault(opt.key, []).append(value)
                values.ordered.append((opt.key, value, entry))
            else:
                if opt.key in seen and not opt.last_wins:
                    raise ConfigError(
                        "%s: configuration property '%s' is set %d times"
                        % (self.owner, opt.key, seen[opt.key] + 1),
                        entry.file, entry.line, entry.key)
                values[opt.key] = value
            seen[opt.key] = seen.get(opt.key, 0) + 1
        for opt in self.options:
            if opt.key not in values:
                if opt.required:
                    file, line = where if where else (None, None)
                    raise ConfigError("%s: missing required property '%s'" % (self.owner, opt.name),
                                      file, line, opt.key)
                values[opt.key] = opt.default_value()
        values.bindings = self.bindings
        return values

    def help_lines(self):
        """The options' help lines, in one column however long a name is."""
        width = max([26] + [len(opt.name) for opt in self.options])
        return [opt.describe(width) for opt in self.options]
