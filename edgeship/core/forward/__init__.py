"""Fluentd forward protocol (spec v1, as Fluent Bit 5.1.1 speaks it), sans-IO.

Bytes in, bytes out: nothing here opens a socket. The package, by concern:

    wire       msgpack envelope parts, EventTime / Ext / UNREADABLE, gzip, ProtocolError
    digest     SHA-512 (pure fallback), chunk ids, the handshake's digests
    messages   HELO, PING, PONG and the ack, as Fluent Bit packs them
    encode     ``Encoder``: out_forward's frames (Forward, CompressedPackedForward, Message)
    server     ``ServerSession``: in_forward's side of a connection, frames in, events out
    client     ``ClientSession``: out_forward's side, the handshake and the acks

Both sessions follow ``edgeship.core.session``: ``receive(data) -> Result(events, reply,
close)`` and ``send(event) -> bytes``, their events named in ``messages`` (REQUEST, HELO,
ACK, READY, FRAME).

Every name is also here (``forward.Encoder``, ``forward.pack_str``...).

msgpack: the frame envelopes Fluent Bit compares byte for byte (array/map/str/bin headers,
EventTime, the map32 options map, HELO/PING/PONG) are packed here by hand, so they are
exact and MicroPython can build them. Records and the incoming stream need a full msgpack
codec, which MicroPython lacks, so the sessions take one as a parameter:

    codec.packb(obj) -> bytes                 a record (str keys, any msgpack value)
    codec.unpacker(limit) -> u                incremental decoder: u.feed(bytes); iterating
                                              yields objects, StopIteration = needs more;
                                              u.tell() = bytes consumed; a malformed stream
                                              raises an Exception; msgpack ext type 0 must
                                              come out as ``EventTime`` (use ``ext_hook``)
    codec.stream_unpacker(limit) -> u         the same, for a socket's stream of frames that
                                              arrive in pieces (it may decode differently);
                                              in a frame too deep to decode whole, each
                                              entry (or message record) too deep comes out
                                              as ``UNREADABLE``
    codec.values(data) -> list                every msgpack value of ``data`` in turn (a
                                              PackedForward payload); a value nested too
                                              deep, and a malformed or cut tail, come out
                                              as ``UNREADABLE``
    codec.too_deep(events) -> indexes         the events whose record nests deeper than
                                              the codec's bound
    codec.packed_entries(data) -> p or None   the entries of a PackedForward payload kept
                                              as bytes (a ``PackedEntries``) when the codec
                                              checked them all good, else None; its
                                              stream unpacker may give a Forward frame's
                                              entries the same way

On CPython ``edgeship.codecs.msgpack.MsgpackCodec`` wraps the msgpack package.
"""
from edgeship.core.forward.client import ClientSession
from edgeship.core.forward.digest import (chunk_id, password_digest, sha512, sha512_hex,
                                          shared_key_digest)
from edgeship.core.forward.encode import Encoder, options_map
from edgeship.core.forward.messages import (ACK, FRAME, HELO, READY, REQUEST, ack_response,
                                            helo, ping, pong)
from edgeship.core.forward.server import MetricsPayload, PackedEntries, Request, ServerSession, decode_entries
from edgeship.core.forward.wire import (DEFAULT_PORT, NS, SIGNAL_LOGS, SIGNAL_METRICS, UNREADABLE, EventTime,
                                        Ext, ProtocolError, Unreadable, array_header,
                                        ext_hook, gunzip, gzip_compress, map32_header,
                                        map_header, pack_bin, pack_bool, pack_event_time,
                                        pack_str, pack_uint)

__all__ = ("ACK", "FRAME", "HELO", "READY", "REQUEST", "ClientSession", "chunk_id", "password_digest", "sha512", "sha512_hex",
           "shared_key_digest", "Encoder", "options_map", "ack_response", "helo", "ping", "pong",
           "MetricsPayload", "PackedEntries", "Request", "ServerSession", "decode_entries", "DEFAULT_PORT", "NS", "SIGNAL_LOGS", "SIGNAL_METRICS",
           "UNREADABLE", "EventTime", "Ext", "ProtocolError", "Unreadable", "array_header",
           "ext_hook", "gunzip", "gzip_compress", "map32_header", "map_header", "pack_bin",
           "pack_bool", "pack_event_time", "pack_str", "pack_uint")
