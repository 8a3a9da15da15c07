"""The reading store (firmware/store.py) and its read-back (startup.restore, open_ring)."""
import os

import startup
from store import Ring


def fill(ring, count, size=20, start=0):
    for n in range(start, start + count):
        ring.add(b"%03d" % n + b"x" * (size - 3))


def drain(ring, limit=10000):
    """Publish and acknowledge in order, as a well-behaved broker does; the readings' numbers."""
    out = []
    while limit:
        found = ring.peek()
        if found is None:
            return out
        slot, off, end, payload, _ = found
        ring.sent(slot, off, end)
        assert ring.acked(slot, off, end, ring.no[slot]) == 1
        out.append(int(bytes(payload[:3])))
        limit -= 1
    return out


def fresh_file(name, size=1024, page=128):
    try:
        os.remove(name)
    except OSError:
        pass
    return startup.open_ring({"ring_bytes": size, "page_bytes": page, "ring_file": name},
                             None)


def test_readings_leave_in_order_once_acknowledged():
    ring = Ring(1024, 128)
    fill(ring, 10)
    assert not ring.empty()
    assert drain(ring) == list(range(10))
    assert ring.empty() and ring.dropped == 0


def test_a_full_ring_drops_its_oldest_page_and_counts_each_reading():
    ring = Ring(512, 128)            # 4 pages of (128 - 28) // 23 = 4 readings
    fill(ring, 30)
    kept = drain(ring)
    assert ring.dropped + len(kept) == 30
    assert kept == list(range(30 - len(kept), 30)) and ring.dropped > 0


def test_an_acknowledgement_for_a_dropped_reading_counts_nothing():
    ring = Ring(256, 128)            # 2 pages
    fill(ring, 1)
    slot, off, end, _, _ = ring.peek()
    no = ring.no[slot]
    ring.sent(slot, off, end)
    fill(ring, 12, start=1)          # the first page goes, in flight or not
    assert ring.acked(slot, off, end, no) == 0
    assert ring.dropped + len(drain(ring)) == 13


def test_a_reconnect_sends_again_from_the_oldest_unacknowledged_with_dup():
    ring = Ring(1024, 128)
    fill(ring, 5)
    first = ring.peek()
    ring.sent(first[0], first[1], first[2])
    second = ring.peek()
    ring.sent(second[0], second[1], second[2])
    ring.rewind()
    again = ring.peek()
    assert again[:3] == first[:3] and again[4]      # same reading, DUP this time
    assert drain(ring) == [0, 1, 2, 3, 4]


def test_too_large_a_reading_is_dropped_and_counted():
    ring = Ring(256, 64)
    ring.add(b"x" * 40)
    assert ring.dropped == 1 and ring.empty()


def test_the_flash_ring_comes_back_after_a_reset_with_a_new_boot_id():
    ring = fresh_file("t_ring.bin")
    boot = ring.boot
    fill(ring, 9)
    assert drain(ring, 2) == [0, 1]
    ring.seq = 9
    ring.checkpoint()
    ring.file.close()
    again = startup.open_ring({"ring_bytes": 1024, "page_bytes": 128,
                               "ring_file": "t_ring.bin"}, None)
    assert again.restored and again.kept == 7 and again.torn == 0
    assert again.boot == boot + 1 and again.seq == 0
    assert drain(again) == list(range(2, 9))
    again.file.close()


def test_a_torn_page_is_counted_and_skipped():
    ring = fresh_file("t_torn.bin")
    fill(ring, 12)                   # pages 0, 1, 2 full (4 each), page 3 open
    ring.checkpoint()
    ring.file.close()
    with open("t_torn.bin", "r+b") as f:
        f.seek(128 + 60)             # inside page 1's readings
        f.write(b"\xff\xff")
    again = startup.open_ring({"ring_bytes": 1024, "page_bytes": 128,
                               "ring_file": "t_torn.bin"}, None)
    assert again.torn == 1
    assert drain(again) == [0, 1, 2, 3, 8, 9, 10, 11]
    again.file.close()


def test_the_ring_wraps_around_and_comes_back_in_order():
    ring = fresh_file("t_wrap.bin", 512, 128)
    for n in range(0, 40, 4):        # many turns round 4 pages, acknowledging as it goes
        fill(ring, 4, start=n)
        assert drain(ring) == list(range(n, n + 4))
    fill(ring, 6, start=40)
    ring.checkpoint()
    ring.file.close()
    again = startup.open_ring({"ring_bytes": 512, "page_bytes": 128,
                               "ring_file": "t_wrap.bin"}, None)
    assert drain(again) == list(range(40, 46))
    again.file.close()


def test_a_ring_file_of_another_size_starts_afresh():
    ring = fresh_file("t_size.bin")
    fill(ring, 3)
    ring.checkpoint()
    ring.file.close()
    other = startup.open_ring({"ring_bytes": 512, "page_bytes": 128, "ring_file": "t_size.bin"},
                              None)
    assert not other.restored and other.empty()
    other.file.close()


class FakeRtc:
    def __init__(self):
        self.kept = b""

    def memory(self, *data):
        if data:
            self.kept = bytes(data[0])
        return self.kept


class RtcBoard:
    def __init__(self):
        self.rtc = FakeRtc()


def test_the_ring_in_rtc_memory_survives_a_deep_sleep():
    board = RtcBoard()
    conf = {"ring_bytes": 512, "page_bytes": 128, "ring_file": "rtc"}
    ring = startup.open_ring(conf, board)
    fill(ring, 6)
    ring.checkpoint()
    again = startup.open_ring(conf, board)
    assert again.kept == 6 and drain(again) == list(range(6))


class FullFlash:
    """A ring file on a flash that is full: every write fails."""

    def __init__(self):
        self.writes = 0

    def seek(self, pos):
        pass

    def readinto(self, buf):
        return len(buf)

    def write(self, data):
        self.writes += 1
        raise OSError(28)   # ENOSPC

    def flush(self):
        pass


def test_a_page_the_flash_refuses_is_counted_dropped_not_sent_from_stale_bytes():
    ring = Ring(512, 128, FullFlash())
    fill(ring, 6)                      # page 0 fills, fails to write; 2 in page 1
    assert ring.flash_errors == 1 and ring.dropped == 4
    assert drain(ring) == [4, 5]
    assert ring.dropped + 2 == 6
