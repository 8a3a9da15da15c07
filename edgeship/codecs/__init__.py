"""Codecs: bytes and text to records and back (CPython; may import edgeship.core only).

    untrusted   the one bounded decoder of JSON and msgpack at every input boundary
    msgpack     the forward protocol's msgpack codec (entries, frames off a stream)
    formats     Fluent Bit's exact JSON and text renderings of the output Formats
    payload     MQTT payloads (json, json_lines, cbor, msgpack, raw) <-> records
    strptime    Fluent Bit's strptime for parsers' Time_Format, with %L and zones
"""
