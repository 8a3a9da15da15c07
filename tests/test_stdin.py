"""stdin input: JSON values or parsed lines from a real pipe; EOF ends the process."""
import json
import os
import signal
import subprocess

import pytest

from conftest import EDGESHIP, run_edgeship, wait_for

pytestmark = pytest.mark.e2e

OUT_ARGS = ["-f", "0.1", "-o", "file", "-m", "*", "-p", "format=out_file"]


def out_file_events(path):
    """``tag: [sec.nsec, {json}]`` lines -> [(tag, seconds string, record)]."""
    events = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            tag, _, rest = line.rstrip("\n").partition(": [")
            stamp, _, record = rest[:-1].partition(", ")
            events.append((tag, stamp, json.loads(record)))
    return events


def run_stdin(tmp_path, data, extra=()):
    args = ["-i", "stdin", "-t", "in"] + list(extra) + OUT_ARGS + ["-p", "path=%s" % tmp_path]
    proc = run_edgeship(args, input=data)
    return proc, tmp_path / "in"


def test_json_maps_and_event_arrays_until_eof(tmp_path):
    data = ('{"a":1} {"b":\n2}\n'
            '[1700000000.5, {"c":3}]\n'
            '[[1700000001, {"meta":1}], {"d":4}]\n'
            'not json at all\n'
            '"a string"\n'
            '{"last":true}')            # no newline: still read at EOF
    proc, out = run_stdin(tmp_path, data)
    assert proc.returncode == 0, proc.stderr
    events = out_file_events(out)
    assert [e[2] for e in events] == [{"a": 1}, {"b": 2}, {"c": 3}, {"d": 4}, {"last": True}]
    assert events[2][1] == "1700000000.500000000" and events[3][1] == "1700000001.000000000"
    assert "invalid JSON message, skipping" in proc.stderr
    assert "invalid record found, it's not a JSON map or array" in proc.stderr
    assert "end of file (stdin closed by remote end)" in proc.stderr


def test_a_time_no_event_can_carry_is_replaced_by_the_arrival_time(tmp_path):
    # Before 1970 or past 2106 (an EventTime's uint32 seconds; 1e30 s would overflow msgpack's
    # int64 of nanoseconds): the record is kept, stamped now, and the read logs it once.
    data = ('[-5, {"a":1}]\n[1e30, {"a":2}]\n[[4294967296, {}], {"a":3}]\n'
            '[1700000000, {"a":4}]\n')
    proc, out = run_stdin(tmp_path, data)
    assert proc.returncode == 0, proc.stderr
    events = out_file_events(out)
    assert [e[2] for e in events] == [{"a": 1}, {"a": 2}, {"a": 3}, {"a": 4}]
    assert all(1700000000 < float(e[1]) < 4294967296 for e in events[:3])
    assert events[3][1] == "1700000000.000000000"
    assert proc.stderr.count("record time before 1970 or after 2106") == 1


def test_parser_lines_and_unparsed_lines_kept(tmp_path):
    (tmp_path / "parsers.conf").write_text(
        "[PARSER]\n    Name kv\n    Format regex\n    Regex ^(?<k>[a-z]+)=(?<v>\\d+)$\n")
    proc, out = run_stdin(tmp_path, "a=1\r\nbroken\nb=2",
                          ["-p", "parser=kv", "-R", str(tmp_path / "parsers.conf")])
    assert proc.returncode == 0, proc.stderr
    assert [e[2] for e in out_file_events(out)] == [
        {"k": "a", "v": "1"}, {"log": "broken"}, {"k": "b", "v": "2"}]


def test_invalid_utf8_does_not_stop_the_input(tmp_path):
    args = ["-i", "stdin", "-t", "in"] + OUT_ARGS + ["-p", "path=%s" % tmp_path]
    proc = subprocess.run(EDGESHIP + args, input=b'{"x":"\xff\xfe"}\n{"y":"\xc3\xa9"}\n',
                          capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert [e[2] for e in out_file_events(tmp_path / "in")] == [
        {"x": "\ufffd\ufffd"}, {"y": "\u00e9"}]


def test_regular_file_as_stdin(tmp_path):
    source = tmp_path / "records.json"
    source.write_text("".join('{"n":%d}\n' % i for i in range(50000)))
    args = ["-i", "stdin", "-t", "in"] + OUT_ARGS + ["-p", "path=%s" % tmp_path]
    with open(source) as f:
        proc = subprocess.run(EDGESHIP + args, stdin=f, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [e[2]["n"] for e in out_file_events(tmp_path / "in")] == list(range(50000))


def test_open_pipe_does_not_block_shutdown(tmp_path, spawn):
    child = spawn(["-i", "stdin", "-t", "in"] + OUT_ARGS + ["-p", "path=%s" % tmp_path],
                  stdin=subprocess.PIPE)
    child.proc.stdin.write(b'{"first":1}\n{"partial":')
    child.proc.stdin.flush()
    out = tmp_path / "in"
    wait_for(lambda: os.path.exists(out) and os.path.getsize(out) > 0)
    # SIGTERM while the pipe is still open: the read must not hold the process.
    child.proc.send_signal(signal.SIGTERM)
    assert child.proc.wait(timeout=15) == 0
    assert [e[2] for e in out_file_events(out)] == [{"first": 1}]


def test_buffer_size_below_minimum_is_a_config_error(tmp_path):
    proc, _ = run_stdin(tmp_path, "", ["-p", "buffer_size=1000"])
    assert proc.returncode == 1
    assert "key 'buffer_size'" in proc.stderr and "expected 16000 or more, got '1000'" in proc.stderr
