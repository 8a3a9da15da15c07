"""Sans-IO MQTT 3.1.1 client session: the publishing side the MicroPython agent uses.

It follows the session convention of ``edgeship.core.session``: ``send(event) -> bytes`` and
``receive(data) -> Result(events, reply, close)``. The caller owns the socket (and the clock:
keepalive and reply deadlines are the caller's, since only it knows the time).

Outgoing events, for ``send``:
    (CONNECT, client_id, keepalive, clean, username, password, will)
        will: None or (topic, payload bytes, qos, retain); the strings: str, or None
    (PUBLISH, topic, payload, qos, packet_id, retain, dup)
        topic: str or bytes; payload: bytes, bytearray or memoryview; packet_id 0 for QoS 0
    (PINGREQ,)  (DISCONNECT,)
Incoming events, in ``receive(data).events``, as (kind, value) pairs:
    (CONNACK, return code)   0 accepted (``connected`` is then true); a refusal also sets
                             ``close`` to the reason
    (PUBACK, packet id)
    (PINGRESP, None)
``reply`` is always b"": a client that never subscribes has nothing to answer, and any other
packet the broker sends is skipped. A broken stream sets ``close``.

QoS 0 and 1 only: enough for at-least-once telemetry, and what microcontroller brokers
commonly accept. The packet codec is ``mqtt_codec``, shared with the listener, whose server
half (``mqtt``) stays out of the firmware image.
"""
from edgeship.core.mqtt_codec import (CONNACK, CONNECT, DISCONNECT, PINGREQ, PINGRESP, PUBACK,
                                      PUBLISH, Decoder, packet, write_bytes)
from edgeship.core.session import Result

CONNACK_REASONS = {1: "unacceptable protocol version", 2: "client id rejected",
                   3: "server unavailable", 4: "bad user name or password",
                   5: "not authorized"}


class ClientSession:
    """One connection's protocol state: the decoder of the broker's bytes, whether the broker
    accepted the CONNECT, and the packet id counter."""

    def __init__(self):
        self.decoder = Decoder()
        self.connected = False
        self._last_id = 0

    def next_packet_id(self):
        """1..65535, wrapping and never 0 (the protocol reserves it)."""
        self._last_id = self._last_id % 65535 + 1
        return self._last_id

    def send(self, event):
        kind = event[0]
        if kind == PUBLISH:
            _, topic, payload, qos, packet_id, retain, dup = event
            body = write_bytes(topic if isinstance(topic, bytes) else topic.encode())
            if qos:
                body += bytes(((packet_id >> 8) & 0xFF, packet_id & 0xFF))
            flags = (qos << 1) | (0x01 if retain else 0) | (0x08 if dup else 0)
            return packet(PUBLISH, flags, body + payload)
        if kind == PINGREQ:
            return b"\xc0\x00"
        if kind == DISCONNECT:
            return b"\xe0\x00"
        if kind == CONNECT:
            return _connect(*event[1:])
        raise ValueError("a client cannot send packet type %r" % kind)

    def receive(self, data):
        events = []
        close = None
        for kind, _flags, body in self.decoder.feed(data):
            if kind == PUBACK:
                if len(body) < 2:
                    close = "short PUBACK"
                    break
                events.append((PUBACK, (body[0] << 8) | body[1]))
            elif kind == PINGRESP:
                events.append((PINGRESP, None))
            elif kind == CONNACK:
                if len(body) < 2:
                    close = "short CONNACK"
                    break
                code = body[1]
                events.append((CONNACK, code))
                if code:
                    close = "broker refused the connection: " + CONNACK_REASONS.get(
                        code, "code %d" % code)
                    break
                self.connected = True
        if close is None:
            close = self.decoder.error
        return Result(events, b"", close)


def _connect(client_id, keepalive, clean, username, password, will):
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
