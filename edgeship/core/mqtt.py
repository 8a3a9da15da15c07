"""The server side of Fluent Bit's ``mqtt`` listener, sans-IO (the packet codec it shares with
the client session is ``edgeship.core.mqtt_codec``).

``ServerSession`` is one client connection of the listener, following the session convention
of ``edgeship.core.session``: ``receive(data)`` returns a Result whose ``events`` are the
PUBLISH messages to turn into records, ``(PUBLISH, topic, payload)``, whose ``reply`` holds
the bytes to answer (CONNACK, PUBACK, PUBREC, PUBCOMP, PINGRESP) and whose ``close`` says
why to close. The listener has nothing to send of its own (its answers are replies), so it
has no ``send``. It never touches a socket, so the engine and the MicroPython firmware can
both drive it, and tests need nothing but byte strings.

Behaviour follows Fluent Bit 5.1.1's in_mqtt (reference/mqtt-listener.md) byte for byte for
MQTT 3.1.1 clients: CONNACK ``20 02 01 00``, PUBACK/PUBREC at once, PINGRESP, SUBSCRIBE
ignored, first packet not CONNECT closes. Where Fluent Bit loses data or hangs a client we
do the safe thing: PUBREL gets a PUBCOMP (QoS 2 completes, and a re-sent QoS 2 PUBLISH is not
made into a second record), MQTT 5 clients are understood (v5 CONNACK, PUBLISH properties
skipped), QoS 3 and truncated packets close the connection, and credentials are checked when
the listener is given some.
"""

from edgeship.core.mqtt_codec import (CONNACK, CONNECT, DISCONNECT, PINGREQ, PUBACK, PUBLISH,
                                      Decoder, MalformedPacket, decode_varint, packet, read_u16)
from edgeship.core.session import Result

# The QoS 2 packet types, which only the listener handles.
PUBREC = 5
PUBREL = 6
PUBCOMP = 7

# CONNACK return codes (3.1.1) and reason codes (5) for a refused login.
BAD_CREDENTIALS_V4 = 4
BAD_CREDENTIALS_V5 = 0x86
BAD_PROTOCOL_V4 = 1


def read_bytes(body, pos):
    """A two-byte-length-prefixed field (strings, binary data)."""
    size, pos = read_u16(body, pos)
    if pos + size > len(body):
        raise MalformedPacket("field length runs past the end of the packet")
    return bytes(body[pos:pos + size]), pos + size


def skip_properties(body, pos):
    """MQTT 5: jump over a property block (length varint + properties)."""
    found = decode_varint(body, pos)
    if found is None:
        raise MalformedPacket("packet ends inside a property length")
    size, pos = found
    if pos + size > len(body):
        raise MalformedPacket("properties run past the end of the packet")
    return pos + size


def text(data):
    """UTF-8 text of a field; bad bytes become U+FFFD instead of failing the packet."""
    try:
        return data.decode("utf-8")
    except UnicodeError:
        pass
    try:
        return data.decode("utf-8", "replace")
    except UnicodeError:  # MicroPython ignores ``errors``: keep ASCII, replace the rest
        return "".join(chr(b) if b < 0x80 else "\ufffd" for b in data)


class Connect:
    """The fields of a CONNECT the listener cares about."""

    def __init__(self, level, client_id, username, password, clean):
        self.level = level
        self.client_id = client_id
        self.username = username
        self.password = password
        self.clean = clean


def parse_connect(body):
    """CONNECT body -> Connect; raises MalformedPacket."""
    name, pos = read_bytes(body, 0)
    if pos + 4 > len(body):
        raise MalformedPacket("CONNECT too short")
    level = body[pos]
    flags = body[pos + 1]
    pos += 4                                  # level, flags, keep alive
    if level == 5:
        pos = skip_properties(body, pos)
    client_id, pos = read_bytes(body, pos)
    if flags & 0x04:                          # will: (v5 properties), topic, payload
        if level == 5:
            pos = skip_properties(body, pos)
        pos = read_bytes(body, pos)[1]
        pos = read_bytes(body, pos)[1]
    username = password = None
    if flags & 0x80:
        username, pos = read_bytes(body, pos)
        username = text(username)
    if flags & 0x40:
        password, pos = read_bytes(body, pos)
    return Connect(level, text(client_id), username, password, bool(flags & 0x02))


def protocol_level(body):
    """The protocol level byte of a CONNECT body, or 4 when it cannot be read (Fluent Bit
    does not read CONNECT at all, so an odd one must still be accepted)."""
    try:
        pos = read_bytes(body, 0)[1]
    except MalformedPacket:
        return 4
    return body[pos] if pos < len(body) else 4


def parse_publish(flags, body, v5=False):
    """PUBLISH -> (topic, qos, packet_id or None, payload); raises MalformedPacket."""
    qos = (flags >> 1) & 3
    if qos == 3:
        raise MalformedPacket("PUBLISH with QoS 3")
    topic, pos = read_bytes(body, 0)
    packet_id = None
    if qos:
        packet_id, pos = read_u16(body, pos)
    if v5:
        pos = skip_properties(body, pos)
    return text(topic), qos, packet_id, body[pos:]


def ack_packet(kind, packet_id):
    """PUBACK / PUBREC / PUBCOMP (``40 02 hh ll``: v5 allows the short form too)."""
    return packet(kind, 0, bytes(((packet_id >> 8) & 0xFF, packet_id & 0xFF)))


CONNACK_ACCEPTED_V4 = b"\x20\x02\x01\x00"    # Fluent Bit's exact bytes: session present set
CONNACK_ACCEPTED_V5 = b"\x20\x03\x00\x00\x00"
PINGRESP_BYTES = b"\xd0\x00"


def connack_refused(level, v4_code, v5_code):
    if level == 5:
        return packet(CONNACK, 0, bytes((0, v5_code, 0)))
    return packet(CONNACK, 0, bytes((0, v4_code)))


class ServerSession:
    """One client connection of the listener.

    ``credentials``: None accepts any login (as Fluent Bit), else a (username, password)
    pair, a str and bytes, that CONNECT must carry.
    """

    def __init__(self, max_packet=2048, credentials=None):
        self.decoder = Decoder(max_packet)
        self.credentials = credentials
        self.connected = False
        self.v5 = False
        self.awaiting_release = set()   # QoS 2 packet ids received, PUBREL not yet seen
        self.closed = None

    def receive(self, data):
        result = Result()
        replies = []
        if self.closed is not None:
            result.close = self.closed
            return result
        if not self.connected and not self.decoder.buffer and data and data[0] >> 4 != CONNECT:
            # Known from the first byte: no need to buffer a stranger's "packet".
            result.close = self.closed = "first packet is not CONNECT"
            return result
        # Like Fluent Bit, every complete packet before a broken one is still handled.
        packets = self.decoder.feed(data)
        for kind, flags, body in packets:
            try:
                answer = self._handle(kind, flags, body, result)
            except MalformedPacket as exc:
                result.close = str(exc)
                break
            if answer:
                replies.append(answer)
            if result.close is not None:
                break
        if result.close is None and self.decoder.error is not None:
            result.close = self.decoder.error
        self.closed = result.close
        result.reply = b"".join(replies)
        return result

    def _handle(self, kind, flags, body, result):
        if not self.connected:
            if kind != CONNECT:
                result.close = "first packet is not CONNECT"
                return None
        if kind == CONNECT:
            return self._connect(body, result)
        if kind == PUBLISH:
            topic, qos, packet_id, payload = parse_publish(flags, body, self.v5)
            if qos == 0:
                result.events.append((PUBLISH, topic, payload))
                return None
            if qos == 1:
                result.events.append((PUBLISH, topic, payload))
                return ack_packet(PUBACK, packet_id)
            # QoS 2: a PUBLISH re-sent before our PUBREC arrived is the same message.
            if packet_id not in self.awaiting_release:
                self.awaiting_release.add(packet_id)
                result.events.append((PUBLISH, topic, payload))
            return ack_packet(PUBREC, packet_id)
        if kind == PUBREL:
            packet_id = read_u16(body, 0)[0]
            self.awaiting_release.discard(packet_id)
            return ack_packet(PUBCOMP, packet_id)
        if kind == PINGREQ:
            return PINGRESP_BYTES
        if kind == DISCONNECT:
            result.close = "client disconnected"
            return None
        # SUBSCRIBE, UNSUBSCRIBE, PUBACK, PUBREC, PUBCOMP, AUTH ...: ignored, as Fluent Bit.
        return None

    def _connect(self, body, result):
        level = protocol_level(body)
        if self.credentials is None:
            self.connected = True
            self.v5 = level == 5
            return CONNACK_ACCEPTED_V5 if self.v5 else CONNACK_ACCEPTED_V4
        try:
            login = parse_connect(body)
        except MalformedPacket:
            login = None
        user, password = self.credentials
        if login is None or login.username != user or login.password != password:
            result.close = "bad username or password"
            return connack_refused(level, BAD_CREDENTIALS_V4, BAD_CREDENTIALS_V5)
        self.connected = True
        self.v5 = level == 5
        return CONNACK_ACCEPTED_V5 if self.v5 else CONNACK_ACCEPTED_V4
