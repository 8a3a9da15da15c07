"""head input: the beginning of a file, read again every interval (in_head).

Kept from Fluent Bit 5.1.1 (plugins/in_head): the file is opened and read from its start at
every tick (the first one interval after the start) and makes one record:
- by default its first ``Buf_Size`` bytes (default 256) under ``Key`` (default ``head``):
  ``{"head": "line one\\nline two\\n"}``, then ``"path": "<File>"`` with ``Add_Path on``;
- with ``Lines N``, its first N lines, newlines kept, joined in one string (a line longer
  than 510 bytes counts as several, as fgets reads it; Buf_Size does not cut them);
- with ``Split_Line on`` (``Lines`` 10 when not set), ``"path"`` first with ``Add_Path``,
  then ``line0``, ``line1``, ... one key per line (``Buf_Size`` - 1 bytes at most each), an
  empty string for a line past the end of the file.
``File`` is read as written (a relative path from the current directory).

Differences: Fluent Bit ends every ``Split_Line`` value with a NUL byte in place of the
newline (``"line one\\u0000"``), a defect; edgeship sends the line without its newline. A file
that cannot be read is logged (once until it is readable again) and makes no record; Fluent
Bit sends an empty ``head`` value in the default mode.
"""
from edgeship.core.schema import Option
from edgeship.plugins.inputs._host import fgets_pieces
from edgeship.plugins.inputs._interval import IntervalInput, interval_options

# Lines mode reads with fgets into Fluent Bit's fixed 512-byte buffer, less one.
LINE_READ = 511
DEFAULT_SPLIT_LINES = 10


class HeadInput(IntervalInput):
    name = "head"
    description = "Head Input"
    options = (
        Option("File", required=True, help="the file to read"),
        Option("Key", default="head", help="the record key of the text"),
        Option("Buf_Size", "size", "256", min=2, help="bytes read (default mode) or longest "
                                                      "line (Split_Line)"),
        Option("Split_Line", "bool", "false", help="one key per line: line0, line1, ..."),
        Option("Lines", "int", "0", help="read this many lines instead of Buf_Size bytes"),
        Option("Add_Path", "bool", "false", help="add the file's path under 'path'"),
    ) + interval_options()

    def configure(self):
        self.path = self.conf["file"]
        self.key = self.conf["key"]
        self.buf_size = self.conf["buf_size"]
        self.split = self.conf["split_line"]
        self.lines = self.conf["lines"]
        if self.split and self.lines <= 0:
            self.lines = DEFAULT_SPLIT_LINES
        self.failed = False

    def _read(self):
        """The bytes this mode looks at: Buf_Size bytes, or enough for the lines wanted."""
        with open(self.path, "rb") as f:
            if self.lines <= 0:
                return f.read(self.buf_size)
            longest = self.buf_size - 1 if self.split else LINE_READ - 1
            return f.read(self.lines * longest)

    def collect(self, now_ns):
        try:
            data = self._read()
        except OSError as exc:
            if not self.failed:
                self.log.error("cannot read %s: %s", self.path, exc.strerror or exc)
            self.failed = True
            return []
        if self.failed:
            self.log.info("%s readable again", self.path)
        self.failed = False
        if self.split:
            return [self._split(data)]
        if self.lines > 0:
            pieces, _ = fgets_pieces(data, LINE_READ, at_eof=True, limit=self.lines)
            data = b"".join(pieces)
        record = {self.key: data.decode("utf-8", "replace")}
        if self.conf["add_path"]:
            record["path"] = self.path
        return [record]

    def _split(self, data):
        record = {"path": self.path} if self.conf["add_path"] else {}
        pieces, _ = fgets_pieces(data, self.buf_size, at_eof=True, limit=self.lines)
        for n in range(self.lines):
            piece = pieces[n] if n < len(pieces) else b""
            if piece.endswith(b"\n"):
                piece = piece[:-1]
            record["line%d" % n] = piece.decode("utf-8", "replace")
        return record


PLUGIN = HeadInput
