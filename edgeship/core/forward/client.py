"""out_forward's side of one connection: the secure-forward handshake and the acks.
``ClientSession`` follows the session convention of ``edgeship.core.session``."""
from edgeship.core.forward.digest import password_digest, shared_key_digest
from edgeship.core.forward.messages import ACK, FRAME, READY, ping
from edgeship.core.forward.wire import ProtocolError, field_bytes, is_text
from edgeship.core.session import Result


class ClientSession:
    """out_forward's side of one connection (convention of ``edgeship.core.session``): the
    handshake when a shared key is set, then frames out and acks in.

    ``receive(data)`` -> Result: ``reply`` is the PING that answers the server's HELO;
    ``events`` holds ``(READY,)`` once the server's PONG is checked (``ready`` is true from
    the start without a shared key) and ``(ACK, chunk)`` per ack; ``close`` is why the
    connection must be closed (a failed handshake, an ack for another chunk than the oldest
    one sent, bytes that are not msgpack). ``send((FRAME, data, chunk))`` returns the
    frame's bytes (an ``Encoder`` frame) and, when ``chunk`` is not None, awaits its ack.
    """

    def __init__(self, codec, shared_key=None, hostname="localhost", salt=b"",
                 username="", password=""):
        self.unpacker = codec.unpacker(64 * 1024)
        self.shared_key = shared_key
        self.hostname = hostname
        self.salt = salt
        self.username = username
        self.password = password
        self.ready = shared_key is None
        self.nonce = None
        self.awaiting = []      # chunk ids of the frames sent, oldest first, not acked yet
        self.closed = None
        self._sent_ping = False

    def send(self, event):
        if event[0] != FRAME:
            raise ValueError("a forward client cannot send %r" % (event[0],))
        if not self.ready:
            raise ValueError("a frame sent before the handshake is done")
        _, data, chunk = event
        if chunk is not None:
            self.awaiting.append(chunk)
        return data

    def receive(self, data):
        events = []
        replies = []
        if self.closed is None:
            self.unpacker.feed(data)
        while self.closed is None:
            try:
                obj = next(self.unpacker)
            except StopIteration:
                break
            except Exception as exc:
                self.closed = "invalid msgpack from the server: %s" % exc
                break
            try:
                if self.ready:
                    events.append((ACK, self._ack(obj)))
                elif not self._sent_ping:
                    replies.append(self._helo(obj))
                else:
                    self._pong(obj)
                    events.append((READY,))
            except ProtocolError as exc:
                self.closed = str(exc)
        return Result(events, b"".join(replies), self.closed)

    def _helo(self, obj):
        if type(obj) is not list or len(obj) != 2 or obj[0] != "HELO" or type(obj[1]) is not dict:
            raise ProtocolError("handshake: expected HELO from the server")
        options = obj[1]
        nonce = options.get("nonce")
        if not is_text(nonce):
            raise ProtocolError("handshake: HELO without a nonce")
        self.nonce = field_bytes(nonce)
        digest = shared_key_digest(self.salt, self.hostname, self.nonce, self.shared_key)
        password = ""
        if "auth" in options:
            # As Fluent Bit: any auth salt gets a digest, even with no username configured.
            password = password_digest(field_bytes(options["auth"]) or b"", self.username, self.password)
        self._sent_ping = True
        return ping(self.hostname, self.salt, digest, self.username, password)

    def _pong(self, obj):
        if type(obj) is not list or len(obj) != 5 or obj[0] != "PONG":
            raise ProtocolError("handshake: expected PONG from the server")
        if obj[1] is not True:
            reason = obj[2] if isinstance(obj[2], str) else ""
            raise ProtocolError("failed authorization: %s" % reason)
        hostname, digest = field_bytes(obj[3]), field_bytes(obj[4])
        if hostname is None or digest is None:
            raise ProtocolError("handshake: malformed PONG")
        expected = shared_key_digest(self.salt, hostname, self.nonce, self.shared_key)
        if digest != expected.encode():
            raise ProtocolError("PONG shared_key digest mismatch: server does not hold the "
                                "same shared_key")
        self.ready = True

    def _ack(self, obj):
        """The chunk id ``obj`` acks: the oldest one awaiting, else a ProtocolError."""
        if type(obj) is not dict or not is_text(obj.get("ack")):
            raise ProtocolError("unexpected reply from the server: %r" % (obj,))
        got = field_bytes(obj["ack"]).decode("utf-8", "replace")
        expected = self.awaiting[0] if self.awaiting else ""
        if got != expected:
            raise ProtocolError("ACK: mismatch received=%s, expected=(%s)" % (got, expected))
        self.awaiting.pop(0)
        return got
