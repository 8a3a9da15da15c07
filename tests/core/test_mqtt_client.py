from edgeship.core.mqtt_codec import (CONNACK, CONNECT, DISCONNECT, PINGREQ, PINGRESP, PUBACK,
                                      PUBLISH)
from edgeship.core.mqtt_client import ClientSession
from edgeship.core.session import Result

CONNACK_OK = b"\x20\x02\x00\x00"
STREAM = CONNACK_OK + b"\x40\x02\x00\x07" + b"\xd0\x00" + b"\x40\x02\x01\x02"


def test_connect_bytes():
    s = ClientSession()
    assert s.send((CONNECT, "ab", 60, True, None, None, None)) == \
        b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02ab"
    pkt = s.send((CONNECT, "c", 10, False, "u", "p", ("w", b"x", 1, True)))
    # flags: user 0x80, password 0x40, will retain 0x20, will qos1 0x08, will 0x04
    assert pkt[9] == 0x80 | 0x40 | 0x20 | 0x08 | 0x04
    assert pkt.endswith(b"\x00\x01c\x00\x01w\x00\x01x\x00\x01u\x00\x01p")


def test_publish_bytes_from_bytes_and_memoryview():
    s = ClientSession()
    assert s.send((PUBLISH, "t", b"hi", 0, 0, False, False)) == b"\x30\x05\x00\x01thi"
    ring = bytearray(b"..hi..")
    assert s.send((PUBLISH, b"t", memoryview(ring)[2:4], 1, 0x0102, True, True)) == \
        b"\x3b\x07\x00\x01t\x01\x02hi"


def test_ping_disconnect_and_refused_events():
    s = ClientSession()
    assert s.send((PINGREQ,)) == b"\xc0\x00" and s.send((DISCONNECT,)) == b"\xe0\x00"
    try:
        s.send((8, "a/#"))   # SUBSCRIBE
    except ValueError:
        return
    raise AssertionError("a SUBSCRIBE was encoded")


def test_receive_follows_the_session_convention():
    s = ClientSession()
    result = s.receive(STREAM)
    assert isinstance(result, Result)
    assert result.events == [(CONNACK, 0), (PUBACK, 7), (PINGRESP, None), (PUBACK, 0x0102)]
    assert result.reply == b"" and result.close is None and s.connected


def test_every_cut_of_the_stream_gives_the_same_events():
    for cut in range(len(STREAM) + 1):
        s = ClientSession()
        first, second = s.receive(STREAM[:cut]), s.receive(STREAM[cut:])
        assert first.events + second.events == \
            [(CONNACK, 0), (PUBACK, 7), (PINGRESP, None), (PUBACK, 0x0102)], cut
        assert first.close is None and second.close is None


def test_refused_connack_closes_with_the_reason():
    s = ClientSession()
    result = s.receive(b"\x20\x02\x00\x05")
    assert result.events == [(CONNACK, 5)] and not s.connected
    assert result.close == "broker refused the connection: not authorized"


def test_broken_stream_closes_after_the_packets_before_it():
    s = ClientSession()
    result = s.receive(CONNACK_OK + b"\x20\xff\xff\xff\xff\x01")
    assert result.events == [(CONNACK, 0)] and result.close
    assert ClientSession().receive(b"\x40\x01\x00").close == "short PUBACK"


def test_packet_ids_wrap_and_skip_zero():
    s = ClientSession()
    s._last_id = 65534
    assert [s.next_packet_id() for _ in range(3)] == [65535, 1, 2]


def test_result_defaults():
    r = Result()
    assert r.events == [] and r.reply == b"" and r.close is None
    assert Result().events is not r.events
