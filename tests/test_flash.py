"""tools/flash.py: what it would copy (--dry-run), the .mpy version check, config.json from
flags, and a real copy onto a MicroPython REPL behind a pty (socat), the stand-in for a board,
whose flashed tree then runs the agent with nothing else on its import path (but the unix
stand-ins for the radio and the watchdog, which are never flashed)."""
import json
import os
import re
import shutil
import ssl
import subprocess
import sys

import pytest

from conftest import ROOT, wait_for
from device import standin_image
from mosquitto import Broker, Certs, Subscriber

BIN = os.path.dirname(sys.executable)
FLASH = [sys.executable, os.path.join(ROOT, "tools", "flash.py")]
sys.path.insert(0, os.path.join(ROOT, "tools"))
import flash  # noqa: E402


def dry_run(*args):
    out = subprocess.run(FLASH + ["--dry-run"] + list(args), check=True, capture_output=True,
                         text=True).stdout
    files = {}
    for line in out.splitlines():
        size, name = line.split(None, 1)
        files[name] = int(size)
    return files


def test_dry_run_lists_the_client_half_and_no_stand_in_or_listener():
    files = dry_run("--mpy")
    for name in ("boot.py", "main.py", "config.json", "agent.mpy", "board.mpy", "link.mpy",
                 "store.mpy", "startup.mpy", "udp.mpy", "drivers/bme280.mpy",
                 "edgeship/core/mqtt_client.mpy", "edgeship/core/mqtt_codec.mpy",
                 "edgeship/core/session.mpy", "edgeship/core/cbor.mpy"):
        assert files[name] > 0, name
    assert not [n for n in files if "standin" in n]            # unix-only stand-ins
    assert "edgeship/core/mqtt.mpy" not in files             # the listener (server) half
    assert not [n for n in files if n.startswith(("edgeship/engine", "edgeship/plugins"))]
    total = files.pop("total (%d files)" % (len(files) - 1))
    assert total == sum(files.values())


def readme_image_bytes(path):
    found = re.search(r"\.mpy`?\s+image[\s\S]{0,120}?\(([\d,]+) bytes\)", open(path).read())
    assert found, "%s does not give the .mpy image size" % path
    return int(found.group(1).replace(",", ""))


def test_the_readmes_give_the_flashed_image_size():
    files = dry_run("--mpy")
    total = files["total (%d files)" % (len(files) - 1)]
    for readme in ("README.md", os.path.join("firmware", "README.md")):
        stated = readme_image_bytes(os.path.join(ROOT, readme))
        assert abs(stated - total) <= total * 0.03, (readme, stated, total)


def test_config_json_from_flags(tmp_path):
    out = tmp_path / "image"
    subprocess.run(FLASH + ["--out", str(out), "--device-id", "pump-3", "--host", "10.0.0.2",
                            "--broker-port", "1884", "--ssid", "farm", "--wifi-password", "pw",
                            "--set", "interval_s=2.5", "--set", "ntp_host=null",
                            "--set", "topic=farm/{device_id}"], check=True, capture_output=True)
    conf = json.loads((out / "config.json").read_text())
    assert conf["device_id"] == "pump-3" and conf["host"] == "10.0.0.2" and conf["port"] == 1884
    assert conf["ssid"] == "farm" and conf["wifi_password"] == "pw"
    assert conf["interval_s"] == 2.5 and conf["ntp_host"] is None
    assert conf["topic"] == "farm/{device_id}"
    assert conf["sensors"]   # the rest from firmware/config.json


def test_a_pem_ca_file_is_copied_as_der_and_turns_tls_on(tmp_path):
    certs = Certs(str(tmp_path / "certs"))
    out = tmp_path / "image"
    subprocess.run(FLASH + ["--out", str(out), "--ca-file", certs.ca], check=True,
                   capture_output=True)
    conf = json.loads((out / "config.json").read_text())
    assert conf["tls"] is True and conf["ca_file"] == "ca.der"
    assert (out / "ca.der").read_bytes() == \
        ssl.PEM_cert_to_DER_cert(open(certs.ca).read())


def test_mpy_version_mismatch_is_explained():
    header = b"M\x06\x00\x1f"
    assert flash.mpy_mismatch(6, "1.28.0", header) is None
    problem = flash.mpy_mismatch(5, "1.19.1", header)
    assert "reads .mpy version 5" in problem and "writes version 6" in problem
    assert "without --mpy" in flash.mpy_mismatch(None, "1.28.0", header)


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


def test_board_reports_its_mpy_version(board):
    tty, _ = board
    version, release = flash.board_mpy(str(tty))
    assert version == 6 and release.startswith("1.")


@pytest.mark.parametrize("mpy", [False, True], ids=["py", "mpy"])
def test_flashed_tree_runs_the_agent(board, tmp_path, mpy):
    tty, device = board
    broker = Broker(tmp_path / "broker").start()
    try:
        args = FLASH + ["--port", str(tty), "--device-id", "flashed", "--broker-port",
                        str(broker.port), "--host", "127.0.0.1", "--set", "samples=5",
                        "--set", "interval_s=0.02", "--set", "ntp_host=null",
                        "--set", 'sensors=[{"name": "t", "type": "sim"}]'] + \
            (["--mpy"] if mpy else [])
        subprocess.run(args, check=True, capture_output=True, timeout=120)
        suffix = ".mpy" if mpy else ".py"
        for rel in ("boot.py", "main.py", "config.json", "agent" + suffix, "store" + suffix,
                    "drivers/sim" + suffix, "edgeship/core/mqtt_client" + suffix):
            assert (device / rel).exists(), rel
        assert not (device / "edgeship" / "engine").exists()   # only the agent's closure
        assert not (device / "edgeship" / "core" / ("mqtt" + suffix)).exists()
        sub = Subscriber(broker, "devices/flashed/telemetry")
        stand_ins = standin_image(str(tmp_path / "standin"))
        env = dict(os.environ, MICROPYPATH="%s:%s" % (device, stand_ins),
                   STANDIN_DIR=str(device))
        for script in ("boot.py", "main.py"):   # as a board runs them after a reset
            proc = subprocess.run([os.path.join(BIN, "micropython"), script], cwd=device,
                                  env=env, capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0, proc.stdout + proc.stderr
        wait_for(lambda: len(sub.messages) == 5)
        sub.close()
    finally:
        broker.kill()
