"""Shared fixtures: run edgeship as a real child process, free ports, temp dirs."""
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
EDGESHIP = [sys.executable, "-m", "edgeship"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts_connections(port, host="127.0.0.1"):
    """True when something listens on ``port`` (for wait_for)."""
    try:
        socket.create_connection((host, port), timeout=0.2).close()
        return True
    except OSError:
        return False


def run_edgeship(args, cwd=None, timeout=30, env=None, input=None):
    """Run edgeship to completion; returns CompletedProcess (text)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(EDGESHIP + list(args), cwd=cwd, env=full_env, timeout=timeout,
                          input=input, capture_output=True, text=True)


def run_edgeship_into_a_closed_pipe(args, stream="stdout", input=None, timeout=30):
    """Run edgeship with ``stream`` (stdout or stderr) a pipe nobody reads any more, as after
    ``edgeship ... | head`` once head exited; returns CompletedProcess (text) with the other
    stream captured."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    other = "stderr" if stream == "stdout" else "stdout"
    try:
        return subprocess.run(EDGESHIP + list(args), timeout=timeout, input=input, text=True,
                              **{stream: write_end, other: subprocess.PIPE})
    finally:
        os.close(write_end)


class Child:
    """edgeship running in the background, killed (SIGKILL) at the end of the test."""

    def __init__(self, args, cwd=None, env=None, stdin=subprocess.DEVNULL):
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(EDGESHIP + list(args), cwd=cwd, env=full_env,
                                     stdin=stdin, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def terminate(self, timeout=15):
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out.decode(), err.decode()


class Printed:
    """What a running ``Child`` printed on stdout so far (read without blocking)."""

    def __init__(self, child):
        self.child = child
        self.data = []
        os.set_blocking(child.proc.stdout.fileno(), False)

    def lines(self):
        self.data.append(self.child.proc.stdout.read() or b"")
        return b"".join(self.data).decode().splitlines()

    def metrics(self):
        """The stdout output's metrics lines without their timestamp."""
        return [line.split(" ", 1)[1] for line in self.lines() if " = " in line]

    def records(self):
        return [line for line in self.lines() if line.startswith("{")]


def wait_for(predicate, timeout=20.0, interval=0.05):
    """Poll ``predicate`` until it returns a true value; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met within %ss" % timeout)


@pytest.fixture
def spawn():
    children = []

    def start(args, **kw):
        child = Child(args, **kw)
        children.append(child)
        return child

    yield start
    for child in children:
        child.kill()
