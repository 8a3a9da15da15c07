"""edgeship.core.forward parts that need no msgpack codec: envelopes, EventTime, digests,
chunk ids, handshake messages and the Encoder (with a small test packer). Hex strings are
bytes Fluent Bit 5.1.1 sent (shared/reference/vectors). Runs under MicroPython too; the
codec-driven sessions are tested in tests/test_forward_vectors.py."""
import binascii
import struct

from edgeship.core import forward
from edgeship.core.forward import digest, wire

H = binascii.unhexlify


def _pairs_packb(value):
    """Enough msgpack for the test records; a list of pairs stands for a map, so key order
    holds on MicroPython (whose dicts are unordered)."""
    if isinstance(value, Pairs):
        return forward.map_header(len(value.items)) + b"".join(
            _pairs_packb(k) + _pairs_packb(v) for k, v in value.items)
    if isinstance(value, str):
        return forward.pack_str(value)
    if value is True or value is False:
        return forward.pack_bool(value)
    if value is None:
        return b"\xc0"
    if isinstance(value, int):
        return forward.pack_uint(value)
    if isinstance(value, float):
        return b"\xcb" + struct.pack(">d", value)
    if isinstance(value, list):
        return forward.array_header(len(value)) + b"".join(_pairs_packb(v) for v in value)
    raise ValueError(value)


class Pairs:
    def __init__(self, *items):
        self.items = items


def _pairs_entries(events):
    """Retained-metadata entries with the test packer (CPython's is codecs.entries)."""
    return b"".join(b"\x92\x92" + forward.pack_event_time(t) + b"\x80" + _pairs_packb(record)
                    for t, record in events)


def test_envelope_widths():
    assert forward.pack_str("app.logs") == b"\xa8app.logs"
    assert forward.pack_str("x" * 32)[:2] == b"\xd9\x20"
    assert forward.pack_str("x" * 256)[:3] == b"\xda\x01\x00"
    assert forward.pack_str(b"\xff\xfe") == b"\xa2\xff\xfe"     # raw bytes as str
    assert forward.pack_bin(b"ab") == b"\xc4\x02ab"
    assert forward.pack_bin(b"a" * 300)[:3] == b"\xc5\x01\x2c"
    assert forward.array_header(3) == b"\x93"
    assert forward.array_header(16) == b"\xdc\x00\x10"
    assert forward.array_header(70000) == b"\xdd\x00\x01\x11\x70"
    assert forward.map_header(2) == b"\x82"
    assert forward.map32_header(2) == b"\xdf\x00\x00\x00\x02"
    assert forward.pack_uint(1) == b"\x01"
    assert forward.pack_uint(200) == b"\xcc\xc8"
    assert forward.pack_uint(1704164645) == H("ce65937d25")
    assert forward.pack_uint(1 << 40) == b"\xcf" + struct.pack(">Q", 1 << 40)


def test_event_time_is_fixext8_type_0():
    t = 1704164645 * forward.NS + 123456789
    assert forward.pack_event_time(t) == H("d70065937d25075bcd15")
    decoded = forward.ext_hook(0, H("65937d25075bcd15"))
    assert decoded.ns == t
    other = forward.ext_hook(1, b"abcdefgh")
    assert isinstance(other, forward.Ext) and other.code == 1
    assert isinstance(forward.ext_hook(0, b"1234"), forward.Ext)   # not 8 bytes: no time


def test_sha512_pure_matches_the_standard():
    assert forward.sha512_hex(b"abc").startswith("ddaf35a193617aba")
    assert binascii.hexlify(digest._sha512_pure(b"abc")).decode() == forward.sha512_hex(b"abc")
    assert digest._sha512_pure(b"") == H(
        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
        "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e")
    for n in (111, 112, 128, 239):                      # padding edge lengths
        assert digest._sha512_pure(b"x" * n) == forward.sha512(b"x" * n)


def test_shared_key_and_password_digests_worked_examples():
    nonce = bytes(range(0x10, 0x20))
    salt = b"0123456789abcdef"
    assert forward.shared_key_digest(salt, "fb-client.example", nonce, "s3cr3t-key") == (
        "458634f4700a62a93cc4164a3dc4ad87cdbbe39a4891c3d0c77c6c80113f57b1"
        "315fe108cd88bfe77ff296e9f508c3057afe5ade1bfdeb6900caddb43d17c9a0")
    assert forward.shared_key_digest(salt, "capture-server.example", nonce, "s3cr3t-key") == (
        "ce62bb7fe48498bb7f163661593e3cb0050d858183fcadb6ed9fc2c31d804fb5"
        "2a78b5b29656ffef0bb9f8fb1171599ee5b76d40e0d781e1c401683ef70b6138")
    assert forward.password_digest(bytes(range(0xa0, 0xb0)), "alice", "pa55word") == (
        "a1406b3df40e9798199bcc6dd2a4c50a7551314be429d44a6076770f89570494"
        "3a02bf2eed1e7621da7a4143a6c8b3ac44ff3d863d6485948e2c07032a4d4528")


# out_forward_require_ack_retain_false: the three [EventTime, record] entries Fluent Bit sent
ENTRIES_RETAIN_FALSE = H(
    "dd00000002d70065937d25075bcd1582a36d7367a56669727374a16e01"
    "dd00000002d70065937d260000000183a36d7367a67365636f6e64a16e02a26f6bc3"
    "dd00000002d70065937d271dcd650084a36d7367a57468697264a16e03a166cb3ff8000000000000"
    "a66e657374656481a1619301a178c0")
THREE = [
    (1704164645123456789, Pairs(("msg", "first"), ("n", 1))),
    (1704164646000000001, Pairs(("msg", "second"), ("n", 2), ("ok", True))),
    (1704164647500000000, Pairs(("msg", "third"), ("n", 3), ("f", 1.5),
                                ("nested", Pairs(("a", [1, "x", None]))))),
]


def test_chunk_id_is_over_the_entries_sent():
    assert forward.chunk_id(ENTRIES_RETAIN_FALSE) == "UtCqfb5FBLnr7vYFMHfwrA=="


def test_encoder_retain_false_with_ack_is_fluent_bits_frame():
    enc = forward.Encoder(_pairs_packb, retain_metadata=False, require_ack=True)
    frame, chunk = enc.frame("app.logs", THREE)
    assert chunk == "UtCqfb5FBLnr7vYFMHfwrA=="
    assert frame == (H("93a86170702e6c6f677393") + ENTRIES_RETAIN_FALSE + H(
        "df00000003a56368756e6bb85574437166623546424c6e72377659464d48667772413d3d"
        "a473697a6503ad666c75656e745f7369676e616c00"))


def test_encoder_default_and_time_as_integer_frames():
    # out_forward_handshake_keepalive_reuse, first frame
    tick = [(0x6b0453d1 * forward.NS + 0x04edbfa1, Pairs(("msg", "tick")))]
    frame, chunk = forward.Encoder(_pairs_packb, pack_entries=_pairs_entries).frame("app.ka", tick)
    assert chunk is None
    assert frame == H("92a66170702e6b61919292d7006b0453d104edbfa18081a36d7367a47469636b")
    # out_forward_time_as_integer
    frame, _ = forward.Encoder(_pairs_packb, time_as_integer=True).frame("app.logs", THREE)
    assert frame == H(
        "92a86170702e6c6f67739392ce65937d2582a36d7367a56669727374a16e0192ce65937d2683a36d7367"
        "a67365636f6e64a16e02a26f6bc392ce65937d2784a36d7367a57468697264a16e03a166cb3ff8000000"
        "000000a66e657374656481a1619301a178c0")


def test_options_map_order_and_extra_options():
    assert forward.options_map(None, 3, extra=[("region", "eu-west")]) == H(
        "df00000003a473697a6503ad666c75656e745f7369676e616c00a6726567696f6ea765752d77657374")
    assert forward.options_map(None, 3, "gzip") == H(
        "df00000003a473697a6503aa636f6d70726573736564a4677a6970ad666c75656e745f7369676e616c00")
    assert forward.options_map() == H("df00000001ad666c75656e745f7369676e616c00")


def test_message_frame_without_ack():
    # out_forward_message_mode_dynamic_tag_no_ack, first message
    enc = forward.Encoder(_pairs_packb)
    frame, chunk = enc.message("app.first", (1704164645123456789, Pairs(("msg", "first"), ("n", 1))))
    assert chunk is None
    assert frame == H("94a96170702e6669727374d70065937d25075bcd1582a36d7367a56669727374a16e01"
                      "df00000001ad666c75656e745f7369676e616c00")


def test_entry_times_an_event_time_cannot_hold_are_refused():
    # Fluent Bit drops them ("could not ingest Forward message: -4"); in nanoseconds, seconds
    # past 2106 could overflow the int64 a chunk stores. The entries before are kept.
    good = {"a": 1}
    events, error = forward.decode_entries([[1700000000, good], [2 ** 40, good], [1, good]])
    assert events == [(1700000000 * forward.NS, good)] and "invalid time field" in error
    for t in (2 ** 32, 1e12, -1, -0.5, float("inf"), float("nan")):
        events, error = forward.decode_entries([[[t, {}], good]])
        assert events == [] and "invalid time field" in error, t
    events, error = forward.decode_entries([[2 ** 32 - 1, good], [4294967295.25, good]])
    assert error is None
    assert events == [(4294967295 * forward.NS, good), (4294967295250000000, good)]


def test_handshake_messages_are_fluent_bits_bytes():
    assert forward.helo(H("9c76f66c1522d323ad902ffee093770c"), H("0774c35a06f1c96c0ce45389275d877d")) == H(
        "92a448454c4f82a56e6f6e6365b09c76f66c1522d323ad902ffee093770ca461757468b00774c35a06f1c96c0ce45389275d877d")
    assert forward.ack_response("p8n9gmxTQVC8/nh2wlKKeQ==") == H(
        "81a361636bb870386e39676d7854515643382f6e6832776c4b4b65513d3d")
    assert forward.pong(False, "username/password mismatch", "", "") == H(
        "95a4504f4e47c2ba757365726e616d652f70617373776f7264206d69736d61746368a0a0")
    # out_forward_handshake_user_password: PING from the HELO nonce 10..1f and auth a0..af
    salt = H("e0721972211db3c309aba6c8ef493a59")
    nonce = bytes(range(0x10, 0x20))
    digest = forward.shared_key_digest(salt, "fb-client.example", nonce, "s3cr3t-key")
    password = forward.password_digest(bytes(range(0xa0, 0xb0)), "alice", "pa55word")
    ping = forward.ping("fb-client.example", salt, digest, "alice", password)
    assert ping == H(
        "96a450494e47b166622d636c69656e742e6578616d706c65b0e0721972211db3c309aba6c8ef493a59d980"
        "366431303132396132323030326533663262336433306539333463636135353534623735333439656332"
        "366533636133333035376533613765313732303831643834623862626166386532393463303264383130"
        "3836306531356339656533613639316435353133613230323764623330383466303362653262626662"
        "306166a5616c696365d98061313430366233646634306539373938313939626363366464326134633530"
        "61373535313331346265343239643434613630373637373066383935373034393433613032626632656564"
        "31653736323164613761343134336136633862336163343466663364383633643634383539343865326330"
        "3730333261346434353238")
    assert ping.endswith(b"\xa5alice\xd9\x80" + password.encode())


def test_gzip_header_is_fluent_bits():
    if wire.zlib is None:         # MicroPython: no gzip; out_forward refuses Compress there
        return
    data = b"entries" * 100
    packed = forward.gzip_compress(data)
    assert packed[:10] == H("1f8b08000000000000ff")
    assert forward.gunzip(packed + packed, 10000) == data + data     # two members
    try:
        forward.gunzip(packed, 10)
        raise AssertionError("no limit")
    except forward.ProtocolError as exc:
        assert "exceeds" in str(exc)
    try:
        forward.gunzip(packed[:20], 10000)
        raise AssertionError("truncated gzip accepted")
    except forward.ProtocolError:
        pass
