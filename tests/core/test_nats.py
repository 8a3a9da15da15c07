"""NATS client session (edgeship/core/nats.py), fed every cut of a server's stream; runs
under MicroPython too."""
from edgeship.core.nats import ClientSession

SERVER = (b'INFO {"server_id":"x","max_payload":1048576}\r\n+OK\r\nPING\r\npong\r\n'
          b'MSG app 1 5\r\nhello\r\nMSG app 1 reply.to 2\r\nhi\r\n')
EVENTS = [("INFO", b'{"server_id":"x","max_payload":1048576}'), ("+OK",), ("PONG",),
          ("MSG", b"app", b"hello"), ("MSG", b"app", b"hi")]


def test_server_lines_in_any_cut_give_the_same_events_and_a_pong():
    for cut in range(len(SERVER) + 1):
        session = ClientSession()
        first = session.receive(SERVER[:cut])
        second = session.receive(SERVER[cut:])
        assert first.events + second.events == EVENTS, cut
        assert first.reply + second.reply == b"PONG\r\n"
        assert first.close is None and second.close is None


def test_what_a_publisher_sends():
    session = ClientSession()
    assert session.send(("CONNECT", b'{"verbose":false}')) == b'CONNECT {"verbose":false}\r\n'
    assert session.send(("PUB", b"app.x", b"[1]")) == b"PUB app.x 3\r\n[1]\r\n"
    assert session.send(("PING",)) == b"PING\r\n"
    for bad in (b"", b"a b", b"a\nb"):
        try:
            session.send(("PUB", bad, b"x"))
        except ValueError:
            continue
        assert False, bad


def test_an_error_or_garbage_closes_and_stays_closed():
    session = ClientSession()
    result = session.receive(b"PONG\r\n-ERR 'Maximum Payload Violation'\r\nPONG\r\n")
    assert result.events == [("PONG",), ("-ERR", "Maximum Payload Violation")]
    assert "Maximum Payload Violation" in result.close
    assert session.receive(b"PONG\r\n").close == result.close
    assert "not NATS" in ClientSession().receive(b"HTTP/1.1 200 OK\r\n").close
    assert "over 8 bytes" in ClientSession(max_line=8).receive(b"INFO " + b"x" * 20).close
    assert "over 4 bytes" in ClientSession(max_payload=4).receive(b"MSG a 1 9\r\n").close
    assert "bad MSG" in ClientSession().receive(b"MSG a 1 x\r\n").close
