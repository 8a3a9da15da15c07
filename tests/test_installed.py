"""edgeship as a user gets it, not as the repository runs it: the wheel is built from the files
the Dockerfile copies (pyproject.toml, README.md, LICENSE, edgeship/), installed with its
dependencies into a fresh virtualenv outside the repository (no extras: no orjson, no lupa),
and run from another directory: the quickstart, a forward round trip between two installed
edgeships, and the errors for a missing extra."""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT, accepts_connections, free_port, wait_for

sys.path.insert(0, os.path.join(ROOT, "tools"))
import dockerfile  # noqa: E402

QUICKSTART_MESSAGES = ["boot complete", "reading", "wifi rssi low", "mqtt publish failed"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel path, the venv's bin directory, an empty working directory)."""
    base = tmp_path_factory.mktemp("installed")
    src = base / "src"
    src.mkdir()
    for _instr, source in dockerfile.copied_sources(dockerfile.instructions()):
        if source.startswith("edgeship/examples/"):
            continue  # inside edgeship/, copied with it
        origin = os.path.join(ROOT, source)
        if os.path.isdir(origin):
            shutil.copytree(origin, str(src / source),
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(origin, str(src / source))
    # As a user's pip would: the build backend pyproject.toml names, in an isolated env.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                    "--wheel-dir", str(base / "dist"), str(src)],
                   check=True, timeout=300, cwd=str(base))
    wheel = glob.glob(str(base / "dist" / "edgeship-*.whl"))[0]
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", wheel], check=True,
                   timeout=300, cwd=str(base))
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    return wheel, str(venv / "bin"), str(elsewhere)


def _run(installed, args, env=None, timeout=60):
    _wheel, bindir, cwd = installed
    return subprocess.run([os.path.join(bindir, "edgeship")] + args, cwd=cwd, timeout=timeout,
                          env=dict(os.environ, **(env or {})), capture_output=True, text=True)


def test_the_wheel_holds_the_examples_the_license_and_the_core_dependencies(installed):
    wheel, bindir, _cwd = installed
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        metadata = whl.read([n for n in names if n.endswith(".dist-info/METADATA")][0])
    for shipped in ("edgeship/examples/quickstart/fluent-bit.conf",
                    "edgeship/examples/quickstart/sample.log",
                    "edgeship/examples/aggregator/edge.conf",
                    "edgeship/examples/systemd/edgeship.service",
                    "edgeship/examples/container/fluent-bit.conf",
                    "edgeship/etc/parsers.conf"):
        assert shipped in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE")
               for n in names)
    assert not any("__pycache__" in n or n.startswith("tests/") for n in names)
    requires = [line.split(b":", 1)[1].strip() for line in metadata.splitlines()
                if line.startswith(b"Requires-Dist:") and b"extra ==" not in line]
    assert {r.split(b">")[0] for r in requires} == {b"msgpack", b"xxhash", b"paho-mqtt",
                                                     b"cbor2", b"pyserial", b"h11", b"PyYAML"}
    # What MQTT, serial, the HTTP outputs and YAML configs need came with the install; the
    # extras did not.
    python = os.path.join(bindir, "python")
    check = subprocess.run([python, "-c", "import paho.mqtt.client, cbor2, serial, msgpack, "
                            "xxhash, h11, yaml; import importlib.util as u; "
                            "print(u.find_spec('orjson'), u.find_spec('lupa'), "
                            "u.find_spec('mmh3'))"],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and check.stdout.split() == ["None"] * 3, check.stderr


def test_quickstart_runs_from_any_directory(installed):
    _wheel, bindir, cwd = installed
    example_dir = subprocess.run(
        [os.path.join(bindir, "python"), "-c",
         "import edgeship.cli as c; print(c.examples_dir())"],
        capture_output=True, text=True, timeout=60, cwd=cwd).stdout.strip()
    assert example_dir.startswith(os.path.dirname(bindir)) and "site-packages" in example_dir
    for args in (["--example", "quickstart"],
                 ["-c", os.path.join(example_dir, "quickstart", "fluent-bit.conf")]):
        proc = _run(installed, args)
        assert proc.returncode == 0, proc.stderr
        records = [json.loads(line) for line in proc.stdout.splitlines()]
        assert [r["msg"] for r in records] == QUICKSTART_MESSAGES, proc.stderr
        assert all(r["device"] == "pi-quickstart" for r in records)
        assert "no file matches" not in proc.stderr


def test_forward_round_trip_between_two_installed_edgeships(installed, tmp_path):
    """The aggregator example receives; the edge example tails a log and relays it with
    acks, gzip and the shared key."""
    _wheel, bindir, cwd = installed
    sample = os.path.join(ROOT, "configs", "quickstart", "sample.log")
    log = tmp_path / "app.log"
    shutil.copy(sample, str(log))
    port = free_port()
    env = dict(os.environ, AGGREGATOR_PORT=str(port), AGGREGATOR_LISTEN="127.0.0.1",
               AGGREGATOR_OUT=str(tmp_path / "agg"), EDGE_LOG=str(log))
    edgeship = os.path.join(bindir, "edgeship")
    children = []
    try:
        for example in ("aggregator/aggregator", "aggregator/edge"):
            children.append(subprocess.Popen([edgeship, "--example", example], cwd=cwd,
                                             env=env, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, start_new_session=True))
            if example.endswith("aggregator"):
                wait_for(lambda: accepts_connections(port))
        with open(sample) as f:
            sent = [json.loads(line)["msg"] for line in f if line.strip()]
        out = tmp_path / "agg" / "edge.log"

        def arrived():
            if not out.exists():
                return None
            lines = out.read_text().splitlines()
            return lines if len(lines) >= len(sent) else None
        lines = wait_for(arrived, timeout=30)
        # The file output's plain format: "tag: [time, {record}]".
        assert [json.loads(line.split(": ", 1)[1])[1]["msg"] for line in lines] == sent
        for child in reversed(children):
            child.send_signal(signal.SIGTERM)
            _out, err = child.communicate(timeout=30)
            assert child.returncode == 0, err
            assert b"Traceback" not in err
    finally:
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()


def test_a_missing_extra_is_a_config_error_that_says_what_to_install(installed, tmp_path):
    conf = tmp_path / "lua.conf"
    conf.write_text("[INPUT]\n    Name dummy\n\n[FILTER]\n    Name  lua\n    Match *\n"
                    "    Call  cb\n    Code  function cb(t, ts, r) return 0, ts, r end\n\n"
                    "[OUTPUT]\n    Name  null\n    Match *\n")
    proc = _run(installed, ["--dry-run", "-c", str(conf)])
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "%s:5" % conf in proc.stderr and "'name'" in proc.stderr, proc.stderr
    assert "pip install 'edgeship[lua]'" in proc.stderr
    # Without orjson nothing is missing: the quickstart above parsed and printed its JSON
    # with the standard library.
