"""Codecs: bytes and text to records and back (CPython; may import edgeship.core only)."""
