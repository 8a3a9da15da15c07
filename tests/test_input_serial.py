"""serial input: real ptys (os.openpty) and socat's linked pty pairs, a real edgeship child
process, the file output as the witness. Unplugging is socat killed (its ptys close) and
started again on the same link paths."""
import json
import os
import signal
import subprocess
import tty

import pytest

from conftest import run_edgeship, wait_for


def records(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def messages(path):
    return [r["msg"] for r in records(path)]


def write_config(tmp_path, device, *entries, bitrate=9600):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    text = ("[SERVICE]\n    Flush 0.1\n    Grace 2\n    Log_Level info\n"
            + "    Log_File %s\n" % (tmp_path / "edgeship.log")
            + "[INPUT]\n    Name serial\n    Tag dev\n    File %s\n    Bitrate %d\n" % (device, bitrate)
            + "".join("    %s %s\n" % kv for kv in entries)
            + "[OUTPUT]\n    Name file\n    Match *\n    Path %s\n    Format plain\n" % out)
    (tmp_path / "fluent-bit.conf").write_text(text)
    return str(tmp_path / "fluent-bit.conf")


def synced(fd, out, ready, sync):
    """Writes ``ready`` until it comes out (bytes written before the device is opened are
    flushed at open, as Fluent Bit does), then ``sync`` once: after it nothing waits."""
    before = len(messages(out))
    wait_for(lambda: os.write(fd, ready) and len(messages(out)) > before, timeout=30)
    os.write(fd, sync)
    last = sync.decode().strip('"\n;')
    wait_for(lambda: str(messages(out)[-1]).endswith(last))


@pytest.fixture
def pty_pair():
    """(writer fd, device path): the test writes to the master, edgeship opens the slave."""
    master, slave = os.openpty()
    tty.setraw(slave)
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def test_separator_records_and_fluent_bit_head_cleanup(tmp_path, spawn, pty_pair):
    master, device = pty_pair
    conf = write_config(tmp_path, device, ("Separator", ";"))
    spawn(["-c", conf])
    out = tmp_path / "out" / "dev"
    # Until the input reads, what is written is flushed away at open (as Fluent Bit does):
    # write until a marker comes out.
    synced(master, out, b"ready;", b"sync;")
    before = len(messages(out))
    # A leading NUL (FTDI) and then a leading LF are dropped; empty pieces are skipped; a
    # piece without its separator waits for the rest.
    os.write(master, b"\x00\nhello;world;;par")
    wait_for(lambda: "world" in messages(out))
    os.write(master, "tial \xe2\x9c\x93;end;".encode("latin-1"))
    wait_for(lambda: "end" in messages(out))
    got = messages(out)[before:]
    assert got == ["hello", "world", "partial \u2713", "end"]
    assert records(out)[-1] == {"msg": "end"}
    # 8191 bytes (Fluent Bit's buffer) without a separator go out as they are, not dropped.
    os.write(master, b"A" * 9000 + b";")
    wait_for(lambda: messages(out)[-1].startswith("A") and sum(
        len(m) for m in messages(out) if m.startswith("A")) == 9000)
    assert [len(m) for m in messages(out) if m.startswith("A")] == [8191, 809]


def test_format_json_nests_values_under_msg_and_skips_invalid(tmp_path, spawn, pty_pair):
    master, device = pty_pair
    conf = write_config(tmp_path, device, ("Format", "json"))
    spawn(["-c", conf])
    out = tmp_path / "out" / "dev"
    synced(master, out, b'"ready"\n', b'"sync"\n')
    before = len(messages(out))
    # Values back to back or across writes; a map nests under msg; two invalid lines in one
    # read are counted together, logged once, and the values after them are kept.
    os.write(master, b'{"t": 21.5, "id": "a"} [1, 2]{"n"')
    wait_for(lambda: [1, 2] in messages(out))
    os.write(master, b': null}\nnot json\n{bad\n{"after": true}\n')
    wait_for(lambda: {"after": True} in messages(out))
    assert messages(out)[before:] == [{"t": 21.5, "id": "a"}, [1, 2], {"n": None},
                                      {"after": True}]
    warnings = log_lines(tmp_path, "invalid JSON")
    assert len(warnings) == 1 and "(2 in this read)" in warnings[0]


def test_without_separator_each_read_is_a_record(tmp_path, spawn, pty_pair):
    master, device = pty_pair
    # A rate outside the kernel's table (a 3D printer's) is set as given.
    conf = write_config(tmp_path, device, bitrate=250000)
    spawn(["-c", conf])
    out = tmp_path / "out" / "dev"
    synced(master, out, b"ready", b"sync")
    os.write(master, b"\rline one\n")
    wait_for(lambda: "line one\n" in messages(out))


def start_socat(tmp_path):
    device, far_end = str(tmp_path / "ttyDEV"), str(tmp_path / "ttyFAR")
    proc = subprocess.Popen(["socat", "pty,raw,echo=0,link=%s" % device,
                             "pty,raw,echo=0,link=%s" % far_end],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: os.path.exists(device) and os.path.exists(far_end))
    return proc, device, far_end


def unplug(socat):
    """socat dies without cleaning up (its links dangle) and its ptys close."""
    socat.send_signal(signal.SIGKILL)
    socat.wait()


@pytest.mark.e2e
def test_unplug_and_replug_loses_nothing_read(tmp_path, spawn):
    socat, device, far_end = start_socat(tmp_path)
    conf = write_config(tmp_path, device, ("Separator", ";"))
    child = spawn(["-c", conf])
    out = tmp_path / "out" / "dev"
    # (The far end stays open until socat is gone: socat ends by itself when it closes.)
    far = os.open(far_end, os.O_WRONLY | os.O_NOCTTY)
    synced(far, out, b"ready;", b"sync;")
    os.write(far, b"a1;a2;half-")
    wait_for(lambda: "a2" in messages(out))
    unplug(socat)
    os.close(far)
    # The piece read before the unplug is emitted on its own, not lost.
    wait_for(lambda: "half-" in messages(out))
    os.unlink(device)
    os.unlink(far_end)
    socat, device, far_end = start_socat(tmp_path)
    far = os.open(far_end, os.O_WRONLY | os.O_NOCTTY)
    try:
        synced(far, out, b"back;", b"sync;")
        os.write(far, b"b1;b2;")
        wait_for(lambda: "b2" in messages(out))
    finally:
        unplug(socat)
        os.close(far)
    got = [m for m in messages(out) if m not in ("ready", "back", "sync")]
    assert got == ["a1", "a2", "half-", "b1", "b2"]
    # One warning per unplug however many reopen attempts failed, one line when it is back.
    wait_for(lambda: len(log_lines(tmp_path, "is gone")) == 2)
    assert len(log_lines(tmp_path, "opened after")) == 1
    assert len(log_lines(tmp_path, "[ warn]")) == 2
    assert child.proc.poll() is None


def log_lines(tmp_path, text):
    with open(tmp_path / "edgeship.log", encoding="utf-8") as f:
        return [line for line in f if text in line]


def test_device_missing_at_start_is_waited_for(tmp_path, spawn):
    device = str(tmp_path / "ttyDEV")
    conf = write_config(tmp_path, device, ("Separator", ";"))
    child = spawn(["-c", conf])
    out = tmp_path / "out" / "dev"
    wait_for(lambda: os.path.exists(tmp_path / "edgeship.log")
             and log_lines(tmp_path, "cannot open"))
    socat, device, far_end = start_socat(tmp_path)
    far = os.open(far_end, os.O_WRONLY | os.O_NOCTTY)
    try:
        wait_for(lambda: os.write(far, b"late;") and "late" in messages(out), timeout=60)
    finally:
        unplug(socat)
        os.close(far)
    assert len(log_lines(tmp_path, "cannot open %s" % device)) == 1
    assert len(log_lines(tmp_path, "opened after")) == 1
    assert child.proc.poll() is None


def test_options_and_config_errors(tmp_path):
    proc = run_edgeship(["-i", "serial", "-h"])
    assert proc.returncode == 0
    for name in ("File", "Bitrate", "Separator", "Format", "Min_Bytes"):
        assert name in proc.stdout
    conf = write_config(tmp_path, "/dev/ttyS0", ("Separator", ";"), ("Format", "json"))
    proc = run_edgeship(["--dry-run", "-c", conf])
    assert proc.returncode == 1 and "fluent-bit.conf:" in proc.stderr
    assert "'format' or 'separator', not both" in proc.stderr
    conf = write_config(tmp_path, "/dev/ttyS0", ("Format", "xml"))
    proc = run_edgeship(["--dry-run", "-c", conf])
    assert proc.returncode == 1 and "format" in proc.stderr.lower()
    (tmp_path / "fluent-bit.conf").write_text(
        "[INPUT]\n    Name serial\n    File /dev/ttyS0\n    Bitrate 0\n"
        "[OUTPUT]\n    Name null\n    Match *\n")
    proc = run_edgeship(["--dry-run", "-c", str(tmp_path / "fluent-bit.conf")])
    assert proc.returncode == 1 and "fluent-bit.conf:4" in proc.stderr, proc.stderr
    assert "bitrate" in proc.stderr.lower()
    (tmp_path / "fluent-bit.conf").write_text(
        "[INPUT]\n    Name serial\n    Bitrate 9600\n[OUTPUT]\n    Name null\n    Match *\n")
    proc = run_edgeship(["--dry-run", "-c", str(tmp_path / "fluent-bit.conf")])
    assert proc.returncode == 1 and "file" in proc.stderr.lower()
