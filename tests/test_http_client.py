"""edgeship/net/http_client.py on real sockets: keep-alive reuse, a kept connection the
server closed, a server that never stops answering, a server that answers nothing."""
import asyncio

import pytest

from http_receiver import CLOSE, Receiver, response
from edgeship.core.schema import Entry, Schema
from edgeship.net import http_client
from edgeship.net.http_client import HTTP_CLIENT_OPTIONS, HttpClient, HttpError, address_options

SCHEMA = Schema("test", address_options(80) + HTTP_CLIENT_OPTIONS)


def client(port, **options):
    entries = [Entry("port", str(port))] + [Entry(k, v) for k, v in options.items()]
    return HttpClient(SCHEMA.build(entries))


def run(coroutine):
    return asyncio.new_event_loop().run_until_complete(coroutine)


def test_requests_reuse_one_connection_and_reopen_one_the_server_closed():
    receiver = Receiver(lambda request, index: response() if index != 1 else
                        response(extra=["Connection: close"]))
    c = client(receiver.port)

    async def three():
        return [(await c.request("POST", "/", [], b"x%d" % i)).status for i in range(3)]

    try:
        assert run(three()) == [200, 200, 200]
    finally:
        c.close()
        receiver.close()
    assert [r.connection for r in receiver.requests] == [1, 1, 2]
    assert [r.body for r in receiver.requests] == [b"x0", b"x1", b"x2"]


def test_a_runaway_answer_is_cut_and_its_connection_dropped(monkeypatch):
    monkeypatch.setattr(http_client, "MAX_RESPONSE", 1000)
    receiver = Receiver(lambda request, index: response(body=b"y" * 5000))
    c = client(receiver.port)

    async def two():
        first = await c.request("POST", "/", [], b"a")
        second = await c.request("POST", "/", [], b"b")
        return first, second

    try:
        first, second = run(two())
    finally:
        c.close()
        receiver.close()
    # 1000 bytes read in all: the status line and headers, then the head of the body.
    assert first.status == 200 and first.truncated
    assert 0 < len(first.body) < 1000 and first.body == b"y" * len(first.body)
    assert [r.connection for r in receiver.requests] == [1, 2]


@pytest.mark.parametrize("answer", [CLOSE, ("slow", 3, response())])
def test_no_answer_is_an_error_not_a_hang(answer):
    receiver = Receiver(lambda request, index: answer)
    c = client(receiver.port, **{"net.io_timeout": "1"})
    try:
        with pytest.raises(HttpError):
            run(c.request("POST", "/", [], b"z"))
    finally:
        c.close()
        receiver.close()
    assert len(receiver.requests) == 1
