"""out_forward's side of one connection: the secure-forward handshake and the acks."""
from edgeship.core.forward.digest import password_digest, shared_key_digest
from edgeship.core.forward.messages import ping
from edgeship.core.forward.wire import ProtocolError, field_bytes, is_text


class ClientSession:
    """out_forward's side of one connection: the handshake (when a shared key is set) and
    the acks. Feed everything received to ``receive(data)``; it returns bytes to send (the
    PING) and raises ProtocolError on any failure: close the connection then."""

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
        self.acked = []
        self._sent_ping = False

    def receive(self, data):
        self.unpacker.feed(data)
        out = []
        while True:
            try:
                obj = next(self.unpacker)
            except StopIteration:
                break
            except Exception as exc:
                raise ProtocolError("invalid msgpack from the server: %s" % exc)
            if self.ready:
                self._ack(obj)
            elif not self._sent_ping:
                out.append(self._helo(obj))
            else:
                self._pong(obj)
        return b"".join(out)

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
        if type(obj) is not dict or not is_text(obj.get("ack")):
            raise ProtocolError("unexpected reply from the server: %r" % (obj,))
        self.acked.append(field_bytes(obj["ack"]).decode("utf-8", "replace"))

    def take_ack(self, chunk):
        """True when ``chunk`` was acked; an ack for another chunk is an error."""
        while self.acked:
            got = self.acked.pop(0)
            if got != chunk:
                raise ProtocolError("ACK: mismatch received=%s, expected=(%s)" % (got, chunk))
            return True
        return False
