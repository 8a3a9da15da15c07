"""Sans-IO MQTT packet codec shared by the listener (``mqtt``) and the client session
(``mqtt_client``): packet type numbers, Variable Byte Integers, fixed headers, and ``Decoder``,
which cuts a byte stream into packets and refuses any packet larger than a limit before it is
buffered.

Only what both sides need lives here, so the firmware image (which carries the client, not
the listener) stays small. MicroPython-compatible.
"""

# The packet types both sides handle (the listener's QoS 2 ones are in ``mqtt``). Every name
# here costs the firmware RAM: no more than the client needs.
CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
PINGREQ = 12
PINGRESP = 13
DISCONNECT = 14


class MalformedPacket(Exception):
    """The peer broke the protocol; the connection must be closed."""


class PacketTooLarge(MalformedPacket):
    """A packet is larger than the decoder accepts."""


def encode_varint(value):
    """MQTT Variable Byte Integer (Remaining Length and v5 property lengths)."""
    if value < 0 or value > 268435455:   # what 4 bytes of 7 bits hold
        raise ValueError("varint out of range: %d" % value)
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(buf, pos):
    """(value, next position), or None when ``buf`` ends inside the integer.

    Raises MalformedPacket for a fifth continuation byte."""
    value = 0
    shift = 0
    for i in range(4):
        if pos + i >= len(buf):
            return None
        byte = buf[pos + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos + i + 1
        shift += 7
    raise MalformedPacket("remaining length longer than 4 bytes")


def packet(kind, flags, body=b""):
    """The bytes of a packet: fixed header + ``body``."""
    return bytes(((kind << 4) | flags,)) + encode_varint(len(body)) + body


def read_u16(body, pos):
    if pos + 2 > len(body):
        raise MalformedPacket("packet ends inside a two-byte integer")
    return (body[pos] << 8) | body[pos + 1], pos + 2


def write_bytes(data):
    return bytes(((len(data) >> 8) & 0xFF, len(data) & 0xFF)) + data


class Decoder:
    """Cuts a byte stream into ``(type, flags, body)`` packets.

    ``max_packet`` (0: no limit but the protocol's) caps a whole packet, fixed header
    included, as Fluent Bit's Buffer_Size does: a bigger one breaks the stream as soon as its
    header announces it, before its body is buffered. A broken stream sets ``error`` (a str);
    the packets complete before the fault are still returned, and nothing after it is.
    """

    def __init__(self, max_packet=0):
        self.max_packet = max_packet
        self.buffer = bytearray()
        self.error = None

    def feed(self, data):
        """Append ``data``; return the packets now complete (maybe none)."""
        if self.error is not None:
            return []
        buf = self.buffer
        buf.extend(data)
        packets = []
        pos = 0
        end = len(buf)
        try:
            while end - pos >= 2:
                found = decode_varint(buf, pos + 1)
                if found is None:
                    break
                remaining, body_at = found
                total = body_at - pos + remaining
                if self.max_packet and total > self.max_packet:
                    raise PacketTooLarge("packet of %d bytes is over the %d-byte limit"
                                         % (total, self.max_packet))
                if end - pos < total:
                    break
                first = buf[pos]
                packets.append((first >> 4, first & 0x0F, bytes(buf[body_at:pos + total])))
                pos += total
        except MalformedPacket as exc:
            self.error = str(exc)
            self.buffer = bytearray()
            return packets
        if pos:
            # bytearray slice assignment works on MicroPython (del buf[:n] does not).
            self.buffer = buf[pos:]
        return packets
