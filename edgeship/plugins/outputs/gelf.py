"""gelf output: GELF messages to Graylog over UDP, TCP or TLS (out_gelf).

The messages are edgeship/codecs/gelf.py's (Fluent Bit's ``flb_msgpack_to_gelf``, byte for
byte). Fluent Bit 5.1.1's transport kept:

* ``Mode tcp``/``tls``: each message followed by one NUL byte, on a connection kept alive.
* ``Mode udp`` (the default): one datagram per record; gzip-compressed (Fluent Bit's gzip
  member, header ``1f 8b 08 00 00000000 00 ff``) when ``Compress`` is on (the default) or
  the message is bigger than ``Packet_Size`` (1420); a compressed message still bigger is
  sent in chunks: ``1e 0f``, an 8-byte message id, the sequence number and the count, then
  up to ``Packet_Size`` bytes. A message needing more than 128 chunks cannot be sent: it is
  dropped with an error, as Fluent Bit does.
* ``Gelf_Tag_Key`` adds the tag as the last record key.
* A record that cannot be encoded (no short_message, a level of the wrong type) is left
  out with an error; the rest of the chunk is sent.

Confirmation: TCP has no application-level acknowledgement (GELF over TCP has none, nor
has Fluent Bit): a flush is OK once every message is in the kernel on a live connection;
UDP once every datagram was handed to ``send``; a refused connection or a failed send is a
RETRY (edgeship/net/stream.py).

Differences: Fluent Bit ignores a failed send of a UDP chunk (the flush is OK); edgeship
retries the chunk. Errors and level warnings are logged once per chunk with a count, where
Fluent Bit logs one line per record. The chunk message id is 8 random bytes (Fluent Bit:
the time in milliseconds and a random 16-bit nonce); receivers only compare it.
"""
import os

from edgeship.codecs.gelf import GELF_KEY_OPTIONS, GelfEncoder
from edgeship.core.forward import gzip_compress
from edgeship.core.schema import Option
from edgeship.net.stream import NET_OPTIONS, Sender
from edgeship.net.tls import TLS_OPTIONS, tls_context
from edgeship.plugins.outputs._stream import SenderOutput

CHUNK_MAGIC = b"\x1e\x0f"
MAX_CHUNKS = 128


def udp_datagrams(message, packet_size, compress):
    """The datagrams of one GELF message (bytes); ValueError when it needs more than 128."""
    if not compress and len(message) <= packet_size:
        return [message]
    data = gzip_compress(message)
    if len(data) <= packet_size:
        return [data]
    count = -(-len(data) // packet_size)
    if count > MAX_CHUNKS:
        raise ValueError("message too big: %d bytes" % len(data))
    head = CHUNK_MAGIC + os.urandom(8)
    return [head + bytes((n, count)) + data[n * packet_size:(n + 1) * packet_size]
            for n in range(count)]


class GelfOutput(SenderOutput):
    name = "gelf"
    description = "GELF Output"
    options = (
        Option("Host", default="127.0.0.1", help="host of the GELF receiver"),
        Option("Port", "int", "12201", min=1, max=65535, help="port of the GELF receiver"),
        Option("Mode", default="udp", choices=("udp", "tcp", "tls"),
               help="transport: udp, tcp or tls (tls turns TLS on)"),
        Option("Gelf_Tag_Key", help="record key the tag is added under"),
    ) + GELF_KEY_OPTIONS + (
        Option("Packet_Size", "int", "1420", min=1,
               help="udp: bytes per datagram; bigger messages are compressed and chunked"),
        Option("Compress", "bool", "true", help="udp: gzip every message"),
    ) + NET_OPTIONS + TLS_OPTIONS

    def configure(self):
        conf = self.conf
        self.mode = conf["mode"]
        self.encoder = GelfEncoder.from_conf(conf)
        self.packet_size = conf["packet_size"]
        self.compress = conf["compress"]
        ssl_ctx = None
        if self.mode == "tls" or (self.mode == "tcp" and conf["tls"]):
            tls_conf = dict(conf)
            tls_conf["tls"] = True
            ssl_ctx = tls_context(tls_conf, server=False)
        self.sender = Sender(conf, "udp" if self.mode == "udp" else "tcp", ssl_ctx)

    def payloads(self, chunk):
        messages = self.encoder.logged_messages(chunk.tag, chunk.events(), self.log)
        if self.mode != "udp":
            return [m + b"\0" for m in messages]
        datagrams = []
        too_big = []
        for message in messages:
            try:
                datagrams += udp_datagrams(message, self.packet_size, self.compress)
            except ValueError as exc:
                too_big.append(str(exc))
        if too_big:
            self.log.error("%d records dropped: %s (at most %d chunks of Packet_Size %d)",
                           len(too_big), too_big[0], MAX_CHUNKS, self.packet_size)
        return datagrams


PLUGIN = GelfOutput
