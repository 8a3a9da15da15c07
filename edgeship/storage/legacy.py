"""Spool format 1, read back after an upgrade, never written.

Version 1 frames (``chunkframe`` magic version byte 1, edgeship before chunks became Fluent
Bit's entries) hold one msgpack array of ``[time_ns, record]`` pairs, strings packed with
``surrogatepass``. ``to_entries`` turns such a payload into today's chunk bytes, so a spool
written by the old version is delivered after the upgrade like any other.
"""
import msgpack

from edgeship.codecs.entries import pack_entries

_UNPACK_OPTIONS = {"raw": False, "unicode_errors": "surrogatepass", "strict_map_key": False}


def events(payload):
    """The events of a version 1 payload. ValueError when it is not one."""
    try:
        pairs = msgpack.unpackb(payload, **_UNPACK_OPTIONS)
        return [(t, record) for t, record in pairs]
    except Exception as exc:  # msgpack raises several types for bad bytes; a bad shape too
        raise ValueError("undecodable version 1 chunk: %r" % exc)


def to_entries(payload):
    """A version 1 payload as chunk entries."""
    return pack_entries(events(payload))[0]
