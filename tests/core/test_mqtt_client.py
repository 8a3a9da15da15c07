from edgeship.core.mqtt import MalformedPacket
from edgeship.core.mqtt_client import ClientSession, connect_packet, publish_packet


def test_connect_bytes():
    assert connect_packet("ab", 60) == b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02ab"
    pkt = connect_packet("c", 10, clean=False, username="u", password="p",
                         will=("w", b"x", 1, True))
    # flags: user 0x80, password 0x40, will retain 0x20, will qos1 0x08, will 0x04
    assert pkt[9] == 0x80 | 0x40 | 0x20 | 0x08 | 0x04
    assert pkt.endswith(b"\x00\x01c\x00\x01w\x00\x01x\x00\x01u\x00\x01p")


def test_publish_bytes():
    assert publish_packet("t", b"hi", 0) == b"\x30\x05\x00\x01thi"
    assert publish_packet("t", b"hi", 1, 0x0102, retain=True, dup=True) == \
        b"\x3b\x07\x00\x01t\x01\x02hi"


def test_session_connack_pubacks_and_pings():
    s = ClientSession()
    assert s.receive(b"\x20\x02\x00") == [] and not s.connected
    assert s.receive(b"\x00\x40\x02\x00\x07\x40") == [7] and s.connected
    assert s.receive(b"\x02\x00\x08\xd0\x00") == [8] and s.pongs == 1
    refused = ClientSession()
    refused.receive(b"\x20\x02\x00\x05")
    assert refused.refused == "not authorized" and not refused.connected


def test_session_packet_ids_wrap_and_skip_zero():
    s = ClientSession()
    s._last_id = 65534
    assert [s.next_packet_id() for _ in range(3)] == [65535, 1, 2]


def test_broken_stream_raises():
    s = ClientSession()
    try:
        s.receive(b"\x20\xff\xff\xff\xff\x01")
    except MalformedPacket:
        return
    raise AssertionError("no error")
