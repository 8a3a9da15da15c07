"""tail input: real files, real edgeship child processes, the file output as the witness."""
import json
import os
import sqlite3
import struct
import time

import pytest
import xxhash

from conftest import run_edgeship, wait_for

from edgeship.plugins.inputs.tail.discovery import compose_regex_tag, compose_tag
from edgeship.text.onigmo import compile_onigmo


def records(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_config(tmp_path, inputs, outputs=None, service="", parsers=None):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    text = "[SERVICE]\n    Flush 0.1\n    Grace 2\n    Log_Level info\n" + service
    if parsers:
        (tmp_path / "parsers.conf").write_text(parsers)
        text += "    Parsers_File parsers.conf\n"
    for entries in inputs:
        text += "[INPUT]\n    Name tail\n" + "".join("    %s %s\n" % kv for kv in entries)
    for entries in outputs or [(("Match", "*"),)]:
        text += ("[OUTPUT]\n    Name file\n    Path %s\n    Format plain\n" % out
                 + "".join("    %s %s\n" % kv for kv in entries))
    (tmp_path / "fluent-bit.conf").write_text(text)
    return str(tmp_path / "fluent-bit.conf")


def test_compose_tag_follows_fluent_bit():
    assert compose_tag("kube.*", "/var/log/sub/app.log") == "kube.var.log.sub.app.log"
    assert compose_tag("app.*", "input/app.log") == "app.input.app.log"
    assert compose_tag("host.*.raw*", "input/var/log/nginx/error.log") == \
        "host.input.var.log.nginx.error.log.raw"
    assert compose_tag("*", "//x//y:z\\w") == "x.y.z.w"
    assert compose_tag("a.*.", "/b") == "a.b"


def test_compose_regex_tag_fills_captures_and_underscores():
    regex = compile_onigmo(r"/var/log/(?<app>[a-z]+)-(?<num>\d+)?\.log")
    assert compose_regex_tag("k.<app>.<num>", regex, "/var/log/web-12.log") == "k.web.12"
    assert compose_regex_tag("k.<app>.<num>", regex, "/var/log/web-.log") == "k.web._"
    assert compose_regex_tag("k.<nope>", regex, "/var/log/web-1.log") == "k._"
    assert compose_regex_tag("k.<app>", regex, "/elsewhere") is None


@pytest.mark.e2e
def test_glob_exclude_path_key_and_tag_expansion(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "b.log").write_text("b1\nb2\n")
    (logs / "a.log").write_text("a1\n")
    (logs / "c.log.gz").write_text("zipped\n")
    (logs / "other.txt").write_text("not matched\n")
    conf = write_config(tmp_path, [(("Path", "%s/*.log, %s/*.gz" % (logs, logs)),
                                    ("Exclude_Path", "*.gz"), ("Tag", "app.*"),
                                    ("Path_Key", "file"), ("Read_From_Head", "on"),
                                    ("Exit_On_Eof", "on"))])
    proc = run_edgeship(["-c", conf])
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    prefix = "app" + str(logs).replace("/", ".")
    assert sorted(os.listdir(out)) == [prefix + ".a.log", prefix + ".b.log"]
    assert records(out / (prefix + ".b.log")) == [
        {"file": str(logs / "b.log"), "log": "b1"}, {"file": str(logs / "b.log"), "log": "b2"}]
    assert records(out / (prefix + ".a.log")) == [{"file": str(logs / "a.log"), "log": "a1"}]


def test_invalid_utf8_and_binary_lines_do_not_stop_the_input(tmp_path):
    log = tmp_path / "bin.log"
    log.write_bytes(b"before\n\xff\xfe bad \xc3\n\x00\x01\x02 binary\x00\nafter \xc3\xa9\n")
    conf = write_config(tmp_path, [(("Path", str(log)), ("Tag", "bin"), ("Offset_Key", "off"),
                                    ("Read_From_Head", "on"), ("Exit_On_Eof", "on"))])
    proc = run_edgeship(["-c", conf])
    assert proc.returncode == 0, proc.stderr
    assert records(tmp_path / "out" / "bin") == [
        {"off": 0, "log": "before"},
        {"off": 7, "log": "\ufffd\ufffd bad \ufffd"},
        {"off": 16, "log": "\x00\x01\x02 binary\x00"},
        {"off": 28, "log": "after \u00e9"},
    ]


def long_lines_file(tmp_path):
    log = tmp_path / "long.log"
    log.write_text("short 1\n" + "x" * 200 + "\nshort 2\n" + "y" * 100 + "\nshort 3\n")
    return log


def test_skip_long_lines_on_skips_only_the_long_lines(tmp_path):
    log = long_lines_file(tmp_path)
    conf = write_config(tmp_path, [(("Path", str(log)), ("Tag", "t"), ("Read_From_Head", "on"),
                                    ("Exit_On_Eof", "on"), ("Buffer_Chunk_Size", "64"),
                                    ("Buffer_Max_Size", "128"), ("Skip_Long_Lines", "on"))])
    proc = run_edgeship(["-c", conf])
    assert proc.returncode == 0, proc.stderr
    assert [r["log"] for r in records(tmp_path / "out" / "t")] == \
        ["short 1", "short 2", "y" * 100, "short 3"]
    assert "have long lines. Skipping long lines." in proc.stderr


def test_skip_long_lines_off_drops_the_file_with_an_error(tmp_path):
    log = long_lines_file(tmp_path)
    conf = write_config(tmp_path, [(("Path", str(log)), ("Tag", "t"), ("Read_From_Head", "on"),
                                    ("Exit_On_Eof", "on"), ("Buffer_Chunk_Size", "64"),
                                    ("Buffer_Max_Size", "128"))])
    proc = run_edgeship(["-c", conf])
    assert proc.returncode == 0, proc.stderr
    assert [r["log"] for r in records(tmp_path / "out" / "t")] == ["short 1"]
    assert "requires a larger buffer size, lines are too long. Skipping file." in proc.stderr


def test_long_line_without_skip_logs_once_and_reads_nothing_twice(tmp_path, spawn):
    """Fluent Bit drops the file and finds it again at every rescan: the error once per
    Refresh_Interval forever and, read from the head again, the lines before it duplicated.
    edgeship stops at the line, says so once, and follows the file again once it changed."""
    logs = tmp_path / "logs"
    logs.mkdir()
    long_log = logs / "long.log"
    long_log.write_text("short 1\n" + "x" * 200 + "\nshort 2\n")
    conf = write_config(tmp_path, [(("Path", str(logs / "*.log")), ("Tag", "t"),
                                    ("Read_From_Head", "on"), ("Refresh_Interval", "0.2"),
                                    ("Buffer_Chunk_Size", "64"), ("Buffer_Max_Size", "128"))])
    child = spawn(["-c", conf])
    out = tmp_path / "out" / "t"
    wait_for(lambda: count_lines(out) == 1)
    # Each new file is found by a rescan: three of them mean three rescans went by.
    for n in range(3):
        (logs / ("new%d.log" % n)).write_text("new %d\n" % n)
        wait_for(lambda: count_lines(out) == 2 + n)
    # Truncated and written again, the file is followed from its start.
    with open(long_log, "w") as f:
        f.write("fresh\n")
    wait_for(lambda: count_lines(out) == 5)
    code, _, err = child.terminate()
    assert [r["log"] for r in records(out)] == ["short 1", "new 0", "new 1", "new 2", "fresh"]
    assert err.count("requires a larger buffer size, lines are too long. Skipping file.") == 1


def test_parser_failure_keeps_raw_line_with_its_cr(tmp_path):
    log = tmp_path / "p.log"
    log.write_bytes(b'{"a":1}\r\nnot json\r\n{"b":2}\n')
    conf = write_config(tmp_path, [(("Path", str(log)), ("Tag", "p"), ("Parser", "json"),
                                    ("Path_Key", "f"), ("Read_From_Head", "on"),
                                    ("Exit_On_Eof", "on"))],
                        parsers="[PARSER]\n    Name json\n    Format json\n")
    proc = run_edgeship(["-c", conf])
    assert proc.returncode == 0, proc.stderr
    assert records(tmp_path / "out" / "p") == [
        {"a": 1, "f": str(log)}, {"f": str(log), "log": "not json\r"}, {"b": 2, "f": str(log)}]


def test_parsed_time_of_zero_is_kept_and_no_time_means_now(tmp_path):
    log = tmp_path / "t.log"
    log.write_text('{"t":"0","a":1}\n{"a":2}\n')
    (tmp_path / "parsers.conf").write_text(
        "[PARSER]\n    Name p\n    Format json\n    Time_Key t\n    Time_Format %s\n")
    before = time.time()
    proc = run_edgeship(["-R", str(tmp_path / "parsers.conf"), "-f", "0.1",
                         "-i", "tail", "-p", "path=%s" % log, "-p", "parser=p", "-t", "t",
                         "-p", "read_from_head=on", "-p", "exit_on_eof=on",
                         "-o", "file", "-m", "*", "-p", "path=%s" % tmp_path, "-p", "file=out"])
    assert proc.returncode == 0, proc.stderr
    first, second = (tmp_path / "out").read_text().splitlines()
    assert first == 't: [0.000000000, {"a":1}]'
    assert second.endswith(', {"a":2}]') and float(second[4:24]) >= int(before)


def test_config_errors_name_file_line_and_key(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("x\n")
    conf = write_config(tmp_path, [(("Path", str(log)), ("Parser", "nope"))])
    proc = run_edgeship(["--strict", "-c", conf])
    assert proc.returncode == 1
    assert "fluent-bit.conf:" in proc.stderr and "parser 'nope' is not registered" in proc.stderr
    conf = write_config(tmp_path, [(("Path", str(log)), ("Buffer_Chunk_Size", "64k"),
                                    ("Buffer_Max_Size", "32k"))])
    proc = run_edgeship(["-c", conf])
    assert proc.returncode == 1 and "buffer_max_size must be >=" in proc.stderr


def db_rows(db):
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT name, offset, inode, rotated FROM in_tail_files").fetchall()
    finally:
        conn.close()


@pytest.mark.e2e
def test_db_uses_fluent_bit_table_and_resumes(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("one\ntwo\n")
    db = str(tmp_path / "tail.db")
    entries = (("Path", str(log)), ("Tag", "t"), ("DB", db), ("Read_From_Head", "on"),
               ("Exit_On_Eof", "on"))
    conf = write_config(tmp_path, [entries])
    assert run_edgeship(["-c", conf]).returncode == 0
    conn = sqlite3.connect(db)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(in_tail_files)")]
    conn.close()
    assert columns == ["id", "name", "offset", "inode", "created", "rotated", "offset_marker",
                       "offset_marker_size", "head_marker", "head_marker_size"]
    assert db_rows(db) == [(str(log), 8, os.stat(log).st_ino, 0)]
    # Fluent Bit 5.1.1's marker: XXH3-64 of the bytes before the offset, as a signed int64;
    # edgeship's head marker: the same of the file's first bytes.
    conn = sqlite3.connect(db)
    markers = conn.execute("SELECT offset_marker, offset_marker_size, head_marker, "
                           "head_marker_size FROM in_tail_files").fetchone()
    conn.close()
    xxh3 = struct.unpack("<q", struct.pack("<Q", xxhash.xxh3_64_intdigest(b"one\ntwo\n")))[0]
    assert markers == (xxh3, 8, xxh3, 8)
    with open(log, "a") as f:
        f.write("three\n")
    # A row of a file that is gone (as a Fluent Bit DB may hold) is deleted at start.
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO in_tail_files (name, offset, inode, created) "
                 "VALUES ('/gone.log', 5, 999999999, 0)")
    conn.commit()
    conn.close()
    assert run_edgeship(["-c", conf]).returncode == 0
    assert [r["log"] for r in records(tmp_path / "out" / "t")] == ["one", "two", "three"]
    assert db_rows(db) == [(str(log), 14, os.stat(log).st_ino, 0)]


def test_db_of_an_older_fluent_bit_gets_the_marker_columns_and_is_trusted(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("one\ntwo\n")
    db = str(tmp_path / "tail.db")
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE in_tail_files (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                 "offset INTEGER, inode INTEGER, created INTEGER, rotated INTEGER DEFAULT 0)")
    conn.execute("INSERT INTO in_tail_files (name, offset, inode, created) VALUES (?, 4, ?, 0)",
                 (str(log), os.stat(log).st_ino))
    conn.commit()
    conn.close()
    conf = write_config(tmp_path, [(("Path", str(log)), ("Tag", "t"), ("DB", db),
                                    ("Exit_On_Eof", "on"))])
    proc = run_edgeship(["-c", conf])
    assert proc.returncode == 0, proc.stderr
    assert records(tmp_path / "out" / "t") == [{"log": "two"}]   # resumed at its offset
    assert db_rows(db) == [(str(log), 8, os.stat(log).st_ino, 0)]


def test_db_offset_is_not_trusted_once_the_bytes_before_it_changed(tmp_path):
    """Truncated and written past the saved offset while edgeship was not running: the offset
    marker (the line before the offset) tells, and the file is read from its start."""
    log = tmp_path / "app.log"
    log.write_text("first 1\nfirst 2\n")
    db = str(tmp_path / "tail.db")
    conf = write_config(tmp_path, [(("Path", str(log)), ("Tag", "t"), ("DB", db),
                                    ("Read_From_Head", "on"), ("Exit_On_Eof", "on"))])
    assert run_edgeship(["-c", conf]).returncode == 0
    with open(log, "w") as f:                       # the second line replaced, one more
        f.write("first 1\nother 2\nthird 3\n")
    assert run_edgeship(["-c", conf]).returncode == 0
    assert [r["log"] for r in records(tmp_path / "out" / "t")] == [
        "first 1", "first 2", "first 1", "other 2", "third 3"]


LINE = "L%07d " + "p" * 40 + "\n"


def line_numbers(path):
    return [int(r["log"][1:8]) for r in records(path) if r["log"] != "ready"]


def test_sigkill_then_restart_rereads_only_unconfirmed_batches(tmp_path, spawn):
    count = 300000
    log = tmp_path / "big.log"
    with open(log, "w") as f:
        f.write("".join(LINE % i for i in range(count)))
    db = str(tmp_path / "tail.db")
    budget = 300000
    inputs = [(("Path", str(log)), ("Tag", "big"), ("DB", db), ("Read_From_Head", "on"),
               ("Mem_Buf_Limit", str(budget)))]
    conf = write_config(tmp_path, inputs)
    first = tmp_path / "out" / "big"
    child = spawn(["-c", conf])
    wait_for(lambda: os.path.exists(first) and os.path.getsize(first) > 2000000, timeout=60)
    child.kill()
    seen = line_numbers(first)
    assert len(seen) < count, "the run ended before the kill; nothing was tested"
    (offset,) = [row[1] for row in db_rows(db)]
    # Committed means delivered: every line before the DB offset is in the output.
    committed_lines = offset // len(LINE % 0)
    assert offset % len(LINE % 0) == 0
    assert seen[:committed_lines] == list(range(committed_lines))
    # Restart with the same DB: it resumes at the committed offset and skips nothing.
    inputs2 = [dict(inputs[0], Exit_On_Eof="on").items()]
    conf2 = write_config(tmp_path, inputs2, outputs=[(("Match", "*"), ("File", "second"))])
    proc = run_edgeship(["-c", conf2], timeout=120)
    assert proc.returncode == 0, proc.stderr
    again = line_numbers(tmp_path / "out" / "second")
    assert again == list(range(committed_lines, count))
    # What is read twice is what was not yet confirmed: at most the memory budget plus the
    # block being read.
    duplicated = len(set(seen) & set(again))
    assert duplicated * len(LINE % 0) <= budget + 256 * 1024


def count_lines(path):
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as f:
        return f.read().count(b"\n")


def start_when_followed(log, out):
    """Write a marker line and wait until it comes out: the tail follows ``log`` now."""
    with open(log, "a") as f:
        f.write("ready\n")
    wait_for(lambda: count_lines(out) == 1)


def write_while_followed(log, out, total, rotate, bursts=40, rotate_every=10):
    """Once the tail follows ``log``, append ``total`` numbered lines in ``bursts`` bursts,
    calling ``rotate(f, n) -> f`` after every ``rotate_every`` bursts but the last."""
    start_when_followed(log, out)
    per = total // bursts
    f = open(log, "a")
    n = 0
    for burst in range(bursts):
        f.write("".join(LINE % i for i in range(n, n + per)))
        f.flush()
        n += per
        if burst % rotate_every == rotate_every - 1 and burst < bursts - 1:
            f = rotate(f, burst // rotate_every)
        time.sleep(0.05)
    f.close()


@pytest.mark.e2e
def test_rename_rotation_while_writing_loses_nothing(tmp_path, spawn):
    log = tmp_path / "app.log"
    log.write_text("")
    total = 100000

    def rotate(f, n):
        os.rename(log, tmp_path / ("app.log.%d" % n))
        # The application writes a little more to the renamed file before it reopens.
        f.write("".join(LINE % i for i in range(total + n * 10, total + n * 10 + 10)))
        f.close()
        return open(log, "a")

    conf = write_config(tmp_path, [(("Path", str(log)), ("Tag", "app"), ("Rotate_Wait", "1"),
                                    ("Refresh_Interval", "1"), ("Read_From_Head", "on"),
                                    ("DB", str(tmp_path / "tail.db")))])
    child = spawn(["-c", conf])
    out = tmp_path / "out" / "app"
    write_while_followed(log, out, total, rotate)
    expected = set(range(total)) | {total + n * 10 + i for n in range(3) for i in range(10)}
    wait_for(lambda: count_lines(out) >= len(expected) + 1, timeout=60)
    code, _, err = child.terminate()
    got = line_numbers(out)
    assert sorted(got) == sorted(expected), err   # every line, each exactly once
    assert "handle rotation()" in err


def test_copytruncate_rotation_while_writing_loses_nothing(tmp_path, spawn):
    log = tmp_path / "app.log"
    log.write_text("")
    total = 100000

    def rotate(f, n):
        # copytruncate, made atomic towards the writer (logrotate's own race, lines written
        # between its copy and its truncate, is not what this test is about).
        with open(log, "rb") as src, open(tmp_path / ("app.log.%d" % n), "wb") as dst:
            dst.write(src.read())
        os.truncate(log, 0)
        return f

    # The copies match Path too: copytruncate leaves lines the tail had not reached yet only
    # in the copy, so following the copies is the only way to lose nothing. Lines it had
    # already read from app.log come again from the copy: those duplicates are unavoidable.
    conf = write_config(tmp_path, [(("Path", str(log) + "*"), ("Tag", "app"),
                                    ("Refresh_Interval", "0.5"), ("Read_From_Head", "on"))])
    child = spawn(["-c", conf])
    out = tmp_path / "out" / "app"
    write_while_followed(log, out, total, rotate)
    wait_for(lambda: set(line_numbers(out)) == set(range(total)), timeout=60)
    child.terminate()


def test_truncated_and_regrown_file_is_read_from_its_start(tmp_path, spawn):
    log = tmp_path / "app.log"
    log.write_text("".join(LINE % i for i in range(100)))
    conf = write_config(tmp_path, [(("Path", str(log)), ("Tag", "app"),
                                    ("Read_From_Head", "on"))])
    child = spawn(["-c", conf])
    out = tmp_path / "out" / "app"
    wait_for(lambda: count_lines(out) == 100)
    # Truncate and at once write more than was there: the size alone no longer shows it.
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    os.truncate(log, 0)
    os.write(fd, "".join(LINE % i for i in range(1000, 1300)).encode())
    os.close(fd)
    wait_for(lambda: count_lines(out) >= 400)
    child.terminate()
    assert line_numbers(out) == list(range(100)) + list(range(1000, 1300))


def test_new_file_after_start_is_read_from_head_and_stop_flushes(tmp_path, spawn):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "early.log").write_text("")
    conf = write_config(tmp_path, [(("Path", str(tmp_path / "logs" / "*.log")), ("Tag", "n"),
                                    ("Refresh_Interval", "0.2"))])
    child = spawn(["-c", conf])
    out = tmp_path / "out" / "n"

    def followed():
        # Not a fixed sleep: the first scan is over once a line added to a file it found
        # comes out (a line added before the scan is skipped: not read from head).
        with open(tmp_path / "logs" / "early.log", "a") as f:
            f.write("ready\n")
        return count_lines(out)
    wait_for(followed, interval=0.2)
    (tmp_path / "logs" / "late.log").write_text("first\nsecond\n")
    wait_for(lambda: "second" in [r["log"] for r in records(out)])
    code, _, err = child.terminate()
    assert code == 0, err
    assert [r["log"] for r in records(out) if r["log"] != "ready"] == ["first", "second"]


def test_offsets_commit_only_up_to_contiguous_confirmed_batches(tmp_path):
    """Confirmations come out of order across outputs: the DB offset only moves to the end of
    the newest batch whose predecessors are all confirmed. The acks are captured where the
    input hands batches to the engine and released as two outputs would."""
    from edgeship.core.schema import Entry
    from edgeship.engine.loader import Loader, command_line_section

    log = tmp_path / "a.log"
    log.write_text("x\n" * 30)
    db = str(tmp_path / "tail.db")
    section = command_line_section("INPUT", "tail", 1)
    section.entries += [Entry("path", str(log)), Entry("db", db),
                        Entry("read_from_head", "on")]
    tail = Loader().build([section]).inputs[0]
    assert tail._open_db()
    tail._scan(startup=True)
    (f,) = tail.files.values()
    acks = []
    tail.context.emit = lambda tag, events, size=0, ack=None: acks.append(ack)
    for end in (10, 20, 30):
        tail._emit(f, [(0, {"log": "x"})], end, 2)
    for ack in acks:            # routed to two outputs
        ack.add()
        ack.add()
        ack.seal()

    def offset():
        return db_rows(db)[0][1]

    acks[1].release()
    acks[1].release()
    acks[2].release()
    acks[2].release()
    assert offset() == 0        # batches 2 and 3 are confirmed, batch 1 is not
    acks[0].release()
    assert offset() == 0        # one output of two
    acks[0].release()
    assert offset() == 30
    # After a truncation, confirmations of batches of the old content change nothing.
    tail._emit(f, [(0, {"log": "x"})], 40, 2)
    stale = acks[-1]
    tail._truncated(f)
    assert offset() == 0
    stale.seal()
    assert offset() == 0


def test_ignore_older_skips_files_not_modified_recently(tmp_path):
    (tmp_path / "new.log").write_text("new\n")
    old = tmp_path / "old.log"
    old.write_text("old\n")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    conf = write_config(tmp_path, [(("Path", str(tmp_path / "*.log")), ("Tag", "t"),
                                    ("Ignore_Older", "1d"), ("Read_From_Head", "on"),
                                    ("Exit_On_Eof", "on"))])
    proc = run_edgeship(["-c", conf])
    assert proc.returncode == 0, proc.stderr
    assert records(tmp_path / "out" / "t") == [{"log": "new"}]
