"""What Fluent Bit 5.1.1 accepts, edgeship accepts: each with a warning at file:line:key where
Fluent Bit says nothing; --strict and [SERVICE] edgeship.strict refuse instead.

Expected records were taken from the real Fluent Bit 5.1.1 binary on the same configs."""
import json
import os

from conftest import SHARED, run_edgeship, wait_for

from edgeship.engine import loader

RFC3164 = """\
[PARSER]
    Name        syslog-rfc3164
    Format      regex
    Regex       /^\\<(?<pri>[0-9]+)\\>(?<time>[^ ]* {1,2}[^ ]* [^ ]*) (?<host>[^ ]*) (?<ident>[a-zA-Z0-9_\\/\\.\\-]*)(?:\\[(?<pid>[0-9]+)\\])?(?:[^\\:]*\\:)? *(?<message>.*)$/
    Time_Key    time
    Time_Format %b %d %H:%M:%S
    Time_Format %Y-%m-%dT%H:%M:%S.%L
    Time_Keep   On
    Match       *
"""


def tail_config(tmp_path, log_lines, tail_keys, parsers=None, service=""):
    (tmp_path / "in.log").write_text("".join(line + "\n" for line in log_lines))
    text = "[SERVICE]\n    Flush 0.1\n    Grace 2\n" + service
    if parsers is not None:
        (tmp_path / "parsers.conf").write_text(parsers)
        text += "    Parsers_File parsers.conf\n"
    text += ("[INPUT]\n    Name tail\n    Path %s\n    Read_From_Head on\n    Exit_On_Eof on\n"
             % (tmp_path / "in.log"))
    text += "".join("    %s %s\n" % kv for kv in tail_keys)
    text += "[OUTPUT]\n    Name file\n    Match *\n    Path %s\n    Format plain\n" % tmp_path
    (tmp_path / "fluent-bit.conf").write_text(text)
    return str(tmp_path / "fluent-bit.conf")


def records(tmp_path, tag="tail.0"):
    return [json.loads(line) for line in (tmp_path / tag).read_text().splitlines()]


def test_repeated_parser_key_first_wins_with_a_warning(tmp_path):
    conf = tail_config(tmp_path, ["<13>May  1 10:00:00 host app[1]: hello"],
                       [("Parser", "syslog-rfc3164")], RFC3164)
    proc = run_edgeship(["-c", conf])
    assert proc.returncode == 0, proc.stderr
    assert "parsers.conf:7: key 'time_format'" in proc.stderr
    assert "parsers.conf:9: key 'match'" in proc.stderr
    # The first Time_Format read the time: Time_Keep shows the text it parsed.
    assert records(tmp_path) == [{"pri": "13", "time": "May  1 10:00:00", "host": "host",
                                  "ident": "app", "pid": "1", "message": "hello"}]
    for args, service in ((["--strict"], ""), ([], "    edgeship.strict on\n")):
        conf = tail_config(tmp_path, ["x"], [("Parser", "syslog-rfc3164")], RFC3164, service)
        proc = run_edgeship(args + ["--dry-run", "-c", conf])
        assert proc.returncode == 1
        assert "parsers.conf:7: key 'time_format'" in proc.stderr.splitlines()[0]


def test_unregistered_tail_parser_reads_raw_lines(tmp_path):
    conf = tail_config(tmp_path, ["line one"], [("Parser", "json_parser")])
    proc = run_edgeship(["-c", conf])
    assert proc.returncode == 0, proc.stderr
    assert "fluent-bit.conf:9: key 'parser'" in proc.stderr
    assert "parser 'json_parser' is not registered" in proc.stderr
    assert records(tmp_path) == [{"log": "line one"}]


def test_unknown_section_and_double_indent_warned(tmp_path):
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[STORAGE]\n  Path /x\n[INPUT]\n  Name dummy\n    Samples 1\n"
                    "[OUTPUT]\n  Name null\n  Match *\n")
    proc = run_edgeship(["--dry-run", "-c", str(conf)])
    assert proc.returncode == 0, proc.stderr
    assert "fluent-bit.conf:1: unknown section [STORAGE] ignored" in proc.stderr
    assert "fluent-bit.conf:5: key 'samples'" in proc.stderr
    proc = run_edgeship(["--strict", "--dry-run", "-c", str(conf)])
    assert proc.returncode == 1 and "fluent-bit.conf:1: unknown section" in proc.stderr


def test_old_multiline_mode_as_fluent_bit(tmp_path):
    parsers = """\
[PARSER]
    Name   first
    Format regex
    Regex  ^(?<time>\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d) (?<level>[A-Z]+) (?<msg>.*)$
    Time_Key time
    Time_Format %Y-%m-%d %H:%M:%S
[PARSER]
    Name   kv
    Format regex
    Regex  ^  code=(?<code>\\d+)$
"""
    lines = ["2024-05-01 10:00:00 ERROR boom", "  at a.b(c)", "  at d.e(f)", "  code=42",
             "  tail line", "2024-05-01 10:00:01 INFO ok", "no first"]
    conf = tail_config(tmp_path, lines, [("Multiline", "On"), ("Parser_Firstline", "first"),
                                         ("Parser_1", "kv")], parsers)
    proc = run_edgeship(["-c", conf])
    assert proc.returncode == 0, proc.stderr
    assert records(tmp_path) == [
        {"level": "ERROR", "msg": "boom\n  at a.b(c)\n  at d.e(f)", "code": "42\n  tail line"},
        {"level": "INFO", "msg": "ok\nno first"}]
    conf = tail_config(tmp_path, lines, [("Multiline", "On"), ("Parser_Firstline", "nope")],
                       parsers)
    proc = run_edgeship(["--dry-run", "-c", conf])
    assert proc.returncode == 1 and "key 'parser_firstline'" in proc.stderr


def test_truncate_long_lines_keeps_the_head(tmp_path):
    conf = tail_config(tmp_path, ["short", "x" * 100, "after"],
                       [("truncate_long_lines", "on"), ("Buffer_Chunk_Size", "32"),
                        ("Buffer_Max_Size", "32")])
    proc = run_edgeship(["-c", conf])
    assert proc.returncode == 0, proc.stderr
    # Fluent Bit 5.1.1: the line cut to Buffer_Max_Size - 1 bytes ("after" is lost there).
    assert records(tmp_path) == [{"log": "short"}, {"log": "x" * 31}, {"log": "after"}]


def test_stock_parsers_file_at_its_standard_place(tmp_path, monkeypatch):
    assert loader.STOCK_DIRS[0] == "/fluent-bit/etc"
    conf = tail_config(tmp_path, ['{"time":"2024-05-01T10:00:00.5","log":"hi"}'],
                       [("Parser", "docker")])
    text = open(conf).read().replace(
        "    Grace 2\n", "    Grace 2\n    Parsers_File /fluent-bit/etc/parsers.conf\n")
    open(conf, "w").write(text)
    proc = run_edgeship(["-c", conf])
    assert proc.returncode == 0, proc.stderr
    assert "'/fluent-bit/etc/parsers.conf' is absent: using edgeship's stock parsers" \
        in proc.stderr
    assert records(tmp_path) == [{"time": "2024-05-01T10:00:00.5", "log": "hi"}]


def test_every_stock_parser_loads_with_its_fluent_bit_name(tmp_path):
    vectors = os.path.join(SHARED, "reference", "vectors", "parsers_conf_v5.1.1.json")
    names = []
    with open(loader.STOCK_PARSERS) as f:
        for line in f:
            if line.strip().lower().startswith("name "):
                names.append(line.split()[1])
    with open(vectors) as f:
        expected = [dict(p["properties"])["Name"] for p in json.load(f)["parsers"]]
    assert names == expected
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[SERVICE]\n    Parsers_File %s\n[INPUT]\n    Name dummy\n"
                    "[OUTPUT]\n    Name null\n    Match *\n" % loader.STOCK_PARSERS)
    proc = run_edgeship(["--strict", "--dry-run", "-c", str(conf)])
    assert proc.returncode == 0, proc.stderr


def test_plugins_file_names_what_cannot_load(tmp_path):
    (tmp_path / "plugins.conf").write_text("[PLUGINS]\n    Path /fluent-bit/bin/out_x.so\n")
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[SERVICE]\n    Plugins_File plugins.conf\n[INPUT]\n    Name dummy\n"
                    "[OUTPUT]\n    Name null\n    Match *\n")
    proc = run_edgeship(["--dry-run", "-c", str(conf)])
    assert proc.returncode == 0, proc.stderr
    assert "plugins.conf:2: plugin '/fluent-bit/bin/out_x.so' is a shared object" in proc.stderr


def test_forward_and_file_keys_fluent_bit_takes(tmp_path):
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[INPUT]\n    Name forward\n    Port 0\n    Workers 2\n"
                    "    Buffer_Chunk_Size 1M\n    Buffer_Max_Size 64k\n"
                    "[OUTPUT]\n    Name file\n    Match *\n    Path %s\n    rotate on\n"
                    "    rotate_max_size 10M\n    rotate_max_files 3\n    rotate_gzip off\n"
                    % tmp_path)
    proc = run_edgeship(["--dry-run", "-c", str(conf)])
    assert proc.returncode == 0, proc.stderr
    assert "fluent-bit.conf:11: key 'rotate'" in proc.stderr


def test_docker_mode_joins_split_lines_as_fluent_bit(tmp_path):
    parts = [{"log": "part one ", "stream": "stdout", "time": "2024-05-01T10:00:00.1Z"},
             {"log": 'part "two"\n', "stream": "stdout", "time": "2024-05-01T10:00:00.2Z"},
             {"log": "whole\n", "stream": "stderr", "time": "2024-05-01T10:00:01.0Z"},
             "not json",
             {"stream": "stdout", "log": "tail end", "time": "2024-05-01T10:00:02.0Z"},
             {"log": "x\n", "time": "2024-05-01T10:00:03.0Z"},
             {"log": "pending", "time": "2024-05-01T10:00:04.0Z"}]
    lines = [p if isinstance(p, str) else json.dumps(p) for p in parts]
    parsers = "[PARSER]\n    Name docker\n    Format json\n    Time_Key time\n" \
              "    Time_Format %Y-%m-%dT%H:%M:%S.%L\n    Time_Keep On\n"
    conf = tail_config(tmp_path, lines, [("Docker_Mode", "On"), ("Parser", "docker")], parsers)
    proc = run_edgeship(["-c", conf])
    assert proc.returncode == 0, proc.stderr
    # Records of Fluent Bit 5.1.1 on the same file.
    assert records(tmp_path) == [
        {"log": 'part one part "two"\n', "stream": "stdout", "time": "2024-05-01T10:00:00.2Z"},
        {"log": "whole\n", "stream": "stderr", "time": "2024-05-01T10:00:01.0Z"},
        {"log": "not json"},
        {"log": "tail endx\n", "time": "2024-05-01T10:00:03.0Z"},
        {"log": "pending", "time": "2024-05-01T10:00:04.0Z"}]
    (tmp_path / "tail.0").unlink()
    conf = tail_config(tmp_path, lines, [("Docker_Mode", "On")])
    assert run_edgeship(["-c", conf]).returncode == 0
    assert records(tmp_path)[0] == {"log": '{"log": "part one part \\"two\\"\\n", "stream": '
                                           '"stdout", "time": "2024-05-01T10:00:00.2Z"}'}


def test_integer_with_a_trailing_comment_read_as_atoi_does(tmp_path, spawn):
    """Fluent Bit reads integer options with atoi: `Samples 3  # three` is 3 (a real config
    of the corpus writes its Interval_Sec so). A warning at file:line:key; strict refuses;
    a value with no leading digits stays an error."""
    conf = tmp_path / "fluent-bit.conf"
    text = ("[SERVICE]\n    Flush 0.1\n"
            "[INPUT]\n    Name dummy\n    Samples 3   # three records\n    Rate 50\n"
            "[OUTPUT]\n    Name file\n    Match *\n    Path %s\n    Format plain\n" % tmp_path)
    conf.write_text(text)
    child = spawn(["-c", str(conf)])
    output = tmp_path / "dummy.0"
    wait_for(lambda: output.exists() and output.read_text().count("\n") >= 3)
    code, _, stderr = child.terminate()
    assert code == 0, stderr
    assert "fluent-bit.conf:5: key 'samples': '3   # three records' is not an integer" \
        in stderr
    assert records(tmp_path, "dummy.0") == [{"message": "dummy"}] * 3
    proc = run_edgeship(["--strict", "--dry-run", "-c", str(conf)])
    assert proc.returncode == 1 and "fluent-bit.conf:5: key 'samples'" in proc.stderr
    conf.write_text(text.replace("3   # three records", "three"))
    proc = run_edgeship(["--dry-run", "-c", str(conf)])
    assert proc.returncode == 1
    assert "fluent-bit.conf:5: key 'samples': dummy: invalid value: expected an integer" \
        in proc.stderr


def test_what_fluent_bit_checks_at_start_warns_in_a_dry_run(tmp_path):
    """A TLS file absent on this machine, an undecodable es Cloud_ID, a unix syslog socket
    without Path: Fluent Bit's --dry-run passes them and its run fails at the plugin's init.
    edgeship's dry run warns at file:line:key and passes; the run stops with the error
    before any record is read; --strict refuses in the dry run too."""
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(
        "[INPUT]\n    Name syslog\n    Mode unix_udp\n"
        "[OUTPUT]\n    Name forward\n    Match *\n    tls on\n"
        "    tls.ca_file %s\n"
        "[OUTPUT]\n    Name es\n    Match *\n    Cloud_ID name:bm90IGJhc2U2NA$$\n"
        % (tmp_path / "absent-ca.crt"))
    wanted = ["fluent-bit.conf:1: key 'path': Mode unix_udp needs Path",
              "fluent-bit.conf:8: key 'tls.ca_file': cannot load",
              "fluent-bit.conf:12: key 'cloud_id': es: cannot decode Cloud_ID"]
    proc = run_edgeship(["--dry-run", "-c", str(conf)])
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "[ warn]" in line]
    for text in wanted:
        assert any(text in line and "a run stops here" in line for line in warnings), text
    for args in (["-c", str(conf)], ["--strict", "--dry-run", "-c", str(conf)]):
        proc = run_edgeship(args)
        assert proc.returncode == 1
        errors = [line for line in proc.stderr.splitlines() if line.startswith("[error]")]
        for text in wanted:
            assert any(text in line for line in errors), (args, text)
