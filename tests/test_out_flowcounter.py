"""flowcounter output: a real edgeship child counts a dummy input's records per second and
prints the windows as Fluent Bit 5.1.1 printed them for the same config (the window ends
and counts follow the clock, so the lines are compared by their shape and the bytes per
record, which are the chunk's entry sizes); the window ring, by its rules."""
import re
import time

import pytest

from conftest import Printed, wait_for
from edgeship.plugins.outputs.flowcounter import FlowCounter

pytestmark = pytest.mark.e2e

# What Fluent Bit 5.1.1 printed on stdout for this config (Flush 1, dummy Rate 5).
FLUENT_BIT_LINES = [
    '[out_flowcounter] [1795549221, {"counts":0, "bytes":0, "counts/second":0, '
    '"bytes/second":0 }]',
    '[out_flowcounter] [1795549222, {"counts":5, "bytes":135, "counts/second":5, '
    '"bytes/second":135 }]',
    '[out_flowcounter] [1795549223, {"counts":5, "bytes":135, "counts/second":5, '
    '"bytes/second":135 }]',
]
LINE = re.compile(r'\[out_flowcounter\] \[(\d+), \{"counts":(\d+), "bytes":(\d+), '
                  r'"counts/second":(\d+), "bytes/second":(\d+) \}\]')
ENTRY_SIZE = 27     # [[EventTime, {}], {"log":"hello","n":1}] as msgpack


def config(tmp_path, extra=""):
    path = tmp_path / "fluent-bit.conf"
    path.write_text("[SERVICE]\n    Flush 1\n    Log_File %s\n    Log_Level debug\n"
                    "[INPUT]\n    Name dummy\n    Tag t\n    Dummy {\"log\":\"hello\",\"n\":1}\n"
                    "    Rate 5\n    Fixed_Timestamp on\n    Start_time_sec 1700000000\n"
                    "    Start_time_nsec 5\n"
                    "[OUTPUT]\n    Name flowcounter\n    Match *\n    Unit second\n%s"
                    % (tmp_path / "log", extra))
    return path


def windows(lines):
    return [tuple(int(n) for n in LINE.fullmatch(line).groups()) for line in lines]


def test_reference_lines_have_the_shape_checked():
    found = windows(FLUENT_BIT_LINES)
    assert [w[0] for w in found] == [1795549221, 1795549222, 1795549223]
    assert all(w[2] == w[1] * ENTRY_SIZE for w in found)


def test_windows_printed_as_fluent_bit_prints_them(spawn, tmp_path):
    started = int(time.time())
    child = spawn(["-c", str(config(tmp_path))])
    printed = Printed(child)
    lines = wait_for(lambda: len(printed.lines()) >= 4 and printed.lines(), timeout=30)
    found = windows(lines)                  # every line has Fluent Bit's exact shape
    ends = [w[0] for w in found]
    assert ends == list(range(ends[0], ends[0] + len(ends)))     # one line per second
    assert started <= ends[0] <= started + 3                     # from the output's start
    for end, counts, size, per_unit, size_per_unit in found:
        assert size == counts * ENTRY_SIZE and per_unit == counts
        assert size_per_unit == size
    assert sum(w[1] for w in found) >= 5
    text = (tmp_path / "log").read_text()
    assert 'unit is "second"' in text and "buffer size=2" in text


def test_event_based_records_before_the_windows_are_skipped(spawn, tmp_path):
    child = spawn(["-c", str(config(tmp_path, "    event_based on\n"))])
    log = tmp_path / "log"
    wait_for(lambda: log.exists() and "out of range. Skip the record" in log.read_text(),
             timeout=30)
    assert Printed(child).lines() == []


def test_the_window_ring():
    counter = FlowCounter("minute", 60, 1.0, 1000)
    assert counter.size == 1 and counter.until == [1000]
    assert counter.count(940, 10) == []               # end - 60 <= t <= end
    assert counter.count(939, 10) is None             # before the oldest window
    assert counter.count(1000, 5) == []
    assert counter.count(1001, 7) == [
        '[out_flowcounter] [1000, {"counts":2, "bytes":15, "counts/minute":0, '
        '"bytes/minute":0 }]\n']
    assert counter.count(1200, 1) == [              # empty windows are printed too
        '[out_flowcounter] [1060, {"counts":1, "bytes":7, "counts/minute":0, '
        '"bytes/minute":0 }]\n',
        '[out_flowcounter] [1120, {"counts":0, "bytes":0, "counts/minute":0, '
        '"bytes/minute":0 }]\n',
        '[out_flowcounter] [1180, {"counts":0, "bytes":0, "counts/minute":0, '
        '"bytes/minute":0 }]\n']
    assert counter.until == [1240]
    ring = FlowCounter("second", 1, 2.5, 50)         # Flush 2.5 s: 3 windows
    assert ring.until == [50, 51, 52]
    assert ring.count(52, 1) == []
    assert ring.count(53, 1) == [
        '[out_flowcounter] [50, {"counts":0, "bytes":0, "counts/second":0, '
        '"bytes/second":0 }]\n']
    assert ring.until == [53, 51, 52] and ring.index == 1
    assert ring.count(54, 1) == [
        '[out_flowcounter] [51, {"counts":0, "bytes":0, "counts/second":0, '
        '"bytes/second":0 }]\n']
    assert ring.until == [53, 54, 52] and ring.index == 2
    assert ring.counts == [1, 1, 1]
    far = FlowCounter("second", 1, 1.0, 50)
    assert far.count(50 + 200000, 1) is None           # a clock gone wrong
