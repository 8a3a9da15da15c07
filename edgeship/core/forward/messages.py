"""The forward protocol's small messages: the server's HELO, PONG and ack, the client's
PING, as Fluent Bit 5.1.1 packs them; and the kinds of the sessions' events (the first item
of each event tuple, see ``edgeship.core.session``)."""
from edgeship.core.forward.wire import map_header, pack_bool, pack_str

# Session events. Server: (REQUEST, Request) in; (HELO,) and (ACK, chunk) out.
# Client: (READY,) and (ACK, chunk) in; (FRAME, bytes, chunk or None) out.
REQUEST = "request"
HELO = "HELO"
ACK = "ack"
READY = "ready"
FRAME = "frame"


def ack_response(chunk):
    """``{"ack": chunk}``, the chunk re-packed as a str as it came."""
    return b"\x81\xa3ack" + pack_str(chunk)


def helo(nonce, auth, keepalive=None):
    """``["HELO", {nonce, auth}]``, both as str, as Fluent Bit sends them."""
    items = [b"\xa5nonce" + pack_str(nonce), b"\xa4auth" + pack_str(auth)]
    if keepalive is not None:
        items.append(b"\xa9keepalive" + pack_bool(keepalive))
    return b"\x92\xa4HELO" + map_header(len(items)) + b"".join(items)


def ping(hostname, salt, digest, username="", password=""):
    """All six elements as str, salt included (Fluent Bit's in_forward requires str)."""
    return (b"\x96\xa4PING" + pack_str(hostname) + pack_str(salt) + pack_str(digest)
            + pack_str(username) + pack_str(password))


def pong(ok, reason, hostname, digest):
    return (b"\x95\xa4PONG" + pack_bool(ok) + pack_str(reason) + pack_str(hostname)
            + pack_str(digest))
