"""edgeship.core.mqtt (and its codec, mqtt_codec) against the bytes Fluent Bit 5.1.1's in_mqtt
exchanged (reference/vectors/mqtt_*.json; the hex below is copied from those captures)."""
import binascii

from edgeship.core import mqtt, mqtt_codec


def h(text):
    return binascii.unhexlify(text.replace(" ", ""))


CONNECT_V311 = h("101200044d5154540402003c000670792d726177")
CONNECT_V5 = h("101800044d5154540502003c051100000000000670792d726177")
CONNECT_WITH_LOGIN = h("102100044d51545404c2003c000670792d7261770003626f62"
                       "00087768617465766572")          # bob / whatever
PUBLISH_QOS1 = h("3215000a73656e736f72732f713112347b2271223a317d")
PUBLISH_QOS2 = h("3415000a73656e736f72732f713200077b2271223a327d")
PUBREL_7 = h("62020007")
SUBSCRIBE = h("820800030003612f2300")
TWO_PUBLISHES = h("321200076d756c74692f6100017b226e223a317d"
                  "321200076d756c74692f6200027b226e223a327d")
PUBLISH_V5_QOS1 = h("3214000876352f746f7069630005007b2276223a357d")
RETAIN_DUP = h("3b120007666c6167732f7800047b2266223a317d")


def published(result):
    """(topic, payload) of the PUBLISH events of a receive's Result."""
    assert all(event[0] == mqtt_codec.PUBLISH for event in result.events)
    return [(topic, payload) for _, topic, payload in result.events]


def connected(**kw):
    conn = mqtt.ServerSession(**kw)
    result = conn.receive(CONNECT_V311)
    assert result.reply == h("20020100")
    return conn


def publish(topic, payload, qos=0, packet_id=1, flags=0):
    body = mqtt_codec.write_bytes(topic)
    if qos:
        body += bytes((packet_id >> 8, packet_id & 0xFF))
    return mqtt_codec.packet(mqtt_codec.PUBLISH, (qos << 1) | flags, body + payload)


def test_varint_round_trip():
    for value in (0, 1, 127, 128, 16383, 16384, 2097151, 2097152, 268435455):
        data = mqtt_codec.encode_varint(value)
        assert mqtt_codec.decode_varint(data, 0) == (value, len(data))
    assert mqtt_codec.decode_varint(b"\x80\x80", 0) is None
    try:
        mqtt_codec.decode_varint(b"\xff\xff\xff\xff\x01", 0)
        assert False, "5-byte varint accepted"
    except mqtt_codec.MalformedPacket:
        pass


def test_connect_connack_disconnect():
    conn = mqtt.ServerSession()
    result = conn.receive(CONNECT_V311)
    assert result.reply == h("20020100") and result.close is None
    result = conn.receive(h("e000"))
    assert result.reply == b"" and result.close


def test_publish_qos0_makes_a_message_and_no_reply():
    conn = connected()
    payload = b'{"temp":21.5,"unit":"C"}'
    result = conn.receive(publish(b"sensors/room1", payload))
    assert result.reply == b""
    assert published(result) == [("sensors/room1", payload)]


def test_publish_qos1_puback_with_the_packet_id():
    result = connected().receive(PUBLISH_QOS1)
    assert result.reply == h("40021234")
    assert published(result) == [("sensors/q1", b'{"q":1}')]


def test_qos2_pubrec_then_pubcomp_and_no_duplicate_record():
    conn = connected()
    result = conn.receive(PUBLISH_QOS2)
    assert result.reply == h("50020007")
    assert published(result) == [("sensors/q2", b'{"q":2}')]
    # The client re-sends the PUBLISH (DUP) before it saw our PUBREC: same message.
    again = conn.receive(bytes((PUBLISH_QOS2[0] | 0x08,)) + PUBLISH_QOS2[1:])
    assert again.reply == h("50020007") and published(again) == []
    # Fluent Bit never answers PUBREL; we complete the flow.
    assert conn.receive(PUBREL_7).reply == h("70020007")
    # After PUBREL the id is free again: a new message.
    assert published(conn.receive(PUBLISH_QOS2)) == [("sensors/q2", b'{"q":2}')]


def test_pingreq_pingresp():
    assert connected().receive(h("c000")).reply == h("d000")


def test_subscribe_is_ignored_and_connection_stays():
    conn = connected()
    result = conn.receive(SUBSCRIBE)
    assert result.reply == b"" and result.close is None
    assert conn.receive(h("c000")).reply == h("d000")


def test_two_publishes_in_one_read():
    result = connected().receive(TWO_PUBLISHES)
    assert result.reply == h("4002000140020002")
    assert published(result) == [("multi/a", b'{"n":1}'), ("multi/b", b'{"n":2}')]


def test_connect_and_publish_in_one_write():
    conn = mqtt.ServerSession()
    data = h("101200044d5154540402003c000670792d7261773216000b706970656c696e65642f78000b"
             "7b2270223a317d")
    result = conn.receive(data)
    assert result.reply == h("200201004002000b")
    assert published(result) == [("pipelined/x", b'{"p":1}')]


def test_packets_split_across_reads():
    conn = mqtt.ServerSession()
    assert conn.receive(h("101200044d")).reply == b""
    result = conn.receive(h("5154540402003c000670792d7261773212000773706c69742f"))
    assert result.reply == h("20020100") and published(result) == []
    result = conn.receive(h("7800157b2273223a317d"))
    assert result.reply == h("40020015")
    assert published(result) == [("split/x", b'{"s":1}')]


def test_byte_by_byte():
    conn = mqtt.ServerSession()
    replies = b""
    messages = []
    for i in range(len(CONNECT_V311 + PUBLISH_QOS1)):
        result = conn.receive((CONNECT_V311 + PUBLISH_QOS1)[i:i + 1])
        replies += result.reply
        messages += published(result)
    assert replies == h("2002010040021234")
    assert messages == [("sensors/q1", b'{"q":1}')]


def test_every_cut_of_a_session_gives_the_same_result():
    """CONNECT, PUBLISH at QoS 0, 1 and 2, PUBREL, SUBSCRIBE (ignored), PINGREQ, DISCONNECT:
    cut in two anywhere, the events, the replies and the close are those of the whole."""
    qos0 = mqtt_codec.packet(mqtt_codec.PUBLISH, 0, h("000471302f78") + b'{"q":0}')
    stream = (CONNECT_V311 + qos0 + PUBLISH_QOS1 + PUBLISH_QOS2 + PUBREL_7 + SUBSCRIBE
              + h("c000") + h("e000"))
    want_events = [(mqtt_codec.PUBLISH, "q0/x", b'{"q":0}'),
                   (mqtt_codec.PUBLISH, "sensors/q1", b'{"q":1}'),
                   (mqtt_codec.PUBLISH, "sensors/q2", b'{"q":2}')]
    want_reply = h("20020100") + h("40021234") + h("50020007") + h("70020007") + h("d000")
    for cut in range(len(stream) + 1):
        conn = mqtt.ServerSession()
        first, second = conn.receive(stream[:cut]), conn.receive(stream[cut:])
        assert first.events + second.events == want_events, cut
        assert first.reply + second.reply == want_reply, cut
        assert second.close == "client disconnected", cut    # and stays closed
        assert first.close is None or cut == len(stream), cut


def test_publish_before_connect_closes_without_reply():
    result = mqtt.ServerSession().receive(h("300c0003782f797b2261223a317d"))
    assert result.reply == b"" and result.close and published(result) == []


def test_a_stranger_is_closed_on_its_first_byte():
    result = mqtt.ServerSession().receive(b"GET / HTTP/1.1\r\n\r\n")
    assert result.close and result.reply == b""


def test_second_connect_gets_another_connack():
    conn = connected()
    assert conn.receive(h("101100044d5154540402003c0005616761696e")).reply == h("20020100")
    assert conn.receive(h("32120007782f616761696e00037b2261223a317d")).reply == h("40020003")


def test_any_credentials_accepted_by_default():
    assert mqtt.ServerSession().receive(CONNECT_WITH_LOGIN).reply == h("20020100")


def test_credentials_checked_when_configured():
    good = mqtt.ServerSession(credentials=("bob", b"whatever"))
    assert good.receive(CONNECT_WITH_LOGIN).reply == h("20020100")
    bad = mqtt.ServerSession(credentials=("bob", b"secret"))
    result = bad.receive(CONNECT_WITH_LOGIN + PUBLISH_QOS1)
    assert result.reply == h("20020004") and result.close and published(result) == []
    anonymous = mqtt.ServerSession(credentials=("bob", b"whatever"))
    assert anonymous.receive(CONNECT_V311).reply == h("20020004")


def test_parse_connect_fields():
    login = mqtt.parse_connect(CONNECT_WITH_LOGIN[2:])
    assert login.level == 4 and login.client_id == "py-raw"
    assert login.username == "bob" and login.password == b"whatever" and login.clean
    v5 = mqtt.parse_connect(CONNECT_V5[2:])
    assert v5.level == 5 and v5.client_id == "py-raw" and v5.username is None


def test_mqtt5_client_gets_v5_connack_and_its_publish_is_read():
    conn = mqtt.ServerSession()
    assert conn.receive(CONNECT_V5).reply == h("2003000000")
    result = conn.receive(PUBLISH_V5_QOS1)
    assert result.reply == h("40020005")
    assert published(result) == [("v5/topic", b'{"v":5}')]


def test_mqtt5_refused_login_uses_a_reason_code():
    conn = mqtt.ServerSession(credentials=("u", b"p"))
    assert conn.receive(CONNECT_V5).reply == h("2003008600")


def test_retain_and_dup_flags_are_ignored():
    result = connected().receive(RETAIN_DUP)
    assert result.reply == h("40020004")
    assert published(result) == [("flags/x", b'{"f":1}')]


def test_packet_exactly_buffer_size_is_accepted():
    data = publish(b"b/x", b'{"k":"' + b"x" * 2032 + b'"}')
    assert len(data) == 2048
    result = connected(max_packet=2048).receive(data)
    assert result.close is None and len(published(result)) == 1


def test_packet_one_byte_over_buffer_size_closes():
    payload = b"x" * 2041
    data = publish(b"b/x", payload)
    assert len(data) == 2049
    conn = connected(max_packet=2048)
    # Refused from the header alone, before the body arrives.
    result = conn.receive(data[:10])
    assert result.close and published(result) == []
    assert published(conn.receive(data[10:])) == []


def test_packets_before_an_oversized_one_are_kept():
    conn = connected(max_packet=100)
    result = conn.receive(PUBLISH_QOS1 + publish(b"big", b"y" * 200))
    assert result.reply == h("40021234") and len(published(result)) == 1 and result.close


def test_malformed_packets_close_the_connection():
    cases = [
        h("3005ff10616263"),          # topic length runs past the packet
        h("3601ff"),                  # QoS 3
        h("320300016100"),            # QoS 1 without a whole packet id
        h("30ffffffff7f"),            # remaining length with 5 bytes
        h("6201ff"),                  # PUBREL with a 1-byte id
    ]
    for data in cases:
        result = connected().receive(data)
        assert result.close, data


def test_odd_connect_accepted_like_fluent_bit():
    # Fluent Bit does not parse CONNECT: a body it cannot read still gets CONNACK.
    assert mqtt.ServerSession().receive(h("1001ff")).reply == h("20020100")


def test_utf8_topic_and_bad_bytes():
    result = connected().receive(publish("ünï/côdé".encode("utf-8"), b"{}"))
    assert published(result)[0][0] == "ünï/côdé"
    result = connected().receive(publish(b"a\xffb", b"{}"))
    assert published(result)[0][0] == "a\ufffdb"


def test_decoder_limits_and_rest_kept():
    dec = mqtt_codec.Decoder(0)
    assert dec.feed(h("c000d0")) == [(mqtt_codec.PINGREQ, 0, b"")]
    assert dec.feed(h("00")) == [(mqtt_codec.PINGRESP, 0, b"")]
    assert dec.error is None
