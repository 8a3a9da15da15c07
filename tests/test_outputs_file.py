"""file output, run as a real edgeship child process writing real files."""
import json
import os
import signal
import stat
import subprocess
import textwrap

import pytest

from conftest import EDGESHIP, SHARED, run_edgeship, wait_for
from edgeship.plugins.outputs.file import file_name_of_tag

CASE = os.path.join(SHARED, "conformance", "cases")


def corpus(case, name):
    with open(os.path.join(CASE, case, "expected", name), "rb") as f:
        return f.read()


def rec_log_lines():
    """The output_* cases' records, as stdin lines ``[seconds, record]`` (the time the
    json parser gave them in Fluent Bit)."""
    lines = []
    for line in corpus("output_default_format", "edge.rec").decode().splitlines():
        stamp, _, body = line[len("edge.rec: ["):-1].partition(", ")
        assert stamp.endswith(".000000000")
        lines.append("[%s, %s]" % (stamp.split(".")[0], body))
    return "\n".join(lines) + "\n"


def write_config(tmp_path, body, log_file=None):
    conf = tmp_path / "edgeship.conf"
    service = "[SERVICE]\n    Flush 0.2\n    Grace 30\n"
    if log_file:
        service += "    Log_File %s\n" % log_file
    conf.write_text(service + textwrap.dedent(body))
    return str(conf)


def output(name, **keys):
    lines = ["[OUTPUT]", "    Name file", "    Match *"]
    lines += ["    %s %s" % (k, v) for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def test_every_format_writes_the_bytes_fluent_bit_wrote(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    body = "[INPUT]\n    Name stdin\n    Tag edge.rec\n" + "".join([
        output("file", Path=out),                                       # out_file, File = tag
        output("file", Path=out, File="comma.csv", Format="csv"),
        output("file", Path=out, File="tab.tsv", Format="csv", Delimiter="tab"),
        output("file", Path=out, File="semicolon.csv", Format="csv", Delimiter=";"),
        output("file", Path=out, File="header.csv", Format="csv", csv_column_names="true"),
        output("file", Path=out, File="records.ltsv", Format="ltsv"),
        output("file", Path=out, File="custom.ltsv", Format="ltsv", Delimiter="space",
               Label_Delimiter="="),
        output("file", Path=out, File="template.txt", Format="template",
               Template="[{time}] {host}: {msg} n={n} missing={nope}"),
        output("file", Path=out, File="default-template.txt", Format="template"),
    ])
    result = run_edgeship(["-c", write_config(tmp_path, body)], input=rec_log_lines())
    assert result.returncode == 0, result.stderr
    assert "Delimiter ';' is not tab, space or comma" in result.stderr
    assert "Label_Delimiter '=' is not tab, space or comma" in result.stderr
    assert (out / "edge.rec").read_bytes() == corpus("output_default_format", "edge.rec")
    for name in ("comma.csv", "tab.tsv", "semicolon.csv", "header.csv"):
        assert (out / name).read_bytes() == corpus("output_csv_delimiters", name), name
    for name in ("records.ltsv", "custom.ltsv", "template.txt", "default-template.txt"):
        assert (out / name).read_bytes() == corpus("output_ltsv_template", name), name


def test_plain_and_msgpack_formats(tmp_path):
    import msgpack

    body = "[INPUT]\n    Name stdin\n    Tag t\n" + output(
        "plain", Path=tmp_path, File="p.jsonl", Format="plain") + output(
        "msgpack", Path=tmp_path, File="m.bin", Format="msgpack")
    lines = '[1711360801, {"a":1,"f":0.5,"s":"\\u00e9"}]\n[1711360802, {}]\n'
    result = run_edgeship(["-c", write_config(tmp_path, body)], input=lines)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "p.jsonl").read_bytes() == b'{"a":1,"f":0.5,"s":"\\u00e9"}\n{}\n'
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed((tmp_path / "m.bin").read_bytes())
    assert [(item[0][0].data, item[1]) for item in unpacker] == [
        (b"\x66\x01\x4b\x21\x00\x00\x00\x00", {"a": 1, "f": 0.5, "s": "é"}),
        (b"\x66\x01\x4b\x22\x00\x00\x00\x00", {})]


def test_appends_to_an_existing_file_and_writes_the_csv_header_once(tmp_path):
    body = "[INPUT]\n    Name stdin\n    Tag t\n" + output(
        "csv", Path=tmp_path, File="x.csv", Format="csv", csv_column_names="on")
    conf = write_config(tmp_path, body)
    for sec in (1711360801, 1711360802):
        result = run_edgeship(["-c", conf], input='[%d, {"k":"v"}]\n' % sec)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "x.csv").read_bytes() == (
        b'timestamp,"k"\n1711360801.000000000,"v"\n1711360802.000000000,"v"\n')


def test_missing_directory_is_retried_until_it_exists(tmp_path):
    missing = tmp_path / "not" / "yet"
    log = tmp_path / "edgeship.log"
    body = "[INPUT]\n    Name stdin\n    Tag t\n" + output(
        "plain", Path=missing, Format="plain", Retry_Limit="no_limits")
    conf = write_config(tmp_path, body, log)
    proc = subprocess.Popen(EDGESHIP + ["-c", conf], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        proc.stdin.write(b'[1711360801, {"n":1}]\n[1711360801, {"n":2}]\n')
        proc.stdin.close()
        wait_for(lambda: log.exists() and b"does not exist" in log.read_bytes())
        text = log.read_text()
        assert "cannot write 2 records to %s/t" % missing in text
        assert "set Mkdir on" in text
        assert proc.poll() is None   # not a crash: the chunk waits
        missing.mkdir(parents=True)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert (missing / "t").read_bytes() == b'{"n":1}\n{"n":2}\n'


def test_mkdir_creates_the_nested_directory_with_mode_0755(tmp_path):
    nested = tmp_path / "a" / "b" / "c"
    body = "[INPUT]\n    Name stdin\n    Tag edge.rec\n" + output("x", Path=nested, Mkdir="on")
    result = run_edgeship(["-c", write_config(tmp_path, body)], input=rec_log_lines())
    assert result.returncode == 0, result.stderr
    assert (nested / "edge.rec").read_bytes() == corpus("output_default_format", "edge.rec")
    umask = os.umask(0)
    os.umask(umask)
    for folder in (tmp_path / "a", tmp_path / "a" / "b", nested):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755 & ~umask


def test_file_names_from_tags_cannot_leave_path(tmp_path):
    assert file_name_of_tag("app.log") == "app.log"
    assert file_name_of_tag("../../etc/passwd") == "_/_/etc/passwd"
    assert file_name_of_tag("/abs//x\\y") == "abs/x/y"
    assert file_name_of_tag("a b:c*é") == "a_b_c___"
    assert file_name_of_tag("") == "_"
    out = tmp_path / "out"
    body = "[INPUT]\n    Name stdin\n    Tag ../x y\n" + output("x", Path=out, Mkdir="on")
    result = run_edgeship(["-c", write_config(tmp_path, body)], input='[1, {"a":1}]\n')
    assert result.returncode == 0, result.stderr
    assert (out / "_" / "x_y").read_bytes() == b'../x y: [1.000000000, {"a":1}]\n'
    assert sorted(os.listdir(tmp_path)) == ["edgeship.conf", "out"]


def test_a_moved_file_is_recreated_and_the_moved_one_is_complete(tmp_path, spawn):
    target = tmp_path / "app.jsonl"
    child = spawn(["-i", "dummy", "-p", "rate=50", "-p", 'dummy={"m":"x"}', "-f", "0.1",
                   "-o", "file", "-m", "*", "-p", "path=%s" % tmp_path, "-p", "file=app.jsonl",
                   "-p", "format=plain"])
    wait_for(lambda: target.exists() and target.stat().st_size > 0)
    moved = tmp_path / "app.jsonl.1"
    os.rename(target, moved)
    wait_for(lambda: target.exists() and target.stat().st_size > 0)
    code, _, err = child.terminate()
    assert code == 0, err
    for path in (moved, target):
        data = path.read_bytes()
        assert data.endswith(b"\n") and set(data.splitlines()) == {b'{"m":"x"}'}


def test_unknown_format_is_a_config_error(tmp_path):
    result = run_edgeship(["-i", "dummy", "-o", "file", "-p", "format=xml", "--dry-run"])
    assert result.returncode == 1
    assert "format" in result.stderr and "xml" in result.stderr


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % done.stderr.strip())
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(folder):
    """Fill the file system of ``folder``; returns the filler file."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        block = b"\0" * 65536
        try:
            while True:
                f.write(block)
        except OSError:
            pass
        try:
            while True:  # the last few bytes
                f.write(b"\0")
        except OSError:
            pass
    return filler


def test_full_disk_is_retried_and_loses_nothing(tmp_path, small_disk):
    log = tmp_path / "edgeship.log"
    records = ['[1711360801, {"seq":%d,"pad":"%s"}]' % (i, "x" * 150) for i in range(3000)]
    body = "[INPUT]\n    Name stdin\n    Tag t\n" + output(
        "plain", Path=small_disk, File="out.jsonl", Format="plain", Retry_Limit="no_limits")
    conf = write_config(tmp_path, body, log)
    # Leave room for part of the data only: the first chunk may go in, a later one is cut
    # off by ENOSPC half way.
    filler = fill(small_disk)
    os.truncate(filler, os.path.getsize(filler) - 200000)
    proc = subprocess.Popen(EDGESHIP + ["-c", conf], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        proc.stdin.write(("\n".join(records) + "\n").encode())
        proc.stdin.close()
        wait_for(lambda: log.exists() and b"No space left on device" in log.read_bytes())
        assert proc.poll() is None
        # Every byte of a failed chunk was cut off again: only whole lines on disk.
        data = (small_disk / "out.jsonl").read_bytes() if (small_disk / "out.jsonl").exists() \
            else b""
        assert data == b"" or data.endswith(b"\n")
        os.unlink(filler)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    lines = (small_disk / "out.jsonl").read_bytes().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == list(range(3000))
    assert "will retry" in log.read_text()
