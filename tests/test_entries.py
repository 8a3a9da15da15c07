"""The chunk format (edgeship.codecs.entries) and the one packer rule (codecs.msgpack):
Fluent Bit's entry bytes, the way back to events, what msgpack cannot carry, and the Chunk
outputs flush."""
import datetime

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeship.codecs import entries
from edgeship.codecs.msgpack import packb
from edgeship.core import forward

T0 = 1711360801 * 10 ** 9


def test_entries_are_fluent_bits_chunk_bytes():
    data, exact = entries.pack_entries([(T0 + 7, {"a": 1}), (T0, {"b": b"\x00"})])
    assert exact
    # [[EventTime, {}], record] per event, back to back: fixext8 type 0 (seconds, nanoseconds)
    assert data == (b"\x92\x92\xd7\x00\x66\x01\x4b\x21\x00\x00\x00\x07\x80\x81\xa1a\x01"
                    b"\x92\x92\xd7\x00\x66\x01\x4b\x21\x00\x00\x00\x00\x80\x81\xa1b\xc4\x01\x00")
    assert datetime.datetime.fromtimestamp(0x66014B21, datetime.timezone.utc).year == 2024
    assert entries.unpack_entries(data, 2) == [(T0 + 7, {"a": 1}), (T0, {"b": b"\x00"})]


_VALUE = (st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 64 - 1) | st.text()
          | st.floats(allow_nan=False) | st.binary())
_RECORD = st.dictionaries(st.text(max_size=8), _VALUE | st.lists(_VALUE, max_size=3),
                          max_size=6)
_TIMES = st.sampled_from([0, T0, T0 + 123456789, (1 << 32) * 10 ** 9 - 1])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_TIMES, _RECORD), max_size=40))
def test_a_batch_packs_to_its_entries_one_by_one_and_back(events):
    data, exact = entries.pack_entries(events)
    assert exact
    assert data == b"".join(b"\x92\x92" + forward.pack_event_time(t) + b"\x80" + packb(r)
                            for t, r in events)
    assert entries.unpack_entries(data, len(events)) == events
    assert entries.offsets(data)[-1] == len(data) and len(entries.offsets(data)) == len(events) + 1


def _without_msgspec(events):
    saved, entries._encode = entries._encode, None
    try:
        return entries.pack_entries(events)
    finally:
        entries._encode = saved


class _Text(str):
    pass


_ODD = st.sampled_from(["a\udcff", "\ud800", 1 << 70, -(1 << 63) - 1, _Text("sub"),
                        forward.EventTime(T0 + 5), forward.Ext(7, b"zz"), (1, "t")])
_ANY_RECORD = st.dictionaries(st.text(max_size=8) | st.integers(0, 3),
                              st.recursive(_VALUE | _ODD, lambda inner: st.lists(inner, max_size=3)
                                           | st.dictionaries(st.text(max_size=4), inner,
                                                             max_size=3), max_leaves=8),
                              max_size=6)


def test_msgspec_is_installed_where_the_tests_run():
    assert entries._encode is not None     # else the comparison below proves nothing


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_TIMES | st.sampled_from([-5, (1 << 33) * 10 ** 9]), _ANY_RECORD),
                max_size=30))
def test_msgspec_packs_what_the_msgpack_packer_packs(events):
    """The batch packer (msgspec) and a Packer call per entry give the same bytes and the
    same ``exact``, odd values included (they make msgspec give the batch up)."""
    assert entries.pack_entries(events) == _without_msgspec(events)


def test_the_packer_rule_for_what_msgpack_cannot_carry_as_it_is():
    record = {"raw": "a\udcff", "lone": "\ud800x", "big": 1 << 70, "set": {3},
              "time": forward.EventTime(T0 + 5), "ext": forward.Ext(7, b"zz")}
    data, exact = entries.pack_entries([(T0, record)])
    assert not exact        # the objects cannot stand for these bytes: they are decoded
    unpacker = msgpack.Unpacker(raw=True, strict_map_key=False)
    unpacker.feed(data)
    (entry,) = list(unpacker)
    body = entry[1]
    assert body[b"raw"] == b"a\xff"                      # the raw byte an input kept
    assert body[b"lone"] == "\ufffdx".encode()          # another lone surrogate: U+FFFD
    assert body[b"big"] == str(1 << 70).encode() and body[b"set"] == [3]
    assert body[b"time"] == msgpack.ExtType(0, forward.pack_event_time(T0 + 5)[2:])
    assert body[b"ext"] == msgpack.ExtType(7, b"zz")
    (event,) = entries.unpack_entries(data, 1)
    assert event[1]["raw"] == "a\udcff" and event[1]["time"].ns == T0 + 5


def test_times_outside_event_time_are_kept_at_the_nearest_end():
    data, exact = entries.pack_entries([(-5, {}), ((1 << 33) * 10 ** 9, {})])
    assert not exact
    assert [t for t, _ in entries.unpack_entries(data, 2)] == \
        [0, ((1 << 32) - 1) * 10 ** 9 + 10 ** 9 - 1]


def test_a_chunk_decodes_once_and_cuts_into_parts_of_its_own_bytes():
    events = [(T0 + n, {"n": n}) for n in range(5)]
    data, _ = entries.pack_entries(events)
    chunk = entries.Chunk("t", data, 5, 9)
    assert chunk.events() == events and chunk.events() is chunk.events()
    part = chunk.part(1, 4, (9, 1, 3))
    assert (part.tag, part.count, part.id) == ("t", 3, (9, 1, 3))
    assert part.payload == entries.pack_entries(events[1:4])[0]
    assert part.events() == events[1:4]
    assert chunk.part(0, 5, 9).payload is data
    lazy = entries.Chunk("t", data, 5, 9)       # not decoded: its part decodes its own bytes
    assert lazy.part(3, 5, 1).events() == events[3:]
    bad = entries.Chunk("t", data[:-2], 5, 9)
    for broken in (lambda: bad.events(), lambda: bad.part(0, 2, 1)):
        try:
            broken()
        except ValueError:
            continue
        raise AssertionError("cut bytes must not decode")
