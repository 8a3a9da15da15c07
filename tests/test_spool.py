"""The spool and the output queues on real files, in-process: write, confirm, replay, damage,
limits, memory budgets, the dump/check tool."""
import asyncio
import io
import os
import random
import re
import signal

import pytest

from conftest import run_edgeship_into_a_closed_pipe
from edgeship.engine.ack import Ack
from edgeship.engine.log import Log
from edgeship.storage import tool
from edgeship.storage.manager import Storage


def _storage(path, log=None, backlog=1 << 20, sync="normal", default_budget=1 << 20):
    service = {"storage.path": path, "storage.sync": sync,
               "storage.backlog.mem_limit": backlog,
               "storage.delete_irrecoverable_chunks": False}
    return Storage(service, Log("debug", log or io.StringIO()), default_budget, lambda: None)


def _input(storage, kind="filesystem", limit=0, name="in.0"):
    """The budget of an input, as the engine makes one."""
    return storage.add_input(name, kind, limit)


class Output:
    """What the engine's scheduler is to storage: a queue, and the chunks it was told about."""

    def __init__(self, storage, name="out.0", limit=0, reads_records=True):
        self.storage = storage
        self.dropped = []
        self.queue = storage.add_output(name, limit, lambda: None,
                                        lambda chunk, why, log: self.dropped.append(chunk),
                                        reads_records)

    def deliver_all(self):
        """Flush every chunk: returns [(tag, events)] and confirms them."""
        got = []
        for chunk in self.queue.pending():
            got.append((chunk.tag, asyncio.run(self.storage.load(chunk)).events()))
            self.storage.confirm(chunk)
        return got


def _batch(start, count, width=20):
    return [(1700000000 * 10 ** 9 + i, {"log": "line %d %s" % (i, "x" * width), "n": i})
            for i in range(start, start + count)]


def _events(delivered):
    return [e for _, events in delivered for e in events]


def _started(path, **storage_options):
    """A started Storage on ``path`` with one Output; returns (storage, out)."""
    storage = _storage(path, **storage_options)
    out = Output(storage)
    storage.start()
    return storage, out


def _queue_chunks(storage, out, count):
    """``count`` closed chunks of 10 records (n = 0 .. 10*count-1) from one filesystem input."""
    src = _input(storage)
    for i in range(count):
        storage.put(src, "t", _batch(i * 10, 10), None, [out.queue])
        storage.tick()


def test_chunks_survive_a_restart_with_tags_records_and_order(tmp_path):
    storage, out = _started(str(tmp_path))
    src = _input(storage)
    storage.put(src, "a", _batch(0, 10), None, [out.queue])
    storage.put(src, "b", _batch(10, 5), None, [out.queue])
    storage.tick()
    storage.put(src, "a", _batch(15, 3), None, [out.queue])
    storage.tick()
    # A new process: the same records come back, per chunk, in the order they were queued.
    _, out2 = _started(str(tmp_path))
    delivered = out2.deliver_all()
    assert [tag for tag, _ in delivered] == ["a", "b", "a"]
    assert _events(delivered) == _events([("", _batch(0, 10)), ("", _batch(10, 5)),
                                          ("", _batch(15, 3))])
    # Everything confirmed: nothing left on disk, nothing replayed the next time.
    assert os.listdir(str(tmp_path / "out.0")) == []
    _, third = _started(str(tmp_path))
    assert third.queue.pending() == []


def test_confirmed_chunks_are_not_replayed(tmp_path):
    storage, out = _started(str(tmp_path))
    _queue_chunks(storage, out, 6)
    chunks = out.queue.pending()
    for chunk in chunks[1::2]:          # out of order, as retries make it
        storage.confirm(chunk)
    _, out2 = _started(str(tmp_path))
    assert [e[1]["n"] for e in _events(out2.deliver_all())] == \
        [n for start in (0, 20, 40) for n in range(start, start + 10)]


def test_acks_fire_when_spooled_for_filesystem_and_when_confirmed_for_memory(tmp_path):
    storage, out = _started(str(tmp_path))
    fired = []
    for name, kind in (("fs", "filesystem"), ("mem", "memory")):
        ack = Ack(lambda name=name: fired.append(name))
        storage.put(_input(storage, kind, name=name), "t", _batch(0, 3), ack, [out.queue])
        ack.seal()
    assert fired == []                    # open chunks: nothing durable yet
    storage.tick()
    assert fired == ["fs"]                # written to the spool
    out.deliver_all()
    assert fired == ["fs", "mem"]         # the memory chunk only once delivered


def test_memory_budget_and_memrb_ring():
    storage = _storage(None, default_budget=2000)
    out = Output(storage)
    mem = _input(storage, "memory", name="mem.0")
    storage.put(mem, "t", _batch(0, 10), None, [out.queue])
    assert not storage.over(mem)
    storage.put(mem, "t", _batch(10, 40), None, [out.queue])
    assert storage.over(mem)
    storage.tick()
    out.deliver_all()
    assert not storage.over(mem) and mem.bytes == 0
    # memrb: never over, the oldest chunks go instead, and are counted.
    ring = _input(storage, "memrb", limit=3000, name="rb.0")
    for i in range(10):
        storage.put(ring, "t", _batch(i * 10, 10), None, [out.queue])
        storage.tick()
        assert not storage.over(ring)
    budget = ring
    assert budget.bytes <= 3000
    kept = [e[1]["n"] for e in _events(out.deliver_all())]
    assert kept == list(range(100 - len(kept), 100))
    assert budget.memrb_dropped_chunks == len(out.dropped) == 10 - len(kept) // 10
    assert sum(c.count for c in out.dropped) + len(kept) == 100


def test_ram_ring_keeps_the_newest_spooled_chunks_and_reads_the_rest_back(tmp_path):
    storage, out = _started(str(tmp_path), backlog=5000)
    _queue_chunks(storage, out, 20)
    assert storage.ram.bytes <= 5000
    metrics = out.queue.metrics()
    assert metrics["fs_chunks"] == 20 and metrics["fs_chunks_down"] >= 5
    assert metrics["mem_bytes"] <= 5000
    assert [e[1]["n"] for e in _events(out.deliver_all())] == list(range(200))


def test_total_limit_size_drops_the_oldest_and_counts_them_exactly(tmp_path):
    limit = 200 * 1024
    log = io.StringIO()
    storage = _storage(str(tmp_path), log=log)
    out = Output(storage, limit=limit)
    storage.start()
    src = _input(storage)
    spool_dir = str(tmp_path / "out.0")
    biggest = 0
    for i in range(200):
        storage.put(src, "t", _batch(i * 20, 20, width=200), None, [out.queue])
        storage.tick()
        on_disk = sum(os.path.getsize(os.path.join(spool_dir, f)) for f in os.listdir(spool_dir))
        assert on_disk == out.queue.spool.disk_bytes
        biggest = max(biggest, on_disk)
    chunk_bytes = max(c.frame_size for c in out.queue.pending())
    assert biggest <= limit + chunk_bytes
    delivered = [e[1]["n"] for e in _events(out.deliver_all())]
    dropped = sum(c.count for c in out.dropped)
    assert dropped > 0 and dropped + len(delivered) == 4000
    assert delivered == list(range(4000 - len(delivered), 4000))   # the newest survive
    assert "storage.total_limit_size" in log.getvalue()


def test_replay_skips_damage_and_delivers_every_intact_chunk(tmp_path):
    storage, out = _started(str(tmp_path))
    _queue_chunks(storage, out, 30)
    segment = out.queue.pending()[0].segment
    with open(segment.path, "rb") as f:
        data = bytearray(f.read())
    rnd = random.Random(3)
    for _ in range(3):
        data[rnd.randrange(len(data))] ^= 1 << rnd.randrange(8)
    cut = rnd.randrange(len(data) // 2, len(data))
    with open(segment.path, "wb") as f:
        f.write(bytes(data[:cut]))
    log = io.StringIO()
    _, out2 = _started(str(tmp_path), log=log)
    delivered = _events(out2.deliver_all())
    numbers = [e[1]["n"] for e in delivered]
    assert numbers == sorted(numbers) and 0 < len(numbers) < 300
    assert all(numbers[i] == numbers[i - 1] + 1 or numbers[i] % 10 == 0
               for i in range(1, len(numbers)))      # whole chunks only
    assert "damaged bytes at position" in log.getvalue()
    # The damaged segment is set aside, and check says so.
    report = io.StringIO()
    assert tool.main(["check", str(tmp_path)], report) == 1
    assert "DAMAGED" in report.getvalue()


def test_dump_and_check(tmp_path):
    storage, out = _started(str(tmp_path))
    src = _input(storage)
    storage.put(src, "app", _batch(0, 2), None, [out.queue])
    storage.tick()
    storage.put(src, "app", _batch(2, 2), None, [out.queue])
    storage.tick()
    storage.confirm(out.queue.pending()[0])
    text = io.StringIO()
    assert tool.main(["dump", str(tmp_path), "--records"], text) == 0
    dump = text.getvalue()
    assert "offset: 0 position: 0 " in dump and "state: confirmed" in dump
    assert "offset: 1 " in dump and "state: waiting" in dump
    assert "tag: app records: 2" in dump and "crc valid: true output: out.0" in dump
    assert '"log": "line 3 ' in dump
    assert "2 chunks (1 waiting, 4 records), 0 damaged ranges" in dump
    assert tool.main(["check", str(tmp_path)], io.StringIO()) == 0
    segment = out.queue.pending()[0].segment
    with open(segment.path, "r+b") as f:
        f.truncate(os.path.getsize(segment.path) - 3)
    text = io.StringIO()
    assert tool.main(["check", segment.path], text) == 1
    assert "torn tail" in text.getvalue()
    assert tool.main(["dump"], io.StringIO()) == 2
    assert tool.main(["check", str(tmp_path / "missing")], io.StringIO()) == 2


@pytest.mark.e2e
def test_dump_into_a_closed_pipe_ends_quietly(tmp_path):
    # `edgeship spool dump PATH --records | head` printed a BrokenPipeError traceback.
    storage, out = _started(str(tmp_path))
    storage.put(_input(storage), "app", _batch(0, 50), None, [out.queue])
    storage.tick()
    for command in (["dump", str(tmp_path), "--records"], ["check", str(tmp_path)]):
        proc = run_edgeship_into_a_closed_pipe(["spool"] + command)
        assert proc.returncode == -signal.SIGPIPE and proc.stderr == "", proc.stderr


def test_full_sync_releases_acks_after_fsync(tmp_path):
    async def scenario():
        storage = _storage(str(tmp_path), sync="full")
        out = Output(storage)
        storage.start()
        fired = []
        ack = Ack(lambda: fired.append(True))
        storage.put(_input(storage), "t", _batch(0, 3), ack, [out.queue])
        ack.seal()
        storage.tick()
        assert fired == []            # written, not yet synced
        for _ in range(100):
            await asyncio.sleep(0.01)
            if fired:
                break
        await storage.close()
        return fired
    assert asyncio.run(scenario()) == [True]


def test_records_msgpack_cannot_carry_are_kept_by_the_packer_rule(tmp_path):
    storage, out = _started(str(tmp_path))
    storage.put(_input(storage), "t", [(1, {"big": 1 << 70, "set": {1}, "ok": [1, "\udcff"],
                                            "lone": "\ud800"})], None, [out.queue])
    storage.tick()
    events = _events(out.deliver_all())
    assert events == [(1, {"big": str(1 << 70), "set": [1], "ok": [1, "\udcff"],
                           "lone": "\ufffd"})]


def test_a_failing_output_keeps_its_backlog_on_disk_only(tmp_path):
    storage, out = _started(str(tmp_path))
    src = _input(storage)
    storage.put(src, "t", _batch(0, 10), None, [out.queue])
    storage.tick()
    assert out.queue.metrics()["fs_chunks_up"] == 1
    storage.failing(out.queue, True)
    storage.put(src, "t", _batch(10, 10), None, [out.queue])
    storage.tick()
    metrics = out.queue.metrics()
    assert metrics["fs_chunks"] == 2 and metrics["fs_chunks_up"] == 0
    assert storage.ram.bytes == 0
    storage.failing(out.queue, False)
    assert [e[1]["n"] for e in _events(out.deliver_all())] == list(range(20))


def test_engine_reports_storage_metrics_per_output_and_input(tmp_path):
    from edgeship.engine.loader import Loader
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[SERVICE]\n    storage.path %s\n[INPUT]\n    Name dummy\n"
                    "    storage.type filesystem\n[OUTPUT]\n    Name null\n    Match *\n"
                    "    storage.total_limit_size 1M\n" % (tmp_path / "spool"))
    loader = Loader(log_stream=io.StringIO())
    engine = loader.build(loader.read(str(conf)))
    metrics = engine.storage_metrics()
    out = metrics["outputs"]["null.0"]
    assert out["total_chunks"] == 0 and out["fs_bytes"] == 0 and out["dropped_records"] == 0
    assert set(out) >= {"mem_chunks", "mem_bytes", "fs_chunks", "fs_chunks_up",
                        "fs_chunks_down", "retries", "retried_records"}
    assert metrics["inputs"]["dummy.0"]["storage_type"] == "filesystem"


def test_a_keeping_up_output_gets_the_queued_objects_within_the_cache_budget(tmp_path):
    from edgeship.storage import queue as queue_module
    storage = _storage(str(tmp_path))
    fast, failing = Output(storage, "fast.0"), Output(storage, "failing.0")
    raw = Output(storage, "raw.0", reads_records=False)     # sends the bytes as they are
    storage.start()
    src = _input(storage, "memory", limit=1 << 30)
    batches = []
    queued = 0
    while queued < 2 * queue_module.CACHE_BYTES:  # twice what may be cached
        batches.append(_batch(len(batches) * 100, 100, width=200))
        storage.put(src, "t", batches[-1], None, [fast.queue, failing.queue, raw.queue])
        queued = sum(c.size for c in fast.queue.pending()) + sum(
            c.size for c in fast.queue.open.values())
        if fast.queue.open and next(iter(fast.queue.open.values())).size > 64 * 1024:
            storage.tick()
    storage.tick()
    chunks = fast.queue.pending()
    cached = [c for c in chunks if c.events is not None]
    assert cached and len(cached) < len(chunks)  # bounded by CACHE_BYTES
    assert fast.queue.cached_bytes == sum(c.size for c in cached) <= \
        queue_module.CACHE_BYTES + 64 * 1024 + 30000
    assert raw.queue.cached_bytes == 0 and all(c.events is None for c in raw.queue.pending())
    # A cached chunk's flush gets the very objects that were queued; an uncached one unpacks
    # equal records.
    assert asyncio.run(storage.load(cached[0])).events()[0] is batches[0][0]
    assert _events(fast.deliver_all()) == [e for b in batches for e in b]
    assert fast.queue.cached_bytes == 0
    # An output that starts failing lets go of its objects at once.
    storage.failing(failing.queue, True)
    assert failing.queue.cached_bytes == 0
    assert all(c.events is None for c in failing.queue.pending())
    assert _events(failing.deliver_all()) == [e for b in batches for e in b]


# ---------------------------------------------------------------------------- cross-checks
# One segment of 8 chunks (offsets 0-7, records n = 10*offset ...), chunk 1 confirmed; each
# case damages its files as a power loss or a disk can, then a replay and `spool check`
# must agree on what is lost: chunks the index lists, not confirmed, not intact.
def _zero(path, start, end):
    with open(path, "r+b") as f:
        f.seek(start)
        f.write(b"\0" * (end - start))


def _cut(path, size):
    with open(path, "r+b") as f:
        f.truncate(size)


def _junk(path, seed, size=4096):
    with open(path, "ab") as f:
        f.write(random.Random(seed).randbytes(size))


SPOOL_CASES = {
    # name: (damage(seg, idx, ack, positions), lost, problem words in the log)
    "segment emptied": (lambda s, i, a, p: _cut(s, 0), {0, 2, 3, 4, 5, 6, 7}, None),
    "segment cut inside chunk 4": (lambda s, i, a, p: _cut(s, p[4] + 10), {4, 5, 6, 7}, None),
    "segment cut between chunks": (lambda s, i, a, p: _cut(s, p[5]), {5, 6, 7}, None),
    "zeroed page over chunks 2-3": (lambda s, i, a, p: _zero(s, p[2] + 5, p[3] + 20), {2, 3},
                                    None),
    "segment file gone": (lambda s, i, a, p: os.unlink(s), {0, 2, 3, 4, 5, 6, 7},
                          "segment file missing"),
    "index missing, segment cut": (lambda s, i, a, p: (os.unlink(i), _cut(s, p[6])), set(),
                                   "index file missing"),
    "index torn": (lambda s, i, a, p: _cut(i, os.path.getsize(i) - 3), set(), "torn entry"),
    "index shorter than the segment": (lambda s, i, a, p: _cut(i, 3 * 8), set(), None),
    "index empty": (lambda s, i, a, p: _cut(i, 0), set(), None),
    "index empty, segment emptied": (lambda s, i, a, p: (_cut(i, 0), _cut(s, 0)), set(), None),
    "index longer than the segment": (lambda s, i, a, p: _cut(s, p[7]), {7}, None),
    "confirm file torn": (lambda s, i, a, p: _cut(a, 5), set(), None),
    "junk after the index": (lambda s, i, a, p: _junk(i, 1), set(), "no chunk"),
    "junk after the index, segment emptied": (lambda s, i, a, p: (_junk(i, 2), _cut(s, 0)),
                                              {0, 2, 3, 4, 5, 6, 7}, "no chunk"),
    "zeroed index page": (lambda s, i, a, p: _zero(i, 0, 24), set(), "no chunk"),
    "junk in the confirm file": (lambda s, i, a, p: _junk(a, 3), set(), None),
}


def _lost_in(text):
    """{offset} from `spool check` LOST lines."""
    return {int(n) for n in re.findall(r"^LOST .* offset: (\d+) ", text, re.M)}


def _lost_logged(text):
    """{offset} from the replay's 'LOST n chunks ... (offsets a-b, c)' lines."""
    found = set()
    for ranges in re.findall(r"LOST \d+ chunks its index lists \(offsets ([\d, -]+)\)", text):
        for part in ranges.split(", "):
            low, _, high = part.partition("-")
            found.update(range(int(low), int(high or low) + 1))
    return found


def test_replay_and_check_agree_on_every_lost_chunk(tmp_path):
    for index, (label, (damage, lost, problem)) in enumerate(SPOOL_CASES.items()):
        root = str(tmp_path / ("case%d" % index))
        storage, out = _started(root)
        _queue_chunks(storage, out, 8)
        chunks = out.queue.pending()
        storage.confirm(chunks[1])
        segment = chunks[0].segment
        positions = [c.position for c in chunks]
        storage.queues[0].spool.close()
        damage(segment.path, segment.index_path, segment.ack_path, positions)
        intact = {c.seq for c in chunks if c.seq != 1} - lost
        if label in ("index missing, segment cut", "index empty, segment emptied"):
            intact = {0, 2, 3, 4, 5} if "cut" in label else set()
        if label == "confirm file torn":
            intact.add(1)  # its confirm is gone: delivered again, never lost

        before = io.StringIO()
        code = tool.main(["check", root], before)
        assert _lost_in(before.getvalue()) == lost, (label, before.getvalue())
        log = io.StringIO()
        _, again = _started(root, log=log)
        delivered = {n // 10 for n in (e[1]["n"] for e in _events(again.deliver_all()))}
        text = log.getvalue()
        assert delivered == intact, (label, delivered, text)
        assert again.queue.metrics()["lost_chunks"] == len(lost), (label, text)
        assert _lost_logged(text) == lost, (label, text)
        if problem:
            assert problem in text and problem in before.getvalue(), (label, text)
        if "junk after the index" in label or "zeroed index" in label:
            assert again.queue.metrics()["bad_index_entries"] > 0, label
        damaged = bool(lost or problem) or "zeroed page" in label or "cut inside" in label
        assert code == (1 if damaged else 0), (label, before.getvalue())
        # Evidence is kept: a segment that lost chunks is set aside with its index, and
        # check still tells the same losses from the set-aside files.
        names = os.listdir(os.path.join(root, "out.0"))
        if lost:
            assert "00000000000000000000.idx.damaged" in names, (label, names)
        after = io.StringIO()
        assert tool.main(["check", root], after) == (1 if damaged else 0), (label, after.getvalue())
        assert _lost_in(after.getvalue()) == lost, (label, after.getvalue())
        assert "Traceback" not in text


def test_a_segment_set_aside_keeps_its_name_from_new_segments(tmp_path):
    storage, out = _started(str(tmp_path))
    _queue_chunks(storage, out, 3)
    segment = out.queue.pending()[0].segment
    _cut(segment.path, 0)
    storage2, out2 = _started(str(tmp_path))
    assert out2.queue.metrics()["lost_chunks"] == 3
    _queue_chunks(storage2, out2, 1)
    assert out2.queue.pending()[0].seq == 3  # past the lost offsets: no name is reused
    names = sorted(os.listdir(str(tmp_path / "out.0")))
    assert names[:2] == ["00000000000000000000.idx.damaged", "00000000000000000000.seg.damaged"]
    assert "00000000000000000003.seg" in names


def test_a_crash_in_the_middle_of_a_delete_is_no_loss(tmp_path):
    storage, out = _started(str(tmp_path))
    _queue_chunks(storage, out, 3)
    chunks = out.queue.pending()
    for chunk in chunks[:2]:
        storage.confirm(chunk)
    segment = chunks[0].segment
    # The last confirm is written before the delete starts; the crash leaves .idx and .ack.
    segment.confirm(chunks[2].seq)
    os.unlink(segment.path)
    log = io.StringIO()
    _, again = _started(str(tmp_path), log=log)
    assert again.queue.pending() == [] and again.queue.metrics()["lost_chunks"] == 0
    assert "LOST" not in log.getvalue() and "warn" not in log.getvalue()
    assert os.listdir(str(tmp_path / "out.0")) == []


def test_sidecar_files_that_are_no_files_do_not_block_the_replay(tmp_path):
    """A directory or FIFO where an index or confirm file should be (junk in the spool):
    the segment's chunks are still replayed, and the problem is logged and reported."""
    storage, out = _started(str(tmp_path))
    _queue_chunks(storage, out, 3)
    segment = out.queue.pending()[0].segment
    os.unlink(segment.index_path)
    os.mkdir(segment.index_path)
    os.mkfifo(segment.ack_path)
    log = io.StringIO()
    _, again = _started(str(tmp_path), log=log)
    assert [e[1]["n"] for e in _events(again.deliver_all())] == list(range(30))
    text = log.getvalue()
    assert "index file unreadable" in text and "confirm file unreadable" in text
    report = io.StringIO()
    assert tool.main(["check", str(tmp_path)], report) == 1
    assert "set aside" in report.getvalue()


# ---------------------------------------------------------------------------- format 1
def test_a_spool_written_by_format_1_is_delivered_after_the_upgrade(tmp_path):
    """Segments edgeship wrote before chunks became Fluent Bit's entries (chunkframe
    version 1: one msgpack array of [time_ns, record], strings packed with surrogatepass)
    are replayed and delivered with the same records, beside chunks written since."""
    import msgpack
    from edgeship.core import chunkframe as cf
    from edgeship.storage.spool import Spool

    old = [_batch(0, 10), _batch(10, 5)]
    old[1][0][1]["raw"] = "b\udcff"           # raw bytes an input kept
    spool = Spool(str(tmp_path / "out.0"), Log("debug", io.StringIO()))
    spool.replay()
    positions = []
    for offset, events in enumerate(old):
        payload = msgpack.packb([[t, r] for t, r in events], use_bin_type=True,
                                unicode_errors="surrogatepass")
        segment, position, _ = spool.append(offset, "app", payload, len(events),
                                            events[0][0], events[-1][0], 1)
        positions.append(position)
    spool.close()
    with open(segment.path, "r+b") as f:          # the version byte format 1 wrote
        for position in positions:
            f.seek(position + 3)
            f.write(b"\x01")
    assert [f.version for f in segment.scan()] == [1, 1]

    storage, out = _started(str(tmp_path))
    storage.put(_input(storage), "app", _batch(15, 3), None, [out.queue])   # format 2
    storage.tick()
    assert [c.version for c in out.queue.pending()] == [1, 1, cf.VERSION]
    text = io.StringIO()
    assert tool.main(["dump", str(tmp_path), "--records"], text) == 0
    assert '"raw": "b\udcff"' in text.getvalue() and '"log": "line 16 ' in text.getvalue()
    assert _events(out.deliver_all()) == old[0] + old[1] + _batch(15, 3)
