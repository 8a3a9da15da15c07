"""The calling convention of edgeship's sans-IO protocol sessions (``edgeship.core``).

A session holds the protocol state of one connection and never touches a socket, a file or a
clock; its owner (the engine on CPython, the firmware on MicroPython) does the I/O:

    result = session.receive(data)   # bytes just read: any cut of the stream
    # 1. act on result.events, in order
    # 2. write result.reply (b"" when there is nothing to answer)
    # 3. close the connection when result.close is not None (a str: the reason)

    data = session.send(event)       # the bytes that carry one outgoing event

Events are tuples whose first item says what they are (for MQTT, the packet type number from
``mqtt_codec``; for forward, the names in ``forward.messages``); each session's docstring
lists its events both ways. A peer that breaks the protocol is not an exception: ``receive``
returns the events that came before the fault and the reason in ``close``, and keeps
returning that reason once closed. ``send`` raises ValueError for an event it cannot encode
(a bug of the caller, not of the peer); a side with nothing of its own to send (the MQTT
listener, whose answers are all replies) has no ``send``.

Following it: ``mqtt_client.ClientSession`` (the firmware's), ``mqtt.ServerSession`` (the
mqtt input's listener), ``forward.ServerSession`` and ``forward.ClientSession``.
"""


class Result:
    """What one ``receive`` asks of the caller: ``events`` (a list), ``reply`` (bytes), and
    ``close`` (None, or why the connection must be closed once ``reply`` is written)."""

    __slots__ = ("events", "reply", "close")

    def __init__(self, events=None, reply=b"", close=None):
        self.events = [] if events is None else events
        self.reply = reply
        self.close = close
