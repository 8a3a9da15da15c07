"""A torn or emptied spool, with real edgeship processes: a spool written by runs ended with
SIGKILL (tail -> a dead, then slow output), then its segment, index and confirm files cut,
emptied, zeroed, flipped, replaced by junk or deleted, and junk files put beside them, as a
power loss or a failing disk leaves them. Each variant replays in a fresh edgeship:

- every record of an undamaged frame is delivered, exactly once (none of a confirmed chunk);
- every chunk the index lists that was lost (not confirmed, frame damaged or gone) is counted
  and logged with its segment, offsets and reason, and ``edgeship spool check`` reports the
  same chunks after the replay, from the files it set aside;
- no traceback, a clean exit.
"""
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import wait_for
from edgeship.codecs.entries import unpack_entries
from edgeship.storage.segment import Segment, base_of
from test_durability import CHILD, Setup

OUTPUT_DIR = "flaky.0"


def _build_spool(tmp_path):
    """A spool of several segments from runs ended by SIGKILL: the output dead while lines
    come in, then slow and alive for a moment, so some segments are partly confirmed.
    Returns the storage.path."""
    s = Setup(tmp_path, service_extra="    Flush 0.1", output_extra="    Delay 0.4")
    try:
        open(s.dead, "w").close()
        for _ in range(4):  # each run writes its own segment
            s.start()
            wait_for(lambda: os.path.isdir(os.path.join(s.spool, OUTPUT_DIR)))
            for _ in range(12):
                s.append(60)
                time.sleep(0.1)
            wait_for(lambda: sum(len(c[3]) for c in s.spool_records()) >= s.lines, timeout=30)
            s.kill()
        os.unlink(s.dead)
        s.start()  # drains slowly: killed with a segment partly confirmed
        wait_for(lambda: _partly_confirmed(s.spool), timeout=30, interval=0.02)
        s.kill()
        assert "Traceback" not in s.stderr()
    finally:
        s.cleanup()
    return s.spool


def _partly_confirmed(spool):
    """True when a live segment holds both confirmed and unconfirmed chunks. Read while
    edgeship runs: a segment deleted under the reader just means "not yet"."""
    try:
        chunks = _chunks(spool)
    except (OSError, ValueError):
        return False
    return any(any(c.confirmed for c in cs) and not all(c.confirmed for c in cs)
               for cs in chunks.values())


class Chunk:
    def __init__(self, segment, frame, lines, confirmed):
        self.segment = segment      # the segment's base
        self.offset = frame.offset
        self.position = frame.position
        self.size = frame.size
        self.lines = lines
        self.confirmed = confirmed


def _chunks(spool):
    """Every chunk of a pristine spool, by segment base."""
    directory = os.path.join(spool, OUTPUT_DIR)
    found = {}
    for base in sorted(b for b in map(base_of, os.listdir(directory)) if b is not None):
        segment = Segment(directory, base)
        confirmed = segment.confirmed()
        found[base] = [Chunk(base, f, ["line-%07d" % int(r["log"][5:12])
                                       for _, r in unpack_entries(f.payload, f.count)],
                             f.offset in confirmed)
                       for f in segment.scan(keep_payload=True)]
    return found


class Variant:
    """A copy of the pristine spool, damaged; what it must deliver and report lost."""

    def __init__(self, root, pristine, chunks):
        self.root = root
        self.spool = os.path.join(root, "spool")
        shutil.copytree(pristine, self.spool)
        self.dir = os.path.join(self.spool, OUTPUT_DIR)
        self.chunks = chunks
        self.touched = {}         # base -> byte ranges of its .seg changed or cut [(start, end)]
        self.unconfirmed = set()  # bases whose .ack was destroyed
        self.index_broken = set() # bases whose index is no longer what was written
        self.index_empty = set()  # bases whose index knows nothing any more

    def path(self, base, ext):
        return os.path.join(self.dir, "%020d%s" % (base, ext))

    # -- damage
    def cut(self, base, size):
        path = self.path(base, ".seg")
        old = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.truncate(size)
        self.touched.setdefault(base, []).append((size, old))

    def overwrite(self, base, start, data):
        with open(self.path(base, ".seg"), "r+b") as f:
            f.seek(start)
            f.write(data)
        self.touched.setdefault(base, []).append((start, start + len(data)))

    def delete_segment(self, base):
        os.unlink(self.path(base, ".seg"))
        self.touched.setdefault(base, []).append((0, 1 << 40))

    def junk_index(self, base, rnd):
        path = self.path(base, ".idx")
        with open(path, "wb") as f:
            f.write(rnd.randbytes(max(8, os.path.getsize(path))))
        self.index_broken.add(base)

    def empty_index(self, base):
        open(self.path(base, ".idx"), "wb").close()
        self.index_empty.add(base)

    def junk_ack(self, base, rnd):
        with open(self.path(base, ".ack"), "wb") as f:
            f.write(rnd.randbytes(64))
        self.unconfirmed.add(base)

    # -- expectations
    def intact(self, chunk):
        return not any(start < chunk.position + chunk.size and chunk.position < end
                       for start, end in self.touched.get(chunk.segment, ()))

    def confirmed(self, chunk):
        return chunk.confirmed and chunk.segment not in self.unconfirmed

    def expected_lines(self):
        return sorted(line for chunks in self.chunks.values() for c in chunks
                      if self.intact(c) and not self.confirmed(c) for line in c.lines)

    def expected_lost(self):
        """{base: {offset}} of the chunks a replay must report lost (where the index that
        would tell is intact)."""
        lost = {}
        for base, chunks in self.chunks.items():
            if base in self.index_broken or base in self.index_empty:
                continue
            gone = {c.offset for c in chunks if not self.intact(c) and not self.confirmed(c)}
            if gone:
                lost[base] = gone
        return lost

    def upper_lost(self):
        """Segments whose index is junk: lost chunks there may go uncounted, never more
        than truly lost."""
        return {base: {c.offset for c in self.chunks[base]
                       if not self.intact(c) and not self.confirmed(c)}
                for base in self.index_broken}

    # -- running
    def run(self, kill_midway=False):
        """Replay in a fresh edgeship until everything expected is delivered; returns
        (delivered lines, stderr)."""
        out = os.path.join(self.root, "delivered.txt")
        conf = os.path.join(self.root, "fluent-bit.conf")
        with open(conf, "w") as f:
            f.write("[SERVICE]\n    Flush 0.2\n    Grace 2\n    storage.path %s\n"
                    "    scheduler.base 0\n    scheduler.cap 1\n"
                    "[INPUT]\n    Name tail\n    Path %s\n    storage.type filesystem\n"
                    "[OUTPUT]\n    Name flaky\n    Match *\n    Path %s\n"
                    "    Retry_Limit no_limits\n%s"
                    % (self.spool, os.path.join(self.root, "nothing.log"), out,
                       "    Delay 0.2\n" if kill_midway else ""))
        stderr_path = os.path.join(self.root, "stderr.txt")
        wanted = self.expected_lines()

        def delivered():
            if not os.path.exists(out):
                return []
            with open(out) as f:
                return [line[:12] for line in f.read().splitlines()]

        def start():
            return subprocess.Popen(CHILD + ["-c", conf], stdout=subprocess.DEVNULL,
                                    stderr=open(stderr_path, "a"), start_new_session=True,
                                    cwd=self.root)

        proc = start()
        try:
            if kill_midway:  # a SIGKILL while the replayed backlog drains, then again
                wait_for(lambda: len(delivered()) >= len(wanted) // 3, timeout=30)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                proc = start()
            wait_for(lambda: set(wanted) <= set(delivered()), timeout=30, interval=0.1)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        with open(stderr_path) as f:
            return delivered(), f.read()


def _logged_lost(stderr, directory):
    """{base: {offset}} from the replay's LOST lines."""
    found = {}
    pattern = re.escape(directory) + r"/(\d{20})\.seg: LOST (\d+) chunks its index lists " \
                                     r"\(offsets ([\d, -]+)\): \S"
    for base, count, ranges in re.findall(pattern, stderr):
        offsets = set()
        for part in ranges.split(", "):
            low, _, high = part.partition("-")
            offsets.update(range(int(low), int(high or low) + 1))
        assert len(offsets) == int(count)
        found.setdefault(int(base), set()).update(offsets)
    return found


def _checked_lost(spool):
    proc = subprocess.run([sys.executable, "-m", "edgeship", "spool", "check", spool],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    found = {}
    for base, offset in re.findall(r"^LOST \S*/(\d{20})\.seg(?:\.damaged)? offset: (\d+) ",
                                   proc.stdout, re.M):
        found.setdefault(int(base), set()).add(int(offset))
    return proc.returncode, found, proc.stdout


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    spool = _build_spool(tmp_path_factory.mktemp("pristine"))
    chunks = _chunks(spool)
    assert len(chunks) >= 4, chunks.keys()
    assert sum(len(c) for c in chunks.values()) >= 12
    assert any(c.confirmed for cs in chunks.values() for c in cs)        # partly delivered
    assert any(not c.confirmed for cs in chunks.values() for c in cs)
    return spool, chunks


def _damage_segments(variant, rnd):
    """Each segment: cut (sometimes to 0), a zeroed 4 KB page, bit flips, or left alone."""
    for base, chunks in variant.chunks.items():
        size = os.path.getsize(variant.path(base, ".seg"))
        kind = rnd.choice(["empty", "cut", "page", "flip", "none"])
        if kind == "empty":
            variant.cut(base, 0)
        elif kind == "cut":
            variant.cut(base, rnd.randrange(size))
        elif kind == "page":
            start = rnd.randrange(0, size, 4096) if size > 4096 else 0
            variant.overwrite(base, start, b"\0" * min(4096, size - start))
        elif kind == "flip":
            spot = rnd.randrange(size)
            with open(variant.path(base, ".seg"), "rb") as f:
                f.seek(spot)
                byte = f.read(1)[0]
            variant.overwrite(base, spot, bytes([byte ^ (1 << rnd.randrange(8))]))


def _junk_beside(variant, rnd):
    """Files a spool directory should not hold: they are ignored or reported, never fatal."""
    with open(os.path.join(variant.dir, "notes.txt"), "wb") as f:
        f.write(rnd.randbytes(100))
    with open(os.path.join(variant.dir, "%020d.seg.tmp" % 5), "wb") as f:
        f.write(rnd.randbytes(100))
    with open(os.path.join(variant.dir, "%020d.ack" % (10 ** 12 + 7)), "wb") as f:
        f.write(rnd.randbytes(24))  # an .ack alone: removed as an orphan
    with open(os.path.join(variant.dir, "%020d.seg" % 10 ** 12), "wb") as f:
        f.write(rnd.randbytes(5000))  # junk named as a segment: no index, all damaged
    os.mkfifo(os.path.join(variant.dir, "fifo"))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_damaged_segments_lose_only_their_damaged_chunks_and_say_so(tmp_path, pristine, seed):
    spool, chunks = pristine
    rnd = random.Random(seed)
    variant = Variant(str(tmp_path), spool, chunks)
    _damage_segments(variant, rnd)
    if seed == 2:
        _junk_beside(variant, rnd)
    delivered, stderr = variant.run(kill_midway=seed == 3)
    assert "Traceback" not in stderr, stderr
    wanted = variant.expected_lines()
    assert set(delivered) == set(wanted)
    if seed != 3:
        assert sorted(delivered) == wanted  # exactly once
    lost = variant.expected_lost()
    assert _logged_lost(stderr, variant.dir) == lost, stderr
    code, checked, report = _checked_lost(variant.spool)
    assert checked == lost, report
    assert code == (1 if lost or "damaged bytes" in stderr else 0), report
    if seed == 2:
        assert "%020d.seg: index file missing" % 10 ** 12 in stderr


def test_lost_segment_files_empty_indexes_and_junk_sidecars(tmp_path, pristine):
    """A .seg gone (its index says what it held), an index emptied with its segment (nothing
    known: nothing to count), an index of junk over a cut segment (no false count), a confirm
    file of junk (its chunks are delivered again: duplicates, never losses)."""
    spool, chunks = pristine
    rnd = random.Random(9)
    variant = Variant(str(tmp_path), spool, chunks)
    bases = sorted(chunks)
    gone, emptied, junk_index, junk_ack = bases[0], bases[1], bases[2], bases[3]
    variant.delete_segment(gone)
    variant.empty_index(emptied)
    variant.cut(emptied, 0)
    variant.junk_index(junk_index, rnd)
    size = os.path.getsize(variant.path(junk_index, ".seg"))
    variant.cut(junk_index, size // 2)
    if os.path.exists(variant.path(junk_ack, ".ack")):
        variant.junk_ack(junk_ack, rnd)
    delivered, stderr = variant.run()
    assert "Traceback" not in stderr, stderr
    assert sorted(delivered) == variant.expected_lines()
    logged = _logged_lost(stderr, variant.dir)
    expected = variant.expected_lost()
    for base in variant.upper_lost():
        assert logged.pop(base, set()) <= variant.upper_lost()[base], stderr
        expected.pop(base, None)
    assert logged == expected, stderr
    if expected.get(gone):
        assert re.search(r"%020d\.seg: LOST \d+ chunks .*: the segment file is missing" % gone,
                         stderr), stderr
    assert emptied not in logged
    code, checked, report = _checked_lost(variant.spool)
    checked.pop(junk_index, None)
    assert code == 1 and checked == expected, report
