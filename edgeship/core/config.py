"""Reader for Fluent Bit's classic configuration format (flb_cf_fluentbit.c rules).

Sans-IO: file access goes through a ``files`` object with three methods, so the same reader
runs on CPython (see edgeship.engine.files) and MicroPython:

    files.read(path) -> str          raises OSError when unreadable
    files.glob(pattern) -> [paths]   the matches of a pattern holding '*'
    files.identity(path) -> hashable  same value for the same file (inode), to refuse loops

Variables (``${VAR}``, ``${VAR:-default}``) are expanded after every file is read, because
every ``@SET`` applies before any section, wherever it stands.
"""
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Entry

SECTION_KINDS = ("SERVICE", "INPUT", "FILTER", "OUTPUT", "PARSER", "MULTILINE_PARSER",
                 "CUSTOM", "PLUGINS", "UPSTREAM", "NODE")
PLURALS = {"INPUTS": "INPUT", "FILTERS": "FILTER", "OUTPUTS": "OUTPUT", "CUSTOMS": "CUSTOM"}
# Which sections each kind of file may hold.
MAIN_SECTIONS = ("SERVICE", "INPUT", "FILTER", "OUTPUT", "CUSTOM", "PLUGINS")
PARSER_SECTIONS = ("PARSER", "MULTILINE_PARSER")
UPSTREAM_SECTIONS = ("UPSTREAM", "NODE")
MAX_INCLUDED_FILES = 1000


class Section:
    """A ``[KIND]`` section: its entries in file order, and where its header is."""

    def __init__(self, kind, file, line):
        self.kind = kind
        self.file = file
        self.line = line
        self.entries = []

    def get(self, key, default=None):
        """The last value of ``key`` (generic keys: the last one wins)."""
        key = key.lower()
        for entry in reversed(self.entries):
            if entry.key == key:
                return entry.value
        return default

    def entry(self, key):
        key = key.lower()
        for entry in reversed(self.entries):
            if entry.key == key:
                return entry
        return None

    def __repr__(self):
        return "Section(%s, %s:%s, %r)" % (self.kind, self.file, self.line, self.entries)


# -------------------------------------------------------------------------------- paths
def is_abs(path):
    return path.startswith("/")


def dirname(path):
    cut = path.rfind("/")
    if cut < 0:
        return ""
    return path[:cut] if cut > 0 else "/"


def join(base, path):
    if not base or is_abs(path):
        return path
    return base.rstrip("/") + "/" + path


# -------------------------------------------------------------------------------- variables
def expand(text, lookup, file=None, line=None, key=None):
    """Replace ``${VAR}`` and ``${VAR:-default}``; an unset variable becomes ''."""
    if "${" not in text:
        return text
    out = []
    pos = 0
    while True:
        start = text.find("${", pos)
        if start < 0:
            out.append(text[pos:])
            return "".join(out)
        end = text.find("}", start + 2)
        if end < 0:
            raise ConfigError("unterminated variable reference '%s'" % text[start:], file, line, key)
        out.append(text[pos:start])
        name = text[start + 2:end]
        default = None
        cut = name.find(":-")
        if cut >= 0:
            name, default = name[:cut], name[cut + 2:]
        value = lookup(name)
        if not value and default is not None:
            value = default
        out.append(value or "")
        pos = end + 1


class Variables:
    """@SET values first, then the environment; an empty environment value counts as unset."""

    def __init__(self, environ, hostname=None):
        self.environ = environ
        self.hostname = hostname
        self.set_values = {}

    def __call__(self, name):
        if name in self.set_values:
            return self.set_values[name]
        value = self.environ.get(name)
        if value:
            return value
        if name == "HOSTNAME" and self.hostname:
            return self.hostname
        return None


# -------------------------------------------------------------------------------- reader
class _Raw:
    """A parsed file before variable expansion."""

    def __init__(self):
        self.sections = []
        self.sets = []          # (name, value) in reading order


class ClassicReader:
    """Reads a main config file (with its @INCLUDEs) or a parsers/upstream file."""

    def __init__(self, files, variables):
        self.files = files
        self.variables = variables
        self.seen = set()
        self.main_dir = ""

    # -- public
    def read_main(self, path):
        """Sections of a main config file and everything it includes, variables expanded."""
        self.main_dir = dirname(path)
        raw = _Raw()
        self._read_file(path, raw, MAIN_SECTIONS, None, None)
        return self._finish(raw)

    def read_other(self, path, allowed):
        """Sections of a parsers or upstream file (``allowed`` section kinds)."""
        raw = _Raw()
        self._read_file(path, raw, allowed, None, None)
        return self._finish(raw)

    # -- internals
    def _finish(self, raw):
        for name, value in raw.sets:
            self.variables.set_values[name] = value
        for section in raw.sections:
            for entry in section.entries:
                entry.value = expand(entry.value, self.variables, entry.file, entry.line, entry.key)
        return raw.sections

    def _read_file(self, path, raw, allowed, from_file, from_line):
        try:
            text = self.files.read(path)
            ident = self.files.identity(path)
        except OSError as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            if from_file is None:
                raise ConfigError("could not open configuration file: %s" % reason, path)
            raise ConfigError("cannot include '%s': %s" % (path, reason), from_file, from_line)
        if ident in self.seen:
            raise ConfigError("file '%s' is included more than once" % path, from_file, from_line)
        self.seen.add(ident)
        if len(self.seen) > MAX_INCLUDED_FILES:
            raise ConfigError("more than %d included files" % MAX_INCLUDED_FILES, from_file, from_line)
        self._parse(path, text, raw, allowed)

    def _include_paths(self, pattern, file, line):
        if "*" in pattern:
            matches = self.files.glob(join(self.main_dir, pattern) if not is_abs(pattern) else pattern)
            if not matches:
                raise ConfigError("@INCLUDE glob '%s' has no match" % pattern, file, line)
            return matches
        if is_abs(pattern):
            return [pattern]
        # Fluent Bit tries the current directory first, then the main config's directory.
        try:
            self.files.identity(pattern)
            return [pattern]
        except OSError:
            return [join(self.main_dir, pattern)]

    def _parse(self, path, text, raw, allowed):
        indent = None
        section = None
        lineno = 0
        for line in text.split("\n"):
            lineno += 1
            if line.endswith("\r"):
                line = line[:-1]
            stripped = line.strip()
            if not stripped or stripped[0] == "#":
                continue
            first = line[0]
            if first == "[":
                close = line.find("]")
                if close < 0:
                    raise ConfigError("bad header definition", path, lineno)
                if section is not None and not section.entries:
                    pass  # Fluent Bit only warns; an empty section is harmless.
                kind = self._section_kind(line[1:close].strip(), path, lineno, allowed)
                section = Section(kind, path, lineno)
                raw.sections.append(section)
                continue
            if first == "@":
                word, _, rest = line.partition(" ")
                command = word.upper()
                if command == "@INCLUDE":
                    for included in self._include_paths(rest, path, lineno):
                        self._read_file(included, raw, allowed, path, lineno)
                elif command == "@SET":
                    name, eq, value = rest.partition("=")
                    if not eq or not name:
                        raise ConfigError("@SET needs KEY=VALUE", path, lineno)
                    raw.sets.append((name, value))
                continue  # any other @word line is ignored, as Fluent Bit does
            if first not in " \t":
                raise ConfigError("invalid indentation level (entries must be indented)", path, lineno)
            if section is None:
                raise ConfigError("entry outside of any [SECTION]", path, lineno)
            body = line.lstrip(" \t")
            lead = line[:len(line) - len(body)]
            if indent is None:
                indent = lead
            elif lead != indent:
                if len(lead) < len(indent) and indent.startswith(lead):
                    why = "indentation level is too low"
                elif ("\t" in lead) != ("\t" in indent):
                    why = "inconsistent use of tab and space"
                else:
                    why = "extra indentation level found"
                raise ConfigError("invalid indentation level: %s" % why, path, lineno)
            key, space, value = body.partition(" ")
            if not space or not value.strip():
                raise ConfigError("undefined value - check config is in valid classic format",
                                  path, lineno, key.strip().lower())
            section.entries.append(Entry(key.strip(), value.strip(), path, lineno))

    def _section_kind(self, name, path, lineno, allowed):
        upper = name.upper()
        kind = PLURALS.get(upper)
        if kind is None and upper:
            # Fluent Bit compares only len(given) characters: a prefix of a name matches it.
            for canonical in SECTION_KINDS:
                if canonical.startswith(upper):
                    kind = canonical
                    break
        if kind is None:
            raise ConfigError("unknown section [%s]" % name, path, lineno)
        if kind not in allowed:
            if kind in PARSER_SECTIONS:
                raise ConfigError("[%s] sections are only allowed in a parsers file "
                                  "(set Parsers_File in [SERVICE])" % kind, path, lineno)
            raise ConfigError("section [%s] is not allowed in this file" % kind, path, lineno)
        return kind

