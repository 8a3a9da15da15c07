"""tail: reading a file's new bytes, cutting them into lines and making records (in_tail's
tail_file.c reading half).

Each file is read with ``os.pread`` in blocks of BLOCK bytes; a block is split into lines at
once, parsed with one ``parse_lines`` call (if there is a parser), turned into one batch and
handed to the engine with one ``emit``.

Text: a block is decoded as UTF-8 with ``errors="replace"``. An invalid byte becomes U+FFFD, so
a binary or mis-encoded line still becomes a record that every output can encode (surrogate
escapes would make JSON encoders fail further down), and it never stops the input. Offsets
are kept in bytes of the file, so Offset_Key and the DB stay exact.

A line longer than Buffer_Max_Size with truncate_long_lines is cut to Buffer_Max_Size - 1
bytes (at a UTF-8 character boundary) and the rest of it skipped, as in Fluent Bit (which
packs the cut line raw; edgeship gives it to the parser like any line: a cut JSON text fails
and stays raw). Without it or Skip_Long_Lines, such a line stops the file with Fluent Bit's
error, once: the file stays open, unread, until it is truncated or replaced (Fluent Bit drops
it and finds it again at every rescan, logging the error each time and, without a DB,
reading the lines before it again).
"""
import itertools
import os
import time

from edgeship.core import events as ev
from edgeship.plugins.inputs.tail.discovery import FINGERPRINT

BLOCK = 128 * 1024      # bytes per read: per-block costs vanish already (256 KB: same CPU,
                        # 2.7 MB more peak RSS; 64 KB: 7% more CPU per line)


class Reading:
    """The part of TailInput that reads blocks and turns their lines into records (state:
    ``parser``, ``multiline`` streams, ``key``, ``path_key``, ``offset_key``, ``max_line``)."""

    def _read(self, f):
        """Read one block of ``f`` and emit its complete lines; False at end of file.

        Every read first checks that the file still holds what was read from it, whatever
        happened since (a pause, a long burst behind a fast writer): the bytes before the read
        position come in the same pread as the block, and the head is compared after it. A
        file that shrank below our offset, or was truncated and written past it again, is read
        from its start, not from the old offset in the middle of the new content."""
        window = len(f.fingerprint)
        try:
            data = os.pread(f.fd, window + BLOCK, f.read_pos - window)
            same_head = self._same_head(f)
        except OSError as exc:
            self.log.error("error reading %s: %s", f.name, exc.strerror)
            self._remove(f, "read error")
            return False
        if data[:window] != f.fingerprint:
            self._truncated(f)          # the block belongs to other content: not emitted
            return True
        data = data[window:]
        f.at_eof = len(data) < BLOCK
        if data:
            self._consume(f, data)
        if not same_head:
            # Changed after the block was read (or the window matched by chance): the block
            # was emitted (a duplicate at worst, never a loss), now start over.
            self._truncated(f)
            return True
        return bool(data)

    def _consume(self, f, data):
        if len(f.head) == f.read_pos < FINGERPRINT:
            f.head = (f.head + data)[:FINGERPRINT]
        f.read_pos += len(data)
        f.fingerprint = (f.fingerprint + data)[-FINGERPRINT:] if len(data) < FINGERPRINT \
            else data[-FINGERPRINT:]
        if f.pending:
            data = f.pending + data
            f.pending = b""
        self._process(f, data, f.read_pos - len(data))

    def _process(self, f, data, start):
        """Cut ``data`` (starting at file offset ``start``) into lines and emit them."""
        if f.skip_next:
            # The rest of an over-long line: dropped up to its newline. No offset is committed
            # inside it, so a restart never begins in the middle of a line.
            newline = data.find(b"\n")
            if newline < 0:
                return
            f.skip_next = False
            data = data[newline + 1:]
            start += newline + 1
        if data[:1] == b"\0":
            # NULs at a line start come from copytruncate racing the writer; Fluent Bit skips
            # them too.
            kept = data.lstrip(b"\0")
            start += len(data) - len(kept)
            data = kept
        last = data.rfind(b"\n")
        f.pending = data[last + 1:]
        if last >= 0:
            body = data[:last]
            end = start + last + 1
            lines, offsets, stop = self._split(f, body, start)
            self._emit_lines(f, lines, offsets, end if stop is None else stop, len(body) + 1,
                             b"\r" in body)
            if stop is not None:
                self._drop_for_long_line(f)
                return
        if len(f.pending) > self.max_line:
            self._long_partial(f)

    def _split(self, f, body, start):
        """(lines, offsets or None, stop offset or None). Offsets are computed only when some
        feature needs them; ``stop`` is where an over-long line ends the file's reading."""
        need_offsets = self.offset_key is not None or f.stream is not None
        may_be_long = len(body) > self.max_line
        blines = body.split(b"\n") if may_be_long or need_offsets else None
        if may_be_long and max(map(len, blines)) > self.max_line:
            return self._split_long(f, blines, start)
        lines = body.decode("utf-8", "replace").split("\n")
        if not need_offsets:
            return lines, None, None
        offsets = list(itertools.accumulate([len(b) + 1 for b in blines[:-1]], initial=start))
        return lines, offsets, None

    def _split_long(self, f, blines, start):
        """The slow path of a block holding a line over Buffer_Max_Size."""
        lines, offsets = [], []
        pos = start
        truncate = self.conf["truncate_long_lines"]
        for b in blines:
            if len(b) > self.max_line and truncate:
                lines.append(self._cut(b))
                offsets.append(pos)
            elif len(b) > self.max_line:
                if not self.conf["skip_long_lines"]:
                    return lines, offsets, pos
                self._warn_long(f)
                self.skipped_long_lines += 1
            else:
                lines.append(b.decode("utf-8", "replace"))
                offsets.append(pos)
            pos += len(b) + 1
        return lines, offsets, None

    def _long_partial(self, f):
        """An incomplete line already longer than allowed: skip it up to its newline, or stop
        following the file (or, with truncate_long_lines, emit its cut head and skip the rest)."""
        if self.conf["truncate_long_lines"]:
            start = f.read_pos - len(f.pending)
            line = self._cut(f.pending)
            f.pending = b""
            f.skip_next = True
            self._emit_lines(f, [line], [start], f.read_pos, len(line), False)
            return
        if not self.conf["skip_long_lines"]:
            self._drop_for_long_line(f)
            return
        self._warn_long(f)
        self.skipped_long_lines += 1
        f.pending = b""
        f.skip_next = True

    def _cut(self, data):
        """The head of an over-long line that truncate_long_lines keeps, as text."""
        cut = data[:self.max_line + 1]
        lead = len(cut) - 1
        while lead > 0 and (cut[lead] & 0xC0) == 0x80:
            lead -= 1
        first = cut[lead] if cut else 0
        size = 1 if first < 0xC0 else 2 if first < 0xE0 else 3 if first < 0xF0 else 4
        if lead + size > len(cut):      # never in the middle of a character
            cut = cut[:lead]
        self.truncated_long_lines += 1
        return cut.decode("utf-8", "replace")

    def _warn_long(self, f):
        if not f.warned_long:
            self.log.warn("file=%s have long lines. Skipping long lines.", f.name)
            f.warned_long = True

    def _drop_for_long_line(self, f):
        """Fluent Bit stops following the file and finds it again at every rescan, logging this
        error (and, without a DB, reading the lines before it again) each Refresh_Interval.
        edgeship keeps it open but unread, stalled at the line, until its content changes
        (truncated, replaced): one error per file."""
        self.log.error("file=%s requires a larger buffer size, lines are too long. "
                       "Skipping file.", f.name)
        f.pending = b""
        f.stalled = True

    # ------------------------------------------------------------------ records
    def _emit_lines(self, f, lines, offsets, end, size, has_cr):
        if self.conf["skip_empty_lines"]:
            if offsets is None:
                lines = [line for line in lines if line]
            else:
                kept = [(line, off) for line, off in zip(lines, offsets) if line]
                lines = [k[0] for k in kept]
                offsets = [k[1] for k in kept]
        now = ev.now_ns()
        if f.stream is not None:
            events, end = self._feed(f, lines, offsets, end, now)
        elif self.parser is not None:
            events = self._parse(f, lines, offsets, now, has_cr)
        elif self.path_key is None and self.offset_key is None:
            key = self.key
            if has_cr:
                lines = [_strip_cr(line) for line in lines]
            events = [(now, {key: line}) for line in lines]
        else:
            events = [(now, self._raw(f, _strip_cr(line), off))
                      for line, off in zip(lines, offsets or itertools.repeat(None))]
        self._emit(f, events, end, size)

    def _raw(self, f, line, offset):
        """An unparsed line: Path_Key and Offset_Key come before the line."""
        record = self._decorate(f, {}, offset)
        record[self.key] = line
        return record

    def _decorate(self, f, record, offset):
        """Parsed and multiline records get Path_Key and Offset_Key after their fields."""
        if self.path_key is not None:
            record[self.path_key] = f.name
        if self.offset_key is not None:
            record[self.offset_key] = offset
        return record

    def _parse(self, f, lines, offsets, now, has_cr):
        texts = [_strip_cr(line) for line in lines] if has_cr else lines
        decorate = self.path_key is not None or self.offset_key is not None
        as_rendered = not decorate and self.context.takes_json_lines(f.tag)
        events = self.parser.parse_lines(texts, now, as_rendered=as_rendered)
        if not decorate and None not in events:
            return events
        failed = 0
        for i, (line, off) in enumerate(zip(lines, offsets or itertools.repeat(None))):
            event = events[i]
            if event is None:
                # Fluent Bit keeps the raw line, trailing '\r' included.
                failed += 1
                events[i] = (now, self._raw(f, line, off))
            elif decorate:
                self._decorate(f, event[1], off)
        if failed:
            self.parse_failures += failed
            self.log.debug("%d of %d lines of %s did not match parser '%s'; kept raw",
                           failed, len(lines), f.name, self.conf["parser"])
        return events

    def _feed(self, f, lines, offsets, end, now):
        """Multiline: returns the completed records and the offset that may be committed with
        them: after the last line at which the stream held nothing back."""
        stream = f.stream
        feed = stream.feed
        events = []
        safe = f.ml_safe
        for i, line in enumerate(lines):
            feed(now, _strip_cr(line), events)
            if not stream.pending:
                safe = offsets[i + 1] if i + 1 < len(offsets) else end
        if not lines and not stream.pending:
            safe = end
        f.ml_safe = safe
        f.last_feed = time.monotonic()
        if self.path_key is not None or self.offset_key is not None:
            for _, record in events:
                self._decorate(f, record, end)
        return events, safe

    def _flush_stream(self, f):
        """Hand over the group a multiline stream still holds (flush timeout, EOF, close)."""
        if f.stream is None or not f.stream.pending:
            return
        events = f.stream.flush()
        f.ml_safe = f.consumed
        if self.path_key is not None or self.offset_key is not None:
            for _, record in events:
                self._decorate(f, record, f.consumed)
        self._emit(f, events, f.ml_safe, 0)


def _strip_cr(line):
    """CRLF ends lose the '\\r'; a line that is only '\\r' keeps it, as in Fluent Bit."""
    if len(line) > 1 and line[-1] == "\r":
        return line[:-1]
    return line

