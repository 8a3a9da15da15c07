"""The client side of NATS's text protocol, as a sans-IO session (``core.session``), for a
publisher: the nats output (and a device, which may publish the same way).

    session = ClientSession()
    result = session.receive(data)      # server lines -> events, PONG replies to PING
    data = session.send(("CONNECT", options_json))
    data = session.send(("PUB", subject, payload))
    data = session.send(("PING",))

Events received: ``("INFO", json_text)``, ``("PONG",)``, ``("+OK",)``, ``("-ERR", text)``,
``("MSG", subject, payload)``. A server's ``PING`` is answered in ``reply``. The connection
is to be closed after ``-ERR`` (the server closes it after most errors), on a line that is
not NATS, or on a line or message over ``max_line`` / ``max_payload`` bytes.
"""
from edgeship.core.session import Result

CRLF = b"\r\n"


def is_subject(subject):
    """Can ``subject`` (bytes) be published to? Not empty, no whitespace."""
    return bool(subject) and not any(c in (32, 9, 13, 10) for c in subject)


def _upper(word):
    # Operation names are case-insensitive; bytes.upper() is not in every MicroPython.
    return bytes(c - 32 if 97 <= c <= 122 else c for c in word)


def _digits(word):
    return len(word) > 0 and all(48 <= c <= 57 for c in word)


class ClientSession:
    """``max_payload``: the largest MSG taken from the server; ``server_max_payload``: the
    largest PUB the server takes, for the owner to set from INFO (None: unknown)."""

    def __init__(self, max_line=65536, max_payload=64 * 1024 * 1024):
        self.max_line = max_line
        self.max_payload = max_payload
        self.server_max_payload = None
        self.buffer = b""
        self.closed = None
        self._msg = None        # (subject, size) of a MSG whose payload is awaited

    def send(self, event):
        kind = event[0]
        if kind == "CONNECT":
            return b"CONNECT " + event[1] + CRLF
        if kind == "PUB":
            subject, payload = event[1], event[2]
            if not is_subject(subject):
                raise ValueError("not a NATS subject: %r" % subject)
            return b"".join((b"PUB ", subject, b" ", str(len(payload)).encode(), CRLF,
                             payload, CRLF))
        if kind == "PING":
            return b"PING\r\n"
        if kind == "PONG":
            return b"PONG\r\n"
        raise ValueError("not a NATS client event: %r" % (kind,))

    def receive(self, data):
        if self.closed is not None:
            return Result(close=self.closed)
        self.buffer += data
        events = []
        reply = b""
        while True:
            if self._msg is not None:
                subject, size = self._msg
                if len(self.buffer) < size + 2:
                    break
                events.append(("MSG", subject, self.buffer[:size]))
                self.buffer = self.buffer[size + 2:]
                self._msg = None
                continue
            end = self.buffer.find(CRLF)
            if end < 0:
                if len(self.buffer) > self.max_line:
                    return self._close(events, reply, "a server line over %d bytes"
                                       % self.max_line)
                break
            line = self.buffer[:end]
            self.buffer = self.buffer[end + 2:]
            word = _upper(line.split(b" ", 1)[0])
            if word == b"PING":
                reply += b"PONG\r\n"
            elif word == b"PONG":
                events.append(("PONG",))
            elif word == b"+OK":
                events.append(("+OK",))
            elif word == b"INFO":
                events.append(("INFO", line[5:]))
            elif word == b"-ERR":
                text = line[5:].strip().strip(b"'").decode("utf-8", "replace")
                events.append(("-ERR", text))
                return self._close(events, reply, "the server answered -ERR '%s'" % text)
            elif word == b"MSG":
                parts = line.split()
                if len(parts) not in (4, 5) or not _digits(parts[-1]):
                    return self._close(events, reply, "a bad MSG line: %r" % line[:80])
                size = int(parts[-1])
                if size > self.max_payload:
                    return self._close(events, reply, "a message over %d bytes"
                                       % self.max_payload)
                self._msg = (parts[1], size)
            else:
                return self._close(events, reply, "not NATS: %r" % line[:80])
        return Result(events, reply)

    def _close(self, events, reply, reason):
        self.closed = reason
        return Result(events, reply, reason)
