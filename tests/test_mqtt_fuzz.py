"""Fuzzing the listener's packet codec (edgeship.core.mqtt) with hypothesis: any bytes, any
split, never an exception, never more buffered than the packet limit, and valid streams
give the same messages however they are cut."""
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeship.core import mqtt, mqtt_codec

CONNECT = bytes.fromhex("101200044d5154540402003c000670792d726177")


def publish(topic, payload, qos, packet_id):
    body = mqtt_codec.write_bytes(topic.encode("utf-8"))
    if qos:
        body += bytes((packet_id >> 8, packet_id & 0xFF))
    return mqtt_codec.packet(mqtt_codec.PUBLISH, qos << 1, body + payload)


def feed_all(conn, chunks):
    messages, replies, closed = [], b"", None
    for chunk in chunks:
        result = conn.receive(chunk)
        messages += [(topic, payload) for _, topic, payload in result.events]
        replies += result.reply
        if result.close is not None:
            closed = result.close
            break
    return messages, replies, closed


def cut(data, points):
    points = sorted(set(p % (len(data) + 1) for p in points))
    edges = [0] + points + [len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:])]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8), st.booleans(),
       st.integers(min_value=16, max_value=600))
def test_arbitrary_bytes_never_raise_and_stay_bounded(chunks, connect_first, limit):
    conn = mqtt.ServerSession(limit)
    if connect_first:
        chunks = [CONNECT] + chunks
    feed_all(conn, chunks)
    assert len(conn.decoder.buffer) <= max(limit, 5)


messages_strategy = st.lists(
    st.tuples(st.text(min_size=1, max_size=20).filter(lambda t: "\x00" not in t),
              st.binary(max_size=100), st.integers(0, 2), st.integers(1, 65535)),
    min_size=1, max_size=10)


@settings(max_examples=200, deadline=None)
@given(messages_strategy, st.lists(st.integers(0, 5000), max_size=20))
def test_valid_streams_give_the_same_messages_however_cut(messages, points):
    stream = CONNECT + b"".join(publish(t, p, q, i) for t, p, q, i in messages)
    whole = feed_all(mqtt.ServerSession(0), [stream])
    pieces = feed_all(mqtt.ServerSession(0), cut(stream, points))
    assert whole == pieces
    assert whole[2] is None
    # QoS 2 ids already awaiting PUBREL are not made into a second message.
    expected = []
    waiting = set()
    for topic, payload, qos, packet_id in messages:
        if qos == 2:
            if packet_id in waiting:
                continue
            waiting.add(packet_id)
        expected.append((topic, payload))
    assert whole[0] == expected


@settings(max_examples=200, deadline=None)
@given(messages_strategy, st.binary(min_size=1, max_size=50))
def test_garbage_after_good_packets_keeps_the_good_ones(messages, garbage):
    good = b"".join(publish(t, p, q, i) for t, p, q, i in messages if q != 2)
    conn = mqtt.ServerSession(0)
    found, _, _ = feed_all(conn, [CONNECT + good, garbage])
    assert found[:len([m for m in messages if m[2] != 2])] == \
        [(t, p) for t, p, q, _ in messages if q != 2]
