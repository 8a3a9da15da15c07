"""Sans-IO MQTT 3.1.1 client session: the publishing side the MicroPython agent uses.

It builds CONNECT / PUBLISH / PINGREQ / DISCONNECT bytes and reads the broker's CONNACK,
PUBACK and PINGRESP from the byte stream (``edgeship.core.mqtt.Decoder``). The caller owns
the socket: it writes what this module returns and feeds it what it reads. QoS 0 and 1 only:
enough for at-least-once telemetry, and what microcontroller brokers commonly accept.
"""
from edgeship.core.mqtt import (CONNACK, CONNECT, PINGRESP, PUBACK, PUBLISH, Decoder,
                                MalformedPacket, packet, read_u16, write_bytes)

PINGREQ_BYTES = b"\xc0\x00"
DISCONNECT_BYTES = b"\xe0\x00"
CONNACK_REASONS = {1: "unacceptable protocol version", 2: "client id rejected",
                   3: "server unavailable", 4: "bad user name or password",
                   5: "not authorized"}


def connect_packet(client_id, keepalive=60, clean=True, username=None, password=None,
                   will=None):
    """CONNECT; ``will`` is (topic, payload bytes, qos, retain) or None."""
    flags = 0x02 if clean else 0
    payload = write_bytes(client_id.encode())
    if will is not None:
        topic, message, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        payload += write_bytes(topic.encode()) + write_bytes(message)
    if username is not None:
        flags |= 0x80
        payload += write_bytes(username.encode())
    if password is not None:
        flags |= 0x40
        payload += write_bytes(password.encode())
    header = write_bytes(b"MQTT") + bytes((4, flags, (keepalive >> 8) & 0xFF, keepalive & 0xFF))
    return packet(CONNECT, 0, header + payload)


def publish_packet(topic, payload, qos=0, packet_id=0, retain=False, dup=False):
    flags = (qos << 1) | (0x01 if retain else 0) | (0x08 if dup else 0)
    body = write_bytes(topic.encode())
    if qos:
        body += bytes(((packet_id >> 8) & 0xFF, packet_id & 0xFF))
    return packet(PUBLISH, flags, body + payload)


class ClientSession:
    """One connection's protocol state.

    ``receive(data)`` returns the packet ids the broker acknowledged (PUBACK); it sets
    ``connected`` on an accepting CONNACK and ``refused`` (a reason) on a refusing one, and
    raises MalformedPacket when the stream breaks: the caller then drops the connection.
    """

    def __init__(self):
        self.decoder = Decoder()
        self.connected = False
        self.refused = None
        self.pongs = 0
        self._last_id = 0

    def next_packet_id(self):
        self._last_id = self._last_id % 65535 + 1
        return self._last_id

    def receive(self, data):
        acked = []
        for kind, _flags, body in self.decoder.feed(data):
            if kind == CONNACK:
                if len(body) < 2:
                    raise MalformedPacket("short CONNACK")
                if body[1] == 0:
                    self.connected = True
                else:
                    self.refused = CONNACK_REASONS.get(body[1], "refused (%d)" % body[1])
            elif kind == PUBACK:
                acked.append(read_u16(body, 0)[0])
            elif kind == PINGRESP:
                self.pongs += 1
        if self.decoder.error is not None:
            raise MalformedPacket(self.decoder.error)
        return acked
