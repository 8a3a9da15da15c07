"""Configs accepted also run: every real-world config of ../shared/realconf that edgeship
accepts and that has only local inputs and outputs starts, runs two seconds, and stops
cleanly on SIGTERM (exit status 0, no traceback).

The case is prepared as the corpus runner prepares it (its own relocate / lua_stubs), so the
run copy is the one `run.py --cmd edgeship` checks with --dry-run."""
import importlib.util
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

from edgeship.engine.loader import Loader

from conftest import SHARED

CORPUS = os.path.join(SHARED, "realconf")
LOCAL_INPUTS = {"dummy", "tail", "stdin"}
LOCAL_OUTPUTS = {"stdout", "file", "null", "counter"}


def runner(place):
    spec = importlib.util.spec_from_file_location("realconf_run", os.path.join(place, "run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepare(run, case_dir, work):
    shutil.copytree(case_dir, work, symlinks=True)
    run.relocate(work, run.read_kv(os.path.join(case_dir, "paths.txt")))
    run.lua_stubs(work)
    env = dict(os.environ)
    env.update(run.read_kv(os.path.join(case_dir, "env.txt")))
    extra = []
    if os.path.isfile(os.path.join(work, "args.txt")):
        with open(os.path.join(work, "args.txt"), encoding="utf-8") as fh:
            extra = shlex.split(fh.read(), comments=True)
    return env, extra


def local_only(work, env):
    """True when every input and output of the config is local (reads files or makes
    records, writes to stdout or files)."""
    sections = Loader(environ=env).read(os.path.join(work, "fluent-bit.conf"))
    for section in sections:
        name = (section.get("name") or "").lower()
        if section.kind == "INPUT" and name not in LOCAL_INPUTS:
            return False
        if section.kind == "OUTPUT" and name not in LOCAL_OUTPUTS:
            return False
    return True


def test_local_realconf_cases_run_two_seconds_and_stop_cleanly(tmp_path):
    run = runner(CORPUS)
    cases_dir = os.path.join(CORPUS, "cases")
    command = [sys.executable, "-m", "edgeship"]
    ran = []
    for name in sorted(os.listdir(cases_dir)):
        work = str(tmp_path / name)
        env, extra = prepare(run, os.path.join(cases_dir, name), work)
        checked = subprocess.run(command + ["--dry-run", "-c", "fluent-bit.conf"] + extra,
                                 cwd=work, env=env, capture_output=True, timeout=60)
        if checked.returncode != 0 or not local_only(work, env):
            continue
        with open(os.path.join(work, "stderr.log"), "wb") as err:
            proc = subprocess.Popen(command + ["-c", "fluent-bit.conf"] + extra, cwd=work,
                                    env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err)
            time.sleep(2)
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=30)
        with open(os.path.join(work, "stderr.log"), encoding="utf-8", errors="replace") as f:
            log = f.read()
        assert rc == 0, (name, log[-2000:])
        assert "Traceback" not in log, (name, log[-2000:])
        ran.append(name)
    # The corpus holds accepted local configs (book-hello-variable, envoy-stdin-parser...).
    assert len(ran) >= 3, ran
