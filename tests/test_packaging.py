"""What ships beside the code: the LICENSE, the man page made from the option declarations
(edgeship --man), the systemd unit (systemd-analyze verify), the Dockerfile (read by
tools/dockerfile.py), the shipped examples and `edgeship examples` / `--example`, and `-d` /
`Daemon On`."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import EDGESHIP, ROOT, run_edgeship

sys.path.insert(0, os.path.join(ROOT, "tools"))
import dockerfile  # noqa: E402

from edgeship import plugins  # noqa: E402
from edgeship.cli import CLI_OPTIONS, examples, examples_dir  # noqa: E402
from edgeship.engine.loader import SERVICE_OPTIONS  # noqa: E402

UNIT = os.path.join(examples_dir(), "systemd", "edgeship.service")


def test_license_is_the_apache_2_text_pyproject_names():
    with open(os.path.join(ROOT, "LICENSE")) as f:
        text = f.read()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text) > 10000
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        assert 'license = {text = "Apache-2.0"}' in f.read()


# ------------------------------------------------------------------------------ man page
@pytest.fixture(scope="module")
def manpage(tmp_path_factory):
    proc = subprocess.run(EDGESHIP + ["--man"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    path = tmp_path_factory.mktemp("man") / "edgeship.1"
    path.write_text(proc.stdout)
    return path


def test_man_page_renders_without_a_warning(manpage):
    # -ww: every groff warning; -z: parse and lay out, print nothing.
    proc = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(manpage)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def _rendered(manpage):
    env = dict(os.environ, MANWIDTH="200", MAN_KEEP_FORMATTING="", MANPAGER="cat", PAGER="cat")
    proc = subprocess.run(["man", "-l", str(manpage)], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return re.sub(".\b", "", proc.stdout)  # no overstrike for bold


def test_man_page_lists_every_option_and_every_plugin(manpage):
    text = _rendered(manpage)
    assert text.startswith("EDGESHIP(1)")
    sections = re.split(r"\n(?=[A-Z][A-Z ]+\n)", text)
    by_title = {s.split("\n", 1)[0]: s for s in sections}
    for _short, long, _value, _help in CLI_OPTIONS:
        assert "--" + long in by_title["OPTIONS"], long
    for option in SERVICE_OPTIONS:
        assert "\n       %s (" % option.name in by_title["SERVICE OPTIONS"], option.name
    for kind, title in (("input", "INPUTS"), ("parser", "PARSERS"), ("filter", "FILTERS"),
                        ("output", "OUTPUTS")):
        names = plugins.names(kind)
        assert len(names) >= 4
        for name in names:
            assert "\n   %s\n" % name in by_title[title], (kind, name)
            for option in plugins.find(kind, name).schema().options:
                assert "%s (" % option.name in by_title[title], (name, option.name)


# ------------------------------------------------------------------------------ systemd unit
def _unit_with_exec_start(tmp_path):
    """The shipped unit, its ExecStart pointed at this edgeship (verify checks the binary)."""
    binary = shutil.which("edgeship", path=os.path.dirname(sys.executable))
    assert binary, "edgeship is not installed in this Python's bin directory"
    with open(UNIT) as f:
        text = f.read()
    assert "ExecStart=/opt/edgeship/bin/edgeship " in text
    path = tmp_path / "edgeship.service"
    path.write_text(text.replace("ExecStart=/opt/edgeship/bin/edgeship ",
                                 "ExecStart=%s " % binary))
    return path


def test_systemd_unit_verifies(tmp_path):
    path = _unit_with_exec_start(tmp_path)
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(path)],
                          capture_output=True, text=True, timeout=120)
    # Unknown keys and bad values are only warnings to verify: none may appear.
    assert proc.returncode == 0 and proc.stdout + proc.stderr == "", proc.stdout + proc.stderr
    # The test can fail: a misspelled key is reported.
    bad = tmp_path / "bad.service"
    bad.write_text(path.read_text().replace("ProtectHome=", "ProtectHomme="))
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert "ProtectHomme" in proc.stderr


def test_systemd_unit_restarts_reloads_keeps_its_spool_and_is_hardened(tmp_path):
    with open(UNIT) as f:
        directives = [line.strip() for line in f if "=" in line and not line.startswith("#")]
    for wanted in ("Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID",
                   "StateDirectory=edgeship", "ReadWritePaths=/var/lib/edgeship",
                   "ProtectSystem=strict", "ProtectHome=true", "NoNewPrivileges=true",
                   "PrivateTmp=true", "CapabilityBoundingSet=", "User=edgeship"):
        assert wanted in directives, wanted
    # systemd's own score of the sandbox (0 = fully confined, 10 = not at all).
    path = _unit_with_exec_start(tmp_path)
    proc = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(path)],
                          capture_output=True, text=True, timeout=120)
    level = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout)
    assert level, proc.stdout + proc.stderr
    assert float(level.group(1)) <= 2.0, proc.stdout


# ------------------------------------------------------------------------------ Dockerfile
def test_dockerfile_instructions_and_copied_files():
    found = dockerfile.instructions()
    assert found and found[0].name == "ARG"
    for instr in found:
        assert instr.name in dockerfile.KNOWN, instr
    assert [i for i in found if i.name == "FROM"][-1].args.startswith("debian:")
    sources = dockerfile.copied_sources(found)
    assert sources
    for instr, source in sources:
        assert os.path.exists(os.path.join(ROOT, source)), (instr, source)
    # .dockerignore lets every copied file into the build context.
    with open(os.path.join(ROOT, ".dockerignore")) as f:
        allowed = {line[1:].strip().rstrip("/") for line in f if line.startswith("!")}
    for _instr, source in sources:
        assert source.split("/")[0] in allowed, source


def test_dockerfile_runs_fluent_bits_config_path_as_a_non_root_user():
    found = dockerfile.instructions()
    argv = dockerfile.command(found)
    assert argv[0] == "/opt/edgeship/bin/edgeship"
    assert argv[1:] == ["-c", "/fluent-bit/etc/fluent-bit.conf"]
    assert dockerfile.user(found).split(":")[0] not in ("", "0", "root")
    env = dockerfile.environment(found)
    volumes = [json.loads(i.args) for i in dockerfile.final_stage(found) if i.name == "VOLUME"]
    assert [env["STATE_DIRECTORY"]] in volumes
    # The default config is the container example; it runs as is, with its spool in the
    # volume, and turns on what the health check asks.
    config = dockerfile.copied_to("/fluent-bit/etc/fluent-bit.conf", found)
    assert config == "edgeship/examples/container/fluent-bit.conf"
    proc = run_edgeship(["--dry-run", "-c", os.path.join(ROOT, config)],
                        env={"STATE_DIRECTORY": env["STATE_DIRECTORY"]})
    assert proc.returncode == 0, proc.stderr
    with open(os.path.join(ROOT, config)) as f:
        text = f.read()
    port = re.search(r"^\s*HTTP_Port\s+(\d+)", text, re.M | re.I).group(1)
    for key in ("HTTP_Server", "Health_Check"):
        assert re.search(r"^\s*%s\s+On\s*$" % key, text, re.M | re.I), key
    assert "${STATE_DIRECTORY" in re.search(r"^\s*storage.path\s+(.*)$", text, re.M).group(1)
    options, check = dockerfile.healthcheck(found)
    assert env["EDGESHIP_HEALTH_URL"] == "http://127.0.0.1:%s/api/v1/health" % port
    assert check[0] == "/opt/edgeship/bin/python" and "EDGESHIP_HEALTH_URL" in check[-1]
    assert any(o.startswith("--interval=") for o in options)


def test_dockerfile_health_check_command_fails_when_nothing_answers(tmp_path):
    """The command the image runs for its HEALTHCHECK, run here: it fails (non-zero) while
    nothing answers at the URL and passes on a 200; the container test runs it against
    edgeship."""
    import http.server
    import threading
    _options, check = dockerfile.healthcheck()
    argv = [sys.executable] + check[1:]

    class Health(http.server.BaseHTTPRequestHandler):
        status = 200

        def do_GET(self):
            self.send_response(Health.status if self.path == "/api/v1/health" else 404)
            self.end_headers()
            self.wfile.write(b"ok\n")

        def log_message(self, *args):
            pass
    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d/api/v1/health" % server.server_address[1]
    try:
        assert subprocess.run(argv, env=dict(os.environ, EDGESHIP_HEALTH_URL=url),
                              capture_output=True, timeout=30).returncode == 0
        Health.status = 500   # Fluent Bit's unhealthy answer
        assert subprocess.run(argv, env=dict(os.environ, EDGESHIP_HEALTH_URL=url),
                              capture_output=True, timeout=30).returncode != 0
    finally:
        server.shutdown()
        server.server_close()
    closed = url.replace(":%d/" % server.server_address[1], ":1/")
    assert subprocess.run(argv, env=dict(os.environ, EDGESHIP_HEALTH_URL=closed),
                          capture_output=True, timeout=30).returncode != 0


# ------------------------------------------------------------------------------ examples
def test_examples_lists_every_runnable_config():
    proc = run_edgeship(["examples"])
    assert proc.returncode == 0, proc.stderr
    names = [name for name, _path, _summary in examples()]
    assert {"quickstart", "aggregator/edge", "aggregator/aggregator", "container",
            "pi-sensor-gateway"} <= set(names)
    for name in names:
        assert "\n  %s " % name in proc.stdout
    assert examples_dir() in proc.stdout


def test_examples_prints_a_file_and_refuses_what_is_not_one(tmp_path):
    proc = run_edgeship(["examples", "quickstart"])
    with open(os.path.join(examples_dir(), "quickstart", "fluent-bit.conf")) as f:
        assert proc.returncode == 0 and proc.stdout == f.read()
    proc = run_edgeship(["examples", "systemd/edgeship.service"])
    with open(UNIT) as f:
        assert proc.returncode == 0 and proc.stdout == f.read()
    for name in ("nosuch", "../cli.py", "/etc/passwd", "quickstart/../../cli.py"):
        proc = run_edgeship(["examples", name])
        assert proc.returncode == 1 and proc.stdout == "", name
        assert "no example named" in proc.stderr
    proc = run_edgeship(["--example", "nosuch"])
    assert proc.returncode == 1 and "edgeship examples" in proc.stderr


def test_every_example_validates_from_another_directory(tmp_path):
    env = {"APP_LOG_DIR": str(tmp_path), "STATE_DIRECTORY": str(tmp_path)}
    for name, _path, _summary in examples():
        proc = run_edgeship(["--example", name, "--dry-run"], cwd=str(tmp_path), env=env)
        assert proc.returncode == 0, (name, proc.stderr)


def test_config_dir_variable_is_the_config_files_directory_unless_set(tmp_path):
    conf = tmp_path / "conf" / "main.conf"
    conf.parent.mkdir()
    conf.write_text("[INPUT]\n    Name dummy\n    Samples 1\n    Tag t\n"
                    "[FILTER]\n    Name record_modifier\n    Match *\n"
                    "    Record dir ${EDGESHIP_CONFIG_DIR}\n"
                    "[OUTPUT]\n    Name stdout\n    Match *\n    Format json_lines\n")

    def record(env=None, extra=""):
        if extra:
            conf.write_text(extra + conf.read_text())
        child = subprocess.Popen(EDGESHIP + ["-c", "conf/main.conf"], cwd=str(tmp_path),
                                 env=dict(os.environ, **(env or {})), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        try:
            line = child.stdout.readline()
        finally:
            child.kill()
            child.communicate()
        return json.loads(line)["dir"]
    assert record() == str(conf.parent)
    assert record({"EDGESHIP_CONFIG_DIR": "/from/env"}) == "/from/env"
    assert record({"EDGESHIP_CONFIG_DIR": "/from/env"}, "@SET EDGESHIP_CONFIG_DIR=/set\n") \
        == "/set"


# ------------------------------------------------------------------------------ -d, Daemon On
def test_daemon_warns_and_stays_in_the_foreground(tmp_path):
    copy = tmp_path / "quickstart"
    shutil.copytree(os.path.join(examples_dir(), "quickstart"), str(copy))
    conf = copy / "fluent-bit.conf"
    conf.write_text(conf.read_text().replace("[SERVICE]\n", "[SERVICE]\n    Daemon On\n", 1))
    for args in (["-d", "--example", "quickstart"], ["-c", str(conf)]):
        proc = run_edgeship(args, cwd=str(tmp_path), timeout=60)
        # The records come from this process, which ran to the end of the input: nothing
        # forked away to run in the background.
        assert proc.returncode == 0, proc.stderr
        assert len(proc.stdout.splitlines()) == 4, proc.stdout
        warnings = [line for line in proc.stderr.splitlines()
                    if "Daemon On is not supported" in line]
        assert len(warnings) == 1 and "[ warn] [engine]" in warnings[0]
        assert "systemd" in warnings[0]
