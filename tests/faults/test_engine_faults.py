"""Engine faults: records an output cannot take (poison records), inputs that die, signals
during start-up, SIGKILLs of a forwarding edge.

In-process: the engine's isolation of the records a flush raises on, with a scripted output
(which records raise, which parts answer RETRY) over memory chunks, chunks unpacked from RAM
and chunks read back from the spool. Real child processes: a python filter making records
too deep to render among many (tail -> file), an input that dies on its first runs
(engine_child.py), SIGTERM the moment the process can catch it and during a spool replay,
and tools/kill_relay.py's SIGKILLs of tail -> forward -> receiver.
"""
import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
import types

import pytest

from conftest import ROOT, wait_for
from edgeship.core.schema import Option
from edgeship.engine.loader import Loader
from edgeship.engine.plugin import OK, RETRY, Output
from edgeship.engine.queue import Ack

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = [sys.executable, os.path.join(HERE, "engine_child.py")]


# ---------------------------------------------------------------------- in-process isolation
class ScriptedOutput(Output):
    """Raises on records marked ``bad`` (as the file output does on a record nested too
    deep for its JSON renderer); answers RETRY once for a flush holding a record whose ``n``
    is in ``retry_once``; else delivers."""
    name = "scripted"
    description = "test output"
    takes_chunk_id = True
    options = (Option("Unused", help="no option needed"),)

    def configure(self):
        self.delivered = []
        self.calls = []          # (chunk_id, [n...], acks done before this flush)
        self.retry_once = set()
        self.acks_done = []

    async def flush(self, tag, events, chunk_id):
        numbers = [record["n"] for _, record in events]
        self.calls.append((chunk_id, numbers, len(self.acks_done)))
        if any(record.get("bad") for _, record in events):
            raise RecursionError("maximum recursion depth exceeded")
        hit = self.retry_once.intersection(numbers)
        if hit:
            self.retry_once -= hit
            return RETRY
        self.delivered.extend(numbers)
        return OK


class _Source:
    def __init__(self, storage_type):
        self.conf = {"storage.type": storage_type, "mem_buf_limit": 0}
        self.display = "src.0"


def _engine(tmp_path, retry_limit="no_limits"):
    sys.modules.setdefault("edgeship.plugins.outputs.scripted",
                           types.ModuleType("edgeship.plugins.outputs.scripted"))
    sys.modules["edgeship.plugins.outputs.scripted"].PLUGIN = ScriptedOutput
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[SERVICE]\n    storage.path %s\n    scheduler.base 0\n    scheduler.cap 0\n"
                    "[OUTPUT]\n    Name scripted\n    Match *\n    Retry_Limit %s\n"
                    % (tmp_path / "spool", retry_limit))
    log = io.StringIO()
    loader = Loader(log_stream=log)
    engine = loader.build(loader.read(str(conf)))
    engine.log_text = log
    return engine, engine.outputs[0]


def _queue_one_chunk(engine, out, count, bad, storage_type):
    """One chunk of ``count`` records (``bad`` ones marked), behind one Ack; returns the
    chunk. ``storage_type``: ``memory`` (the flush gets the queued objects), ``payload``
    (unpacked from RAM) or ``filesystem`` (read back from the spool)."""
    source = _Source("filesystem" if storage_type == "filesystem" else "memory")
    events = [(1000 + n, {"n": n, "bad": n in bad}) for n in range(count)]
    ack = Ack(lambda: out.plugin.acks_done.append(True))
    engine.ingest(source, "t", events, ack=ack)
    engine.storage.tick()
    (chunk,) = out.queue.pending()
    if storage_type == "payload":
        out.queue.uncache(chunk)
    elif storage_type == "filesystem":
        assert chunk.durable
        engine.storage.to_disk_only(chunk)
        assert chunk.payload is None and chunk.events is None
    return chunk


async def _start(engine):
    engine._room = asyncio.Event()
    engine._stop_requested = asyncio.Event()
    engine.storage.start()


@pytest.mark.parametrize("storage_type", ["memory", "payload", "filesystem"])
def test_records_a_flush_raises_on_are_dropped_and_the_rest_delivered_in_order(
        tmp_path, storage_type):
    engine, out = _engine(tmp_path)
    bad = {0, 37, 38, 99}

    async def scenario():
        await _start(engine)
        chunk = _queue_one_chunk(engine, out, 100, bad, storage_type)
        assert await engine._deliver(out, chunk) == OK
        await engine.storage.close()

    asyncio.run(scenario())
    plugin = out.plugin
    assert plugin.delivered == [n for n in range(100) if n not in bad]
    assert out.dropped_records == 4 and out.errors == 1 and out.proc_records == 96
    assert out.queue.empty()
    # The batch's ack fired once: after the last flush of the chunk for memory storage,
    # and for filesystem storage when the spool held it (it stays there until confirmed).
    assert plugin.acks_done == [True]
    if storage_type != "filesystem":
        assert all(done == 0 for _, _, done in plugin.calls)
    log = engine.log_text.getvalue()
    assert log.count("records of a chunk (tag t) dropped") == 1
    assert "4 of 100 records" in log and "RecursionError" in log
    # Halving finds 4 records among 100 in far fewer flushes than one per record.
    assert len(plugin.calls) < 40


@pytest.mark.parametrize("storage_type", ["memory", "payload", "filesystem"])
def test_a_retry_during_isolation_resumes_after_what_was_delivered(tmp_path, storage_type):
    engine, out = _engine(tmp_path)
    plugin = out.plugin
    plugin.retry_once = {60}

    async def scenario():
        await _start(engine)
        chunk = _queue_one_chunk(engine, out, 100, {10}, storage_type)
        assert await engine._deliver(out, chunk) == RETRY
        # Records 0-49 are out (10 dropped), 50-99 wait for the retry; the ack waits too.
        assert plugin.delivered == [n for n in range(50) if n != 10]
        assert chunk.settled == 50 and chunk.left == 50
        assert plugin.acks_done == ([True] if storage_type == "filesystem" else [])
        assert out.queue.pending() == [chunk] and out.retried_records == 50
        if storage_type != "memory":
            out.queue.set_failing(True)   # the retry unpacks or reads the chunk back
        assert await engine._deliver(out, chunk) == OK
        await engine.storage.close()

    asyncio.run(scenario())
    assert plugin.delivered == [n for n in range(100) if n != 10]  # each once, in order
    assert plugin.acks_done == [True]
    assert out.proc_records == 99 and out.dropped_records == 1
    # Ids: the chunk's own for the whole, one per range of records for its parts; the
    # retry of records 50-99 has the id their part had when it asked for the retry (an
    # output may still be completing that attempt).
    seq = plugin.calls[0][0]
    assert isinstance(seq, int)
    ranges = {}
    for chunk_id, numbers, _ in plugin.calls:
        assert ranges.setdefault(chunk_id, numbers) == numbers
    assert len(set(map(tuple, ranges.values()))) == len(ranges)
    assert plugin.calls[-2][0] == plugin.calls[-1][0] == (seq, 50, 50)
    assert plugin.calls[-1][1] == list(range(50, 100))


def test_out_of_retries_after_a_partial_delivery_drops_only_the_rest(tmp_path):
    engine, out = _engine(tmp_path, retry_limit="no_retries")
    plugin = out.plugin
    plugin.retry_once = {70}

    async def scenario():
        await _start(engine)
        chunk = _queue_one_chunk(engine, out, 100, {3}, "memory")
        assert await engine._deliver(out, chunk) == RETRY
        await engine.storage.close()

    asyncio.run(scenario())
    assert plugin.delivered == [n for n in range(50) if n != 3]
    assert out.dropped_records == 1 + 50 and out.queue.empty() and plugin.acks_done == [True]
    assert "chunk of 50 records (tag t) dropped: cannot be retried" in engine.log_text.getvalue()


def test_a_record_too_deep_to_store_is_dropped_and_its_batch_goes_on(tmp_path):
    """Nested deeper than Python recurses, a record cannot be packed even as text: it is
    dropped with a count, the rest of its batch is queued, and the input never sees an
    exception (it would die on it)."""
    engine, out = _engine(tmp_path)
    deep = {}
    level = deep
    for _ in range(sys.getrecursionlimit() + 100):
        level["a"] = {}
        level = level["a"]
    events = [(1, {"n": 0}), (2, deep), (3, {"n": 2})]
    fired = []
    source = _Source("memory")
    engine.ingest(source, "t", events, ack=Ack(lambda: fired.append(True)))
    engine.storage.tick()

    async def scenario():
        await _start(engine)
        for chunk in out.queue.pending():
            assert await engine._deliver(out, chunk) == OK

    asyncio.run(scenario())
    assert out.plugin.delivered == [0, 2] and fired == [True]
    assert engine.storage_metrics()["inputs"]["src.0"]["dropped_records"] == 1
    assert "1 of 3 records from src.0 (tag t) dropped: they cannot be stored" in \
        engine.log_text.getvalue()
