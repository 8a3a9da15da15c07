"""The MicroPython agent's board side, under the real MicroPython unix port: the flashed .mpy
image through a 1-hour-equivalent outage in a 48 KB heap, TLS with a CA and credentials, DNS
and NTP that never block the sampling, deep and light sleep, and the watchdog. Plus the
float32 emulation of the time stamps (CPython)."""
import ast
import os
import pwd
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import types

import pytest

from conftest import ROOT, free_port, wait_for
from device import DEEP_SLEEP, FIRMWARE, RESET, CONFIG_ERROR, Device, keys, readings
from mosquitto import Broker, Subscriber


def flashed_image(folder, config=None):
    """The .mpy image tools/flash.py writes onto a board, in ``folder``."""
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "flash.py"), "--mpy", "--out",
                    str(folder)] + (["--config", str(config)] if config else []),
                   check=True, capture_output=True)
    return str(folder)


def test_a_one_hour_outage_with_a_full_ring_runs_in_a_48k_heap(tmp_path):
    """3600 readings (an hour at 1 s) while the broker is away, into a flash ring that fills up,
    then the broker comes back and what the ring holds goes out: the flashed image, with the
    unix stand-ins, in -X heapsize=48k on the 64-bit unix port."""
    image = flashed_image(tmp_path / "image")
    broker = Broker(tmp_path / "broker")
    dev = Device(tmp_path / "dev", image=image, heap="48k", port=broker.port, samples=3600,
                 interval_s=0.002, ring_file="ring.bin", ring_bytes=32768, page_bytes=512,
                 persist_s=1, keepalive=4).start()
    try:
        dev.wait_line("sampled 3600 readings", timeout=90)
        broker.start()
        sub = Subscriber(broker, "devices/#")
        stats = dev.finish(timeout=90)
        assert "MemoryError" not in dev.output()
        assert stats["sampled"] == 3600 and stats["dropped"] > 0
        assert stats["acked"] + stats["dropped"] == 3600
        wait_for(lambda: len(readings(sub.messages)) >= stats["acked"])
        assert sorted(seq for _, seq in keys(sub.messages)) == \
            list(range(3600 - stats["acked"], 3600))
        sub.close()
    finally:
        broker.kill()


@pytest.fixture
def tls_broker(tmp_path):
    broker = Broker(tmp_path / "broker", tls=True, users={"agent": "s3cret"}).start()
    yield broker
    broker.kill()


def test_tls_with_a_ca_file_and_credentials(tmp_path, tls_broker):
    dev_folder = tmp_path / "dev"
    dev_folder.mkdir()
    shutil.copy(tls_broker.certs.ca, dev_folder / "ca.crt")   # PEM: the agent makes it DER
    sub = Subscriber(tls_broker, "devices/#", username="agent", password="s3cret",
                     ca_certs=tls_broker.certs.ca)
    try:
        stats = Device(dev_folder, port=tls_broker.port, tls=True, ca_file="ca.crt",
                       server_hostname="localhost", username="agent", password="s3cret",
                       samples=10).start().finish()
        assert stats["acked"] == 10
        wait_for(lambda: {seq for _, seq in keys(sub.messages)} == set(range(10)))
    finally:
        sub.close()


def test_a_broker_not_signed_by_the_ca_is_refused(tmp_path, tls_broker):
    other = Broker(tmp_path / "other", tls=True)   # only for its own CA
    dev = Device(tmp_path / "dev", port=tls_broker.port, tls=True, ca_file=other.certs.ca,
                 username="agent", password="s3cret", samples=5).start()
    try:
        dev.wait_line("connect failed")
        dev.wait_line("sampled 5 readings")
        dev.interrupt()
        assert dev.proc.returncode != 0 and "connected to" not in dev.output()
    finally:
        dev.kill()


def test_credentials_without_tls_are_refused_at_start(tmp_path):
    dev = Device(tmp_path / "dev", username="agent", password="s3cret").start()
    assert dev.exit_status() == CONFIG_ERROR
    assert "would cross the network in clear" in dev.wait_line("agent: config")


def test_unknown_setting_is_refused_with_its_name(tmp_path):
    dev = Device(tmp_path / "dev", interval=5).start()
    assert dev.exit_status() == CONFIG_ERROR
    assert "unknown setting 'interval'" in dev.wait_line("agent: config")


class DnsGate:
    """UDP in front of a real DNS server (dnsmasq): drops every question until ``open``."""

    def __init__(self, upstream_port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.upstream = ("127.0.0.1", upstream_port)
        self.open = False
        self.dropped = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                question, client = self.sock.recvfrom(512)
            except OSError:
                return
            if not self.open:
                self.dropped += 1
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ask:
                ask.settimeout(2)
                ask.sendto(question, self.upstream)
                self.sock.sendto(ask.recv(512), client)


@pytest.fixture
def dnsmasq(tmp_path):
    exe = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    if not os.path.exists(exe):
        pytest.fail("dnsmasq is not installed (apt-get install dnsmasq-base)")
    port = free_port()
    proc = subprocess.Popen([exe, "--keep-in-foreground", "--port=%d" % port,
                             "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
                             "--no-hosts", "--address=/broker.test/127.0.0.1", "--pid-file=",
                             "--user=" + pwd.getpwuid(os.getuid()).pw_name],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield port
    proc.kill()
    proc.wait()


def test_dns_that_never_answers_does_not_stop_sampling(tmp_path, dnsmasq):
    broker = Broker(tmp_path / "broker").start()
    gate = DnsGate(dnsmasq)
    sub = Subscriber(broker, "devices/#")
    try:
        dev = Device(tmp_path / "dev", host="broker.test", port=broker.port,
                     dns="127.0.0.1:%d" % gate.port, keepalive=2, samples=16,
                     interval_s=0.25).start()
        assert "no answer from DNS 127.0.0.1:%d for broker.test" % gate.port in \
            dev.wait_line("connect failed")
        assert gate.dropped >= 1
        gate.open = True
        stats = dev.finish()
        assert stats["acked"] == 16 and stats["missed"] == 0
        wait_for(lambda: {seq for _, seq in keys(sub.messages)} == set(range(16)))
    finally:
        sub.close()
        broker.kill()


class NtpServer:
    """Answers NTP requests (RFC 5905 server mode) with this machine's time."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.asked = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                request, client = self.sock.recvfrom(512)
            except OSError:
                return
            self.asked += 1
            now = time.time() + 2208988800
            secs, frac = int(now), int((now % 1) * 2 ** 32)
            answer = bytes((0x24, 2, 6, 0xEC)) + bytes(20) + request[40:48] + \
                struct.pack(">IIII", secs, frac, secs, frac)
            self.sock.sendto(answer, client)


def test_ntp_sets_an_unset_clock_without_blocking(tmp_path):
    broker = Broker(tmp_path / "broker").start()
    ntp = NtpServer()
    sub = Subscriber(broker, "devices/#")
    try:
        dev = Device(tmp_path / "dev", port=broker.port, ntp_host="127.0.0.1:%d" % ntp.port,
                     ssid="lab", samples=12, interval_s=0.25, ntp_resync_s=1)
        dev.env["STANDIN_CLOCK"] = "unset"   # the RTC starts at 2000, as after power-up
        dev.start()
        step = int(dev.wait_line("clock set by NTP").split()[-2])
        assert step > 25 * 365 * 86400 * 1000
        stats = dev.finish()
        got = sorted(readings(sub.messages), key=lambda r: r["seq"])
        assert [r["seq"] for r in got] == list(range(12)) and stats["missed"] == 0
        before = [r for r in got if r.get("unsynced")]
        after = [r for r in got if not r.get("unsynced")]
        assert before and after and before[-1]["seq"] < after[0]["seq"]
        assert all(r["time"] < 1000000000000 for r in before)         # 2001 or so
        assert all(abs(r["time"] - time.time() * 1000) < 60000 for r in after)
        assert ntp.asked >= 2   # and synced again, ntp_resync_s later
    finally:
        sub.close()
        broker.kill()


def test_deep_sleep_duty_cycle_keeps_the_boot_and_the_count(tmp_path):
    broker = Broker(tmp_path / "broker").start()
    sub = Subscriber(broker, "devices/#")
    try:
        dev = Device(tmp_path / "dev", port=broker.port, sleep="deep", ring_file="ring.bin",
                     ring_bytes=4096, interval_s=1, awake_s=5)
        for _ in range(4):   # each wake-up is a new process: main.py runs again
            dev.start()
            assert dev.exit_status() == DEEP_SLEEP, dev.output()
            assert "standin: deep sleep" in dev.output()
        got = keys(sub.messages)
        assert len({boot for boot, _ in got}) == 1 and sorted(s for _, s in got) == [0, 1, 2, 3]
        status = [m.payload for m in sub.messages if m.topic.endswith("/status")]
        assert status.count(b"sleeping") == 4
    finally:
        sub.close()
        broker.kill()


def test_light_sleep_duty_cycle(tmp_path):
    broker = Broker(tmp_path / "broker").start()
    sub = Subscriber(broker, "devices/#")
    try:
        stats = Device(tmp_path / "dev", port=broker.port, sleep="light", samples=4,
                       interval_s=0.5).start().finish()
        assert stats["acked"] == 4 and stats["connects"] == 4
        wait_for(lambda: sorted(s for _, s in keys(sub.messages)) == [0, 1, 2, 3])
    finally:
        sub.close()
        broker.kill()


def test_watchdog_resets_a_stalled_loop(tmp_path):
    fifo = tmp_path / "sensor.fifo"
    os.mkfifo(fifo)
    dev = Device(tmp_path / "dev", wdt_s=1, port=free_port(),
                 sensors=[{"name": "t", "type": "file", "path": str(fifo)}]).start()
    try:
        time.sleep(2)        # the loop is stuck in the sensor's read: nothing feeds the dog
        with open(fifo, "w") as f:
            f.write("21.5\n")
        assert dev.exit_status() == RESET
        assert "watchdog expired" in dev.wait_line("watchdog")
    finally:
        dev.kill()


# ------------------------------------------------------------------ float32 emulation
class Float32(ast.NodeTransformer):
    """Rewrites a module so that every float it makes is rounded to single precision, as on
    ESP32 and RP2040 builds (MICROPY_FLOAT_IMPL_FLOAT); integers stay exact, as they are."""

    def _wrap(self, node):
        self.generic_visit(node)
        return ast.copy_location(ast.Call(ast.Name("_f32", ast.Load()), [node], []), node)

    visit_BinOp = visit_UnaryOp = visit_Call = _wrap

    def visit_Constant(self, node):
        return self._wrap(node) if isinstance(node.value, float) else node


def _f32(value):
    if isinstance(value, float):
        return struct.unpack("<f", struct.pack("<f", value))[0]
    return value


class BoardClock:
    """A board whose RTC counts from 2000 (as ESP32's does) and that we move by hand."""

    def __init__(self):
        self.ns = (1795420800 - 946684800) * 10 ** 9   # 2026-11-23, in ns since 2000

    def time_ns(self):
        return self.ns

    def gmtime(self, secs=None):
        return (2000, 1, 1, 0, 0, 0, 5, 1) if secs == 0 else time.gmtime(secs)


def load_float32(path, fakes):
    """Execute ``path`` with the Float32 rewrite and stand-in modules ``fakes``."""
    with open(path) as f:
        tree = ast.fix_missing_locations(Float32().visit(ast.parse(f.read())))
    saved = {name: sys.modules.get(name) for name in fakes}
    sys.modules.update(fakes)
    try:
        namespace = {"_f32": _f32, "__name__": "float32_" + os.path.basename(path)[:-3]}
        exec(compile(tree, path, "exec"), namespace)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return namespace


def test_timestamps_one_second_apart_differ_by_one_second_in_float32():
    clock = BoardClock()
    fake_time = types.ModuleType("time")
    fake_time.time_ns, fake_time.gmtime = clock.time_ns, clock.gmtime
    fake_time.ticks_ms = lambda: clock.ns // 10 ** 6 % (1 << 30)
    fake_time.ticks_diff = lambda a, b: a - b
    fake_time.ticks_add = lambda a, b: a + b
    fake_machine = types.ModuleType("machine")
    fake_machine.WDT = object
    board = load_float32(os.path.join(FIRMWARE, "board.py"),
                         {"time": fake_time, "machine": fake_machine})
    assert board["EPOCH_MS"] == 946684800000   # the 2000 epoch is taken into account
    b = board["Board"]({"ssid": None, "wdt_s": 0})
    stamps = []
    for _ in range(10):
        stamps.append(b.now_ms())
        clock.ns += 10 ** 9
    assert all(isinstance(s, int) for s in stamps)
    assert stamps[0] == 1795420800000
    assert all(abs((later - earlier) - 1000) <= 10 for earlier, later in zip(stamps, stamps[1:]))

    # The emulation bites: the old agent's formula lands on a 128 s grid in float32.
    old = load_float32_expression("time.time_ns() // 1000000 / 1000 + 946684800", fake_time)
    clock.ns = (1795420800 - 946684800) * 10 ** 9
    first = old()
    clock.ns += 10 ** 9
    assert old() - first != 1.0


def load_float32_expression(text, fake_time):
    tree = ast.fix_missing_locations(Float32().visit(ast.parse("lambda: " + text, mode="eval")))
    return eval(compile(tree, "<old agent>", "eval"), {"_f32": _f32, "time": fake_time})
