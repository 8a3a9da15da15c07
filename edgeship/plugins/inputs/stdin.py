"""stdin input: records from the standard input (in_stdin); EOF ends the process once
everything read was delivered.

Without a Parser the input is a stream of JSON values (several per line or one over several
lines): a map is a record stamped now, ``[time, map]`` or ``[[time, metadata], map]`` a record
with its own time (one before 1970 or after 2106, which no event carries, is replaced by the
arrival time, counted and logged once per read); anything else is skipped, counted and logged
once per read (so is a value nested deeper than ``untrusted.MAX_DEPTH`` levels). The values
follow Fluent Bit's JSON rules (edgeship.codecs.untrusted): a key given twice keeps the last
value at the later position, NaN is refused, and a number beyond a double is infinity, as
in_stdin's tokenizer reads it. With a Parser each line is parsed; a line it does not match (a
JSON line too deep for the json parser included) is kept raw under ``log`` and counted.

Differences from Fluent Bit, for safety: Fluent Bit drops its whole buffer at the first
invalid JSON and parses partial lines with a Parser; edgeship skips only the bad line, waits
for whole lines, and parses a last line that has no newline instead of dropping it at EOF.

Reading never blocks the loop: pipes, terminals and sockets are read through an asyncio pipe
transport; a regular file (``< file``) or a device that is not a terminal (/dev/null) is read
directly, which does not block (epoll refuses both).
"""
import asyncio
import codecs
import os
import stat

from edgeship.codecs import untrusted
from edgeship.core import events as ev
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import Input

DEFAULT_BUFFER = 16000


def _event(value, now):
    """A decoded JSON value as an event, or None when it is not a map or [time, map]. A
    time an event cannot carry (before 1970, past 2106) comes back as None."""
    if isinstance(value, dict):
        return now, value
    if isinstance(value, list) and len(value) == 2 and isinstance(value[1], dict):
        stamp = value[0]
        if isinstance(stamp, list) and stamp:
            stamp = stamp[0]        # [[time, metadata], map] (Fluent Bit 2.1+)
        if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
            return ev.checked_seconds(stamp), value[1]
    return None


class StdinInput(Input):
    name = "stdin"
    description = "Standard Input"
    options = (
        Option("Parser", help="parser applied to each line (default: JSON values)"),
        Option("Buffer_Size", "size", str(DEFAULT_BUFFER), min=DEFAULT_BUFFER,
               attr="buffer_size",
               help="read size; also the largest JSON value accepted"),
    )
    exit_on_eof = True

    def configure(self):
        self.parser = None
        if self.conf["parser"]:
            try:
                self.parser = self.context.parser(self.conf["parser"])
            except KeyError:
                raise ConfigError("stdin: requested parser '%s' not found" % self.conf["parser"],
                                  key="parser")
        self.text = ""
        self.invalid = 0
        self.reader = None

    async def run(self):
        fd = os.dup(0)
        transport = None
        try:
            mode = os.fstat(fd).st_mode
            # epoll refuses regular files and devices such as /dev/null (EPERM): read them
            # directly (neither blocks); a tty goes through the pipe transport.
            if stat.S_ISREG(mode) or (stat.S_ISCHR(mode) and not os.isatty(fd)):
                async def read():
                    return os.read(fd, self.buffer_size)
            else:
                reader = self.reader = asyncio.StreamReader(limit=self.buffer_size)
                loop = asyncio.get_running_loop()
                transport, _ = await loop.connect_read_pipe(
                    lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", 0))
                fd = None   # the transport owns it now

                async def read():
                    return await reader.read(self.buffer_size)
            await self._consume(read)
        finally:
            if transport is not None:
                transport.close()
            elif fd is not None:
                os.close(fd)

    async def _consume(self, read):
        # Invalid UTF-8 becomes U+FFFD (and never stops the input); a character split across
        # two reads is decoded whole.
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        while not self.stopping:
            await self.context.room()
            data = await read()
            if self.stopping:
                return
            if not data:
                self.log.warn("end of file (stdin closed by remote end)")
                self._take(decoder.decode(b"", True), 0, at_eof=True)
                self.context.finished()
                return
            self._take(decoder.decode(data), len(data), at_eof=False)

    def stop(self):
        Input.stop(self)
        if self.reader is not None:
            # Wake the pending read: a signal must not wait for the writer's next line.
            self.reader.feed_eof()

    def _take(self, text, size, at_eof):
        self.text += text
        if self.parser is not None:
            events = self._parse_lines(at_eof)
        else:
            events = self._json_values(at_eof)
        if events:
            self.context.emit(self.tag, events, size)

    def _parse_lines(self, at_eof):
        lines = self.text.split("\n")
        self.text = "" if at_eof else lines.pop()
        if len(self.text) >= self.buffer_size:
            # A line longer than the buffer goes out in pieces rather than being lost.
            lines.append(self.text)
            self.text = ""
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        lines = [line for line in lines if line]
        now = ev.now_ns()
        events = self.parser.parse_lines(lines, now)
        for i, event in enumerate(events):
            if event is None:
                self.invalid += 1
                events[i] = (now, {"log": lines[i]})
        return events

    def _json_values(self, at_eof):
        now = ev.now_ns()
        scan = untrusted.scan_values(self.text, at_eof, self.buffer_size, overflow_ok=True)
        self.text = self.text[scan.end:]
        events = []
        not_map = bad_time = 0
        for value in scan.values:
            event = _event(value, now)
            if event is None:
                not_map += 1
                continue
            if event[0] is None:
                bad_time += 1
                event = (now, event[1])
            events.append(event)
        if scan.invalid or not_map or scan.too_deep or bad_time:
            self._report(scan.invalid, scan.example, not_map, scan.too_deep, bad_time)
        return events

    def _report(self, invalid, example, not_map, too_deep, bad_time):
        """One line per kind of bad value and read, not one per value."""
        self.invalid += invalid + not_map + too_deep + bad_time
        if bad_time:
            self.log.warn("record time before 1970 or after 2106, stamped with the arrival "
                          "time instead (%d in this read)", bad_time)
        if invalid:
            self.log.warn("invalid JSON message, skipping: %r (%d in this read)", example,
                          invalid)
        if not_map:
            self.log.error("invalid record found, it's not a JSON map or array (%d in this "
                           "read)", not_map)
        if too_deep:
            self.log.warn("JSON message nested deeper than %d levels, skipping (%d in this "
                          "read)", untrusted.MAX_DEPTH, too_deep)


PLUGIN = StdinInput
