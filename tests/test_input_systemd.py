"""systemd input: real journal files written by Debian's systemd-journal-remote from the
journal export format, read by a real edgeship child process; the file output (one file per
tag, Fluent Bit's out_file format with the time) is the witness. Needs python3-systemd
visible to the test interpreter (.ci/run links it into the venv)."""
import json
import os
import sqlite3
import subprocess

import pytest

from conftest import free_port, run_edgeship, wait_for

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
BOOT = "0123456789abcdef0123456789abcdef"


class Journal:
    """A folder of journal files; ``write`` appends entries (lists of (field, value) pairs,
    realtime from 1704164645 s on, one second apart) through systemd-journal-remote."""

    def __init__(self, folder, create=True):
        self.folder = folder
        self.written = 0
        if create:
            folder.mkdir(exist_ok=True)

    def write(self, *entries, name="x.journal"):
        text = ""
        for fields in entries:
            self.written += 1
            text += "__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=%s\n" % (
                1704164645123456 + self.written * 1000000, self.written * 1000, BOOT)
            text += "".join("%s=%s\n" % pair for pair in fields) + "\n"
        subprocess.run([JOURNAL_REMOTE, "-o", str(self.folder / name), "-"],
                       input=text.encode(), check=True, capture_output=True)


def message(text, unit=None, **fields):
    pairs = [("MESSAGE", text)]
    if unit:
        pairs.append(("_SYSTEMD_UNIT", unit))
    return pairs + sorted(fields.items())


def out_file(path):
    """(tag, time, record) of each line Fluent Bit's out_file format wrote."""
    if not os.path.exists(path):
        return []
    found = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            tag, rest = line.split(": ", 1)
            time, record = json.loads(rest)
            found.append((tag, time, record))
    return found


def messages(path):
    return [record.get("MESSAGE", record.get("message")) for _, _, record in out_file(path)]


def write_config(tmp_path, journal, *entries, output=None):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    text = ("[SERVICE]\n    Flush 0.1\n    Grace 2\n    Log_Level debug\n"
            "    Log_File %s\n" % (tmp_path / "edgeship.log")
            + "[INPUT]\n    Name systemd\n    Path %s\n" % journal.folder
            + "".join("    %s %s\n" % kv for kv in entries))
    text += output or "[OUTPUT]\n    Name file\n    Match *\n    Path %s\n" % out
    (tmp_path / "fluent-bit.conf").write_text(text)
    return str(tmp_path / "fluent-bit.conf")


def log_lines(tmp_path, text):
    path = tmp_path / "edgeship.log"
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as f:
        return [line for line in f if text in line]


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "journal")


def test_records_times_and_tags_from_the_unit(tmp_path, spawn, journal):
    journal.write(
        [("MESSAGE", "hello"), ("_SYSTEMD_UNIT", "nginx.service"), ("_PID", "42"),
         ("FOO", "a"), ("BAR", "x"), ("FOO", "b"), ("FOO", "c")],
        message("no unit here"),
        message("second nginx", "nginx.service"))
    conf = write_config(tmp_path, journal, ("Tag", "host.*.log"), ("Max_Entries", "1"))
    spawn(["-c", conf])
    nginx = tmp_path / "out" / "host.nginx.service.log"
    unknown = tmp_path / "out" / "host.unknown.log"
    wait_for(lambda: len(out_file(nginx)) == 2 and out_file(unknown))
    (tag, time, first), (_, time2, _) = out_file(nginx)
    assert tag == "host.nginx.service.log"
    # The entry's realtime timestamp, microseconds.
    assert time == 1704164646.123456 and time2 == 1704164648.123456
    # Every field a string, in the entry's order (the journal adds _BOOT_ID first here);
    # a repeated field is an array at the place of its first value.
    assert list(first.items()) == [
        ("_BOOT_ID", BOOT), ("MESSAGE", "hello"), ("_SYSTEMD_UNIT", "nginx.service"),
        ("_PID", "42"), ("FOO", ["a", "b", "c"]), ("BAR", "x")]
    assert messages(unknown) == ["no unit here"]


def test_filters_or_and_and(tmp_path, spawn, journal):
    journal.write(message("a1", "a.service", PRIORITY="3"),
                  message("b1", "b.service", PRIORITY="6"),
                  message("c1", "c.service", PRIORITY="3"),
                  message("a2", "a.service", PRIORITY="6"))
    out = tmp_path / "out" / "j"
    conf = write_config(tmp_path, journal, ("Tag", "j"),
                        ("Systemd_Filter", "_SYSTEMD_UNIT=a.service"),
                        ("Systemd_Filter", "_SYSTEMD_UNIT=b.service"))
    child = spawn(["-c", conf])
    wait_for(lambda: len(messages(out)) >= 3)
    child.kill()
    assert messages(out) == ["a1", "b1", "a2"]
    out.unlink()
    conf = write_config(tmp_path, journal, ("Tag", "j"), ("Systemd_Filter_Type", "And"),
                        ("Systemd_Filter", "_SYSTEMD_UNIT=a.service"),
                        ("Systemd_Filter", "PRIORITY=3"))
    child = spawn(["-c", conf])
    # The positive signal: an entry written later that matches comes out after the rest.
    journal.write(message("a3", "a.service", PRIORITY="3"))
    wait_for(lambda: "a3" in messages(out))
    assert messages(out) == ["a1", "a3"]


def test_strip_underscores_lowercase_and_max_fields(tmp_path, spawn, journal):
    journal.write([("MESSAGE", "m"), ("_PID", "7"), ("MY_FIELD", "v"), ("PID", "own")])
    conf = write_config(tmp_path, journal, ("Tag", "j"), ("Strip_Underscores", "on"),
                        ("Lowercase", "on"))
    child = spawn(["-c", conf])
    out = tmp_path / "out" / "j"
    wait_for(lambda: out_file(out))
    child.kill()
    # One underscore goes; _PID and PID meet as one key, an array of both (moved to where
    # the second came, as in Fluent Bit).
    assert list(out_file(out)[0][2].items()) == [
        ("boot_id", BOOT), ("message", "m"), ("my_field", "v"), ("pid", ["7", "own"])]
    out.unlink()
    conf = write_config(tmp_path, journal, ("Tag", "j"), ("Max_Fields", "3"))
    spawn(["-c", conf])
    wait_for(lambda: out_file(out))
    assert out_file(out)[0][2] == {"_BOOT_ID": BOOT, "MESSAGE": "m", "_PID": "7"}


def test_read_from_tail_reads_only_new_entries(tmp_path, spawn, journal):
    journal.write(*[message("old %d" % i) for i in range(5)])
    conf = write_config(tmp_path, journal, ("Tag", "j"), ("Read_From_Tail", "on"))
    spawn(["-c", conf])
    wait_for(lambda: log_lines(tmp_path, "jump to the end of journal"))
    journal.write(message("new 1"), message("new 2"))
    # A new file in the folder is found too.
    journal.write(message("new 3"), name="y.journal")
    out = tmp_path / "out" / "j"
    wait_for(lambda: "new 3" in messages(out))
    assert messages(out) == ["new 1", "new 2", "new 3"]


def db_cursor(db):
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT cursor FROM in_systemd_cursor").fetchall()
    finally:
        conn.close()


def journal_cursors(folder):
    from systemd import _reader
    reader = _reader._Reader(0, str(folder))
    try:
        reader.seek_head()
        cursors = []
        while reader._next():
            cursors.append(reader._get_cursor())
        return cursors
    finally:
        reader.close()


def test_db_cursor_follows_delivery_across_sigkill(tmp_path, spawn, journal):
    journal.write(*[message("first %d" % i) for i in range(3)])
    db = str(tmp_path / "cursor.db")
    # An output that never confirms (nothing listens): the cursor must not be saved.
    dead = ("[OUTPUT]\n    Name forward\n    Match *\n    Host 127.0.0.1\n    Port %d\n"
            "    Retry_Limit no_limits\n" % free_port())
    conf = write_config(tmp_path, journal, ("Tag", "j"), ("DB", db), output=dead)
    child = spawn(["-c", conf])
    # The positive signal that all three were read: the output tried to send them.
    wait_for(lambda: log_lines(tmp_path, "failed to flush chunk of 3 records"))
    child.kill()
    assert db_cursor(db) == []
    # Restarted with an output that delivers: everything is read again, and once it is
    # delivered the cursor is that of the last entry.
    conf = write_config(tmp_path, journal, ("Tag", "j"), ("DB", db))
    child = spawn(["-c", conf])
    out = tmp_path / "out" / "j"
    wait_for(lambda: len(messages(out)) == 3)
    last = journal_cursors(journal.folder)[-1]
    wait_for(lambda: db_cursor(db) == [(last,)])
    child.kill()
    # After a SIGKILL that came after delivery, nothing is read twice.
    journal.write(message("after 1"), message("after 2"))
    spawn(["-c", conf])
    wait_for(lambda: "after 2" in messages(out))
    assert messages(out) == ["first 0", "first 1", "first 2", "after 1", "after 2"]
    # Fluent Bit's table, one row.
    conn = sqlite3.connect(db)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(in_systemd_cursor)")]
    conn.close()
    assert columns == ["cursor", "updated"]


def test_options_and_config_errors(tmp_path, journal):
    proc = run_edgeship(["-i", "systemd", "-h"])
    assert proc.returncode == 0
    for name in ("Path", "Systemd_Filter", "Systemd_Filter_Type", "Read_From_Tail", "DB",
                 "Strip_Underscores", "Lowercase", "Max_Entries", "Max_Fields"):
        assert name in proc.stdout
    journal.write(message("x"))
    conf = write_config(tmp_path, journal, ("Systemd_Filter", "not a match"))
    proc = run_edgeship(["--dry-run", "-c", conf])
    assert proc.returncode == 1 and "fluent-bit.conf:9" in proc.stderr, proc.stderr
    assert "systemd_filter" in proc.stderr
    conf = write_config(tmp_path, journal, ("Systemd_Filter_Type", "xor"))
    proc = run_edgeship(["--dry-run", "-c", conf])
    assert proc.returncode == 1 and "fluent-bit.conf:9" in proc.stderr
    (tmp_path / "fluent-bit.conf").write_text(
        "[INPUT]\n    Name systemd\n    Path %s\n[OUTPUT]\n    Name null\n    Match *\n"
        % (journal.folder / "x.journal"))
    proc = run_edgeship(["--dry-run", "-c", str(tmp_path / "fluent-bit.conf")])
    assert proc.returncode == 1 and "fluent-bit.conf:3" in proc.stderr
    assert "not a directory" in proc.stderr


def test_a_path_not_there_yet_is_waited_for(tmp_path, spawn):
    journal = Journal(tmp_path / "later", create=False)
    conf = write_config(tmp_path, journal, ("Tag", "j"))
    # --dry-run accepts it, as Fluent Bit's does.
    assert run_edgeship(["--dry-run", "-c", conf]).returncode == 0
    child = spawn(["-c", conf])
    wait_for(lambda: log_lines(tmp_path, "could not open the journal"))
    journal.folder.mkdir()
    journal.write(message("at last"))
    out = tmp_path / "out" / "j"
    wait_for(lambda: messages(out) == ["at last"], timeout=90)
    assert len(log_lines(tmp_path, "could not open the journal")) == 1
    assert child.proc.poll() is None


def test_a_missing_reader_is_a_config_error_naming_the_package(tmp_path, journal):
    """The library hidden from the child (a stand-in package named systemd without
    _reader first on its path): --dry-run says what to install, no traceback."""
    fake = tmp_path / "fake" / "systemd"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    journal.write(message("x"))
    conf = write_config(tmp_path, journal)
    proc = run_edgeship(["--dry-run", "-c", conf],
                        env={"PYTHONPATH": str(tmp_path / "fake")})
    assert proc.returncode == 1
    assert "apt install python3-systemd" in proc.stderr and "fluent-bit.conf:7" in proc.stderr
    assert "Traceback" not in proc.stderr
