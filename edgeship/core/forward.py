"""Fluentd forward protocol (spec v1, as Fluent Bit 5.1.1 speaks it), sans-IO.

Bytes in, bytes out: nothing here opens a socket. ``Encoder`` turns batches into frames,
``ServerSession`` turns a received byte stream into requests (and HELO/PONG/acks back),
``ClientSession`` runs the client side of the handshake and checks acks.

msgpack: the frame envelopes Fluent Bit compares byte for byte (array/map/str/bin headers,
EventTime, the map32 options map, HELO/PING/PONG) are packed here by hand, so they are
exact and MicroPython can build them. Records and the incoming stream need a full msgpack
codec, which MicroPython lacks, so the sessions take one as a parameter:

    codec.packb(obj) -> bytes                 a record (str keys, any msgpack value)
    codec.unpacker(limit) -> u                incremental decoder: u.feed(bytes); iterating
                                              yields objects, StopIteration = needs more;
                                              u.tell() = bytes consumed; a malformed stream
                                              raises an Exception; msgpack ext type 0 must
                                              come out as ``EventTime`` (use ``ext_hook``)
    codec.stream_unpacker(limit) -> u         the same, for a socket's stream of frames that
                                              arrive in pieces (it may decode differently);
                                              in a frame too deep to decode whole, each
                                              entry (or message record) too deep comes out
                                              as ``UNREADABLE``
    codec.values(data) -> list                every msgpack value of ``data`` in turn (a
                                              PackedForward payload); a value nested too
                                              deep, and a malformed or cut tail, come out
                                              as ``UNREADABLE``
    codec.too_deep(events) -> indexes         the events whose record nests deeper than
                                              the codec's bound
    codec.packed_entries(data) -> p or None   the entries of a PackedForward payload kept
                                              as bytes (a ``PackedEntries``) when the codec
                                              checked them all good, else None; its
                                              stream unpacker may give a Forward frame's
                                              entries the same way

On CPython ``edgeship.codecs.msgpack.MsgpackCodec`` wraps the msgpack package.
"""
import struct

try:
    import zlib
except ImportError:  # MicroPython: gzip is not available there
    zlib = None
import binascii

NS = 1000000000
DEFAULT_PORT = 24224
SIGNAL_LOGS = 0


class ProtocolError(Exception):
    """The peer broke the protocol: close the connection. ``reply`` is sent first if any."""

    def __init__(self, message, reply=b""):
        Exception.__init__(self, message)
        self.reply = reply


# ------------------------------------------------------------------ msgpack envelope parts
def _utf8(text):
    if isinstance(text, str):
        try:
            return text.encode("utf-8", "surrogateescape")
        except (TypeError, UnicodeError):  # MicroPython strings are always valid UTF-8
            return text.encode()
    return bytes(text)


def pack_str(value):
    """A msgpack str holding ``value`` (str, or raw bytes such as Fluent Bit's salts)."""
    data = _utf8(value)
    n = len(data)
    if n < 32:
        return bytes((0xa0 | n,)) + data
    if n < 0x100:
        return bytes((0xd9, n)) + data
    if n < 0x10000:
        return struct.pack(">BH", 0xda, n) + data
    return struct.pack(">BI", 0xdb, n) + data


def pack_bin(data):
    n = len(data)
    if n < 0x100:
        return bytes((0xc4, n)) + data
    if n < 0x10000:
        return struct.pack(">BH", 0xc5, n) + data
    return struct.pack(">BI", 0xc6, n) + data


def array_header(n):
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return struct.pack(">BH", 0xdc, n)
    return struct.pack(">BI", 0xdd, n)


def map_header(n):
    if n < 16:
        return bytes((0x80 | n,))
    if n < 0x10000:
        return struct.pack(">BH", 0xde, n)
    return struct.pack(">BI", 0xdf, n)


def map32_header(n):
    """Fluent Bit writes options maps as map32 whatever their size."""
    return struct.pack(">BI", 0xdf, n)


def pack_uint(n):
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0xcc, n))
    if n < 0x10000:
        return struct.pack(">BH", 0xcd, n)
    if n < 0x100000000:
        return struct.pack(">BI", 0xce, n)
    return struct.pack(">BQ", 0xcf, n)


def pack_bool(value):
    return b"\xc3" if value else b"\xc2"


# ------------------------------------------------------------------ EventTime (ext type 0)
class EventTime:
    """A decoded EventTime: ``ns`` nanoseconds since the epoch."""
    __slots__ = ("ns",)

    def __init__(self, ns):
        self.ns = ns


class Unreadable:
    """What the codec gives for a value it would not decode (nested deeper than its bound,
    or bytes that are not msgpack): the entry or record is dropped and counted, and the
    frame is still acked."""
    __slots__ = ()


UNREADABLE = Unreadable()


class Ext:
    """Any other msgpack ext value (kept, never taken for a time)."""
    __slots__ = ("code", "data")

    def __init__(self, code, data):
        self.code = code
        self.data = data


try:
    _et = struct.Struct(">HII").pack       # CPython: the bound packer is the fast path
except AttributeError:                     # MicroPython has no struct.Struct
    def _et(*values):
        return struct.pack(">HII", *values)


def pack_event_time(time_ns):
    """fixext8 type 0: d7 00, seconds and nanoseconds as big-endian uint32."""
    sec, nsec = divmod(time_ns, NS)
    return _et(0xd700, sec, nsec)


try:
    _unpack_ii = struct.Struct(">II").unpack
except AttributeError:
    def _unpack_ii(data):
        return struct.unpack(">II", data)


_recent_times = {}


def ext_hook(code, data):
    if code == 0 and len(data) == 8:
        # The records of a batch mostly share their time (the moment tail read them): reuse
        # the EventTime of the same 8 bytes instead of decoding and allocating one per record.
        found = _recent_times.get(data)
        if found is None:
            if len(_recent_times) >= 1024:
                _recent_times.clear()
            sec, nsec = _unpack_ii(data)
            found = _recent_times[bytes(data)] = EventTime(sec * NS + nsec)
        return found
    return Ext(code, bytes(data))


# ------------------------------------------------------------------ digests
def _bits(n):
    # int.bit_length is missing on MicroPython
    count = 0
    while n:
        n >>= 8
        count += 8
    return count


def _isqrt(n):
    x = 1 << ((_bits(n) + 1) // 2)
    while True:
        y = (x + n // x) // 2
        if y >= x:
            return x
        x = y


def _icbrt(n):
    x = 1 << ((_bits(n) + 2) // 3)
    while True:
        y = (2 * x + n // (x * x)) // 3
        if y >= x:
            return x
        x = y


_SHA512 = []


def _sha512_constants():
    # FIPS 180-4: the fractional bits of the square / cube roots of the first primes,
    # computed once rather than typed in (fewer chances of a wrong digit).
    if not _SHA512:
        primes = []
        n = 2
        while len(primes) < 80:
            if all(n % p for p in primes):
                primes.append(n)
            n += 1
        mask = (1 << 64) - 1
        _SHA512.append([_icbrt(p << 192) & mask for p in primes])
        _SHA512.append([_isqrt(p << 128) & mask for p in primes[:8]])
    return _SHA512


def _sha512_pure(data):
    """SHA-512 for runtimes whose hashlib lacks it (MicroPython)."""
    k, initial = _sha512_constants()
    mask = (1 << 64) - 1
    h = list(initial)
    length = len(data)
    data = bytes(data) + b"\x80" + b"\x00" * ((111 - length) % 128) + struct.pack(">QQ", 0, length * 8)
    for off in range(0, len(data), 128):
        w = list(struct.unpack(">16Q", data[off:off + 128]))
        for i in range(16, 80):
            a, b = w[i - 15], w[i - 2]
            s0 = ((a >> 1 | a << 63) ^ (a >> 8 | a << 56) ^ (a >> 7)) & mask
            s1 = ((b >> 19 | b << 45) ^ (b >> 61 | b << 3) ^ (b >> 6)) & mask
            w.append((w[i - 16] + s0 + w[i - 7] + s1) & mask)
        a, b, c, d, e, f, g, hh = h
        for i in range(80):
            s1 = ((e >> 14 | e << 50) ^ (e >> 18 | e << 46) ^ (e >> 41 | e << 23)) & mask
            t1 = (hh + s1 + ((e & f) ^ (~e & g)) + k[i] + w[i]) & mask
            s0 = ((a >> 28 | a << 36) ^ (a >> 34 | a << 30) ^ (a >> 39 | a << 25)) & mask
            t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) & mask
            a, b, c, d, e, f, g, hh = (t1 + t2) & mask, a, b, c, (d + t1) & mask, e, f, g
        h = [(x + y) & mask for x, y in zip(h, (a, b, c, d, e, f, g, hh))]
    return struct.pack(">8Q", *h)


def sha512(data):
    # Imported here: hashlib loads libcrypto (megabytes of RSS), which only acks and
    # shared keys need.
    try:
        import hashlib
    except ImportError:  # pragma: no cover - every port has it, the fallback is below
        hashlib = None
    if hashlib is not None and hasattr(hashlib, "sha512"):
        return hashlib.sha512(data).digest()
    return _sha512_pure(data)


def sha512_hex(data):
    return binascii.hexlify(sha512(data)).decode()


def chunk_id(payload):
    """Fluent Bit's chunk option: base64 of the first 16 bytes of sha512(payload)."""
    return binascii.b2a_base64(sha512(payload)[:16]).decode().strip()


def shared_key_digest(salt, hostname, nonce, key):
    """PING (client hostname) and PONG (server hostname) shared-key digest."""
    return sha512_hex(_utf8(salt) + _utf8(hostname) + _utf8(nonce) + _utf8(key))


def password_digest(auth, username, password):
    return sha512_hex(_utf8(auth) + _utf8(username) + _utf8(password))


# ------------------------------------------------------------------ gzip
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"   # as Fluent Bit writes it


def gzip_compress(data, level=6):
    if zlib is None:
        raise ProtocolError("gzip is not available on this runtime")
    deflate = zlib.compressobj(level, zlib.DEFLATED, -15)
    body = deflate.compress(data) + deflate.flush()
    return _GZIP_HEADER + body + struct.pack("<II", zlib.crc32(data) & 0xffffffff,
                                               len(data) & 0xffffffff)


def gunzip(data, limit):
    """Every gzip member of ``data``, at most ``limit`` bytes out (no decompression bomb)."""
    if zlib is None:
        raise ProtocolError("gzip is not available on this runtime")
    out = []
    total = 0
    data = bytes(data)
    while data:
        inflate = zlib.decompressobj(31)
        try:
            piece = inflate.decompress(data, limit - total + 1)
        except zlib.error as exc:
            raise ProtocolError("invalid gzip payload: %s" % exc)
        total += len(piece)
        if total > limit or inflate.unconsumed_tail:
            raise ProtocolError("decompressed payload exceeds %d bytes" % limit)
        if not inflate.eof:
            raise ProtocolError("truncated gzip payload")
        out.append(piece)
        data = inflate.unused_data
    return b"".join(out)


# ------------------------------------------------------------------ encoding (client)
def options_map(chunk=None, size=None, compressed=None, signal=SIGNAL_LOGS, extra=()):
    """The options element, keys in Fluent Bit's order, map32 header."""
    parts = []
    if chunk is not None:
        parts.append(b"\xa5chunk" + pack_str(chunk))
    if size is not None:
        parts.append(b"\xa4size" + pack_uint(size))
    if compressed is not None:
        parts.append(b"\xaacompressed" + pack_str(compressed))
    parts.append(b"\xadfluent_signal" + pack_uint(signal))
    for key, value in extra:
        parts.append(pack_str(key) + pack_str(value))
    return map32_header(len(parts)) + b"".join(parts)


def ack_response(chunk):
    """``{"ack": chunk}``, the chunk re-packed as a str as it came."""
    return b"\x81\xa3ack" + pack_str(chunk)


class Encoder:
    """Frames for out_forward.

    ``entries(events)`` packs a batch the way Fluent Bit does: ``[[EventTime, {}], record]``
    when metadata is retained (Fluent Bit 5.x default; the chunk format, packed by the
    codec's ``pack_entries``), ``[EventTime, record]`` as an array32 when not,
    ``[uint seconds, record]`` with ``time_as_integer``. ``frame(tag, events)`` is one
    Forward frame (CompressedPackedForward with gzip) and its chunk id (None without ack);
    ``packed_frame(tag, entries, count)`` the same around entries already packed.
    """

    def __init__(self, packb, retain_metadata=True, time_as_integer=False, compress=False,
                 send_options=False, require_ack=False, extra_options=(), pack_entries=None):
        self.packb = packb
        self.pack_entries = pack_entries
        self.retain_metadata = retain_metadata
        self.time_as_integer = time_as_integer
        self.compress = compress
        self.require_ack = require_ack
        self.extra = tuple(extra_options)
        self.with_options = bool(send_options or require_ack or self.extra or compress)

    def entries(self, events):
        packb = self.packb
        if self.time_as_integer:
            return b"".join([b"\x92" + pack_uint(t // NS) + packb(rec) for t, rec in events])
        if self.retain_metadata:
            return self.pack_entries(events)
        et = _et
        return b"".join([b"\xdd\x00\x00\x00\x02" + et(0xd700, t // NS, t % NS) + packb(rec)
                         for t, rec in events])

    def frame(self, tag, events):
        return self.packed_frame(tag, self.entries(events), len(events))

    def packed_frame(self, tag, payload, count):
        chunk = chunk_id(payload) if self.require_ack else None
        if self.compress:
            return (b"\x93" + pack_str(tag) + pack_bin(gzip_compress(payload))
                    + options_map(chunk, count, "gzip", extra=self.extra)), chunk
        head = pack_str(tag) + array_header(count)
        if not self.with_options:
            return b"\x92" + head + payload, None
        return (b"\x93" + head + payload
                + options_map(chunk, count, extra=self.extra)), chunk

    def message(self, tag, event):
        """One Message-mode frame ``[tag, time, record, options]`` and its chunk id."""
        t, record = event
        when = pack_uint(t // NS) if self.time_as_integer else pack_event_time(t)
        body = self.packb(record)
        chunk = None
        if self.require_ack:
            chunk = chunk_id(b"\x92\x92" + pack_event_time(t) + b"\x80" + body)
        return (b"\x94" + pack_str(tag) + when + body
                + options_map(chunk, extra=self.extra)), chunk


# ------------------------------------------------------------------ handshake messages
def helo(nonce, auth, keepalive=None):
    """``["HELO", {nonce, auth}]``, both as str, as Fluent Bit sends them."""
    items = [b"\xa5nonce" + pack_str(nonce), b"\xa4auth" + pack_str(auth)]
    if keepalive is not None:
        items.append(b"\xa9keepalive" + pack_bool(keepalive))
    return b"\x92\xa4HELO" + map_header(len(items)) + b"".join(items)


def ping(hostname, salt, digest, username="", password=""):
    """All six elements as str, salt included (Fluent Bit's in_forward requires str)."""
    return (b"\x96\xa4PING" + pack_str(hostname) + pack_str(salt) + pack_str(digest)
            + pack_str(username) + pack_str(password))


def pong(ok, reason, hostname, digest):
    return (b"\x95\xa4PONG" + pack_bool(ok) + pack_str(reason) + pack_str(hostname)
            + pack_str(digest))


def _raw(value):
    """The bytes a str or bin field carried (handshake salts are not UTF-8)."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return _utf8(value)
    return None


def _is_text(value):
    return isinstance(value, (str, bytes, bytearray))


# ------------------------------------------------------------------ decoding (server)
class PackedEntries:
    """Entries a codec checked and kept as they came (``payload``, ``count``): their
    records are decoded only if something needs them."""
    __slots__ = ()


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
    entries also take a float, as Fluent Bit does."""
    kind = type(t)
    if kind is EventTime:
        return t.ns
    if kind is int and t >= 0:
        return t * NS
    if kind is float and not strict and t >= 0:
        whole = int(t)
        return whole * NS + int(round((t - whole) * NS))
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
    """One in_forward connection.

    ``greeting()`` is the HELO to send on accept (b"" without a shared key). ``receive(data)``
    returns the complete requests; afterwards ``error`` is set when the connection must be
    closed (the requests returned are still good: Fluent Bit keeps the entries before a bad
    one) and ``outgoing()`` holds bytes to send (PONG). ``nonce`` and ``auth`` are 16 random
    bytes each, given by the caller (sans-IO: no randomness here).
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

    def greeting(self):
        if self.shared_key is None:
            return b""
        return helo(self.nonce, self.auth)

    def outgoing(self):
        data = b"".join(self._out)
        self._out = []
        return data

    def pending(self):
        """Bytes received that do not make a complete frame yet."""
        return self.fed - self.consumed

    def receive(self, data):
        requests = []
        if self.error:
            return requests
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
        return requests

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
                        requests.append(request)
            except ProtocolError as exc:
                self.error = str(exc)
                if exc.reply:
                    self._out.append(exc.reply)
            except _Partial as partial:
                self.dropped += partial.request.dropped
                requests.append(partial.request)
                self.error = partial.reason
            if self.error:
                return

    # -- handshake
    def _ping(self, obj):
        if (type(obj) is not list or len(obj) != 6 or obj[0] != "PING"
                or not all(_is_text(v) for v in obj[1:])):
            raise ProtocolError("handshake: expected a PING")
        hostname, salt, digest = _raw(obj[1]), _raw(obj[2]), _raw(obj[3])
        username, password = _raw(obj[4]), _raw(obj[5])
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
            if signal not in (None, SIGNAL_LOGS):
                raise ProtocolError("fluent_signal %r (metrics/traces) is not supported"
                                    % (signal,))
            payload = _raw(body)
            compressed = self._compressed(obj)
            if compressed == "gzip" or (compressed is None and payload[:2] == b"\x1f\x8b"):
                payload = gunzip(payload, self.max_buffer)
            elif compressed is not None:
                raise ProtocolError("unsupported compression %r" % compressed)
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
        if not _is_text(value):
            raise ProtocolError("invalid options field: compressed")
        return _raw(value).decode("utf-8", "replace")

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
        Exception.__init__(self, reason)
        self.request = request
        self.reason = reason


# ------------------------------------------------------------------ client side
class ClientSession:
    """out_forward's side of one connection: the handshake (when a shared key is set) and
    the acks. Feed everything received to ``receive(data)``; it returns bytes to send (the
    PING) and raises ProtocolError on any failure: close the connection then."""

    def __init__(self, codec, shared_key=None, hostname="localhost", salt=b"",
                 username="", password=""):
        self.unpacker = codec.unpacker(64 * 1024)
        self.shared_key = shared_key
        self.hostname = hostname
        self.salt = salt
        self.username = username
        self.password = password
        self.ready = shared_key is None
        self.nonce = None
        self.acked = []
        self._sent_ping = False

    def receive(self, data):
        self.unpacker.feed(data)
        out = []
        while True:
            try:
                obj = next(self.unpacker)
            except StopIteration:
                break
            except Exception as exc:
                raise ProtocolError("invalid msgpack from the server: %s" % exc)
            if self.ready:
                self._ack(obj)
            elif not self._sent_ping:
                out.append(self._helo(obj))
            else:
                self._pong(obj)
        return b"".join(out)

    def _helo(self, obj):
        if type(obj) is not list or len(obj) != 2 or obj[0] != "HELO" or type(obj[1]) is not dict:
            raise ProtocolError("handshake: expected HELO from the server")
        options = obj[1]
        nonce = options.get("nonce")
        if not _is_text(nonce):
            raise ProtocolError("handshake: HELO without a nonce")
        self.nonce = _raw(nonce)
        digest = shared_key_digest(self.salt, self.hostname, self.nonce, self.shared_key)
        password = ""
        if "auth" in options:
            # As Fluent Bit: any auth salt gets a digest, even with no username configured.
            password = password_digest(_raw(options["auth"]) or b"", self.username, self.password)
        self._sent_ping = True
        return ping(self.hostname, self.salt, digest, self.username, password)

    def _pong(self, obj):
        if type(obj) is not list or len(obj) != 5 or obj[0] != "PONG":
            raise ProtocolError("handshake: expected PONG from the server")
        if obj[1] is not True:
            reason = obj[2] if isinstance(obj[2], str) else ""
            raise ProtocolError("failed authorization: %s" % reason)
        hostname, digest = _raw(obj[3]), _raw(obj[4])
        if hostname is None or digest is None:
            raise ProtocolError("handshake: malformed PONG")
        expected = shared_key_digest(self.salt, hostname, self.nonce, self.shared_key)
        if digest != expected.encode():
            raise ProtocolError("PONG shared_key digest mismatch: server does not hold the "
                                "same shared_key")
        self.ready = True

    def _ack(self, obj):
        if type(obj) is not dict or not _is_text(obj.get("ack")):
            raise ProtocolError("unexpected reply from the server: %r" % (obj,))
        self.acked.append(_raw(obj["ack"]).decode("utf-8", "replace"))

    def take_ack(self, chunk):
        """True when ``chunk`` was acked; an ack for another chunk is an error."""
        while self.acked:
            got = self.acked.pop(0)
            if got != chunk:
                raise ProtocolError("ACK: mismatch received=%s, expected=(%s)" % (got, chunk))
            return True
        return False
