from edgeship.core.cbor import dumps

# RFC 8949 appendix A vectors.
VECTORS = [
    (0, "00"), (23, "17"), (24, "1818"), (1000, "1903e8"), (1000000, "1a000f4240"),
    (1000000000000, "1b000000e8d4a51000"), (-1, "20"), (-1000, "3903e7"),
    (1.1, "fb3ff199999999999a"), (False, "f4"), (True, "f5"), (None, "f6"),
    ("", "60"), ("IETF", "6449455446"), ("\u00fc", "62c3bc"), (b"\x01\x02", "420102"),
    ([], "80"), ([1, [2, 3]], "8201820203"), ({}, "a0"), ({"a": 1}, "a1616101"),
]


def test_rfc_vectors():
    import binascii
    for value, expected in VECTORS:
        got = binascii.hexlify(dumps(value)).decode()
        assert got == expected, (value, got, expected)


def test_unsupported_type():
    try:
        dumps(object())
    except TypeError:
        return
    raise AssertionError("no error")
