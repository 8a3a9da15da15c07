"""Stream framing (edgeship/core/framing.py): separator and octet counting, fed every cut of
the stream; runs under MicroPython too."""
from edgeship.core.framing import OctetCountingFrames, SeparatorFrames


def _feed_in_cuts(make, data):
    """The frames of ``data`` fed whole, and fed cut at every position: all the same."""
    whole = make()
    expected = whole.receive(data).events + whole.finish()
    for cut in range(1, len(data)):
        framer = make()
        got = framer.receive(data[:cut]).events + framer.receive(data[cut:]).events
        got += framer.finish()
        assert got == expected, (cut, got, expected)
    one_byte = make()
    got = []
    for i in range(len(data)):
        got += one_byte.receive(data[i:i + 1]).events
    assert got + one_byte.finish() == expected
    return expected


def test_newline_frames_in_any_cut():
    frames = _feed_in_cuts(SeparatorFrames, b"one\ntwo\r\n\nthree\nrest")
    assert frames == [b"one", b"two\r", b"three", b"rest"]


def test_a_longer_separator():
    frames = _feed_in_cuts(lambda: SeparatorFrames(b"||"), b"a||b|c||||d")
    assert frames == [b"a", b"b|c", b"d"]


def test_nul_ends_a_message_too():
    frames = _feed_in_cuts(lambda: SeparatorFrames(b"\n", alternatives=(b"\x00",)),
                           b"a\x00b\nc")
    assert frames == [b"a", b"b", b"c"]


def test_a_message_over_max_size_comes_in_pieces():
    framer = SeparatorFrames(b"\n", max_size=4)
    assert framer.receive(b"abcdefghij").events == [b"abcd", b"efgh"]
    assert framer.receive(b"kl\nxy\n").events == [b"ijkl", b"xy"]
    assert framer.split == 2
    framer = SeparatorFrames(b"\n", max_size=4)
    assert framer.receive(b"123456789\nok\n").events == [b"1234", b"5678", b"9", b"ok"]


def test_octet_counting_in_any_cut():
    data = b"5 hello11 hello world\n3 abc0 2 ok"
    frames = _feed_in_cuts(lambda: OctetCountingFrames(100), data)
    assert frames == [b"hello", b"hello world", b"abc", b"ok"]


def test_octet_counting_keeps_newlines_inside_a_frame():
    framer = OctetCountingFrames(100)
    assert framer.receive(b"6 a\nb\nc\n\n").events == [b"a\nb\nc\n"]


def test_octet_counting_refuses_a_bad_length():
    framer = OctetCountingFrames(100)
    result = framer.receive(b"3 abcx5 hello")
    assert result.events == [b"abc"]
    assert result.close == "invalid octet-counting length"
    assert framer.receive(b"3 abc").close == "invalid octet-counting length"


def test_octet_counting_refuses_a_frame_over_the_limit():
    framer = OctetCountingFrames(10)
    result = framer.receive(b"11 ")
    assert result.events == [] and "over the limit" in result.close


def test_octet_counting_refuses_endless_digits():
    framer = OctetCountingFrames(10)
    assert framer.receive(b"1" * 30).close == "invalid octet-counting length"


def test_octet_counting_drops_an_unfinished_frame_at_the_end():
    framer = OctetCountingFrames(100)
    assert framer.receive(b"10 abc").events == []
    assert framer.finish() == []
