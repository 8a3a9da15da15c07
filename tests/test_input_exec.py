"""exec input: real commands through /bin/sh, run by the real edgeship process."""
import json
import os
import signal
import subprocess
import threading

import pytest

from conftest import EDGESHIP, run_edgeship, wait_for
from test_inputs_host import vector_records

pytestmark = pytest.mark.e2e

STDOUT = "[OUTPUT]\n    Name stdout\n    Match *\n    Format json_lines\n"
SERVICE = "[SERVICE]\n    Flush 0.2\n    Log_Level %s\n"


def exec_section(command, *lines, tag="exec"):
    body = "".join("    %s\n" % line for line in lines)
    return "[INPUT]\n    Name exec\n    Tag %s\n    Command %s\n%s" % (tag, command, body)


def write_conf(tmp_path, *sections, log_level="info", parsers=None):
    service = SERVICE % log_level
    if parsers:
        (tmp_path / "parsers.conf").write_text(parsers)
        service += "    Parsers_File parsers.conf\n"
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(service + "".join(sections) + STDOUT)
    return conf


class Running:
    """edgeship in the background; its stdout records and stderr lines gathered by threads."""

    def __init__(self, conf):
        self.proc = subprocess.Popen(EDGESHIP + ["-c", str(conf)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.records, self.log = [], []
        for stream, sink, decode in ((self.proc.stdout, self.records, json.loads),
                                     (self.proc.stderr, self.log, bytes.decode)):
            threading.Thread(target=self._gather, args=(stream, sink, decode),
                             daemon=True).start()

    @staticmethod
    def _gather(stream, sink, decode):
        for line in stream:
            sink.append(decode(line))

    def bodies(self, key=None):
        return [{k: v for k, v in r.items() if k != "date"} for r in list(self.records)
                if key is None or key in r]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def running():
    started = []

    def start(conf):
        child = Running(conf)
        started.append(child)
        return child

    yield start
    for child in started:
        child.kill()


def test_each_line_is_a_record_as_fluent_bit_prints_it(tmp_path, running):
    conf = write_conf(tmp_path, exec_section("echo hello", "Interval_Sec 0",
                                             "Interval_NSec 200000000"),
                      exec_section('printf "l1\\nl2\\n"', tag="two"))
    child = running(conf)
    wait_for(lambda: len(child.bodies("exec")) >= 6)
    hello = [r for r in child.bodies() if r["exec"] == "hello"]
    assert hello[:2] == vector_records("in_exec_echo")[:2]
    wait_for(lambda: len([r for r in child.bodies() if r["exec"] != "hello"]) >= 4)
    pairs = [r for r in child.bodies() if r["exec"] != "hello"]
    assert pairs[:4] == vector_records("in_exec_multiline_output")[:4]
    assert child.stop() == 0


def test_parser_makes_the_record_and_rejected_lines_are_logged(tmp_path, running):
    parsers = "[PARSER]\n    Name json\n    Format json\n"
    command = """echo '{"a":1,"b":"x","c":[true,null]}'; echo 'not json'"""
    conf = write_conf(tmp_path, exec_section(command, "Parser json", "Interval_Sec 0",
                                             "Interval_NSec 300000000"), parsers=parsers)
    child = running(conf)
    wait_for(lambda: len(child.records) >= 2)
    assert child.bodies()[:2] == vector_records("in_exec_parser_json")[:2]
    wait_for(lambda: any("parser returned an error (1 lines" in line for line in child.log))


def test_long_lines_come_in_buf_size_pieces(tmp_path, running):
    conf = write_conf(tmp_path, exec_section("echo abcdefghij", "Buf_Size 5", "Oneshot on"))
    child = running(conf)
    wait_for(lambda: len(child.records) >= 3)
    assert child.bodies() == [{"exec": "abcd"}, {"exec": "efgh"}, {"exec": "ij"}]


@pytest.mark.parametrize("command, propagate, code", [
    ("echo once; exit 3", "on", 3),
    ("echo once; exit 3", "off", 0),
    ("echo once; kill -9 $$", "on", 128 + 9),
    ("echo once", "on", 0),
])
def test_oneshot_exit_after_and_its_exit_code(tmp_path, command, propagate, code):
    conf = write_conf(tmp_path, exec_section(command, "Exit_After_Oneshot on",
                                             "Propagate_Exit_Code %s" % propagate))
    proc = run_edgeship(["-c", str(conf)])
    assert proc.returncode == code, proc.stderr
    assert [json.loads(line)["exec"] for line in proc.stdout.splitlines()] == ["once"]
    assert "one-shot command exited, terminating edgeship" in proc.stderr


def test_oneshot_runs_once_while_others_go_on(tmp_path, running):
    conf = write_conf(tmp_path, exec_section("echo once", "Oneshot true"),
                      exec_section("echo tick", "Interval_Sec 0", "Interval_NSec 200000000"))
    child = running(conf)
    # Positive signal first: the periodic command ran five times.
    wait_for(lambda: len([r for r in child.bodies() if r["exec"] == "tick"]) >= 5)
    assert [r for r in child.bodies() if r["exec"] == "once"] == vector_records(
        "in_exec_oneshot")
    assert child.stop() == 0


def test_a_hanging_command_is_killed_at_the_next_tick_and_records_flow(tmp_path, running):
    # The command prints its process group, then hangs in a child (sleep) of the shell.
    conf = write_conf(tmp_path,
                      exec_section("echo $$; sleep 100", "Interval_Sec 0",
                                   "Interval_NSec 500000000"),
                      "[INPUT]\n    Name dummy\n    Tag beat\n    Rate 20\n")
    child = running(conf)
    wait_for(lambda: any("still running after 0.5s (one interval): killed" in line
                         for line in child.log))
    beats = len(child.bodies("message"))
    groups = [int(r["exec"]) for r in child.bodies("exec")]
    # The first run's whole group (the shell and its sleep) is gone ...
    wait_for(lambda: not _group_alive(groups[0]))
    # ... the command runs again at each tick, and the other input never stopped.
    wait_for(lambda: len(child.bodies("exec")) >= 3)
    wait_for(lambda: len(child.bodies("message")) > beats + 20)
    assert child.stop() == 0
    for group in {int(r["exec"]) for r in child.bodies("exec")}:
        wait_for(lambda: not _group_alive(group))


def _group_alive(group):
    try:
        os.killpg(group, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.mark.parametrize("lines, key, where", [
    (("Command echo x", "Propagate_Exit_Code on"), "propagate_exit_code", 4),
    (("Command echo x", "Parser nope"), "parser", 4),
    (("Command echo x", "Buf_Size 1"), "buf_size", 4),
    (("Command echo x", "Oneshot maybe"), "oneshot", 4),
    ((), "command", 1),
])
def test_bad_options_name_file_line_and_key(tmp_path, lines, key, where):
    body = "".join("    %s\n" % line for line in lines)
    conf = tmp_path / "bad.conf"
    conf.write_text("[INPUT]\n    Name exec\n%s[OUTPUT]\n    Name null\n    Match *\n" % body)
    proc = run_edgeship(["-c", str(conf), "--dry-run"])
    assert proc.returncode != 0
    assert "bad.conf:%d: key '%s'" % (where, key) in proc.stderr, proc.stderr


def test_exec_lists_its_options():
    proc = run_edgeship(["-i", "exec", "-h"])
    assert proc.returncode == 0
    for name in ("Command", "Parser", "Buf_Size", "Oneshot", "Exit_After_Oneshot",
                 "Propagate_Exit_Code", "Interval_NSec"):
        assert name in proc.stdout
