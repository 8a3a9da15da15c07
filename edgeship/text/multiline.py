"""Multiline parsers: join the lines of one logical record (stack traces, split docker logs).

Interface (used by the tail input and the multiline filter):

    parser = context.multiline("python")         # (a plugin's context; engine: get())
                                                 # built-in docker, cri, python, java, go,
                                                 # ruby, or a [MULTILINE_PARSER] name;
                                                 # KeyError when the name is unknown
    parser = multiline.group([p1, p2])           # several, tried in turn on each line
    parser.flush_timeout                         # seconds an open group may wait
    stream = parser.stream(key)                  # one stream per file (key: any hashable)
    events = stream.feed(time_ns, line)          # [(time_ns, record)] completed so far
    stream.feed(time_ns, line, batch)            # the same, appended to a list of yours
    stream = parser.stream(key, "log")           # records (the multiline filter): the text
    stream.feed(time_ns, None, batch, record)    # is record["log"] (this key_content wins)
    events = stream.flush()                      # close the open group(s): timeout or EOF
    stream.pending                               # True while a group is open
    stream.truncated                             # groups cut at the buffer limit so far

``line`` is one line without its newline. Records are ``{"log": text}``, or for parsers
with a pre-parser (docker, cri, Parser key) the first line's parsed record with its
Key_Content field replaced by the joined text.

Fluent Bit behaviour (src/multiline/*.c, 5.1.1):

- Type regex: ``Rule "state" "/regex/" "next_state"``. A line matching a rule whose state
  list holds ``start_state`` opens a group; a line matching a rule reachable from the last
  matched rule (start rules excepted) continues it; a rule leading back to ``start_state``
  closes the group right after its line; with records (the filter, a pre-parser) that line's
  record stays as the next group's first record and, flushed alone, the closing line comes
  out a second time, as in Fluent Bit. Lines are joined with "\\n" and, without
  Key_Content, every record ends with "\\n" (a line that joins nothing too). The last rule
  matched is remembered even after a group closes, as in Fluent Bit.
- Type endswith / equal (eq): every line is appended to the group; a line whose content
  (or Key_Pattern value) ends with / equals Match_String closes it (Negate inverts).
  Key_Group keeps one group per value (docker's stdout/stderr); a line of another group
  leaves the open one waiting (a stderr line inside a split stdout message comes out first).
- Records (the filter): the text is the record's key_content string (a parser without one
  takes no record); a pre-parser parses it and the parsed record is what is joined, else the
  record itself is, its key_content replaced by the joined text (no trailing "\n"). A record
  no parser takes passes unchanged.
- A line no parser accepts flushes the open group and passes through on its own.
- A group over ``[SERVICE] multiline_buffer_limit`` (2 MiB; the engine sets
  ``parser.buffer_limit``) is cut there and flushed; the stream counts it in ``truncated``.
"""
from edgeship.core.errors import ConfigError
from edgeship.core.events import now_ns
from edgeship.core.schema import Option, Schema
from edgeship.text.onigmo import compile_onigmo

FLUSH_TIMEOUT_MS = 4000
BUFFER_LIMIT = 2 * 1024 * 1024

SCHEMA = Schema("multiline_parser", (
    Option("Name", required=True, help="name used by multiline.parser"),
    Option("Type", required=True, choices=("regex", "endswith", "equal", "eq"),
           help="regex rules, or a Match_String the content ends with / equals"),
    Option("Rule", multiple=True, help='"state" "/regex/" "next_state" (type regex)'),
    Option("Flush_Timeout", "int", str(FLUSH_TIMEOUT_MS),
           help="milliseconds an unfinished group may wait"),
    Option("Match_String", help="endswith/equal: the string that closes a group"),
    Option("Negate", "bool", "false", help="endswith/equal: close when it does NOT match"),
    Option("Key_Content", help="field holding the text to join (records from Parser)"),
    Option("Key_Pattern", help="endswith/equal: field tested instead of Key_Content"),
    Option("Key_Group", help="field whose value keeps separate groups"),
    Option("Parser", help="[PARSER] applied to each line first"),
))


class Rule:
    def __init__(self, states, regex, to_state):
        self.states = states
        self.regex = regex
        self.to_state = to_state
        self.start = "start_state" in states
        self.next_rules = []


class MultilineParser:
    """One multiline parser definition (built-in or [MULTILINE_PARSER])."""

    def __init__(self, name, kind, rules=(), match_string=None, negate=False,
                 flush_timeout_ms=FLUSH_TIMEOUT_MS, key_content=None, key_pattern=None,
                 key_group=None, parser=None, parser_name=None):
        self.name = name
        self.kind = "equal" if kind == "eq" else kind
        self.rules = list(rules)
        for rule in self.rules:
            rule.next_rules = [r for r in self.rules if rule.to_state in r.states]
        self.start_rules = [r for r in self.rules if r.start]
        self.match_string = match_string
        self.negate = negate
        if flush_timeout_ms <= 0:
            flush_timeout_ms = FLUSH_TIMEOUT_MS
        self.flush_timeout = flush_timeout_ms / 1000.0
        self.key_content = key_content
        self.key_pattern = key_pattern
        self.key_group = key_group
        self.parser = parser
        self.parser_name = parser_name
        self.buffer_limit = BUFFER_LIMIT

    def stream(self, key=None, key_content=None):
        return Stream([_ParserStream(self, key_content)])


class MultilineParserList:
    """Several parsers for one input (``multiline.parser python, java``)."""

    def __init__(self, parsers):
        self.parsers = parsers
        self.name = ",".join(p.name for p in parsers)
        self.flush_timeout = max(p.flush_timeout for p in parsers)

    def stream(self, key=None, key_content=None):
        return Stream([_ParserStream(p, key_content) for p in self.parsers])


class _Group:
    __slots__ = ("buf", "record", "time_ns", "state")

    def __init__(self):
        self.buf = ""
        self.record = None     # first line's parsed record (pre-parser / Key_Content)
        self.time_ns = None
        self.state = None      # last regex rule matched


class _ParserStream:
    """What one parser keeps for one stream: its groups (one per Key_Group value)."""

    def __init__(self, parser, key_content=None):
        self.parser = parser
        self.groups = {}
        self.key_content = key_content or parser.key_content
        self.breakline = self.key_content is None
        self.truncated = 0      # groups cut at the buffer limit

    def pending(self):
        return any(g.buf or g.record is not None for g in self.groups.values())

    def process(self, time_ns, line, out, source=None):
        """Take ``line`` (or the record ``source``) if this parser accepts it (True),
        appending finished events."""
        parser = self.parser
        record = None
        content = line
        pattern = None
        group_key = None
        if source is not None:
            content = source.get(self.key_content) if self.key_content else None
            if not isinstance(content, str):
                return False
            record = source
        if parser.parser is not None:
            parsed = parser.parser.parse(content)
            if parsed is None:
                return False
            parsed_time, record = parsed
            if parsed_time is not None:
                time_ns = parsed_time
            content = record.get(self.key_content)
            if not isinstance(content, str):
                return False
        if record is not None:
            if parser.key_pattern:
                pattern = record.get(parser.key_pattern)
                if not isinstance(pattern, str):
                    pattern = None
            if parser.key_group:
                group_key = record.get(parser.key_group)
                if not isinstance(group_key, str):
                    group_key = None
        group = self.groups.get(group_key)
        if group is None:
            group = self.groups[group_key] = _Group()
        if parser.kind == "regex":
            return self._process_rules(group, content, time_ns, record, out)
        tested = content if pattern is None else pattern
        match_string = parser.match_string
        if parser.kind == "endswith":
            if len(match_string) > len(tested):
                return False
            matched = tested.endswith(match_string)
        else:
            matched = tested == match_string
        if group.record is None:
            group.time_ns = time_ns
            group.record = record
        if self.breakline and group.buf and not group.buf.endswith("\n"):
            group.buf += "\n"
        truncated = self._cat(group, content)
        if matched != parser.negate or truncated:
            self._flush_group(group, out)
        return True

    def _process_rules(self, group, content, time_ns, record, out):
        rule = None
        if group.state is not None:
            for candidate in group.state.next_rules:
                if candidate.start or not candidate.regex.search(content):
                    continue
                if group.buf and not group.buf.endswith("\n"):
                    group.buf += "\n"
                if group.time_ns is None:
                    group.time_ns = time_ns
                if self._cat(group, content if content else "\n"):
                    self._flush_group(group, out)
                    group.state = None
                    return True
                rule = candidate
                break
        if rule is None:
            for candidate in self.parser.start_rules:
                if candidate.regex.search(content):
                    rule = candidate
                    break
            if rule is None:
                return False
            if group.buf:
                self._flush_group(group, out)
            group.time_ns = time_ns
            if group.record is None:    # else the record a closing line left (below) stays
                group.record = record
            if self._cat(group, content):
                self._flush_group(group, out)
        group.state = rule
        if group.buf and any(r.start for r in rule.next_rules):
            self._flush_group(group, out)
        if record is not None and group.record is None:
            # Fluent Bit registers a line's record whenever its group has none, also right
            # after the line closed the group: flushed alone later (before a line no rule
            # takes, at a timeout), the closing line comes out a second time.
            group.record = record
            group.time_ns = time_ns
        return True

    def _cat(self, group, text):
        """Append ``text``; True when the group hit the buffer limit (text cut there)."""
        room = self.parser.buffer_limit - len(group.buf)
        if len(text) > room:
            group.buf += text[:max(room, 0)]
            self.truncated += 1
            return True
        group.buf += text
        return False

    def _flush_group(self, group, out):
        if self.breakline and group.buf and not group.buf.endswith("\n"):
            group.buf += "\n"
        time_ns = group.time_ns if group.time_ns is not None else now_ns()
        key = self.key_content or "log"
        if group.record is not None:
            record = group.record
            if group.buf:
                record = dict(record)
                if key in record:
                    record[key] = group.buf
            out.append((time_ns, record))
        elif group.buf:
            out.append((time_ns, {key: group.buf}))
        group.buf = ""
        group.record = None
        group.time_ns = None

    def flush(self, out):
        for group in self.groups.values():
            self._flush_group(group, out)

    def pass_through(self, time_ns, line, out):
        """A line no parser took: a record of its own (through the default group)."""
        group = self.groups.get(None)
        if group is None:
            group = self.groups[None] = _Group()
        group.buf = line
        group.time_ns = time_ns
        self._flush_group(group, out)


class Stream:
    """The multiline state of one file: feed lines, get finished records."""

    def __init__(self, parser_streams):
        self.parser_streams = parser_streams
        self.recent = None   # the parser that took the previous line (Fluent Bit's lru)

    @property
    def pending(self):
        return any(ps.pending() for ps in self.parser_streams)

    @property
    def truncated(self):
        """Groups cut at the buffer limit so far."""
        return sum(ps.truncated for ps in self.parser_streams)

    def feed(self, time_ns, line, out=None, record=None):
        """Feed one line, or one ``record`` (the multiline filter; ``line`` None); finished
        records are appended to ``out`` (a batch list of the caller's, so a block of lines
        makes no list per line) or to a new list. Returns it. A line no parser takes becomes
        a record of its own, a record passes unchanged."""
        if out is None:
            out = []
        recent = self.recent
        if recent is not None:
            if recent.process(time_ns, line, out, record):
                return out
            recent.flush(out)
        for candidate in self.parser_streams:
            if candidate is not recent and candidate.process(time_ns, line, out, record):
                self.recent = candidate
                return out
        if record is not None:
            out.append((time_ns, record))
            return out
        target = recent if recent is not None else self.parser_streams[0]
        target.flush(out)
        target.pass_through(time_ns, line, out)
        return out

    def flush(self):
        out = []
        for parser_stream in self.parser_streams:
            parser_stream.flush(out)
        return out


# ------------------------------------------------------------------------ configuration
def split_rule(text):
    """``"state" "/regex/" "next"`` -> ["state", "/regex/", "next"] (quotes optional)."""
    tokens = []
    i = 0
    n = len(text)
    while i < n:
        if text[i] in " \t":
            i += 1
            continue
        if text[i] == '"':
            j = i + 1
            chunk = []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n and text[j + 1] == '"':
                    j += 1
                chunk.append(text[j])
                j += 1
            tokens.append("".join(chunk))
            i = j + 1
        else:
            j = i
            while j < n and text[j] not in " \t":
                j += 1
            tokens.append(text[i:j])
            i = j
    return tokens


def _rule(name, states, pattern, to_state):
    try:
        regex = compile_onigmo(pattern)
    except ValueError as exc:
        raise ConfigError("[multiline parser: %s] invalid rule regex %s: %s"
                          % (name, pattern, exc), key="rule")
    return Rule([s.strip() for s in states.split(",") if s.strip()], regex, to_state)


def from_section(section):
    """A MultilineParser from a [MULTILINE_PARSER] section (its Parser is resolved by get)."""
    conf = SCHEMA.build(section.entries, (section.file, section.line))
    name = conf["name"]
    kind = conf["type"]
    rules = []
    for entry in [e for e in section.entries if e.key == "rule"]:
        tokens = split_rule(entry.value)
        if len(tokens) < 2:
            raise ConfigError("[multiline parser: %s] a rule needs \"state\" \"/regex/\" "
                              "\"next_state\"" % name, entry.file, entry.line, "rule")
        try:
            rules.append(_rule(name, tokens[0], tokens[1], tokens[2] if len(tokens) > 2 else None))
        except ConfigError as exc:
            raise exc.located(entry.file, entry.line)
    if kind == "regex" and not any(r.start for r in rules):
        raise ConfigError("[multiline parser: %s] type regex needs a Rule for 'start_state'"
                          % name, section.file, section.line, "rule")
    if kind != "regex" and conf.get("match_string") is None:
        raise ConfigError("[multiline parser: %s] type %s needs Match_String" % (name, kind),
                          section.file, section.line, "match_string")
    return MultilineParser(name, kind, rules, conf.get("match_string"), conf["negate"],
                           conf["flush_timeout"], conf.get("key_content"),
                           conf.get("key_pattern"), conf.get("key_group"),
                           parser_name=conf.get("parser"))


# ------------------------------------------------------------------------ built-ins
def _regex_rules(name, specs):
    return [_rule(name, states, pattern, to_state) for states, pattern, to_state in specs]


_BUILTIN_RULES = {
    "python": (
        ("start_state", r"/^Traceback \(most recent call last\):$/", "python"),
        ("python", r"/^[\t ]+File /", "python_code"),
        ("python_code", r"/[^\t ]/", "python"),
        ("python", r"/^(?:[^\s.():]+\.)*[^\s.():]+:/", "start_state"),
    ),
    "java": (
        ("start_state, java_start_exception",
         r"/(.)(?:Exception|Error|Throwable|V8 errors stack trace)[:\r\n]/",
         "java_after_exception"),
        ("java_after_exception", r"/^[\t ]*nested exception is:[\t ]*/", "java_start_exception"),
        ("java_after_exception", r"/^[\r\n]*$/", "java_after_exception"),
        ("java_after_exception, java", r"/^[\t ]+(?:eval )?at /", "java"),
        ("java_after_exception, java", r"/^[\t ]+--- End of inner exception stack trace ---$/",
         "java"),
        ("java_after_exception, java",
         r"/^--- End of stack trace from previous location where exception was thrown ---$/",
         "java"),
        ("java_after_exception, java", r"/^[\t ]*(?:Caused by|Suppressed):/",
         "java_after_exception"),
        ("java_after_exception, java", r"/^[\t ]*... \d+ (?:more|common frames omitted)/",
         "java"),
    ),
    "go": (
        ("start_state", r"/\bpanic: /", "go_after_panic"),
        ("start_state", r"/http: panic serving/", "go_goroutine"),
        ("go_after_panic", r"/^$/", "go_goroutine"),
        ("go_after_panic, go_after_signal, go_frame_1", r"/^$/", "go_goroutine"),
        ("go_after_panic", r"/^\[signal /", "go_after_signal"),
        ("go_goroutine", r"/^goroutine \d+ \[[^\]]+\]:$/", "go_frame_1"),
        ("go_frame_1", r"/^(?:[^\s.:]+\.)*[^\s.():]+\(|^created by /", "go_frame_2"),
        ("go_frame_2", r"/^\s/", "go_frame_1"),
    ),
    "ruby": (
        ("start_state, ruby_start_exception", r"/^.+:\d+:in\s+.*/", "ruby_after_exception"),
        ("ruby_after_exception, ruby", r"/^\s+from\s+.*:\d+:in\s+.*/", "ruby"),
    ),
}


def _builtin(name, pre_parser):
    if name in _BUILTIN_RULES:
        return MultilineParser(name, "regex", _regex_rules(name, _BUILTIN_RULES[name]))
    if name == "docker":
        return MultilineParser("docker", "endswith", match_string="\n", key_content="log",
                               key_group="stream",
                               parser=pre_parser("json", (
                                   ("time_key", "time"), ("time_format", "%Y-%m-%dT%H:%M:%S.%L"),
                                   ("time_keep", "on"), ("time_strict", "off"))))
    if name == "cri":
        return MultilineParser("cri", "equal", match_string="F", key_content="log",
                               key_group="stream", key_pattern="_p",
                               parser=pre_parser("regex", (
                                   ("regex", r"^(?<time>.+?) (?<stream>stdout|stderr) (?<_p>F|P) "
                                             r"(?<log>.*)$"),
                                   ("skip_empty_values", "off"), ("time_key", "time"),
                                   ("time_format", "%Y-%m-%dT%H:%M:%S.%L%z"), ("time_keep", "on"),
                                   ("time_strict", "off"))))
    return None


BUILTINS = ("docker", "cri", "python", "java", "go", "ruby")


def get(name, custom, parsers, pre_parser):
    """The multiline parser called ``name``: a built-in, or ``custom[name]`` (a
    [MULTILINE_PARSER]) with its Parser taken from ``parsers`` ([PARSER]s by name); KeyError
    when there is none. ``pre_parser(format, ((key, value), ...))`` builds the Parser a
    built-in reads its lines with (docker, cri), logging where the caller logs."""
    name = name.strip()
    parser = _builtin(name, pre_parser)
    if parser is not None:
        return parser
    found = custom.get(name)
    if found is None:
        raise KeyError(name)
    if found.parser_name and found.parser is None:
        try:
            found.parser = parsers[found.parser_name]
        except KeyError:
            raise ConfigError("multiline parser '%s' points to an undefined parser '%s'"
                              % (name, found.parser_name), key="parser")
    return found


def group(parsers):
    """Several parsers tried in turn on each line (``multiline.parser python, java``)."""
    return parsers[0] if len(parsers) == 1 else MultilineParserList(parsers)
