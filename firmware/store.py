"""The agent's reading store: a ring of fixed-size pages, in RAM (``ring_bytes`` of it) or in a
flash file, where RAM holds only two pages (the open one and one being sent), so an outage can
fill the flash while the agent stays inside a small heap. The RAM ring can be kept in RTC memory
across deep sleep. Buffers are allocated once; no object is kept per reading: positions are
(slot, offset) pairs and page numbers and fill levels live in two arrays.

A page is a 28-byte header and records packed back to back; a record is a 2-byte length, a
flags byte (sent once: a re-send carries MQTT's DUP flag) and the encoded reading. Readings go
out oldest first and leave when acknowledged, in order (MQTT 3.1.1 4.6: PUBACKs come in the
order of the PUBLISHes); the ack cursor is the oldest one still waiting. When every page is
taken, the oldest page is dropped whole and its unacknowledged readings are counted.

Flash: a page is written when it fills up and the open page at each checkpoint, never per
reading (flash wear). Each header holds the page number, the ack cursor when it was written,
the boot id, the next reading number and a CRC-32: after a reboot, the newest valid page gives
the cursor and the counters, and a page torn by a power cut is detected, counted and skipped
(startup.restore). At worst the readings since the last checkpoint are lost with the power,
and readings acknowledged since then are sent again (at least once; (device, boot, seq) tells
the duplicates apart). A page the flash refuses (full, worn out) is counted in
``flash_errors`` and its readings in ``dropped``: they are not read back from stale bytes.
"""
import struct
from array import array
from binascii import crc32

from micropython import const

HDR = const(28)
MAGIC = const(0xE5)
SENT = const(1)
# magic, version (1), used, page no, ack page no, ack offset, 0, boot id, next seq, crc32
FORMAT = "<BBHIIHHIII"


class Ring:
    def __init__(self, size, page, file=None):
        self.page = page
        self.pages = pages = size // page
        self.file = file              # None: every page in RAM
        self.buf = bytearray(page * (2 if file else pages))
        self.mv = memoryview(self.buf)
        self.loaded = -1              # which page the read half of buf holds (flash)
        # (MicroPython copies a bytearray into an array raw: these are ``pages`` zeros)
        self.used = array("H", bytearray(2 * pages))   # record bytes in each page
        self.no = array("I", bytearray(4 * pages))     # page numbers, increasing; 0: unused
        self.no[0] = 1
        self.head = 0                 # the open page
        self.ack = [0, 0]             # oldest unacknowledged reading: slot, offset
        self.out = [0, 0]             # next reading to publish
        self.dropped = self.torn = self.kept = self.flash_errors = 0
        self.restored = False         # startup.restore found a valid page
        self.boot = self.seq = 0
        self.dirty = False
        self.rtc = None

    def view(self, slot):
        """The bytes of page ``slot`` (read from flash when it is not in RAM)."""
        page = self.page
        if self.file is None:
            return self.mv[slot * page:(slot + 1) * page]
        if slot == self.head:
            return self.mv[:page]
        if self.loaded != slot:
            self.file.seek(slot * page)
            self.file.readinto(self.mv[page:])
            self.loaded = slot
        return self.mv[page:]

    def settle(self, cursor):
        """Move ``cursor`` from the end of a finished page to the next."""
        while cursor[1] >= self.used[cursor[0]] and cursor[0] != self.head:
            cursor[0] = (cursor[0] + 1) % self.pages
            cursor[1] = 0

    def empty(self):
        self.settle(self.ack)
        return self.ack[0] == self.head and self.ack[1] >= self.used[self.head]

    # ---------------------------------------------------------------- readings
    def add(self, data):
        """Store one encoded reading (dropped and counted when larger than a page)."""
        need = 3 + len(data)
        if need > self.page - HDR:
            self.dropped += 1
            return
        if self.used[self.head] + need > self.page - HDR:   # the page is full: the next one
            nxt = (self.head + 1) % self.pages
            self.settle(self.ack)
            full = self.ack[0] == nxt   # every page taken: the oldest goes
            if not self.write(self.head):   # its readings would be lost with the buffer
                self._drop(self.head)
            if full:
                self._drop(nxt)
            self.no[nxt] = self.no[self.head] + 1
            self.used[nxt] = 0
            self.head = nxt
            if self.loaded == nxt:
                self.loaded = -1
        at = HDR + self.used[self.head]
        v = self.view(self.head)
        v[at] = len(data) >> 8
        v[at + 1] = len(data) & 0xFF
        v[at + 2] = 0
        v[at + 3:at + need] = data
        self.used[self.head] += need
        self.dirty = True

    def _drop(self, slot):
        """Forget the readings of page ``slot`` still waiting, counting them."""
        self.settle(self.ack)
        v, off = self.view(slot), self.ack[1] if self.ack[0] == slot else 0
        while off < self.used[slot]:
            self.dropped += 1
            off += 3 + ((v[HDR + off] << 8) | v[HDR + off + 1])
        self.used[slot] = 0
        for cursor in (self.ack, self.out):
            if cursor[0] == slot:
                cursor[0] = (slot + 1) % self.pages
                cursor[1] = 0

    def peek(self):
        """(slot, offset, end, memoryview of the reading, sent before) of the next reading to
        publish, or None when every stored reading is out."""
        self.settle(self.out)
        slot, off = self.out
        if off >= self.used[slot]:
            return None
        v = self.view(slot)
        end = off + 3 + ((v[HDR + off] << 8) | v[HDR + off + 1])
        return slot, off, end, v[HDR + off + 3:HDR + end], v[HDR + off + 2] & SENT

    def sent(self, slot, off, end):
        """The reading at (slot, off) is out: mark it (a re-send gets DUP), move on."""
        self.view(slot)[HDR + off + 2] |= SENT
        self.out[1] = end

    def rewind(self):
        """After a reconnect, publish again from the oldest unacknowledged reading."""
        self.out[:] = self.ack

    def acked(self, slot, off, end, page_no):
        """The broker acknowledged the reading at (slot, off) of page ``page_no``, the oldest
        in flight: 1, or 0 when its page was dropped meanwhile."""
        self.settle(self.ack)
        if self.no[slot] != page_no or self.ack[0] != slot or self.ack[1] != off:
            return 0
        self.ack[1] = end
        self.dirty = True
        return 1

    # ---------------------------------------------------------------- flash / RTC memory
    def crc(self, v, used):
        return crc32(v[HDR:HDR + used], crc32(v[:HDR - 4]))

    def write(self, slot):
        """Seal the header of page ``slot`` and write it to the flash file, if any; False
        when the flash refused it (full, worn: counted in ``flash_errors``)."""
        v = self.view(slot)
        struct.pack_into(FORMAT, v, 0, MAGIC, 1, self.used[slot], self.no[slot],
                         self.no[self.ack[0]], self.ack[1], 0, self.boot, self.seq, 0)
        struct.pack_into("<I", v, HDR - 4, self.crc(v, self.used[slot]))
        if self.file is not None:
            try:
                self.file.seek(slot * self.page)
                self.file.write(v)
                self.file.flush()
            except OSError:
                self.flash_errors += 1
                return False
        return True

    def checkpoint(self, force=False):
        """Make what is stored survive a reset: the open page (with the ack cursor and the
        counters) to flash, or the whole buffer to RTC memory. True when written."""
        if not (self.dirty or force) or (self.file is None and self.rtc is None):
            return False
        self.settle(self.ack)
        written = self.write(self.head)
        if self.rtc is not None:
            self.rtc.memory(self.buf)
        self.dirty = not written
        return written
