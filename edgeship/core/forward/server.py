"""in_forward's side of one connection: frames in (Forward, PackedForward,
CompressedPackedForward, Message), the secure-forward handshake, entries made into events.
``ServerSession`` follows the session convention of ``edgeship.core.session``."""
from edgeship.core.forward.digest import password_digest, shared_key_digest
from edgeship.core.forward.messages import ACK, HELO, REQUEST, ack_response, helo, pong
from edgeship.core.events import checked_seconds
from edgeship.core.forward.wire import (SIGNAL_LOGS, SIGNAL_METRICS, UNREADABLE, EventTime, ProtocolError,
                                        field_bytes, gunzip, is_text)
from edgeship.core.session import Result


class PackedEntries:
    """Entries a codec checked and kept as they came (``payload``, ``count``): their
    records are decoded only if something needs them."""
    __slots__ = ()


class MetricsPayload:
    """The payload of a PackedForward frame sent with ``fluent_signal`` 1: cmetrics
    contexts, as bytes (uncompressed). Checking them needs a full msgpack codec: the
    receiver's (``edgeship.codecs.cmetrics``)."""
    __slots__ = ("payload",)

    def __init__(self, payload):
        self.payload = payload

    def __len__(self):
        return 1


class Request:
    """One received frame: its tag, events (``(time_ns, record)`` pairs, or
    ``PackedEntries``), chunk id (str or None), byte size, and records dropped from it."""
    __slots__ = ("tag", "events", "chunk", "size", "dropped")

    def __init__(self, tag, events, chunk, size, dropped=0):
        self.tag = tag
        self.events = events
        self.chunk = chunk
        self.size = size
        self.dropped = dropped


class _BadEntry(Exception):
    pass


def _time_of(t, strict):
    """Nanoseconds of a time field. Message mode (strict) takes EventTime or uint only;
    entries also take a float, as Fluent Bit does. A number past what an EventTime holds
    (2106) is refused as a negative one is (Fluent Bit drops it: "could not ingest")."""
    kind = type(t)
    if kind is EventTime:
        return t.ns
    if kind is int or (kind is float and not strict):
        time_ns = checked_seconds(t)
        if time_ns is not None:
            return time_ns
    raise _BadEntry("invalid time field %r" % (t,))


def decode_entries(entries, events=None):
    """``[time, record]`` / ``[[time, metadata], record]`` entries -> events, appended to
    ``events``, up to the first bad entry: returns ``(events, error or None)``. The error is
    ``UNREADABLE`` for an entry the codec would not decode. Given an iterator, a later call
    goes on after the bad entry, so a frame is read once whatever its bad entries."""
    if events is None:
        events = []
    append = events.append
    for entry in entries:
        try:
            t, record = entry
        except (TypeError, ValueError):
            if entry is UNREADABLE:
                return events, UNREADABLE
            return events, "entry is not a [time, record] pair"
        if type(record) is not dict:
            return events, "record is not a map"
        if type(t) is EventTime:
            append((t.ns, record))
            continue
        if type(t) is list:
            if len(t) != 2 or type(t[1]) is not dict:
                return events, "entry header is not [time, metadata]"
            t = t[0]
            if type(t) is EventTime:          # Fluent Bit's own shape: the common case
                append((t.ns, record))
                continue
        try:
            append((_time_of(t, False), record))
        except _BadEntry as exc:
            return events, str(exc)
    return events, None


class ServerSession:
    """One in_forward connection (convention of ``edgeship.core.session``).

    ``receive(data)`` -> Result: ``events`` holds ``(REQUEST, Request)`` per complete frame;
    ``reply`` the PONG that answers a PING (or refuses it); ``close`` why the connection must
    be closed (the requests before the fault are still good: Fluent Bit keeps the entries
    before a bad one). ``send((HELO,))`` is the HELO to write on accept (b"" without a shared
    key); ``send((ACK, chunk))`` the ack of a request's chunk, once its records are safe.
    ``dropped`` counts entries dropped so far (bad, or nested too deep); the caller may reset
    it. ``nonce`` and ``auth`` are 16 random bytes each, given by the caller (sans-IO: no
    randomness here).
    """

    def __init__(self, codec, max_buffer=6144000, shared_key=None, hostname="localhost",
                 users=None, nonce=b"", auth=b""):
        self.codec = codec
        self.max_buffer = max_buffer
        self.unpacker = codec.stream_unpacker(max_buffer)
        self.fed = 0
        self.consumed = 0    # end of the last complete object (the codec's tell() may run ahead)
        self.shared_key = shared_key
        self.hostname = hostname
        self.users = users or {}
        self.nonce = nonce
        self.auth = auth
        self.authenticated = shared_key is None
        self.error = None
        self.dropped = 0
        self._out = []

    def send(self, event):
        kind = event[0]
        if kind == HELO:
            return b"" if self.shared_key is None else helo(self.nonce, self.auth)
        if kind == ACK:
            return ack_response(event[1])
        raise ValueError("a forward server cannot send %r" % (kind,))

    def pending(self):
        """Bytes received that do not make a complete frame yet."""
        return self.fed - self.consumed

    def receive(self, data):
        requests = []
        if self.error:
            return Result(requests, b"", self.error)
        view = memoryview(data)
        while len(view) and not self.error:
            room = self.max_buffer - self.pending()
            if room <= 0:
                self.error = "incoming data exceed limit (%d bytes)" % self.max_buffer
                break
            piece, view = view[:room], view[room:]
            self.unpacker.feed(piece)
            self.fed += len(piece)
            self._drain(requests)
        if not self.error and self.pending() >= self.max_buffer:
            self.error = "incoming data exceed limit (%d bytes)" % self.max_buffer
        reply = b"".join(self._out)
        self._out = []
        return Result(requests, reply, self.error)

    def _drain(self, requests):
        unpacker = self.unpacker
        while True:
            try:
                obj = next(unpacker)
            except StopIteration:
                return
            except Exception as exc:  # any malformed msgpack, whatever the codec raises
                self.error = "invalid msgpack data: %s" % exc
                return
            start, self.consumed = self.consumed, unpacker.tell()
            try:
                if not self.authenticated:
                    self._ping(obj)
                else:
                    request = self._request(obj, self.consumed - start)
                    if request is not None:
                        self.dropped += request.dropped
                        requests.append((REQUEST, request))
            except ProtocolError as exc:
                self.error = str(exc)
                if exc.reply:
                    self._out.append(exc.reply)
            except _Partial as partial:
                self.dropped += partial.request.dropped
                requests.append((REQUEST, partial.request))
                self.error = partial.reason
            if self.error:
                return

    # -- handshake
    def _ping(self, obj):
        if (type(obj) is not list or len(obj) != 6 or obj[0] != "PING"
                or not all(is_text(v) for v in obj[1:])):
            raise ProtocolError("handshake: expected a PING")
        hostname, salt, digest = field_bytes(obj[1]), field_bytes(obj[2]), field_bytes(obj[3])
        username, password = field_bytes(obj[4]), field_bytes(obj[5])
        expected = shared_key_digest(salt, hostname, self.nonce, self.shared_key)
        if digest[:128] != expected.encode():
            raise ProtocolError("handshake: shared_key mismatch")
        if self.users:
            known = self.users.get(username.decode("utf-8", "replace"))
            if known is None or password[:128] != password_digest(
                    self.auth, username, known).encode():
                raise ProtocolError("handshake: username/password mismatch",
                                    pong(False, "username/password mismatch", "", ""))
        self._out.append(pong(True, "", self.hostname,
                              shared_key_digest(salt, self.hostname, self.nonce,
                                                self.shared_key)))
        self.authenticated = True

    # -- event frames
    def _request(self, obj, size):
        if obj is None:
            return None  # the spec's heartbeat
        if type(obj) is not list or len(obj) < 2 or len(obj) > 4:
            raise ProtocolError("expecting an array of 2 to 4 elements")
        tag = obj[0]
        if type(tag) is not str:
            raise ProtocolError("tag is not a str")
        body = obj[1]
        kind = type(body)
        if isinstance(body, PackedEntries):                # Forward, entries kept packed
            chunk, _signal = self._options(obj, 2, 3)
            return Request(tag, body, chunk, size)
        if kind is list:                                   # Forward
            chunk, _signal = self._options(obj, 2, 3)
            entries = iter(body)
            events, error = decode_entries(entries)
            dropped = 0
            while error is UNREADABLE:
                dropped += 1
                events, error = decode_entries(entries, events)
            events, dropped = self._bounded(events, dropped)
            if error:
                raise _Partial(Request(tag, events, None, size, dropped), error)
            return Request(tag, events, chunk, size, dropped)
        if kind is bytes or kind is str:                   # (Compressed)PackedForward
            chunk, signal = self._options(obj, 2, 3)
            if signal not in (None, SIGNAL_LOGS, SIGNAL_METRICS):
                raise ProtocolError("fluent_signal %r (traces) is not supported" % (signal,))
            payload = field_bytes(body)
            compressed = self._compressed(obj)
            if compressed == "gzip" or (compressed is None and payload[:2] == b"\x1f\x8b"):
                payload = gunzip(payload, self.max_buffer)
            elif compressed is not None:
                raise ProtocolError("unsupported compression %r" % compressed)
            if signal == SIGNAL_METRICS:
                return Request(tag, MetricsPayload(payload), chunk, size)
            events, dropped = self._packed(payload)
            return Request(tag, events, chunk, size, dropped)
        # Message mode: [tag, time, record, options?]
        if len(obj) < 3:
            raise ProtocolError("message mode needs [tag, time, record]")
        record = obj[2]
        chunk, _signal = self._options(obj, 3, 4)
        if record is UNREADABLE:                           # counted, and still acked
            return Request(tag, [], chunk, size, 1)
        if type(record) is not dict:
            raise ProtocolError("message record is not a map")
        try:
            t = _time_of(body, True)
        except _BadEntry as exc:
            raise ProtocolError(str(exc))
        events, dropped = self._bounded([(t, record)], 0)
        return Request(tag, events, chunk, size, dropped)

    def _bounded(self, events, dropped):
        """The events whose record nests within the codec's bound, and ``dropped`` plus the
        number of the others."""
        deep = self.codec.too_deep(events) if events else ()
        if deep:
            deep = set(deep)
            events = [event for i, event in enumerate(events) if i not in deep]
        return events, dropped + len(deep)

    def _options(self, obj, index, length):
        if len(obj) > length:
            raise ProtocolError("too many elements in the frame")
        if len(obj) <= index:
            return None, None
        options = obj[index]
        if options is None:
            return None, None
        if type(options) is not dict:
            raise ProtocolError("invalid options field")
        chunk = options.get("chunk")
        if chunk is not None and type(chunk) is not str:
            raise ProtocolError("invalid options field: chunk is not a str")
        signal = options.get("fluent_signal")
        if signal is not None and (type(signal) is not int or signal not in (0, 1, 2)):
            raise ProtocolError("invalid value in options fluent_signal")
        return chunk, signal

    def _compressed(self, obj):
        if len(obj) < 3 or type(obj[2]) is not dict:
            return None
        value = obj[2].get("compressed")
        if value is None:
            return None
        if not is_text(value):
            raise ProtocolError("invalid options field: compressed")
        return field_bytes(value).decode("utf-8", "replace")

    def _packed(self, payload):
        """Entries of a PackedForward payload; bad ones are dropped and counted, as Fluent
        Bit drops them later without closing the connection. One pass, however many."""
        packed = self.codec.packed_entries(payload)
        if packed is not None:
            return packed, 0
        entries = iter(self.codec.values(payload))
        events, error = decode_entries(entries)
        dropped = 0
        while error is not None:
            dropped += 1
            events, error = decode_entries(entries, events)
        return self._bounded(events, dropped)


class _Partial(Exception):
    """A Forward frame whose entries are good up to a bad one."""

    def __init__(self, request, reason):
        super().__init__(reason)
        self.request = request
        self.reason = reason
