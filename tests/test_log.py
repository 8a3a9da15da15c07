"""Log lines: Fluent Bit's format, and per-record warnings that cannot flood the log."""
import io
import json
import time

from conftest import run_edgeship
from edgeship.engine.log import Log


def test_line_format_and_levels():
    out = io.StringIO()
    log = Log("warn", out).child("tail.0")
    log.info("hidden")
    log.warn("shown %d", 1)
    line = out.getvalue()
    assert line.count("\n") == 1 and line.rstrip().endswith("[ warn] [tail.0] shown 1")
    assert line.startswith("[") and line[24:27] == "] ["


def test_repeated_message_is_written_once_per_window_with_the_count_left_out():
    out = io.StringIO()
    log = Log("info", out)
    log.repeat_window = 0.2
    for i in range(500):
        log.warn_often("bad time '%s'", i)
    log.warn_often("another message")
    assert out.getvalue().count("bad time") == 1 and "another message" in out.getvalue()
    time.sleep(0.25)
    log.warn_often("bad time '%s'", "x")
    last = out.getvalue().splitlines()[-1]
    assert last.endswith("bad time 'x' (499 more like this left out)")


def test_a_file_of_bad_times_gives_a_few_warnings_and_every_record(tmp_path):
    (tmp_path / "parsers.conf").write_text(
        "[PARSER]\n    Name t\n    Format json\n    Time_Key time\n"
        "    Time_Format %Y-%m-%dT%H:%M:%S\n")
    (tmp_path / "in.log").write_text(
        "".join('{"time":"not a time %d","n":%d}\n' % (i, i) for i in range(2000)))
    proc = run_edgeship(["-R", str(tmp_path / "parsers.conf"), "-f", "0.2", "-i", "tail",
                         "-p", "path=%s" % (tmp_path / "in.log"), "-p", "read_from_head=on",
                         "-p", "exit_on_eof=on", "-p", "parser=t", "-o", "stdout",
                         "-p", "format=json_lines"])
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["n"] for r in records] == list(range(2000))
    warnings = [line for line in proc.stderr.splitlines() if "invalid time format" in line]
    assert 1 <= len(warnings) < 20


def test_builtin_multiline_pre_parsers_log_through_the_instance_log(tmp_path):
    """docker's JSON pre-parser warns through the log of the tail that uses it: into
    Log_File, under the tail's name, at the tail's Log_Level; never straight to stderr."""
    (tmp_path / "in.log").write_text('{"log":"x\\n","stream":"stdout","time":12}\n')
    for level, shown in (("info", True), ("error", False)):
        log_file = tmp_path / ("edgeship-%s.log" % level)
        (tmp_path / "fluent-bit.conf").write_text(
            "[SERVICE]\n    Flush 0.2\n    Log_File %s\n"
            "[INPUT]\n    Name tail\n    Path %s\n    Read_From_Head on\n    Exit_On_Eof on\n"
            "    multiline.parser docker\n    Log_Level %s\n"
            "[OUTPUT]\n    Name stdout\n    Match *\n    Format json_lines\n"
            % (log_file, tmp_path / "in.log", level))
        proc = run_edgeship(["-c", str(tmp_path / "fluent-bit.conf")])
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["log"] == "x\n"     # the record went through
        assert proc.stderr == ""
        text = log_file.read_text()
        assert ("[ warn] [tail.0] invalid non-string time" in text) is shown, text
