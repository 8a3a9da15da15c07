"""tools/flash.py against a MicroPython REPL behind a pty (socat), the stand-in for a board:
the files land on the 'device' and the flashed tree runs the agent with nothing else on its
import path."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, wait_for
from mosquitto import Broker, Subscriber

BIN = os.path.dirname(sys.executable)


@pytest.fixture
def board(tmp_path):
    """A MicroPython REPL whose filesystem is tmp_path/device, reachable at tmp_path/tty."""
    if shutil.which("socat") is None:
        pytest.fail("socat is not installed (apt-get install socat)")
    device = tmp_path / "device"
    device.mkdir()
    tty = tmp_path / "tty"
    proc = subprocess.Popen(
        ["socat", "PTY,link=%s,raw,echo=0" % tty,
         'EXEC:"%s -i",pty,stderr,raw,echo=0' % os.path.join(BIN, "micropython")],
        cwd=device, start_new_session=True)
    wait_for(lambda: tty.exists())
    yield tty, device
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("mpy", [False, True], ids=["py", "mpy"])
def test_flashed_tree_runs_the_agent(board, tmp_path, mpy):
    tty, device = board
    broker = Broker(tmp_path / "broker").start()
    try:
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"device_id": "flashed", "port": broker.port,
                                      "interval_s": 0.02, "samples": 5, "sensors": [
                                          {"name": "t", "type": "sim"}]}))
        args = [sys.executable, os.path.join(ROOT, "tools", "flash.py"), "--port", str(tty),
                "--config", str(config)] + (["--mpy"] if mpy else [])
        subprocess.run(args, check=True, capture_output=True, timeout=60)
        suffix = ".mpy" if mpy else ".py"
        for rel in ("main.py", "agent" + suffix, "sensors" + suffix, "config.json",
                    "edgeship/core/ring" + suffix, "edgeship/core/mqtt_client" + suffix):
            assert (device / rel).exists(), rel
        assert not (device / "edgeship" / "engine").exists()  # only the agent's closure
        sub = Subscriber(broker, "devices/#")
        env = dict(os.environ, MICROPYPATH=str(device))
        proc = subprocess.run([os.path.join(BIN, "micropython"), "main.py"], cwd=device,
                              env=env, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        wait_for(lambda: len(sub.messages) == 5)
        sub.close()
    finally:
        broker.kill()
