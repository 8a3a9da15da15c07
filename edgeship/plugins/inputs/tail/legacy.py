"""tail: the old multiline mode (``Multiline On``, ``Parser_Firstline``, ``Parser_N``), still
in Fluent Bit 5.1.1 beside ``multiline.parser`` (in_tail's tail_multiline.c).

It gives the tail input a multiline object with the interface of edgeship.text.multiline
(``flush_timeout``, ``stream(key)``, ``stream.feed/flush/pending``), so reading, offsets and
timeouts are the ones of ``multiline.parser``.

Fluent Bit behaviour kept:
- A line Parser_Firstline parses starts a record (the previous one goes out): its fields, its
  time (now when it has none).
- Any other line is tried with Parser_1..N in config order; the first that parses adds its
  fields to the open record. A line none parses is appended, after a "\\n", to the last field
  of the open record when that field is a string; otherwise it becomes a record of its own
  ({Key: line}), sent at once.
- A record waits Multiline_Flush seconds (default 4) for its next line.
- The tail ``Parser`` is not used in this mode (Fluent Bit warns and disables it).

Difference: a Parser_N line before any first line becomes a record of its own (Fluent Bit
keeps it in a buffer the next first line discards).
"""
from edgeship.codecs.untrusted import raw_decode
from edgeship.core.events import now_ns


class OldMultiline:
    def __init__(self, firstline, parsers, flush_timeout, key):
        self.firstline = firstline
        self.parsers = parsers
        self.flush_timeout = max(1.0, flush_timeout)
        self.key = key

    def stream(self, key=None):
        return _Stream(self)


class _Stream:
    def __init__(self, mode):
        self.mode = mode
        self.time = None
        self.record = None
        self.tail = None        # the field raw lines are appended to, or None
        self.parts = None       # its text pieces, joined when the record goes out

    @property
    def pending(self):
        return self.record is not None

    def feed(self, time_ns, line, out=None):
        if out is None:
            out = []
        mode = self.mode
        parsed = mode.firstline.parse(line)
        if parsed is not None:
            self._close(out)
            self.time = parsed[0] if parsed[0] is not None else time_ns
            self._add(parsed[1])
            return out
        for parser in mode.parsers:
            parsed = parser.parse(line)
            if parsed is not None:
                if self.record is None:
                    out.append((parsed[0] if parsed[0] is not None else time_ns, parsed[1]))
                else:
                    self._add(parsed[1])
                return out
        if self.tail is not None:
            self.parts.append(line)
        else:
            out.append((time_ns, {mode.key: line}))
        return out

    def flush(self):
        out = []
        self._close(out)
        return out

    def _add(self, fields):
        """Merge ``fields`` into the open record; its last field, when a string, is where
        raw lines go next."""
        if self.record is None:
            self.record = {}
        self._join()
        self.record.update(fields)
        self.tail = self.parts = None
        if fields:
            last = list(fields)[-1]
            if isinstance(fields[last], str):
                self.tail, self.parts = last, [fields[last]]

    def _join(self):
        if self.tail is not None and len(self.parts) > 1:
            self.record[self.tail] = "\n".join(self.parts)

    def _close(self, out):
        if self.record is None:
            return
        self._join()
        out.append((self.time, self.record))
        self.record = self.tail = self.parts = None


# ------------------------------------------------------------------------ Docker_Mode
class DockerMode:
    """``Docker_Mode On`` (tail_dockermode.c): docker's JSON log lines whose ``log`` value
    does not end with a newline are joined with the next ones; the joined line (the last
    line's JSON with ``log`` holding every part) then goes to the tail Parser, or becomes
    {Key: line}. A line that is not a JSON object with a ``log`` string sends the waiting
    parts first and is read as usual. Parts wait Docker_Mode_Flush seconds (default 4)."""

    def __init__(self, parser, key, flush_timeout):
        self.parser = parser
        self.key = key
        self.flush_timeout = max(1.0, flush_timeout)

    def stream(self, key=None):
        return _DockerStream(self)


class _DockerStream:
    def __init__(self, mode):
        self.mode = mode
        self.parts = []         # the escaped text of each waiting log value
        self.last = None        # (line, start, end of its log value) of the last part

    @property
    def pending(self):
        return self.last is not None

    def feed(self, time_ns, line, out=None):
        if out is None:
            out = []
        found = log_value(line)
        if found is None:
            self._close(time_ns, out)
            self._record(time_ns, line, out)
            return out
        start, end, text = found
        self.parts.append(line[start:end])
        self.last = (line, start, end)
        if text.endswith("\n"):
            self._close(time_ns, out)
        return out

    def flush(self):
        out = []
        self._close(None, out)
        return out

    def _close(self, time_ns, out):
        if self.last is None:
            return
        line, start, end = self.last
        joined = line[:start] + "".join(self.parts) + line[end:]
        self.parts, self.last = [], None
        self._record(time_ns, joined, out)

    def _record(self, time_ns, line, out):
        if time_ns is None:
            time_ns = now_ns()
        parsed = self.mode.parser.parse(line) if self.mode.parser is not None else None
        if parsed is None:
            out.append((time_ns, {self.mode.key: line}))
        else:
            out.append((parsed[0] if parsed[0] is not None else time_ns, parsed[1]))


def log_value(line):
    """(start, end, text) of the first top-level ``log`` string of the JSON object ``line``
    (start/end bound its escaped text, without the quotes), or None."""
    pos = _skip(line, 0)
    if line[pos:pos + 1] != "{":
        return None
    try:
        pos = _skip(line, pos + 1)
        while line[pos:pos + 1] == '"':
            key, pos = raw_decode(line, pos)
            pos = _skip(line, pos)
            if line[pos:pos + 1] != ":":
                return None
            pos = _skip(line, pos + 1)
            value, end = raw_decode(line, pos)
            if key == "log":        # the first one decides, as in Fluent Bit
                return (pos + 1, end - 1, value) if isinstance(value, str) else None
            pos = _skip(line, end)
            if line[pos:pos + 1] != ",":
                return None
            pos = _skip(line, pos + 1)
    except ValueError:      # not JSON (TooDeep is one too)
        return None
    return None


def _skip(text, pos):
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos
