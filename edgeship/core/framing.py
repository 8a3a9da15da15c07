"""Message framing of byte streams (sans-IO): the tcp input's Separator and the syslog
input's newline and octet-counting (RFC 6587) framing. Shared with MicroPython (no imports).

Each framer follows the session convention (``edgeship.core.session``): ``receive(data)``
takes any cut of the stream and returns a Result whose ``events`` are the whole messages
(bytes, without their framing) found so far; ``close`` says why the stream cannot go on.
``finish()`` returns what is left when the stream ends.

Bounds: a message never holds more than ``max_size`` bytes in the framer. With a separator,
a longer message is handed on in pieces of ``max_size`` bytes (``split`` counts them; the
caller logs once per read) rather than lost; with octet counting, a frame declaring more
than ``max_size`` bytes closes the stream, as a length that is not a number does.
"""
from edgeship.core.session import Result


class SeparatorFrames:
    """Messages ended by ``separator`` (bytes). Empty messages are skipped.
    ``alternatives``: other bytes that also end a message (syslog's NUL)."""

    def __init__(self, separator=b"\n", max_size=None, alternatives=()):
        if not separator:
            raise ValueError("empty separator")
        self.separator = separator
        self.alternatives = tuple(alternatives)
        self.max_size = max_size
        self.pending = b""
        self.split = 0          # pieces handed on because a message outgrew max_size

    def receive(self, data):
        for other in self.alternatives:
            if other in data:
                data = data.replace(other, self.separator)
        sep = self.separator
        buf = self.pending + data if self.pending else data
        if sep not in buf:
            self.pending = buf
            return Result(self._cut_long([]))
        parts = buf.split(sep)
        self.pending = parts.pop()
        if b"" in parts:
            parts = [part for part in parts if part]
        if self.max_size is not None:
            parts = self._cut_parts(parts)
        return Result(self._cut_long(parts))

    def finish(self):
        """The unterminated last message (a list of zero or one message)."""
        rest, self.pending = self.pending, b""
        return [rest] if rest else []

    def _cut_parts(self, parts):
        size = self.max_size
        if all(len(part) <= size for part in parts):
            return parts
        out = []
        for part in parts:
            if len(part) <= size:
                out.append(part)
            else:
                pieces = [part[i:i + size] for i in range(0, len(part), size)]
                self.split += len(pieces) - 1
                out.extend(pieces)
        return out

    def _cut_long(self, frames):
        size = self.max_size
        if size is not None and len(self.pending) > size:
            while len(self.pending) > size:
                frames.append(self.pending[:size])
                self.pending = self.pending[size:]
                self.split += 1
        return frames


_DIGITS = b"0123456789"


class OctetCountingFrames:
    """RFC 6587 octet counting: ``LEN SP MSG`` repeated. A line feed after a message (some
    senders add one) is skipped, as Fluent Bit does; an empty message is skipped."""

    def __init__(self, max_size):
        self.max_size = max_size
        self.buffer = b""
        self.closed = None

    def receive(self, data):
        if self.closed is not None:
            return Result(close=self.closed)
        buf = self.buffer + data if self.buffer else data
        frames = []
        pos = 0
        end = len(buf)
        while pos < end:
            if buf[pos] in b"\n\r":       # the LF (CR LF) some senders put after a frame
                pos += 1
                continue
            space = buf.find(b" ", pos, pos + 21)
            if space < 0:
                if end - pos > 20 or buf[pos:end].strip(_DIGITS):
                    return self._close(frames, "invalid octet-counting length")
                break                       # the length continues in the next read
            digits = buf[pos:space]
            if not digits or digits.strip(_DIGITS):
                return self._close(frames, "invalid octet-counting length")
            length = int(digits)
            if length > self.max_size:
                return self._close(frames, "frame of %d bytes is over the limit of %d"
                                   % (length, self.max_size))
            start = space + 1
            if end - start < length:
                break
            if length:
                frames.append(buf[start:start + length])
            pos = start + length
        self.buffer = buf[pos:]
        return Result(frames)

    def finish(self):
        """An unfinished frame at the end of the stream is incomplete: nothing to hand on."""
        self.buffer = b""
        return []

    def _close(self, frames, reason):
        self.closed = reason
        self.buffer = b""
        return Result(frames, close=reason)
