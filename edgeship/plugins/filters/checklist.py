"""checklist filter: flag records whose value is in a list of lines (filter_checklist).

Behaviour of Fluent Bit 5.1.1 kept (checked on the real binary):
- ``File``: one entry a line; empty lines and lines starting with ``#`` are skipped, a line
  ending keeps its other characters (leading spaces are part of the entry), a ``\\r`` before
  the ``\\n`` is dropped. A line longer than 2045 bytes (or holding a NUL byte) ends the
  loading with an error: the entries before it are kept, none after.
- ``Lookup_Key`` (default ``log``) is a record accessor (``$a['b']``); only a string value is
  looked up.
- ``Mode exact`` (default): the value is one of the entries. ``Mode partial``: the value
  starts with an entry, where ``%`` in an entry stands for any text and ``_`` for any one
  character (Fluent Bit asks SQLite ``value LIKE entry || '%'``, case-sensitively). Another
  Mode word means exact (a warning here).
- ``Ignore_Case``: entries and values compare in ASCII lowercase.
- ``Record KEY VALUE`` (repeatable, at least two words; the value is the *last* word, the
  rest of the line after the second word when there are more): a matching record loses the
  keys a Record names, then gets every Record in config order; ``true``, ``false`` (any
  case) are booleans, ``null`` is null, anything else a string. Keys that are not strings are
  dropped from a matching record, as Fluent Bit's re-encoding drops them. Other records
  pass untouched.

Differences:
- A missing or unreadable ``File``, no ``File`` at all, a line too long or an unknown Mode
  are warnings at their config line that ``--strict`` makes errors (Fluent Bit logs an error
  and runs with what it loaded); a ``Lookup_Key`` that is no record accessor is a config
  error (Fluent Bit then crashes on the first record).
- A relative ``File`` is found by edgeship's one rule (the current directory, then the main
  config's directory); Fluent Bit opens it from the current directory.
- ``Print_Query_Time`` logs one line per batch with matches (the time spent looking the
  batch up, the number of matches and the first value matched), not one per record.
"""
import re
import time

from edgeship.core.accessor import accessor
from edgeship.core.errors import ConfigError
from edgeship.core.files import open_regular
from edgeship.core.schema import Option
from edgeship.engine.plugin import Filter
from edgeship.plugins.filters._tokens import ascii_lower, split_tokens

# fgets(buf, 2047) of Fluent Bit's 2048-byte buffer: a line with its '\n' fits in 2046 bytes.
LINE_LIMIT = 2046
_WORDS = {"true": True, "false": False, "null": None}


def like_prefix(pattern):
    """The regex of SQLite's ``value LIKE pattern || '%'`` (no ESCAPE, case-sensitive)."""
    parts = []
    for char in pattern:
        if char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return "".join(parts)


class Checklist:
    """The entries of a list file, and the one question asked of them."""

    def __init__(self, partial):
        self.partial = partial
        self.exact = set()      # exact mode; partial mode: the entries without a wildcard
        self.lengths = ()       # partial mode: the lengths of those, longest last
        self.wildcards = []     # partial mode: entries with % or _
        self.regex = None

    def add(self, entry):
        if self.partial and ("%" in entry or "_" in entry):
            self.wildcards.append(like_prefix(entry))
        else:
            self.exact.add(entry)

    def done(self):
        self.lengths = tuple(sorted(set(len(entry) for entry in self.exact)))
        if self.wildcards:
            self.regex = re.compile("(?:%s)" % "|".join(self.wildcards), re.DOTALL)
        self.wildcards = []

    def __len__(self):
        return len(self.exact) + (1 if self.regex is not None else 0)

    def matches(self, value):
        if not self.partial:
            return value in self.exact
        exact = self.exact
        for length in self.lengths:
            if length > len(value):
                break
            if value[:length] in exact:
                return True
        return self.regex is not None and self.regex.match(value) is not None


class ChecklistFilter(Filter):
    name = "checklist"
    description = "Check records and flag them"
    options = (
        Option("File", help="the file of entries, one a line (# starts a comment line)"),
        Option("Mode", default="exact",
               help="exact (the value is an entry) or partial (the value starts with an "
                    "entry; % and _ are wildcards)"),
        Option("Print_Query_Time", "bool", "false", attr="print_query_time",
               help="log the lookup time of each batch with matches"),
        Option("Ignore_Case", "bool", "false", attr="ignore_case",
               help="compare in ASCII lowercase"),
        Option("Lookup_Key", default="log",
               help="the key ($a['b'] allowed) whose string value is looked up"),
        Option("Record", multiple=True,
               help="KEY VALUE: set on matching records (true, false, null are not strings)"),
    )

    def configure(self):
        mode = self.conf["mode"].lower()
        if mode not in ("exact", "partial"):
            self.context.tolerate(ConfigError("checklist: unknown mode '%s': exact is used"
                                              % self.conf["mode"], key="mode"))
            mode = "exact"
        try:
            self.lookup = accessor(self.conf["lookup_key"])
        except ValueError as exc:
            raise ConfigError("checklist: invalid lookup_key pattern: %s" % exc,
                              key="lookup_key")
        if self.lookup is None:
            raise ConfigError("checklist: invalid lookup_key pattern '%s': not a record key"
                              % self.conf["lookup_key"], key="lookup_key")
        self.records = self._records()
        self.record_keys = frozenset(key for key, _ in self.records)
        self.list = Checklist(mode == "partial")
        if not self.conf["file"]:
            self.context.tolerate(ConfigError("checklist: option 'file' is not set: no "
                                              "record will match", key="file"))
        else:
            self._load(self.context.config_files.locate(self.conf["file"]))
        self.list.done()

    def _records(self):
        pairs = []
        for key, value, entry in self.conf.ordered:
            if key != "record":
                continue
            words = split_tokens(value, 2)
            if len(words) < 2:
                raise ConfigError("checklist: property 'record' expects 2 values (only %d "
                                  "were found)" % len(words), entry.file, entry.line, entry.key)
            name, text = words[0], words[-1]
            pairs = [pair for pair in pairs if pair[0] != name]   # the last one shows
            pairs.append((name, _WORDS.get(text.lower(), text)))
        if not pairs:
            self.log.warn("checklist: no 'record' options has been specified")
        return pairs

    def _load(self, path):
        lower = self.ignore_case
        add = self.list.add
        try:
            with open_regular(path) as f:
                while True:
                    line = f.readline(LINE_LIMIT)        # as fgets reads it
                    if not line:
                        break
                    ended = line.endswith(b"\n")
                    nul = line.find(b"\0")
                    if (not ended and len(line) == LINE_LIMIT) or (nul >= 0 and ended):
                        self.context.tolerate(ConfigError(
                            "checklist: '%s': length of content has exceeded limit (a line "
                            "of more than %d bytes, or a NUL byte): the rest of the file is "
                            "not loaded" % (path, LINE_LIMIT - 1), key="file"))
                        break
                    if nul >= 0:
                        line = line[:nul]                # C string, at the end of the file
                    elif ended:
                        line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
                    if not line or line.startswith(b"#"):
                        continue
                    entry = line.decode("utf-8", "surrogateescape")
                    add(ascii_lower(entry) if lower else entry)
        except OSError as exc:
            self.context.tolerate(ConfigError("checklist: could not open file '%s': %s: no "
                                              "record will match" % (path, exc.strerror or exc),
                                              key="file"))
            return
        self.log.info("checklist: %d entries loaded from %s", len(self.list), path)

    # ---------------------------------------------------------------- the batch
    def filter(self, tag, events):
        lookup, matches, lower = self.lookup, self.list.matches, self.ignore_case
        key = lookup.key if not lookup.path else None
        timed = self.print_query_time
        started = time.perf_counter_ns() if timed else 0
        out = None
        first = None
        found = 0
        for i, (time_ns, record) in enumerate(events):
            value = record.get(key) if key is not None else lookup.get(record)
            if type(value) is not str or not matches(ascii_lower(value) if lower else value):
                continue
            if out is None:
                out = list(events)
                first = value
            found += 1
            out[i] = (time_ns, self._flag(record))
        if timed and found:
            spent = time.perf_counter_ns() - started
            self.log.info("checklist: query time (sec.ns): %d.%09d : %d of %d records "
                          "matched, the first '%s'", spent // 1000000000, spent % 1000000000,
                          found, len(events), first[:200])
        return events if out is None else out

    def _flag(self, record):
        skip = self.record_keys
        flagged = {k: v for k, v in record.items() if type(k) is str and k not in skip}
        flagged.update(self.records)
        return flagged


PLUGIN = ChecklistFilter
