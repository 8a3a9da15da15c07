"""What the command line tells a user: -v/-vv levels, one start-up line per input and
output, every config error of a run at once with its file:line and a "did you mean"."""
import textwrap

from conftest import run_edgeship


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_every_error_is_reported_in_one_run_with_its_line_and_a_suggestion(tmp_path):
    conf = write(tmp_path / "fluent-bit.conf", """\
        [SERVICE]
            Parsers_File missing-parsers.conf
            HTTP_Prot    2021

        [INPUT]
            Name dumy

        [INPUT]
            Name  tail
            Pathh /var/log/x.log

        [OUTPUT]
            Name  stdout
            Match *
            Formt json
        """)
    proc = run_edgeship(["-c", conf, "--dry-run"])
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("[error] [config]")]
    assert len(errors) == 4, proc.stderr
    assert errors[0].startswith("[error] [config] %s:2: key 'parsers_file': cannot read "
                                "'%s'" % (conf, tmp_path / "missing-parsers.conf"))
    assert errors[1] == ("[error] [config] %s:6: key 'name': section 'dumy' tried to instance "
                         "a plugin name that doesn't exist (did you mean 'dummy'?)" % conf)
    assert errors[2].startswith("[error] [config] %s:10: key 'pathh': tail: unknown "
                                "configuration property 'pathh' (did you mean 'path'?). "
                                "The following properties are allowed: " % conf)
    assert "%s:15: key 'formt'" % conf in errors[3] and "(did you mean 'format'?)" in errors[3]
    # An unknown [SERVICE] key is ignored as Fluent Bit does, with a warning.
    assert ("%s:3: unknown [SERVICE] key 'http_prot' ignored (did you mean 'http_port'?)"
            % conf) in proc.stderr


def test_a_missing_parser_points_at_the_parser_line(tmp_path):
    parsers = write(tmp_path / "parsers.conf", """\
        [PARSER]
            Name   json
            Format json
        """)
    conf = write(tmp_path / "fluent-bit.conf", """\
        [SERVICE]
            Parsers_File %s

        [INPUT]
            Name   tail
            Path   /var/log/x.log
            Parser jsn
        """ % parsers)
    # Fluent Bit 5.1.1 accepts it (lines are read raw): a warning at the line; --strict fails.
    proc = run_edgeship(["-c", conf, "--dry-run"])
    assert proc.returncode == 0
    assert "%s:7: key 'parser': tail: parser 'jsn' is not registered" % conf in proc.stderr
    proc = run_edgeship(["-c", conf, "--dry-run", "--strict"])
    assert proc.returncode == 1
    assert "[error] [config] %s:7: key 'parser': tail: parser 'jsn' is not registered" % conf \
        in proc.stderr


def test_a_missing_parsers_file_on_the_command_line_is_located(tmp_path):
    proc = run_edgeship(["-R", str(tmp_path / "none.conf"), "-i", "dummy", "-o", "null", "-D"])
    assert proc.returncode == 1
    assert "<command line>:1: key 'parsers_file': cannot read '%s'" % (tmp_path / "none.conf") \
        in proc.stderr


def _tail_to_the_end(tmp_path, *flags):
    log = tmp_path / "app.log"
    log.write_text("one\ntwo\n")
    return run_edgeship(list(flags) + ["-i", "tail", "-p", "path=%s" % log,
                                       "-p", "read_from_head=on", "-p", "exit_on_eof=on",
                                       "-o", "forward", "-p", "host=127.0.0.1", "-p",
                                       "port=9", "-p", "retry_limit=no_retries"])


def test_start_up_says_what_each_input_reads_and_where_each_output_sends(tmp_path):
    proc = _tail_to_the_end(tmp_path)
    assert "[ info] [input] tail.0 (tail) reads path=%s, tag tail.0" % (tmp_path / "app.log") \
        in proc.stderr
    assert "[ info] [output] forward.0 (forward) sends tags matching * to host=127.0.0.1 " \
        "port=9" in proc.stderr
    assert "[debug]" not in proc.stderr


def test_v_is_debug_and_vv_trace_as_in_fluent_bit(tmp_path):
    debug = _tail_to_the_end(tmp_path, "-v")
    assert "[debug] [engine] every exit-on-eof input is done" in debug.stderr
    trace = _tail_to_the_end(tmp_path, "-vv")
    assert "[debug] [engine] every exit-on-eof input is done" in trace.stderr
    quiet = _tail_to_the_end(tmp_path, "-q")
    assert quiet.stderr == ""
