"""`edgeship top` in a real terminal (tmux): it shows the numbers the monitoring API gives,
keeps updating, and q quits."""
import json
import shutil
import subprocess
import urllib.request

from edgeship.http.top import Sampler

from conftest import EDGESHIP, free_port, wait_for
from test_forward_e2e import section, write

TMUX = shutil.which("tmux") or "/usr/bin/tmux"


def api(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return json.loads(r.read())
    except OSError:
        return None


class Terminal:
    """A tmux server of its own (socket in the test's folder) running one command."""

    def __init__(self, tmp_path, command, env):
        self.socket = str(tmp_path / "tmux.sock")
        self.tmux(["new-session", "-d", "-s", "top", "-x", "80", "-y", "24", "env"] + env
                  + command)

    def tmux(self, args):
        return subprocess.run([TMUX, "-S", self.socket] + args, capture_output=True,
                              text=True)

    def screen(self):
        return self.tmux(["capture-pane", "-p", "-t", "top"]).stdout

    def alive(self):
        return self.tmux(["has-session", "-t", "top"]).returncode == 0

    def close(self):
        self.tmux(["kill-server"])


def _row(screen, name):
    for line in screen.splitlines():
        if line.startswith(name + " "):
            return line.split()
    return None


def test_top_shows_what_the_api_says_and_q_quits(spawn, tmp_path):
    http, dead = free_port(), free_port()
    conf = write(tmp_path / "fluent-bit.conf",
                 section("SERVICE", Flush="0.2", HTTP_Server="On", HTTP_Listen="127.0.0.1",
                         HTTP_Port=http, Log_File=str(tmp_path / "edgeship.log"),
                         **{"scheduler.base": "600", "scheduler.cap": "600"})
                 + section("INPUT", Name="dummy", Samples=12, Rate=20, Alias="sensor", Tag="sensor")
                 + section("INPUT", Name="dummy", Rate=5, Alias="ticker", Tag="ticker")
                 + section("OUTPUT", Name="null", Match="sensor")
                 + section("OUTPUT", Name="forward", Match="sensor", Host="127.0.0.1",
                           Port=dead, Alias="dead_fwd", Retry_Limit="no_limits", Workers=1))
    spawn(["-c", conf])

    def settled():
        metrics = api(http, "/api/v1/metrics")
        return (metrics and metrics["output"]["null.0"]["proc_records"] == 12
                and metrics["output"]["dead_fwd"]["retries"] == 1 and metrics)

    metrics = wait_for(settled)
    command = EDGESHIP + ["top", "-L", "127.0.0.1", "-P", str(http)]
    terminal = Terminal(tmp_path, command, ["LANG=C.UTF-8", "TERM=xterm"])
    try:
        screen = wait_for(lambda: "dead_fwd" in terminal.screen() and terminal.screen())
        sensor = _row(screen, "sensor")
        # INPUT records/s records bytes paused chunks sparkline
        assert sensor[2] == "12" and sensor[3] == str(metrics["input"]["sensor"]["bytes"])
        null = _row(screen, "null.0")
        # OUTPUT records/s records bytes retries errors dropped chunks spool sparkline
        assert null[2:4] == ["12", str(metrics["output"]["null.0"]["proc_bytes"])]
        dead_fwd = _row(screen, "dead_fwd")
        assert len(dead_fwd) >= 9, screen
        assert dead_fwd[2] == "0" and dead_fwd[4:7] == ["1", "0", "0"]
        storage = api(http, "/api/v1/storage")
        assert dead_fwd[7] == str(storage["output_chunks"]["dead_fwd"]["total_chunks"])
        assert "health ok" in screen and "reloads 0" in screen

        # It keeps updating: ticker's records grow on screen as in the API.
        first = int(_row(screen, "ticker")[2])
        wait_for(lambda: int(_row(terminal.screen(), "ticker")[2]) > first + 5)
        # The rate column lives (its arithmetic is test_rate_is_records_per_second's).
        wait_for(lambda: float(_row(terminal.screen(), "ticker")[1]) > 0)
        terminal.tmux(["send-keys", "-t", "top", "q"])
        wait_for(lambda: not terminal.alive())
    finally:
        terminal.close()


def test_rate_is_records_per_second_between_samples():
    sampler = Sampler("http://127.0.0.1:1")
    key = ("input", "ticker")
    assert sampler._rate(key, 10, now=100.0) == 0.0          # no previous sample yet
    assert sampler._rate(key, 20, now=102.0) == 5.0
    assert sampler._rate(key, 20, now=102.0) == 0.0          # no time passed: no division
    assert sampler._rate(key, 3, now=103.0) == 0.0           # counters restarted (reload)
    assert sampler.history[key] == [0.0, 5.0, 0.0, 0.0]


def test_top_says_when_nothing_answers(tmp_path):
    port = free_port()
    command = EDGESHIP + ["top", "-P", str(port)]
    terminal = Terminal(tmp_path, command, ["LANG=C", "TERM=xterm"])
    try:
        wait_for(lambda: "cannot reach http://127.0.0.1:%d" % port in terminal.screen())
        terminal.tmux(["send-keys", "-t", "top", "q"])
        wait_for(lambda: not terminal.alive())
    finally:
        terminal.close()


def test_top_usage_errors():
    proc = subprocess.run(EDGESHIP + ["top", "-P"], capture_output=True, text=True)
    assert proc.returncode == 1 and "usage: edgeship top" in proc.stderr
