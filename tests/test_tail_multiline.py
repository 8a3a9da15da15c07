"""tail with multiline.parser: groups flushed at EOF and after flush_timeout, and a DB offset
that never moves past lines an open group still holds."""
import os
import time

import pytest

from conftest import run_edgeship, wait_for
from test_tail import count_lines, db_rows, records, write_config

JAVA_PARSER = r"""[MULTILINE_PARSER]
    name          java-like
    type          regex
    flush_timeout %d
    rule      "start_state"   "/^[a-zA-Z]+ \d+ \d+\:\d+\:\d+ .*/"   "cont"
    rule      "cont"          "/^\s+at .*/"                         "cont"
"""

EXCEPTION = ("Dec 14 06:41:08 Exception in thread main\n"
             "    at com.example.App.run(App.java:10)\n"
             "    at com.example.App.main(App.java:3)\n")
JOINED = EXCEPTION


def test_open_group_is_flushed_at_end_of_file(tmp_path):
    log = tmp_path / "w.log"
    log.write_text("worker starting\nTraceback (most recent call last):\n"
                   '  File "w.py", line 1, in <module>\nZeroDivisionError: division by zero\n')
    conf = write_config(tmp_path, [(("Path", str(log)), ("Tag", "py"), ("Read_From_Head", "on"),
                                    ("Exit_On_Eof", "on"), ("multiline.parser", "python"))])
    proc = run_edgeship(["-c", conf])
    assert proc.returncode == 0, proc.stderr
    assert records(tmp_path / "out" / "py") == [
        {"log": "worker starting\n"},
        {"log": "Traceback (most recent call last):\n  File \"w.py\", line 1, in <module>\n"
                "ZeroDivisionError: division by zero\n"}]


@pytest.mark.e2e
def test_docker_line_with_an_unreadable_time_is_delivered_and_the_process_ends(tmp_path):
    # The built-in docker parser reads "time" with Time_Strict off: "garbage" made a year-0
    # time that overflowed msgpack's int64 (the input died, the process hung with
    # Exit_On_Eof; later the record was dropped). Fluent Bit loses it ("error packing event").
    log = tmp_path / "c.log"
    log.write_text('{"log":"hello\\n","stream":"stdout","time":"garbage"}\n'
                   '{"log":"ok\\n","stream":"stdout","time":"2024-05-06T01:02:03.5Z"}\n')
    (tmp_path / "fluent-bit.conf").write_text(
        "[SERVICE]\n    Flush 0.1\n    Grace 2\n"
        "[INPUT]\n    Name tail\n    Path %s\n    Tag c\n    Read_From_Head on\n"
        "    Exit_On_Eof on\n    multiline.parser docker\n"
        "[OUTPUT]\n    Name file\n    Match *\n    Path %s\n    Format out_file\n"
        % (log, tmp_path))
    started = time.time()
    proc = run_edgeship(["-c", str(tmp_path / "fluent-bit.conf")])
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "c", encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert len(lines) == 2, (lines, proc.stderr)
    assert lines[0].startswith("c: [") and '"log":"hello\\n"' in lines[0] \
        and '"time":"garbage"' in lines[0]
    assert started - 1 <= float(lines[0][4:].split(",")[0]) <= time.time()
    assert lines[1].startswith("c: [1714957323.500000000, {")
    assert "invalid time format %Y-%m-%dT%H:%M:%S.%L for 'garbage'" in proc.stderr
    assert "dropped" not in proc.stderr


def test_open_group_is_flushed_after_flush_timeout(tmp_path, spawn):
    log = tmp_path / "j.log"
    log.write_text("")
    conf = write_config(tmp_path, [(("Path", str(log)), ("Tag", "j"), ("Read_From_Head", "on"),
                                    ("multiline.parser", "java-like"))],
                        parsers=JAVA_PARSER % 300)
    child = spawn(["-c", conf])
    out = tmp_path / "out" / "j"
    with open(log, "a") as f:
        f.write("plain line\n" + EXCEPTION)
    # Nothing follows the exception: only the flush timeout can close its group.
    wait_for(lambda: count_lines(out) == 2)
    child.terminate()
    assert records(out) == [{"log": "plain line\n"}, {"log": JOINED}]


def test_db_offset_stays_before_an_open_group(tmp_path, spawn):
    log = tmp_path / "j.log"
    log.write_text("plain line\n" + EXCEPTION)
    db = str(tmp_path / "tail.db")
    entries = (("Path", str(log)), ("Tag", "j"), ("Read_From_Head", "on"), ("DB", db),
               ("multiline.parser", "java-like"))
    conf = write_config(tmp_path, [entries], parsers=JAVA_PARSER % 600000)
    child = spawn(["-c", conf])
    out = tmp_path / "out" / "j"
    wait_for(lambda: count_lines(out) == 1)
    # The plain line is delivered and committed; the exception is still an open group.
    wait_for(lambda: [row[1] for row in db_rows(db)] == [len("plain line\n")])
    child.kill()
    # After the crash the exception is read again and, at EOF, delivered whole.
    conf = write_config(tmp_path, [entries + (("Exit_On_Eof", "on"),)],
                        outputs=[(("Match", "*"), ("File", "second"))],
                        parsers=JAVA_PARSER % 600000)
    proc = run_edgeship(["-c", conf])
    assert proc.returncode == 0, proc.stderr
    assert records(tmp_path / "out" / "second") == [{"log": JOINED}]
    assert [row[1] for row in db_rows(db)] == [os.path.getsize(log)]
