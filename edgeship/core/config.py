"""Reader for Fluent Bit's classic configuration format (flb_cf_fluentbit.c rules).

Sans-IO: file access goes through a ``files`` object with three methods, so the same reader
runs on CPython and MicroPython (edgeship.core.files is the local file system):

    files.read(path) -> str          raises OSError for any path it cannot read as a
                                     config file (missing, a directory, a FIFO, too long...)
    files.glob(pattern) -> [paths]   the matches of a pattern holding '*'
    files.identity(path) -> hashable  same value for the same file (inode), to refuse loops

Every such OSError becomes a ConfigError naming the file and the line that named the path;
a NUL byte anywhere in a file is refused at its line (no value may carry one further).

Variables (``${VAR}``, ``${VAR:-default}``) are expanded after every file is read, because
every ``@SET`` applies before any section, wherever it stands. One reader (the loader's)
reads every file of a config, the main file, parsers files, upstream files, so the main
file's ``@SET`` values apply in all of them, as in Fluent Bit.

Relative paths follow one rule, Fluent Bit's, for every file a config names (``locate``).

What Fluent Bit reads without a word, the reader reads too, and notes it as a ConfigError in
``notes`` (the loader warns of each, or refuses the first under strict mode): an unknown
section (its entries are ignored) and a line indented by exactly twice the file's indent
(Fluent Bit's group-content level, an ordinary entry outside a group).
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
# Fluent Bit's limit on the files one config reads; it also bounds how deep includes nest.
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


def locate(files, path, main_dir):
    """Where a path a config names is, by Fluent Bit's one rule for @INCLUDE, Parsers_File,
    an Upstream file and a script (flb_cf_fluentbit.c, flb_parser.c, flb_upstream_ha.c,
    lua_config.c): an absolute path is itself; a relative one is read from the current
    directory when something is there, else from the main config file's directory
    (``main_dir``). (An @INCLUDE glob pattern is always from the main config's directory.)
    """
    if is_abs(path) or not main_dir:
        return path
    try:
        files.identity(path)
        return path
    except OSError:
        return join(main_dir, path)


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
    """@SET values first, then the environment; an empty environment value counts as unset.
    Last come ``fallbacks``, values the program supplies when neither has the name (edgeship's
    EDGESHIP_CONFIG_DIR)."""

    def __init__(self, environ, hostname=None):
        self.environ = environ
        self.hostname = hostname
        self.set_values = {}
        self.fallbacks = {}

    def __call__(self, name):
        if name in self.set_values:
            return self.set_values[name]
        value = self.environ.get(name)
        if value:
            return value
        if name == "HOSTNAME" and self.hostname:
            return self.hostname
        return self.fallbacks.get(name)


# -------------------------------------------------------------------------------- reader
class _Raw:
    """A parsed file before variable expansion."""

    def __init__(self):
        self.sections = []
        self.sets = []          # (name, value) in reading order


class _Open:
    """A file being read: its lines, where the reading is, and its own indent and section
    (an included file has its own; after the @INCLUDE line the includer's go on)."""

    def __init__(self, path, ident, text):
        self.path = path
        self.ident = ident
        self.lines = text.split("\n")
        self.lineno = 0
        self.indent = None
        self.section = None
        self.includes = []      # files of the current @INCLUDE line not read yet
        self.include_line = 0


class ClassicReader:
    """Reads a main config file (with its @INCLUDEs) or a parsers/upstream file.

    Includes are read with an explicit stack, not recursion: a chain of any depth up to
    MAX_INCLUDED_FILES files costs one entry per level, and a cycle is an error naming the
    line that closes it."""

    def __init__(self, files, variables):
        self.files = files
        self.variables = variables
        self.seen = set()
        self.main_dir = ""
        self.notes = []         # ConfigErrors Fluent Bit would not raise (see the docstring)

    # -- public
    def read_main(self, path):
        """Sections of a main config file and everything it includes, variables expanded."""
        self.main_dir = dirname(path)
        return self._read(path, MAIN_SECTIONS)

    def read_other(self, path, allowed, named_at=None):
        """Sections of a parsers or upstream file (``allowed`` section kinds), ``path``
        located by ``locate``. ``named_at`` is (file, line, key) of the entry that names it,
        for the error when it is unreadable."""
        return self._read(self.locate(path), allowed, named_at)

    def locate(self, path):
        """``path`` (relative or not) as the config names it, found by Fluent Bit's rule."""
        return locate(self.files, path, self.main_dir)

    # -- internals
    def _read(self, path, allowed, named_at=None):
        self.seen = set()       # a file read twice in one reading is an error, not across
        raw = _Raw()
        stack = [self._open(path, [], None, None, named_at)]
        while stack:
            top = stack[-1]
            if top.includes:
                stack.append(self._open(top.includes.pop(0), stack, top.path, top.include_line))
            elif top.lineno < len(top.lines):
                top.lineno += 1
                self._line(top, top.lines[top.lineno - 1], raw, allowed)
            else:
                stack.pop()
        return self._finish(raw)

    def _finish(self, raw):
        for name, value in raw.sets:
            self.variables.set_values[name] = value
        for section in raw.sections:
            for entry in section.entries:
                entry.value = expand(entry.value, self.variables, entry.file, entry.line, entry.key)
        return raw.sections

    def _open(self, path, stack, from_file, from_line, named_at=None):
        """Read ``path`` (included from ``from_file``:``from_line``, or the top file)."""
        try:
            ident = self.files.identity(path)
        except OSError as exc:
            raise _unreadable(path, exc, from_file, from_line, named_at)
        for including in stack:
            if including.ident == ident:
                chain = [f.path for f in stack[stack.index(including):]] + [path]
                if len(chain) > 6:  # a long loop: its ends say where it is
                    chain = chain[:3] + ["(%d more)" % (len(chain) - 5)] + chain[-2:]
                raise ConfigError("@INCLUDE cycle: %s" % " -> ".join(chain), from_file, from_line)
        if ident in self.seen:
            raise ConfigError("file '%s' is included more than once" % path, from_file, from_line)
        self.seen.add(ident)
        if len(self.seen) > MAX_INCLUDED_FILES:
            raise ConfigError("more than %d included files" % MAX_INCLUDED_FILES, from_file, from_line)
        try:
            text = self.files.read(path)
        except OSError as exc:
            raise _unreadable(path, exc, from_file, from_line, named_at)
        nul = text.find("\0")
        if nul >= 0:
            # C reads a line only up to a NUL; a config has no use for one: refuse it.
            raise ConfigError("NUL byte in the line", path, text.count("\n", 0, nul) + 1)
        return _Open(path, ident, text)

    def _include_paths(self, pattern, file, line):
        if "*" in pattern:
            try:
                matches = self.files.glob(join(self.main_dir, pattern) if not is_abs(pattern) else pattern)
            except OSError as exc:
                raise ConfigError("@INCLUDE glob '%s': %s" % (pattern, _reason(exc)), file, line)
            if not matches:
                raise ConfigError("@INCLUDE glob '%s' has no match" % pattern, file, line)
            return matches
        return [self.locate(pattern)]

    def _line(self, state, line, raw, allowed):
        path = state.path
        lineno = state.lineno
        if line.endswith("\r"):
            line = line[:-1]
        stripped = line.strip()
        if not stripped or stripped[0] == "#":
            return
        first = line[0]
        if first == "[":
            close = line.find("]")
            if close < 0:
                raise ConfigError("bad header definition", path, lineno)
            # An empty section before this one: Fluent Bit only warns; it is harmless.
            kind = self._section_kind(line[1:close].strip(), path, lineno, allowed)
            state.section = Section(kind, path, lineno)
            if kind is not None:
                raw.sections.append(state.section)
            return
        if first == "@":
            word, _, rest = line.partition(" ")
            command = word.upper()
            if command == "@INCLUDE":
                state.includes = self._include_paths(rest, path, lineno)
                state.include_line = lineno
            elif command == "@SET":
                name, eq, value = rest.partition("=")
                if not eq or not name:
                    raise ConfigError("@SET needs KEY=VALUE", path, lineno)
                raw.sets.append((name, value))
            return  # any other @word line is ignored, as Fluent Bit does
        if first not in " \t":
            raise ConfigError("invalid indentation level (entries must be indented)", path, lineno)
        if state.section is None:
            raise ConfigError("entry outside of any [SECTION]", path, lineno)
        if state.section.kind is None:
            return              # an entry of an unknown section, noted at its header
        body = line.lstrip(" \t")
        lead = line[:len(line) - len(body)]
        indent = state.indent
        if indent is None:
            state.indent = lead
        elif lead != indent and lead == indent * 2:
            self.notes.append(ConfigError("entry indented twice; read as an entry of its "
                                          "section, as Fluent Bit does", path, lineno,
                                          body.partition(" ")[0].strip().lower()))
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
        state.section.entries.append(Entry(key.strip(), value.strip(), path, lineno))

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
            # Fluent Bit keeps it as a custom section nothing reads ([STORAGE], [HEALTH_CHECK]).
            self.notes.append(ConfigError("unknown section [%s] ignored" % name, path, lineno))
            return None
        if kind not in allowed:
            if kind in PARSER_SECTIONS:
                raise ConfigError("[%s] sections are only allowed in a parsers file "
                                  "(set Parsers_File in [SERVICE])" % kind, path, lineno)
            raise ConfigError("section [%s] is not allowed in this file" % kind, path, lineno)
        return kind


def _unreadable(path, exc, from_file, from_line, named_at):
    if from_file is not None:
        return ConfigError("@INCLUDE '%s': %s" % (path, _reason(exc)), from_file, from_line)
    if named_at is not None:
        return ConfigError("cannot read '%s': %s" % (path, _reason(exc)), *named_at)
    return ConfigError("could not open configuration file: %s" % _reason(exc), path)


def _reason(exc):
    """The words of an OSError (strerror), whatever the ``files`` object raised."""
    return getattr(exc, "strerror", None) or str(exc)
