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

YAML (a path ending in .yaml or .yml, Fluent Bit's rule): ``yaml_parse(text, path)`` (the
loader passes edgeship.text.yaml_config.parse; core has no YAML parser) gives a plain tree
this reader turns into the same sections, so everything after reading is shared. Kept from
Fluent Bit 5.1.1 (flb_cf_yaml.c): top-level ``env`` (a map, or a list of {name, value},
{name, uri: file://...} or {NAME: value}), ``includes`` (paths from the including file's
folder, '*' globs, each file once), ``service`` (once in all files), ``pipeline`` with
``inputs``/``filters``/``outputs`` lists, ``parsers``, ``multiline_parsers`` (``rules`` a list
of {state, regex, next_state}) and ``customs``; keys camelCase -> snake_case unless they hold
'_' or start with a capital; a list of values sets the key once per value; any other
top-level key is an unknown section (noted). Refused with a clear error where Fluent Bit
refuses, and ``processors`` (Fluent Bit runs them; edgeship has filters for that job).

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

    def __init__(self, files, variables, yaml_parse=None):
        self.files = files
        self.variables = variables
        self.yaml_parse = yaml_parse
        self.seen = set()
        self.main_dir = ""
        self.notes = []         # ConfigErrors Fluent Bit would not raise (see the docstring)

    # -- public
    def read_main(self, path):
        """Sections of a main config file and everything it includes, variables expanded."""
        self.main_dir = dirname(path)
        if is_yaml(path):
            return self._read_yaml(path, MAIN_SECTIONS + PARSER_SECTIONS)
        return self._read(path, MAIN_SECTIONS)

    def read_other(self, path, allowed, named_at=None):
        """Sections of a parsers or upstream file (``allowed`` section kinds), ``path``
        located by ``locate``. ``named_at`` is (file, line, key) of the entry that names it,
        for the error when it is unreadable."""
        path = self.locate(path)
        if is_yaml(path):
            return self._read_yaml(path, allowed, named_at)
        return self._read(path, allowed, named_at)

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


    # -- YAML
    def _read_yaml(self, path, allowed, named_at=None):
        if self.yaml_parse is None:
            raise ConfigError("YAML configuration needs PyYAML (pip install PyYAML)", path)
        self.seen = set()
        raw = _Raw()
        found = {}                  # "service" -> (file, line) of its definition
        self._yaml_file(path, raw, allowed, [], None, None, named_at, found)
        return self._finish(raw)

    def _yaml_file(self, path, raw, allowed, stack, from_file, from_line, named_at, found):
        opened = self._open(path, stack, from_file, from_line, named_at)
        tree = self.yaml_parse("\n".join(opened.lines), path)
        if tree is None:
            return
        if tree[0] != "map":
            raise ConfigError("a YAML config is a mapping of sections (service, pipeline...)",
                              path, tree[1])
        for key, line, node in tree[2]:
            name = key.lower()
            if name == "env":
                self._yaml_env(node, path, raw)
            elif name == "includes":
                for item in _yaml_list(node, path, "includes"):
                    pattern = _yaml_text(item, path, "includes")
                    for included in self._yaml_include_paths(pattern, path, item[1]):
                        self._yaml_file(included, raw, allowed, stack + [opened], path,
                                        item[1], None, found)
            elif name == "service":
                if "service" in found:
                    raise ConfigError("duplicated definition of 'service' (first at %s:%s)"
                                      % found["service"], path, line)
                found["service"] = (path, line)
                self._yaml_section("SERVICE", node, path, line, raw, allowed)
            elif name == "pipeline":
                self._yaml_pipeline(node, path, raw, allowed)
            elif name in YAML_LISTS:
                for item in _yaml_list(node, path, name):
                    self._yaml_section(YAML_LISTS[name], item, path, item[1], raw, allowed)
            elif name == "plugins":
                for item in _yaml_list(node, path, name):
                    self.notes.append(ConfigError(
                        "plugin '%s' is a shared object; edgeship cannot load it"
                        % _yaml_text(item, path, name), path, item[1], "plugins"))
            else:
                self.notes.append(ConfigError("unknown section '%s' ignored" % key, path, line))

    def _yaml_include_paths(self, pattern, path, line):
        base = dirname(path)
        if "*" in pattern:
            try:
                matches = self.files.glob(join(base, pattern))
            except OSError as exc:
                raise ConfigError("includes glob '%s': %s" % (pattern, _reason(exc)), path, line)
            if not matches:
                raise ConfigError("includes glob '%s' has no match" % pattern, path, line)
            return matches
        return [join(base, pattern)]

    def _yaml_env(self, node, path, raw):
        if node[0] == "map":
            items = [node]
        else:
            items = _yaml_list(node, path, "env")
        for item in items:
            if item[0] != "map":
                raise ConfigError("env: expected NAME: value entries", path, item[1], "env")
            fields = {}
            for key, line, value in item[2]:
                if value[0] != "scalar":
                    raise ConfigError("nested maps are not allowed in env section", path, line,
                                      key)
                fields[key.lower()] = (key, value[2], line)
            if item is node or "name" not in fields:
                raw.sets.extend((key, text) for key, text, _line in fields.values())
            elif "value" in fields:
                raw.sets.append((fields["name"][1], fields["value"][1]))
            elif "uri" in fields:
                raw.sets.append((fields["name"][1], self._env_uri(fields["uri"], path)))
            else:
                raise ConfigError("env: '%s' needs a value or a uri" % fields["name"][1], path,
                                  item[1], "env")

    def _env_uri(self, field, path):
        _key, uri, line = field
        if not uri.startswith("file://"):
            raise ConfigError("env: only file:// uris are read, got '%s'" % uri, path, line,
                              "uri")
        target = locate(self.files, uri[len("file://"):], self.main_dir)
        try:
            text = self.files.read(target)
        except OSError as exc:
            raise ConfigError("env: cannot read '%s': %s" % (target, _reason(exc)), path, line,
                              "uri")
        return text[:-1] if text.endswith("\n") else text

    def _yaml_pipeline(self, node, path, raw, allowed):
        if node[0] != "map":
            raise ConfigError("pipeline: expected inputs, filters and outputs", path, node[1],
                              "pipeline")
        for key, line, value in node[2]:
            kind = PIPELINE_KINDS.get(key.lower())
            if kind is None:
                raise ConfigError("the pipeline component '%s' is not valid. Try one of these "
                                  "values: inputs, filters or outputs" % key, path, line)
            for item in _yaml_list(value, path, key):
                self._yaml_section(kind, item, path, item[1], raw, allowed)

    def _yaml_section(self, kind, node, path, line, raw, allowed):
        if kind not in allowed:
            raise ConfigError("%s sections are not allowed in this file" % kind.lower(), path,
                              line)
        if node[0] != "map":
            raise ConfigError("%s: expected a mapping of properties" % kind.lower(), path,
                              node[1])
        section = Section(kind, path, line)
        for key, kline, value in node[2]:
            name = translate_key(key)
            if value[0] == "scalar":
                section.entries.append(Entry(name, value[2], path, kline))
            elif value[0] == "list" and kind == "MULTILINE_PARSER" and key.lower() == "rules":
                section.entries.extend(_yaml_rules(value, path))
            elif value[0] == "list":
                for item in value[2]:
                    section.entries.append(Entry(name, _yaml_text(item, path, name), path,
                                                 item[1]))
            elif name.lower() == "processors":
                raise ConfigError("processors are not supported by edgeship: use [FILTER]s "
                                  "(pipeline filters) instead", path, kline, "processors")
            elif kind == "SERVICE":
                self.notes.append(ConfigError("service: the map '%s' is ignored" % key, path,
                                              kline, name.lower()))
            else:
                raise ConfigError("could not configure property '%s': a map is not a value"
                                  % key, path, kline, name.lower())
        if kind not in ("SERVICE", "CUSTOM") and section.entry("name") is None:
            raise ConfigError("section '%s' is missing the 'name' property" % kind.lower(),
                              path, line, "name")
        raw.sections.append(section)


PIPELINE_KINDS = {"inputs": "INPUT", "filters": "FILTER", "outputs": "OUTPUT"}
YAML_LISTS = {"parsers": "PARSER", "multiline_parsers": "MULTILINE_PARSER",
              "customs": "CUSTOM"}


def is_yaml(path):
    low = path.lower()
    return low.endswith(".yaml") or low.endswith(".yml")


def translate_key(key):
    """Fluent Bit's YAML key rule: camelCase -> snake_case, unless the key holds '_' or does
    not start with a lowercase letter (then only the case is ignored, as everywhere)."""
    if not key or not ("a" <= key[0] <= "z") or "_" in key:
        return key
    out = []
    for ch in key:
        out.append("_" + ch.lower() if "A" <= ch <= "Z" else ch)
    return "".join(out)


def _yaml_list(node, path, what):
    if node[0] != "list":
        raise ConfigError("'%s' expects a list" % what, path, node[1], what)
    return node[2]


def _yaml_text(node, path, what):
    if node[0] != "scalar":
        raise ConfigError("'%s' expects text values, not a %s" % (what, node[0]), path, node[1],
                          what)
    return node[2]


def _yaml_rules(node, path):
    """A multiline parser's ``rules`` list as the classic ``Rule "state" "/regex/" "next"``
    entries."""
    entries = []
    for item in node[2]:
        if item[0] != "map":
            raise ConfigError("rules: expected state, regex and next_state", path, item[1],
                              "rules")
        fields = dict((key.lower(), _yaml_text(value, path, key)) for key, _l, value in item[2])
        if "state" not in fields or "regex" not in fields:
            raise ConfigError("rules: a rule needs state and regex", path, item[1], "rules")
        parts = [fields["state"], fields["regex"]]
        if fields.get("next_state"):
            parts.append(fields["next_state"])
        entries.append(Entry("rule", " ".join('"%s"' % p.replace('"', '\\"') for p in parts),
                             path, item[1]))
    return entries


def _unreadable(path, exc, from_file, from_line, named_at):
    if from_file is not None:
        return ConfigError("@INCLUDE '%s': %s" % (path, _reason(exc)), from_file, from_line)
    if named_at is not None:
        return ConfigError("cannot read '%s': %s" % (path, _reason(exc)), *named_at)
    return ConfigError("could not open configuration file: %s" % _reason(exc), path)


def _reason(exc):
    """The words of an OSError (strerror), whatever the ``files`` object raised."""
    return getattr(exc, "strerror", None) or str(exc)
