"""The fluent-bit compatible command line, run as a real child process."""
import signal
import textwrap

import pytest

from conftest import run_edgeship, run_edgeship_into_a_closed_pipe


def write(path, text):
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))
    return str(path)


def test_version():
    proc = run_edgeship(["--version"])
    assert proc.returncode == 0 and proc.stdout.startswith("edgeship v")


def test_general_help_lists_plugins():
    proc = run_edgeship(["-h"])
    assert proc.returncode == 0
    assert "Inputs" in proc.stdout and "dummy" in proc.stdout and "null" in proc.stdout


def test_a_plugin_that_is_a_package_is_listed_and_helped_like_a_module():
    """tail is a package (edgeship/plugins/inputs/tail/); its helper modules are not plugins."""
    listing = run_edgeship(["-h"]).stdout
    assert "\n  tail " in listing and "Tail files" in listing
    assert "  discovery " not in listing and "  db " not in listing
    proc = run_edgeship(["-i", "tail", "-h"])
    assert proc.returncode == 0 and "Path" in proc.stdout and "Rotate_Wait" in proc.stdout
    assert run_edgeship(["-i", "tail", "-p", "path=/var/log/x.log", "-o", "null",
                         "--dry-run"]).returncode == 0


@pytest.mark.e2e
def test_a_reader_gone_ends_the_process_quietly_as_it_ends_cat():
    # `edgeship -h | head`: the default SIGPIPE action, no BrokenPipeError traceback.
    for args in (["-h"], ["-i", "tail", "-h"], ["--version"]):
        proc = run_edgeship_into_a_closed_pipe(args)
        assert proc.returncode == -signal.SIGPIPE and proc.stderr == "", (args, proc.stderr)
    proc = run_edgeship_into_a_closed_pipe(["--no-such-option"], stream="stderr")
    assert proc.returncode == -signal.SIGPIPE and proc.stdout == ""


def test_plugin_help_comes_from_the_schema():
    proc = run_edgeship(["-i", "dummy", "-h"])
    assert proc.returncode == 0
    assert "Samples" in proc.stdout and "default: 1" in proc.stdout
    assert run_edgeship(["-i", "nosuch", "-h"]).returncode == 1


def test_every_plugin_declares_each_option_once():
    """A schema refuses an option declared twice; forward's -h printed tls.verify_client_cert
    twice (its own and the TLS options')."""
    from edgeship import plugins
    for kind in plugins.KINDS:
        for name in plugins.names(kind):
            plugins.find(kind, name).schema()
    lines = run_edgeship(["-i", "forward", "-h"]).stdout.splitlines()
    assert [line.split()[0] for line in lines if "verify_client_cert" in line] == \
        ["tls.verify_client_cert"]


def test_help_marks_options_accepted_for_compatibility_only():
    lines = run_edgeship(["-i", "tail", "-h"]).stdout.splitlines()
    compat = [line.split()[0] for line in lines if "compatibility only" in line]
    assert "Inotify_Watcher" in compat and "Threaded" in compat and "Path" not in compat


def test_dry_run_accepts_a_valid_config(tmp_path):
    conf = write(tmp_path / "ok.conf", """\
        [SERVICE]
            Flush 0.5
        [INPUT]
            Name dummy
            Rate 5
        [OUTPUT]
            Name  null
            Match *
        """)
    proc = run_edgeship(["--dry-run", "-c", conf])
    assert proc.returncode == 0, proc.stderr
    assert "configuration test is successful" in proc.stderr


BAD_CONFIGS = {
    "unknown key": ("[INPUT]\n    Name dummy\n    Rat 5\n", 3, "rat"),
    "repeated single key": ("[INPUT]\n    Name dummy\n    Rate 5\n    Rate 6\n", 4, "rate"),
    "bad value": ("[INPUT]\n    Name dummy\n    Rate fast\n", 3, "rate"),
    "unknown plugin": ("[OUTPUT]\n    Name nosuch\n    Match *\n", 2, "name"),
    "bad indentation": ("[INPUT]\n    Name dummy\n  Rate 5\n", 3, None),
    "no value": ("[INPUT]\n    Name\n", 2, "name"),
    "bad service value": ("[SERVICE]\n    Flush soon\n", 2, "flush"),
    "missing parsers file": ("[SERVICE]\n    Parsers_File nope.conf\n", None, "parsers_file"),
    # a record time past 2106 does not fit an EventTime (nor, at 1e19 s, msgpack's int64)
    "dummy start time past 2106": ("[INPUT]\n    Name dummy\n    Start_time_sec 5000000000\n",
                                   3, "start_time_sec"),
    "bad retry limit": ("[OUTPUT]\n    Name null\n    Match *\n    Retry_Limit often\n", 4,
                        "retry_limit"),
    "number out of range": ("[INPUT]\n    Name mqtt\n    Port 70000\n", 3, "port"),
    "integer not a choice": ("[OUTPUT]\n    Name mqtt\n    Match *\n    QoS 3\n", 4, "qos"),
    "invalid accessor in a topic": ("[OUTPUT]\n    Name mqtt\n    Match *\n    Topic t/$k[\n",
                                    4, "topic"),
    "invalid accessor in a tag": ("[OUTPUT]\n    Name forward\n    Match *\n    Tag x.$a|$b\n",
                                  4, "tag"),
}


def test_every_bad_config_gets_one_line_with_file_and_line(tmp_path):
    for label, (text, line, key) in BAD_CONFIGS.items():
        conf = write(tmp_path / "bad.conf", text)
        for args in (["-c", conf], ["--dry-run", "-c", conf]):
            proc = run_edgeship(args)
            assert proc.returncode == 1, label
            first = proc.stderr.splitlines()[0]
            if line is not None:
                assert "%s:%d:" % (conf, line) in first, (label, first)
            if key is not None:
                assert "key '%s'" % key in first, (label, first)


def test_command_line_properties_and_tag(tmp_path):
    proc = run_edgeship(["-i", "dummy", "-p", "samples=x", "-o", "null"])
    assert proc.returncode == 1 and "<command line>" in proc.stderr
    assert "samples" in proc.stderr


def test_missing_config_file(tmp_path):
    proc = run_edgeship(["-c", str(tmp_path / "none.conf")])
    assert proc.returncode == 1 and "could not open configuration file" in proc.stderr
