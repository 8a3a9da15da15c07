"""Engine faults: records an output cannot take (poison records), inputs that die, signals
during start-up, SIGKILLs of a forwarding edge.

In-process: the scheduler's isolation of the records a flush raises on, with a scripted
output (which records raise, which parts answer RETRY) over memory chunks, chunks decoded
from RAM and chunks read back from the spool. Real child processes: a python filter making records
too deep to render among many (tail -> file), an input that dies on its first runs
(engine_child.py), SIGTERM the moment the process can catch it and during a spool replay,
and tools/kill_relay.py's SIGKILLs of tail -> forward -> receiver.
"""
import asyncio
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import types

import pytest

from conftest import ROOT, wait_for
from edgeship.core.schema import Option
from edgeship.engine.ack import Ack
from edgeship.engine.loader import Loader
from edgeship.engine.plugin import OK, RETRY, Output

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = [sys.executable, os.path.join(HERE, "engine_child.py")]


# ---------------------------------------------------------------------- in-process isolation
class ScriptedOutput(Output):
    """Raises on records marked ``bad`` (as the file output does on a record nested too
    deep for its JSON renderer); answers RETRY once for a flush holding a record whose ``n``
    is in ``retry_once``; else delivers."""
    name = "scripted"
    description = "test output"
    options = (Option("Unused", help="no option needed"),)

    def configure(self):
        self.delivered = []
        self.calls = []          # (chunk id, [n...], acks done before this flush)
        self.retry_once = set()
        self.acks_done = []

    async def flush(self, chunk):
        events = chunk.events()
        numbers = [record["n"] for _, record in events]
        self.calls.append((chunk.id, numbers, len(self.acks_done)))
        if any(record.get("bad") for _, record in events):
            raise RecursionError("maximum recursion depth exceeded")
        hit = self.retry_once.intersection(numbers)
        if hit:
            self.retry_once -= hit
            return RETRY
        self.delivered.extend(numbers)
        return OK


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


def _source(engine, storage_type):
    """The context of an input emitting with ``storage_type`` storage."""
    source = engine.context("src.0")
    source.budget = engine.storage.add_input("src.0", storage_type)
    return source


def _queue_one_chunk(engine, out, count, bad, storage_type):
    """One chunk of ``count`` records (``bad`` ones marked), behind one Ack; returns the
    chunk. ``storage_type``: ``memory`` (the flush gets the queued objects), ``payload``
    (decoded from RAM) or ``filesystem`` (read back from the spool)."""
    source = _source(engine, "filesystem" if storage_type == "filesystem" else "memory")
    events = [(1000 + n, {"n": n, "bad": n in bad}) for n in range(count)]
    ack = Ack(lambda: out.plugin.acks_done.append(True))
    engine.ingest(source, "t", events, ack=ack)
    engine.storage.tick()
    (chunk,) = out.queue.pending()
    if storage_type == "payload":
        out.queue.uncache(chunk)
    elif storage_type == "filesystem":
        assert chunk.durable
        engine.storage.failing(out.queue, True)     # the backlog of a failing output: on
        engine.storage.failing(out.queue, False)    # disk only
        assert chunk.payload is None and chunk.events is None
    return chunk


@pytest.mark.parametrize("storage_type", ["memory", "payload", "filesystem"])
def test_records_a_flush_raises_on_are_dropped_and_the_rest_delivered_in_order(
        tmp_path, storage_type):
    engine, out = _engine(tmp_path)
    bad = {0, 37, 38, 99}

    async def scenario():
        engine.storage.start()
        chunk = _queue_one_chunk(engine, out, 100, bad, storage_type)
        assert await out._deliver(chunk) == OK
        await engine.storage.close()

    asyncio.run(scenario())
    plugin = out.plugin
    assert plugin.delivered == [n for n in range(100) if n not in bad]
    metrics = engine.storage_metrics()["outputs"]["scripted.0"]
    assert metrics["dropped_records"] == 4 and metrics["errors"] == 1
    assert metrics["proc_records"] == 96
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
        engine.storage.start()
        chunk = _queue_one_chunk(engine, out, 100, {10}, storage_type)
        assert await out._deliver(chunk) == RETRY
        # Records 0-49 are out (10 dropped), 50-99 wait for the retry; the ack waits too.
        assert plugin.delivered == [n for n in range(50) if n != 10]
        assert out.deliveries[chunk].settled == 50
        assert plugin.acks_done == ([True] if storage_type == "filesystem" else [])
        assert out.queue.pending() == [chunk] and out.retried_records == 50
        if storage_type != "memory":
            engine.storage.failing(out.queue, True)   # the retry decodes or reads it back
        assert await out._deliver(chunk) == OK
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
        engine.storage.start()
        chunk = _queue_one_chunk(engine, out, 100, {3}, "memory")
        assert await out._deliver(chunk) == RETRY
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
    engine.ingest(_source(engine, "memory"), "t", events, ack=Ack(lambda: fired.append(True)))
    engine.storage.tick()

    async def scenario():
        engine.storage.start()
        for chunk in out.queue.pending():
            assert await out._deliver(chunk) == OK

    asyncio.run(scenario())
    assert out.plugin.delivered == [0, 2] and fired == [True]
    assert engine.storage_metrics()["inputs"]["src.0"]["dropped_records"] == 1
    assert "1 of 3 records from src.0 (tag t) dropped: they cannot be stored" in \
        engine.log_text.getvalue()


# ---------------------------------------------------------------------- poison records, real processes
DEEPEN_SCRIPT = """
import json

def deepen(events):
    # Every 97th line becomes a record nested 300 levels deep: more than the JSON renderer
    # of the file output takes (orjson stops at 255), so its flush raises on it.
    out = []
    for time, record in events:
        record = json.loads(record["log"])
        if record["n"] % 97 == 0:
            deep = level = {}
            for _ in range(300):
                level["d"] = {}
                level = level["d"]
            record["deep"] = deep
        out.append((time, record))
    return out
"""


def _out_file_numbers(path):
    """The ``n`` of each line the file output wrote (``tag: [time, {record}]``)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        text = f.read()
    # Only whole lines: the output may be in the middle of writing the last one.
    lines = text.split("\n")[:-1]
    return [json.loads(line.split(": ", 1)[1])[1]["n"] for line in lines]


def test_poison_records_from_a_filter_are_dropped_and_later_chunks_still_flow(tmp_path, runs):
    """tail -> python filter (some records too deep to render) -> file output with the
    default Retry_Limit, memory storage: every good record is delivered once, the bad ones
    are counted, later chunks are not stuck, and the batches' acks are released (tail's DB
    offset moves on: a restart sends nothing again)."""
    log_path = str(tmp_path / "app.log")
    _write(log_path, _lines(2000))
    _write(tmp_path / "deepen.py", DEEPEN_SCRIPT)
    conf = _write(tmp_path / "fluent-bit.conf", """[SERVICE]
    Flush           0.2
    Grace           5
    scheduler.base  0
    scheduler.cap   1
[INPUT]
    Name           tail
    Path           %s
    Read_From_Head on
    DB             %s
    Tag            app
[FILTER]
    Name   python
    Match  *
    Script deepen.py
    Call   deepen
[OUTPUT]
    Name  file
    Match *
    Path  %s
    File  out.log
""" % (log_path, tmp_path / "tail.db", tmp_path))
    out = str(tmp_path / "out.log")
    good = [n for n in range(2000) if n % 97]
    run = Run(tmp_path, conf, child=False)
    runs.append(run)
    wait_for(lambda: len(_out_file_numbers(out)) >= len(good), timeout=60, interval=0.1)
    with open(log_path, "a") as f:  # later chunks: not stuck behind the poison
        f.write(_lines(500, start=2001))
    good += [n for n in range(2001, 2501) if n % 97]
    wait_for(lambda: len(_out_file_numbers(out)) >= len(good), timeout=60, interval=0.1)
    assert run.stop() == 0
    assert _out_file_numbers(out) == good
    log = run.stderr()
    dropped = re.findall(r"(\d+) of \d+ records of a chunk \(tag app\) dropped: the flush "
                         r"raises on each \((\w+)", log)
    assert sum(int(count) for count, _ in dropped) == 26  # 0, 97, ... 2425
    assert {kind for _, kind in dropped} <= {"JSONEncodeError", "TypeError", "RecursionError"}
    assert "retry" not in log.lower() and "Traceback" not in log
    # The acks were released: the restarted tail resumes after the last line.
    run = Run(tmp_path, conf, child=False, name="stderr2.txt")
    runs.append(run)
    with open(log_path, "a") as f:
        f.write(_lines(5, start=3000))
    wait_for(lambda: _out_file_numbers(out)[-1:] == [3004], timeout=60, interval=0.1)
    assert run.stop() == 0
    assert _out_file_numbers(out) == good + list(range(3000, 3005))


# ---------------------------------------------------------------------- inputs that die
def _write(path, text):
    with open(str(path), "w") as f:
        f.write(text)
    return str(path)


class Run:
    """engine_child.py (edgeship with the ``crashing`` input) or edgeship itself as a child
    process, its stderr in a file."""

    def __init__(self, tmp_path, conf, child=True, name="stderr.txt"):
        self.stderr_path = str(tmp_path / name)
        command = CHILD if child else [sys.executable, "-m", "edgeship"]
        self.proc = subprocess.Popen(command + ["-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=open(self.stderr_path, "w"),
                                     start_new_session=True, cwd=str(tmp_path))

    def stderr(self):
        with open(self.stderr_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def runs():
    started = []
    yield started
    for run in started:
        run.kill()


def _numbers(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line)["n"] for line in f.read().splitlines()]


def _crashing_conf(tmp_path, **input_keys):
    keys = {"Name": "crashing", "Tag": "c", "Crashes": 3, "Records": 10}
    keys.update(input_keys)
    return _write(tmp_path / "fluent-bit.conf", """[SERVICE]
    Flush           0.2
    Grace           2
    scheduler.base  0
    scheduler.cap   1
[INPUT]
%s
[OUTPUT]
    Name   file
    Match  *
    Path   %s
    File   out.jsonl
    Format plain
""" % ("\n".join("    %s %s" % item for item in keys.items()), tmp_path))


@pytest.mark.e2e
def test_an_input_that_dies_is_restarted_with_backoff_and_its_records_delivered(tmp_path, runs):
    run = Run(tmp_path, _crashing_conf(tmp_path))
    runs.append(run)
    out = str(tmp_path / "out.jsonl")
    # Three deaths, three restarts: the records of every run arrive (the ones emitted
    # before each death too).
    wait_for(lambda: len(_numbers(out)) >= 40, timeout=30)
    assert run.stop() == 0
    assert sorted(_numbers(out)) == list(range(40))
    log = run.stderr()
    for number in (1, 2, 3):
        assert "input died on an unexpected error: RuntimeError('crash number %d') at " \
               "engine_child.py" % number in log
        assert "restart %d in 1.0 seconds" % number in log
    assert "restart 4" not in log and "Traceback" not in log


def test_an_exit_on_eof_input_that_dies_counts_as_finished(tmp_path, runs):
    run = Run(tmp_path, _crashing_conf(tmp_path, Crashes=1, Exit_On_Eof="on"))
    runs.append(run)
    # The process ends by itself (it never waits for an end that cannot come), after
    # delivering what the input emitted; exit code 1: the input did not reach its end.
    assert run.proc.wait(timeout=30) == 1
    assert sorted(_numbers(str(tmp_path / "out.jsonl"))) == list(range(10))
    log = run.stderr()
    assert "it has Exit_On_Eof, so it counts as finished" in log and "restart" not in log


def test_tail_restarted_after_an_error_goes_on_where_it_was(tmp_path):
    """run() again after an error keeps the files and offsets, and treats a file created
    meanwhile as newly discovered (read from its head), not as found at start-up (read
    from its end with Read_From_Head off)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    _write(logs / "a.log", "a1\na2\n")
    conf = _write(tmp_path / "tail.conf", """[SERVICE]
    scheduler.base 0
    scheduler.cap  0
[INPUT]
    Name             tail
    Path             %s/*.log
    Refresh_Interval 1
[OUTPUT]
    Name  null
    Match *
""" % logs)
    loader = Loader(log_stream=io.StringIO())
    engine = loader.build(loader.read(conf))
    plugin = engine.inputs[0]
    got = []
    engine.ingest = lambda source, tag, events, ack=None: got.extend(
        record["log"] for _, record in events)
    scans = []
    scan = plugin._scan

    def scan_once_then_die(startup):
        scans.append(startup)
        if len(scans) == 2:
            _write(logs / "b.log", "b1\nb2\n")  # appears while the input is down
            raise RuntimeError("tail bug")
        return scan(startup)

    plugin._scan = scan_once_then_die

    async def scenario():
        engine._stop_requested = asyncio.Event()
        task = asyncio.ensure_future(engine._run_input(plugin))
        deadline = time.monotonic() + 20
        while not scans and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        with open(str(logs / "a.log"), "a") as f:  # after the start-up scan: to be read
            f.write("a3\n")
        while got.count("b2") == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        plugin.stop()
        await asyncio.wait_for(task, 10)

    asyncio.run(scenario())
    assert got == ["a3", "b1", "b2"]
    assert scans[:3] == [True, False, False]
    assert engine.input_restarts[plugin] == 1


def test_mqtt_client_restarted_after_an_error_reconnects_and_gets_its_messages_again(tmp_path):
    """The input dies on a batch before acknowledging it; restarted, it connects again (its
    session kept) and the broker sends the unacknowledged messages again: nothing lost."""
    from mosquitto import Broker
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    broker = Broker(tmp_path / "broker").start()
    try:
        conf = _write(tmp_path / "mqtt.conf", """[SERVICE]
    scheduler.base 0
    scheduler.cap  0
[INPUT]
    Name      mqtt_client
    Port      %d
    Topic     in/#
    Client_Id edgeship-restart-test
[OUTPUT]
    Name  null
    Match *
""" % broker.port)
        loader = Loader(log_stream=io.StringIO())
        engine = loader.build(loader.read(conf))
        plugin = engine.inputs[0]
        got = []

        def ingest(source, tag, events, ack=None):
            got.extend(record["n"] for _, record in events)
            if ack is not None:
                ack.seal()  # delivered at once: PUBACK

        engine.ingest = ingest
        drain = plugin._drain
        failures = []

        def drain_but_die_once():
            if not failures:
                failures.append(True)
                plugin.inbox = []  # taken, never acknowledged
                raise RuntimeError("input bug")
            drain()

        plugin._drain = drain_but_die_once
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher")
        client.connect("127.0.0.1", broker.port)
        client.loop_start()

        async def scenario():
            engine._stop_requested = asyncio.Event()
            engine._room = asyncio.Event()
            task = asyncio.ensure_future(engine._run_input(plugin))
            deadline = time.monotonic() + 20
            while not plugin.link.connected and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # the subscription follows the CONNACK
            for n in range(3):
                client.publish("in/x", json.dumps({"n": n}), qos=1).wait_for_publish(5)
            while sorted(set(got)) != [0, 1, 2] and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            plugin.stop()
            await asyncio.wait_for(task, 10)

        asyncio.run(scenario())
        client.loop_stop()
        assert failures and sorted(set(got)) == [0, 1, 2]
        assert engine.input_restarts[plugin] == 1
    finally:
        broker.kill()


def test_dummy_restarted_after_an_error_keeps_its_samples_count(tmp_path):
    conf = _write(tmp_path / "dummy.conf", """[SERVICE]
    scheduler.base 0
    scheduler.cap  0
[INPUT]
    Name    dummy
    Samples 4
    Rate    50
[OUTPUT]
    Name  null
    Match *
""")
    loader = Loader(log_stream=io.StringIO())
    engine = loader.build(loader.read(conf))
    plugin = engine.inputs[0]
    batches = []

    def ingest(source, tag, events, ack=None):
        batches.append(events)
        if len(batches) == 2:
            raise RuntimeError("pipeline bug")

    engine.ingest = ingest

    async def scenario():
        engine._stop_requested = asyncio.Event()
        engine._room = asyncio.Event()
        await asyncio.wait_for(engine._run_input(plugin), 10)  # ends after its Samples

    asyncio.run(scenario())
    # Four samples in all: the one whose emit raised is emitted again, the count goes on.
    assert len(batches) == 5 and engine.input_restarts[plugin] == 1


# ---------------------------------------------------------------------- early signals
def _tail_conf(tmp_path, outputs, name="fluent-bit.conf", log_name="app.log"):
    """tail (filesystem storage, DB) -> file outputs ``outputs`` (directories)."""
    text = """[SERVICE]
    Flush           0.2
    Grace           30
    storage.path    %s
    scheduler.base  0
    scheduler.cap   1
[INPUT]
    Name           tail
    Path           %s
    Read_From_Head on
    DB             %s
    Tag            app
    storage.type   filesystem
""" % (tmp_path / "spool", tmp_path / log_name, tmp_path / "tail.db")
    for directory in outputs:
        text += """[OUTPUT]
    Name        file
    Match       *
    Path        %s
    File        out.log
    Format      plain
    Retry_Limit no_limits
""" % directory
    return _write(tmp_path / name, text)


def _lines(count, start=0):
    return "".join('{"n": %d, "pad": "%s"}\n' % (n, "x" * 60) for n in range(start, start + count))


def _delivered(directory):
    """The numbers of the tailed lines a file output wrote (each under ``log``)."""
    path = os.path.join(str(directory), "out.log")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(json.loads(line)["log"])["n"] for line in f.read().splitlines()]


HOLD_SCRIPT = """
import os, time
# Loaded while the config is read: say so, then hold the loading until the test says go.
open(os.path.join(os.path.dirname(__file__), "loading"), "w").close()
deadline = time.monotonic() + 30
while not os.path.exists(os.path.join(os.path.dirname(__file__), "go")):
    if time.monotonic() > deadline:
        break
    time.sleep(0.01)

def same(events):
    return events
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_the_config_loads_stops_the_run_gracefully(tmp_path, runs, sig):
    out = tmp_path / "out"
    out.mkdir()
    _write(tmp_path / "app.log", _lines(500))
    _write(tmp_path / "hold.py", HOLD_SCRIPT)
    conf = _tail_conf(tmp_path, [out])
    with open(conf, "a") as f:
        f.write("[FILTER]\n    Name   python\n    Match  *\n    Script hold.py\n"
                "    Call   same\n")
    run = Run(tmp_path, conf, child=False)
    runs.append(run)
    wait_for(lambda: os.path.exists(str(tmp_path / "loading")), timeout=30, interval=0.001)
    run.proc.send_signal(sig)
    _write(tmp_path / "go", "")
    assert run.proc.wait(timeout=60) == 0, run.stderr()
    log = run.stderr()
    assert "caught signal (%s)" % signal.Signals(sig).name in log and "Traceback" not in log
    assert _delivered(out) == []  # stopped before any input ran
    # Nothing was lost: the next run delivers every line, once.
    os.remove(str(tmp_path / "loading"))
    run = Run(tmp_path, conf, child=False, name="stderr2.txt")
    runs.append(run)
    wait_for(lambda: len(_delivered(out)) >= 500, timeout=30)
    assert run.stop() == 0
    assert _delivered(out) == list(range(500))


def test_a_signal_during_a_spool_replay_stops_gracefully_and_loses_nothing(tmp_path, runs):
    import sqlite3

    total = 40000
    outs = [tmp_path / "out0", tmp_path / "out1"]
    log_path = _write(tmp_path / "app.log", _lines(total))
    conf = _tail_conf(tmp_path, outs)
    # 1. Both outputs down (no directory, no Mkdir): everything goes to their spools.
    run = Run(tmp_path, conf, child=False, name="stderr1.txt")
    runs.append(run)

    def committed():
        try:
            with sqlite3.connect(str(tmp_path / "tail.db")) as db:
                row = db.execute("SELECT offset FROM in_tail_files").fetchone()
        except sqlite3.Error:
            return False
        return row is not None and row[0] == os.path.getsize(log_path)

    wait_for(committed, timeout=60, interval=0.2)  # spooled durably: tail committed it all
    assert run.stop() == 0
    for directory in outs:
        directory.mkdir()
    # 2. SIGTERM at the first byte on stderr: the line saying out0's replay is done, while
    # out1's is under way.
    proc = subprocess.Popen([sys.executable, "-m", "edgeship", "-c", conf],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True, cwd=str(tmp_path))
    try:
        first = proc.stderr.read(1)
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = (first + rest).decode()
    assert "queued from the spool" in log.splitlines()[0]
    assert "caught signal (SIGTERM)" in log and "Traceback" not in log
    # 3. The next run delivers the rest: every line reaches both outputs, once.
    run = Run(tmp_path, conf, child=False, name="stderr3.txt")
    runs.append(run)
    wait_for(lambda: all(len(_delivered(d)) >= total for d in outs), timeout=120, interval=0.2)
    assert run.stop() == 0
    for directory in outs:
        assert _delivered(directory) == list(range(total))


# ---------------------------------------------------------------------- SIGKILL of a relay
def test_sigkills_of_a_forwarding_edge_lose_nothing_and_resend_at_most_one_chunk_each(tmp_path):
    """tools/kill_relay.py, scaled down: tail -> forward (acks) -> receiver, the edge
    SIGKILLed 4 times while lines keep coming. What a kill sends again is the chunk in flight
    (acknowledged by the receiver, not yet recorded by the edge): one Flush interval of
    lines, or one tail read block of them while the edge catches up after a restart."""
    sys.path.insert(0, ROOT)
    from edgeship.plugins.inputs.tail.reading import BLOCK
    from edgeship.codecs.entries import pack_entries
    from edgeship.storage.queue import CHUNK_BYTES
    from tools.kill_relay import PAD, measure

    figures = measure(kills=4, rate=2000, flush=0.5, seed=5, folder=str(tmp_path))
    assert figures["lines"] >= 4 * 2000 and figures["lost"] == 0
    line = "line-%09d %s" % (0, PAD)
    packed = len(pack_entries([(time.time_ns(), {"log": line})])[0])
    one_chunk = CHUNK_BYTES // packed + BLOCK // (len(line) + 1) + 1
    assert len(figures["duplicates_per_kill"]) == 4
    assert max(figures["duplicates_per_kill"]) <= one_chunk, figures
