from edgeship.core import chunkframe as cf


def _frame(offset, tag="app.log", payload=b"\x91\x92\x01\x80", count=1):
    return cf.encode(offset, tag, payload, count, 100 + offset, 200 + offset, 5)


def _segment(n):
    data = b""
    spots = []
    for i in range(n):
        spots.append(len(data))
        data += _frame(i, payload=bytes([i % 256]) * (10 + i))
    return data, spots


def _decode(data, step=None):
    dec = cf.Decoder()
    items = []
    if step is None:
        items += dec.feed(data)
    else:
        for i in range(0, len(data), step):
            items += dec.feed(data[i:i + step])
    return items + dec.finish()


def _frames(items):
    return [x for x in items if isinstance(x, cf.Frame)]


def _damage(items):
    return [x for x in items if isinstance(x, cf.Damage)]


def test_round_trip_keeps_every_field():
    data = cf.encode(7, "kube.var.log", b"payload", 3, 11, 22, 33)
    assert len(data) == cf.frame_size("kube.var.log", b"payload")
    frame = cf.decode_at(data)
    assert frame.offset == 7 and frame.tag == "kube.var.log" and frame.payload == b"payload"
    assert (frame.count, frame.first_ns, frame.last_ns, frame.created_ns) == (3, 11, 22, 33)
    assert frame.position == 0 and frame.size == len(data)


def test_header_plus_payload_is_the_frame():
    head = cf.header(1, "t", b"abc", 1, 2, 3, 4)
    assert head + b"abc" == cf.encode(1, "t", b"abc", 1, 2, 3, 4)


def test_non_ascii_tag():
    frame = cf.decode_at(cf.encode(0, "caf\u00e9.log", b"", 0, 0, 0, 0))
    assert frame.tag == "caf\u00e9.log"


def test_decoding_in_pieces_of_any_size_gives_the_same_frames():
    data, spots = _segment(20)
    for step in (None, 1, 7, 64, 1000):
        items = _decode(data, step)
        assert _damage(items) == []
        frames = _frames(items)
        assert [f.offset for f in frames] == list(range(20))
        assert [f.position for f in frames] == spots


def test_truncation_anywhere_is_a_torn_tail_after_the_intact_frames():
    data, spots = _segment(5)
    for cut in range(spots[3] + 1, spots[4]):
        items = _decode(data[:cut])
        assert [f.offset for f in _frames(items)] == [0, 1, 2]
        damage = _damage(items)
        assert len(damage) == 1
        assert damage[0].position == spots[3] and damage[0].length == cut - spots[3]
        assert damage[0].reason == cf.TORN_TAIL


def test_a_flipped_bit_costs_only_its_own_frame():
    data, spots = _segment(6)
    for position in range(spots[2], spots[3]):
        for bit in (0, 5):
            broken = bytearray(data)
            broken[position] ^= 1 << bit
            items = _decode(bytes(broken), 13)
            assert [f.offset for f in _frames(items)] == [0, 1, 3, 4, 5], position
            damage = _damage(items)
            assert len(damage) == 1
            assert damage[0].position == spots[2]
            assert damage[0].length == spots[3] - spots[2]


def test_reasons_name_what_was_wrong():
    data, spots = _segment(3)
    crc = bytearray(data)
    crc[spots[1] + 20] ^= 0xFF
    assert _damage(_decode(bytes(crc)))[0].reason == cf.BAD_CRC
    magic = bytearray(data)
    magic[spots[1]] ^= 0xFF
    assert _damage(_decode(bytes(magic)))[0].reason == cf.BAD_MAGIC
    # A length pointing past the end of the segment, with frames after it: not the tail.
    long = bytearray(data)
    long[spots[1] + 7] = 0x01
    items = _decode(bytes(long))
    assert [f.offset for f in _frames(items)] == [0, 2]
    assert _damage(items)[0].reason == cf.BAD_LENGTH


def test_garbage_only_is_one_damage():
    items = _decode(b"\x00" * 100)
    assert _frames(items) == []
    damage = _damage(items)
    assert len(damage) == 1 and damage[0].position == 0 and damage[0].length == 100


def test_garbage_between_frames_is_skipped():
    a = _frame(0)
    b = _frame(1)
    items = _decode(a + b"junk" + cf.MAGIC[:2] + b + cf.MAGIC)
    assert [f.offset for f in _frames(items)] == [0, 1]
    damage = _damage(items)
    assert [(d.position, d.length) for d in damage] == [(len(a), 6), (len(a) + 6 + len(b), 4)]


def test_empty_input_has_nothing():
    assert _decode(b"") == []


def test_index_entries_round_trip_and_ignore_a_torn_entry():
    data = cf.index_entry(0, 0) + cf.index_entry(1, 500) + cf.index_entry(2, 1000)[:5]
    assert cf.index_entries(data) == [(0, 0), (1, 500)]


def test_confirm_entries_skip_damage():
    data = cf.confirm_entry(3) + cf.confirm_entry(9) + cf.confirm_entry(4)[:6]
    assert cf.confirmed_offsets(data) == {3, 9}
    broken = bytearray(data)
    broken[8] ^= 0x04   # 9 becomes 13: its checksum no longer matches
    assert cf.confirmed_offsets(bytes(broken)) == {3}


def test_format_versions_one_to_three_are_read_another_is_damage():
    frame = bytearray(cf.encode(3, "t", b"payload", 1, 1, 2, 3))
    assert frame[:4] == cf.MAGIC and cf.decode_at(bytes(frame)).version == cf.VERSION == 2
    frame[3] = 1            # the magic's last byte is the version; before 3 the CRC leaves it out
    assert cf.decode_at(bytes(frame)).version == 1
    frame[3] = 3            # a metrics frame's CRC covers it: a logs frame cannot turn into one
    assert cf.decode_at(bytes(frame)) == cf.BAD_CRC
    metrics = bytearray(cf.encode(3, "t", b"payload", 1, 1, 2, 3, cf.METRICS))
    assert cf.decode_at(bytes(metrics)).version == cf.METRICS
    metrics[3] = 2
    assert cf.decode_at(bytes(metrics)) == cf.BAD_CRC
    frame[3] = 4
    assert cf.decode_at(bytes(frame)) == cf.BAD_MAGIC
    # A frame of a version this reader does not know is skipped, the next one found.
    items = _decode(bytes(frame) + _frame(4))
    assert [f.offset for f in _frames(items)] == [4] and len(_damage(items)) == 1
