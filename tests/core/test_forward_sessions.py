"""The forward sessions (edgeship.core.forward.server / client) by the session convention:
byte strings in, ``Result(events, reply, close)`` out, at every cut of the stream. Runs under
MicroPython too, with the small codec of mini_msgpack."""
from edgeship.core import forward
from edgeship.core.forward import wire

try:    # pytest: tests/core is the package "core"
    from core.mini_msgpack import Codec
    from core.test_forward import THREE, Pairs, _pairs_packb
except ImportError:     # MicroPython: tests/core is on MICROPYPATH
    from mini_msgpack import Codec
    from test_forward import THREE, Pairs, _pairs_packb

CODEC = Codec()
NONCE, AUTH, SALT = b"n" * 16, b"a" * 16, b"s" * 16


def plain(value):
    """A test record as the decoder gives it back (Pairs -> dict)."""
    if isinstance(value, Pairs):
        return dict((k, plain(v)) for k, v in value.items)
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def server(key=None, users=None):
    return forward.ServerSession(CODEC, 4096, key, "agg", users or {}, NONCE, AUTH)


def client(key=None, user="", password=""):
    return forward.ClientSession(CODEC, key, "edge", SALT, user, password)


def requests(events):
    """(tag, events, chunk) of every (REQUEST, Request) event."""
    out = []
    for kind, request in events:
        assert kind == forward.REQUEST
        out.append((request.tag, request.events, request.chunk))
    return out


def fed(session, pieces):
    """Every piece to ``session``: (events, replies, close) together; stops at a close."""
    events, replies, close = [], b"", None
    for piece in pieces:
        result = session.receive(piece)
        events += result.events
        replies += result.reply
        close = result.close
        if close is not None:
            break
    return events, replies, close


def each_cut(make, stream, check):
    """``check(events, replies, close)`` for the stream whole, at every cut in two, and a
    byte at a time."""
    check(*fed(make(), [stream]))
    for cut in range(len(stream) + 1):
        check(*fed(make(), [stream[:cut], stream[cut:]]))
    check(*fed(make(), [stream[i:i + 1] for i in range(len(stream))]))


ENCODER = forward.Encoder(_pairs_packb, require_ack=True)
PLAIN_THREE = [(t, plain(r)) for t, r in THREE]


def test_server_frames_of_every_mode_at_every_cut():
    forward_frame, chunk = ENCODER.frame("app.logs", THREE)
    message, message_chunk = ENCODER.message("app.one", THREE[0])
    packed = (b"\x92\xa6packed" + forward.pack_bin(ENCODER.entries(THREE[1:])))
    stream = forward_frame + b"\xc0" + message + packed      # \xc0: the spec's heartbeat
    want = [("app.logs", PLAIN_THREE, chunk), ("app.one", PLAIN_THREE[:1], message_chunk),
            ("packed", PLAIN_THREE[1:], None)]

    def check(events, replies, close):
        assert requests(events) == want and replies == b"" and close is None

    each_cut(server, stream, check)


def test_server_acks_and_greets_by_send():
    assert server().send((forward.HELO,)) == b""
    assert server("k").send((forward.HELO,)) == forward.helo(NONCE, AUTH)
    assert server().send((forward.ACK, "abc==")) == forward.ack_response("abc==")
    try:
        server().send((forward.READY,))
    except ValueError:
        return
    raise AssertionError("a server sent READY")


def test_server_closes_after_the_frames_before_a_fault():
    good, chunk = ENCODER.frame("ok", THREE[:1])

    def check(events, replies, close):
        assert requests(events) == [("ok", PLAIN_THREE[:1], chunk)]
        assert close is not None and "expecting an array" in close

    each_cut(server, good + b"\x81\xa1a\x01" + good, check)
    session = server()
    session.receive(b"\x81\xa1a\x01")
    assert session.receive(good).close is not None     # closed stays closed


def test_secure_handshake_between_the_two_sessions_at_every_cut():
    """The client's PING after the server's HELO, the server's PONG, then a frame and its
    ack: each side fed the other's bytes cut anywhere."""
    users = {"alice": "pa55word"}
    helo = server("key", users).send((forward.HELO,))
    seen = {}       # what the checks saw (MicroPython functions take no attributes)

    def client_ping(events, replies, close):
        assert events == [] and close is None
        assert replies.startswith(b"\x96\xa4PING")
        seen["ping"] = replies

    each_cut(lambda: client("key", "alice", "pa55word"), helo, client_ping)
    frame, chunk = ENCODER.frame("secure", THREE[:2])

    def server_side(events, replies, close):
        assert replies.startswith(b"\x95\xa4PONG\xc3") and close is None
        assert requests(events) == [("secure", PLAIN_THREE[:2], chunk)]
        seen["pong"] = replies

    each_cut(lambda: server("key", users), seen["ping"] + frame, server_side)

    def client_side(events, replies, close):
        assert replies == seen["ping"] and events == [(forward.READY,)] and close is None

    each_cut(lambda: client("key", "alice", "pa55word"), helo + seen["pong"], client_side)
    # frames go out once the PONG is in; their acks come back cut anywhere
    second, second_chunk = ENCODER.frame("secure", THREE[2:])

    def ready():
        session = client("key", "alice", "pa55word")
        assert session.receive(helo + seen["pong"]).events == [(forward.READY,)]
        assert session.send((forward.FRAME, frame, chunk)) == frame
        session.send((forward.FRAME, second, second_chunk))
        return session

    def acked(events, replies, close):
        assert events == [(forward.ACK, chunk), (forward.ACK, second_chunk)]
        assert replies == b"" and close is None

    each_cut(ready, forward.ack_response(chunk) + forward.ack_response(second_chunk), acked)


def test_wrong_credentials_get_a_refusal_and_a_close():
    helo = server("key", {"alice": "right"}).send((forward.HELO,))
    ping = client("key", "alice", "wrong").receive(helo).reply

    def check(events, replies, close):
        assert events == [] and replies == forward.pong(False, "username/password mismatch",
                                                        "", "")
        assert "username/password mismatch" in close

    each_cut(lambda: server("key", {"alice": "right"}), ping, check)
    ping = client("other-key").receive(helo).reply
    events, replies, close = fed(server("key"), [ping])
    assert replies == b"" and "shared_key mismatch" in close


def test_client_closes_on_a_bad_pong_an_unknown_ack_or_garbage():
    helo = server("key").send((forward.HELO,))
    session = client("key")
    session.receive(helo)
    bad_pong = forward.pong(True, "", "agg", "0" * 128)
    result = session.receive(bad_pong)
    assert "PONG shared_key digest mismatch" in result.close and not session.ready
    refused = client("key")
    refused.receive(helo)
    result = refused.receive(forward.pong(False, "no", "", ""))
    assert result.close == "failed authorization: no" and result.events == []

    def check(events, replies, close):
        assert events == [(forward.ACK, "one==")]
        assert close == "ACK: mismatch received=two==, expected=(three==)"

    def sent():
        session = client()
        session.send((forward.FRAME, b"f1", "one=="))
        session.send((forward.FRAME, b"f3", "three=="))
        return session
    each_cut(sent, forward.ack_response("one==") + forward.ack_response("two=="), check)
    assert "invalid msgpack" in client().receive(b"\xc1").close


def test_client_send_refuses_what_it_cannot_send():
    for session, event in ((client("key"), (forward.FRAME, b"f", None)),
                           (client(), (forward.HELO,))):
        try:
            session.send(event)
        except ValueError:
            continue
        raise AssertionError("sent %r" % (event,))


def test_gzip_frames_at_every_cut():
    if wire.zlib is None:         # MicroPython: no gzip
        return
    frame, chunk = forward.Encoder(_pairs_packb, compress=True, require_ack=True).frame(
        "gz", THREE)

    def check(events, replies, close):
        assert requests(events) == [("gz", PLAIN_THREE, chunk)] and close is None

    each_cut(server, frame, check)
