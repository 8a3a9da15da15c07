"""The engine in process, no child process: a real engine and real storage built by the
loader from a config, an output plugin (``gate``) whose answers the test scripts, and a fake
clock that only moves when the test moves it. Retries at their backoff times, ordering,
Retry_Limit, Workers, memory budgets, shutdown and the spool across a restart."""
import asyncio
import io
import sys
import types

import pytest

from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.loader import Loader
from edgeship.engine.plugin import ERROR, OK, RETRY, Output

T0 = 1711360800 * 10 ** 9
FLUSH = 1000


class GateOutput(Output):
    """Answers each flush with the next of ``answers`` (OK when none is left), or, while
    ``hold`` is on, waits until the test answers it through ``held``."""
    name = "gate"
    description = "test output"
    options = (Option("Unused", help="no option needed"),)

    def configure(self):
        self.calls = []         # (chunk id, [n...]) of every flush, in the order they began
        self.delivered = []     # n of every record answered OK, in answer order
        self.answers = []
        self.hold = False
        self.held = []          # ([n...], future of its answer) of the flushes waiting
        self.active = self.most_active = 0

    async def flush(self, chunk):
        numbers = [record["n"] for _, record in chunk.events()]
        self.calls.append((chunk.id, numbers))
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            if self.hold:
                answer = asyncio.get_running_loop().create_future()
                self.held.append((numbers, answer))
                result = await answer
            else:
                result = self.answers.pop(0) if self.answers else OK
        finally:
            self.active -= 1
        if result == OK:
            self.delivered.extend(numbers)
        return result

    def answer(self, first_number, result):
        """Answer the held flush whose first record is ``first_number``."""
        for i, (numbers, future) in enumerate(self.held):
            if numbers[0] == first_number:
                del self.held[i]
                future.set_result(result)
                return
        raise AssertionError("no held flush starts at %d: %r" % (first_number, self.held))


class FakeClock:
    """The schedulers' clock (``now()``, ``await wait(event, timeout)``), moved by ``advance``:
    a wait ends when its event is set or the clock passed its deadline."""

    def __init__(self):
        self.time = 1000.0
        self.waiters = []       # [deadline, event]
        self.waits = 0          # waits begun: one per pass of a scheduler's loop

    def now(self):
        return self.time

    async def wait(self, event, timeout):
        self.waits += 1
        waiter = [self.time + timeout, event]
        self.waiters.append(waiter)
        try:
            await event.wait()
        finally:
            self.waiters.remove(waiter)

    def advance(self, seconds):
        self.time += seconds
        for deadline, event in self.waiters:
            if deadline <= self.time:
                event.set()

    def waiting(self):
        """The retry time the scheduler waits for, once it waits for one (its other waits
        are for the Flush interval, which ``build`` makes long)."""
        due = [deadline for deadline, _ in self.waiters
               if self.time < deadline < self.time + FLUSH / 2]
        return min(due) if due else None


def register_gate():
    module = sys.modules.setdefault("edgeship.plugins.outputs.gate",
                                    types.ModuleType("edgeship.plugins.outputs.gate"))
    module.PLUGIN = GateOutput


def build(tmp_path, output="", service="", input_keys="", clock=None):
    """(engine, the gate's scheduler, the dummy input's context, log) for a config with one
    dummy input (never run: the test emits through its context) and the gate output. Flush
    is long: the scheduler then waits exactly until a retry is due."""
    register_gate()
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[SERVICE]\n    Flush %d\n    Grace 2\n%s"
                    "[INPUT]\n    Name dummy\n    Tag t\n%s"
                    "[OUTPUT]\n    Name gate\n    Match *\n%s"
                    % (FLUSH, service, input_keys, output))
    log = io.StringIO()
    loader = Loader(log_stream=log)
    engine = loader.build(loader.read(str(conf)), clock=clock)
    return engine, engine.outputs[0], engine.inputs[0].context, log


def emit_chunks(engine, source, chunks, per_chunk=10, first=0):
    """``chunks`` closed chunks of ``per_chunk`` records, n counting up from ``first``."""
    for i in range(chunks):
        start = first + i * per_chunk
        source.emit("t", [(T0 + n, {"n": n}) for n in range(start, start + per_chunk)])
        engine.storage.tick()


def numbers(chunk_index, per_chunk=10):
    return list(range(chunk_index * per_chunk, (chunk_index + 1) * per_chunk))


async def until(condition, rounds=5000):
    """Let the loop run until ``condition()`` holds."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


async def running(scheduler, scenario):
    """Run ``scenario()`` beside the scheduler's loop, then stop the loop."""
    task = asyncio.ensure_future(scheduler.run())
    try:
        await scenario()
    finally:
        task.cancel()
        await asyncio.gather(task, *scheduler.flights(), return_exceptions=True)


# ---------------------------------------------------------------------------- retries
def test_a_retry_comes_at_its_backoff_time_and_the_backlog_follows_in_order(tmp_path):
    clock = FakeClock()
    engine, out, source, log = build(tmp_path, "    Retry_Limit no_limits\n", clock=clock)
    gate = out.plugin
    gate.answers = [RETRY, RETRY]
    emit_chunks(engine, source, 3)

    async def scenario():
        # First attempt fails: Fluent Bit's first retry comes 6 to 11 s later (base 5).
        await until(lambda: len(gate.calls) == 1 and clock.waiting())
        wait = clock.waiting() - clock.now()
        assert 6 <= wait <= 11 and len(gate.calls) == 1
        clock.advance(wait)
        # Second attempt fails too: the next wait is 6 to 21 s (base * 2**2, plus one).
        await until(lambda: len(gate.calls) == 2 and clock.waiting())
        wait = clock.waiting() - clock.now()
        assert 6 <= wait <= 21
        clock.advance(wait)
        await until(lambda: len(gate.delivered) == 30)

    asyncio.run(running(out, scenario))
    # While the output failed only the oldest chunk was tried; then the rest, in order.
    assert [n for _, n in gate.calls] == [numbers(0)] * 3 + [numbers(1), numbers(2)]
    assert gate.delivered == list(range(30))
    assert len({chunk_id for chunk_id, _ in gate.calls[:3]}) == 1    # one id across retries
    metrics = engine.storage_metrics()["outputs"]["gate.0"]
    assert (metrics["retries"], metrics["retried_records"], metrics["proc_records"]) == \
        (2, 20, 30)
    assert metrics["total_chunks"] == 0
    text = log.getvalue()
    assert text.count("failed to flush chunk of 10 records (tag t), retry in") == 2
    assert "flush chunk succeeded at retry 2" in text


@pytest.mark.parametrize("limit,attempts", [("1", 2), ("no_retries", 1)])
def test_retry_limit_drops_the_chunk_and_the_next_one_goes(tmp_path, limit, attempts):
    clock = FakeClock()
    engine, out, source, log = build(tmp_path, "    Retry_Limit %s\n" % limit, clock=clock)
    gate = out.plugin
    gate.answers = [RETRY] * attempts
    emit_chunks(engine, source, 2)

    async def scenario():
        for done in range(1, attempts):
            await until(lambda: len(gate.calls) == done and clock.waiting())
            clock.advance(clock.waiting() - clock.now())
        await until(lambda: gate.delivered == numbers(1))

    asyncio.run(running(out, scenario))
    assert [n for _, n in gate.calls] == [numbers(0)] * attempts + [numbers(1)]
    metrics = engine.storage_metrics()["outputs"]["gate.0"]
    assert metrics["retries_failed"] == 1 and metrics["dropped_records"] == 10
    assert metrics["retries"] == attempts - 1 and metrics["total_chunks"] == 0
    assert "chunk of 10 records (tag t) dropped: cannot be retried (retry limit reached)" in \
        log.getvalue()


def test_an_error_drops_the_chunk_at_once(tmp_path):
    engine, out, source, log = build(tmp_path, clock=FakeClock())
    gate = out.plugin
    gate.answers = [ERROR]
    emit_chunks(engine, source, 2)

    async def scenario():
        await until(lambda: gate.delivered == numbers(1))

    asyncio.run(running(out, scenario))
    metrics = engine.storage_metrics()["outputs"]["gate.0"]
    assert metrics["errors"] == 1 and metrics["dropped_records"] == 10 and metrics["retries"] == 0
    assert "dropped: the output reported an error" in log.getvalue()


# ---------------------------------------------------------------------------- workers
def test_workers_keeps_that_many_chunks_in_flight_started_in_order(tmp_path):
    engine, out, source, _ = build(tmp_path, "    Workers 3\n", clock=FakeClock())
    gate = out.plugin
    gate.hold = True
    emit_chunks(engine, source, 6)

    async def scenario():
        await until(lambda: len(gate.held) == 3)
        assert [n for _, n in gate.calls] == [numbers(0), numbers(1), numbers(2)]
        gate.answer(10, OK)                       # the second one finishes first
        await until(lambda: len(gate.calls) == 4)
        assert gate.calls[3][1] == numbers(3)
        for first in (0, 20, 30, 40, 50):
            await until(lambda: any(n[0] == first for n, _ in gate.held))
            gate.answer(first, OK)
        await until(lambda: len(gate.delivered) == 60)

    asyncio.run(running(out, scenario))
    assert gate.most_active == 3
    assert [n for _, n in gate.calls] == [numbers(i) for i in range(6)]
    assert sorted(gate.delivered) == list(range(60))


def test_with_workers_a_retried_chunk_is_not_overtaken_by_chunks_not_started(tmp_path):
    clock = FakeClock()
    engine, out, source, _ = build(tmp_path, "    Workers 2\n    Retry_Limit no_limits\n",
                                   clock=clock)
    gate = out.plugin
    gate.hold = True
    emit_chunks(engine, source, 5)

    async def scenario():
        await until(lambda: len(gate.held) == 2)
        passes = clock.waits
        gate.answer(0, RETRY)                     # the output fails: nothing new starts
        await until(lambda: clock.waits > passes)
        assert len(gate.calls) == 2 and len(gate.held) == 1
        gate.answer(10, OK)                       # in flight already: it may finish
        await until(lambda: gate.delivered == numbers(1) and clock.waiting() is not None)
        assert len(gate.calls) == 2
        clock.advance(clock.waiting() - clock.now())
        await until(lambda: len(gate.held) == 1)  # the retry, alone
        assert gate.calls[2][1] == numbers(0)
        gate.answer(0, OK)
        for first in (20, 30, 40):                # then the rest, two at a time
            await until(lambda: any(n[0] == first for n, _ in gate.held))
            assert len(gate.held) <= 2
            gate.answer(first, OK)
        await until(lambda: len(gate.delivered) == 50)

    asyncio.run(running(out, scenario))
    assert [n for _, n in gate.calls] == [numbers(0), numbers(1), numbers(0), numbers(2),
                                          numbers(3), numbers(4)]
    assert gate.delivered == numbers(1) + numbers(0) + numbers(2) + numbers(3) + numbers(4)


@pytest.mark.parametrize("plugin,keys,workers", [
    ("forward", "", 2),             # Fluent Bit's out_forward default
    ("file", "", 1),
    ("null", "", 1),
    ("forward", "    Workers 5\n", 5),
    ("null", "    Workers 0\n", 1),  # Fluent Bit's 0: flushed one at a time
])
def test_default_workers_are_fluent_bits(tmp_path, plugin, keys, workers):
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[OUTPUT]\n    Name %s\n    Match *\n%s" % (plugin, keys))
    loader = Loader(log_stream=io.StringIO())
    assert loader.build(loader.read(str(conf))).outputs[0].workers == workers


def test_negative_workers_is_a_config_error(tmp_path):
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[OUTPUT]\n    Name null\n    Match *\n    Workers -1\n")
    loader = Loader(log_stream=io.StringIO())
    with pytest.raises(ConfigError) as info:
        loader.build(loader.read(str(conf)))
    assert info.value.line == 4 and info.value.key == "workers"


# ---------------------------------------------------------------------------- budgets
def test_an_input_over_its_mem_buf_limit_waits_until_its_records_are_delivered(tmp_path):
    engine, out, source, log = build(tmp_path, input_keys="    Mem_Buf_Limit 2k\n",
                                     clock=FakeClock())
    gate = out.plugin
    gate.hold = True
    source.emit("t", [(T0 + n, {"n": n, "pad": "x" * 100}) for n in range(40)])
    assert not source.has_room()

    async def scenario():
        engine._room = asyncio.Event()
        waiting = asyncio.ensure_future(source.room())
        await until(lambda: gate.held)            # paused; its open chunk went out
        assert not waiting.done() and "dummy.0 paused (mem buf overlimit)" in log.getvalue()
        gate.answer(0, OK)
        await asyncio.wait_for(waiting, 5)
        assert source.has_room()

    asyncio.run(running(out, scenario))
    assert "dummy.0 resume (mem buf overlimit)" in log.getvalue()


def test_a_filesystem_input_has_room_once_its_chunks_are_spooled(tmp_path):
    engine, out, source, _ = build(
        tmp_path, service="    storage.path %s\n" % (tmp_path / "spool"),
        input_keys="    storage.type filesystem\n    Mem_Buf_Limit 2k\n", clock=FakeClock())
    gate = out.plugin
    gate.hold = True

    async def scenario():
        engine.storage.start()
        engine._room = asyncio.Event()
        source.emit("t", [(T0 + n, {"n": n, "pad": "x" * 100}) for n in range(40)])
        assert not source.has_room()
        await asyncio.wait_for(source.room(), 5)  # spooled, not delivered
        assert gate.delivered == []
        await until(lambda: gate.held)
        gate.answer(0, OK)
        await until(lambda: gate.delivered)
        await engine.storage.close()

    asyncio.run(running(out, scenario))


def test_memrb_drops_the_oldest_chunks_and_the_output_counts_them(tmp_path):
    engine, out, source, log = build(tmp_path, input_keys="    storage.type memrb\n"
                                                          "    Mem_Buf_Limit 3k\n",
                                     clock=FakeClock())
    gate = out.plugin
    gate.hold = True
    emit_chunks(engine, source, 2, per_chunk=10)

    async def scenario():
        await until(lambda: gate.held)            # chunk 0 in flight: it stays
        emit_chunks(engine, source, 20, per_chunk=10, first=20)
        gate.answer(0, OK)
        gate.hold = False
        await until(lambda: out.queue.empty() and not out.in_flight)

    asyncio.run(running(out, scenario))
    metrics = engine.storage_metrics()
    dropped = metrics["outputs"]["gate.0"]["dropped_records"]
    assert dropped > 0 and dropped + len(gate.delivered) == 220
    assert gate.delivered[:10] == numbers(0) and gate.delivered[-10:] == list(range(210, 220))
    assert metrics["inputs"]["dummy.0"]["memrb_dropped_chunks"] * 10 == dropped


# ---------------------------------------------------------------------------- shutdown
def test_shutdown_delivers_what_is_queued_within_grace(tmp_path):
    engine, out, source, _ = build(tmp_path)
    engine.inputs.clear()                         # no input: the run stops at once
    emit_chunks(engine, source, 3)
    source.emit("t", [(T0 + 30, {"n": 30})])      # an open chunk: closed on the way out
    assert asyncio.run(engine.run()) == 0
    assert out.plugin.delivered == list(range(31)) and out.queue.empty()


def test_shutdown_keeps_what_a_dead_output_has_not_taken_in_the_spool(tmp_path):
    spool = "    storage.path %s\n" % (tmp_path / "spool")
    keys = "    storage.type filesystem\n"
    engine, out, source, log = build(tmp_path, "    Retry_Limit no_limits\n", spool, keys)
    engine.inputs.clear()
    out.plugin.answers = [RETRY] * 1000
    emit_chunks(engine, source, 3)
    assert asyncio.run(engine.run()) == 0         # returns after Grace, not retrying forever
    assert out.plugin.delivered == []
    assert "stopped after 2.0s grace with 3 chunks not delivered (3 kept in the spool" in \
        log.getvalue()
    # The next start delivers them, in order.
    engine, out, _, _ = build(tmp_path, "    Retry_Limit no_limits\n", spool, keys)
    engine.inputs.clear()
    assert asyncio.run(engine.run()) == 0
    assert out.plugin.delivered == list(range(30))
