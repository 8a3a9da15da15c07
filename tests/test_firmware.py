"""The MicroPython agent (firmware/) under the real MicroPython unix port against a real Mosquitto:
readings arrive with their identity and integer time; broker kills, network cuts, silent links,
a broker that never answers, WiFi loss, reboots with the flash ring, a torn flash page and a
crash are lived through without losing an acknowledged reading; the drops of a full ring are
counted; sampling never pauses. (The 48 KB heap, TLS, DNS, NTP, sleep and the watchdog are in
test_firmware_board.py.)"""
import json
import os
import time

import cbor2
import pytest
from hypothesis import given, strategies as st

from conftest import wait_for
from device import RESET, Device, Relay, keys, readings
from edgeship.core.cbor import dumps
from mosquitto import Broker, Subscriber


def test_readings_carry_device_boot_seq_and_integer_time(tmp_path):
    broker = Broker(tmp_path / "broker").start()
    sub = Subscriber(broker, "devices/fw-1/#")
    try:
        dev = Device(tmp_path / "dev", port=broker.port, samples=30, format="json",
                     stats_s=0.5).start()
        stats = dev.finish()
        wait_for(lambda: len(readings(sub.messages)) >= 30)
        got = readings(sub.messages)
        assert sorted(r["seq"] for r in got) == list(range(30))
        assert len({r["boot"] for r in got}) == 1
        for r in got:
            assert r["device"] == "fw-1" and isinstance(r["temp_c"], float)
            assert isinstance(r["time"], int) and abs(r["time"] - time.time() * 1000) < 60000
            assert "unsynced" not in r   # the unix port's clock is the host's
        assert stats["sampled"] == stats["acked"] == 30 and stats["dropped"] == 0
        assert stats["connects"] == 1 and stats["missed"] == 0
        # the counters, every stats_s, on their own topic
        counters = [json.loads(m.payload) for m in list(sub.messages)
                    if m.topic == "devices/fw-1/stats"]
        assert counters and counters[-1]["device"] == "fw-1" and counters[-1]["connects"] == 1
        assert {"sampled", "acked", "dropped", "lost", "mem_free", "boot"} <= set(counters[-1])
        # the retained status: online while connected, offline after a clean end
        status = [m.payload for m in sub.messages if m.topic == "devices/fw-1/status"]
        wait_for(lambda: status == [b"online", b"offline"] or
                 [m.payload for m in sub.messages if m.topic.endswith("status")] ==
                 [b"online", b"offline"])
        sub.close()
        late = Subscriber(broker, "devices/fw-1/status")
        wait_for(lambda: late.messages)
        assert late.messages[0].payload == b"offline" and late.messages[0].retain
        late.close()
    finally:
        sub.close()
        broker.kill()


def test_client_id_comes_from_the_board_unique_id(tmp_path):
    broker = Broker(tmp_path / "broker", extra="log_type notice").start()
    try:
        dev = Device(tmp_path / "dev", port=broker.port, samples=1)
        del dev.config["device_id"]
        dev.start().finish()
        log = open(os.path.join(broker.folder, "mosquitto.log")).read()
        assert "as edgeship-0ed935419a01" in log   # the stand-in's machine.unique_id()
    finally:
        broker.kill()


def test_network_cut_loses_nothing(tmp_path):
    broker = Broker(tmp_path / "broker").start()
    relay = Relay(broker.port)
    sub = Subscriber(broker, "devices/#")
    try:
        dev = Device(tmp_path / "dev", port=relay.port, samples=60, interval_s=0.1).start()
        wait_for(lambda: len(readings(sub.messages)) >= 10)
        relay.mode = "refuse"
        relay.cut()          # mid-stream: PUBLISHes and PUBACKs in flight are lost
        wait_for(lambda: relay.accepted >= 3)   # reconnects refused, with backoff
        relay.mode = "pass"
        stats = dev.finish()
        wait_for(lambda: {seq for _, seq in keys(sub.messages)} == set(range(60)))
        assert stats["acked"] == 60 and stats["dropped"] == 0 and stats["lost"] >= 1
        assert stats["connects"] >= 2 and stats["missed"] == 0
    finally:
        sub.close()
        relay.close()
        broker.kill()


def test_broker_kill_is_lived_through(tmp_path):
    broker = Broker(tmp_path / "broker").start()
    try:
        dev = Device(tmp_path / "dev", port=broker.port, samples=40, interval_s=0.1).start()
        dev.wait_line("connected to")
        broker.kill()        # SIGKILL: what it acknowledged but did not pass on is its loss
        dev.wait_line("connection lost")
        broker.start()
        sub = Subscriber(broker, "devices/#")
        stats = dev.finish()
        assert stats["sampled"] == stats["acked"] == 40 and stats["dropped"] == 0
        assert stats["connects"] >= 2 and stats["missed"] == 0
        sub.close()
    finally:
        broker.kill()


def test_silent_link_is_noticed_within_one_and_a_half_keepalives(tmp_path):
    broker = Broker(tmp_path / "broker").start()
    relay = Relay(broker.port)
    sub = Subscriber(broker, "devices/#")
    keepalive = 2
    try:
        dev = Device(tmp_path / "dev", port=relay.port, samples=30, interval_s=0.25,
                     keepalive=keepalive).start()
        wait_for(lambda: len(readings(sub.messages)) >= 4)
        silent_since = time.monotonic()
        relay.silence()      # TCP stays up, nothing passes either way
        wait_for(lambda: relay.closed_at, timeout=10)
        noticed = relay.closed_at[0] - silent_since
        assert noticed <= 1.5 * keepalive, "dead link noticed after %.2f s" % noticed
        assert "dead link" in dev.wait_line("connection lost")
        stats = dev.finish()
        wait_for(lambda: {seq for _, seq in keys(sub.messages)} == set(range(30)))
        assert stats["acked"] == 30 and stats["lost"] >= 1 and stats["missed"] == 0
    finally:
        sub.close()
        relay.close()
        broker.kill()


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_broker_that_accepts_and_never_answers_does_not_stop_sampling(tmp_path, tls):
    """A broker that takes the TCP connection and then says nothing (with TLS: not even the
    handshake) costs a connect timeout, never a pause in the sampling."""
    broker = Broker(tmp_path / "broker", tls=tls).start()
    relay = Relay(broker.port)
    relay.mode = "blackhole"
    sub = Subscriber(broker, "devices/#", **({"ca_certs": broker.certs.ca} if tls else {}))
    secure = {"tls": True, "ca_file": broker.certs.ca, "server_hostname": "localhost"} \
        if tls else {}
    try:
        dev = Device(tmp_path / "dev", port=relay.port, samples=24, interval_s=0.25,
                     connect_timeout_s=1, **secure).start()
        line = dev.wait_line("connect failed")
        assert "no CONNACK" in line
        wait_for(lambda: relay.accepted >= 2)   # and again, after a backoff
        relay.mode = "pass"
        stats = dev.finish()
        got = readings(sub.messages)
        assert sorted(r["seq"] for r in got) == list(range(24))
        assert stats["missed"] == 0 and stats["dropped"] == 0
        times = [r["time"] for r in sorted(got, key=lambda r: r["seq"])]
        assert max(b - a for a, b in zip(times, times[1:])) < 2 * 250   # no slot skipped
    finally:
        sub.close()
        relay.close()
        broker.kill()


def test_full_ring_drops_the_oldest_and_counts_them(tmp_path):
    broker = Broker(tmp_path / "broker")   # not started: connects are refused
    dev = Device(tmp_path / "dev", port=broker.port, samples=80, interval_s=0.01,
                 ring_bytes=1024, page_bytes=256).start()
    try:
        dev.wait_line("sampled 80 readings")
        broker.start()
        sub = Subscriber(broker, "devices/#")
        stats = dev.finish()
        assert stats["sampled"] == 80 and stats["dropped"] > 0
        assert stats["acked"] + stats["dropped"] == 80
        wait_for(lambda: len(readings(sub.messages)) >= stats["acked"])
        assert sorted(r["seq"] for r in readings(sub.messages)) == \
            list(range(80 - stats["acked"], 80))   # the newest survived
        sub.close()
    finally:
        broker.kill()


def test_reboot_keeps_the_flash_ring_and_changes_the_boot_id(tmp_path):
    broker = Broker(tmp_path / "broker")   # down while the first boot samples
    dev = Device(tmp_path / "dev", port=broker.port, ring_file="ring.bin", ring_bytes=16384,
                 persist_s=0.3, interval_s=0.02).start()
    try:
        line = dev.wait_line("persisted boot")
        boot, last = int(line.split()[3]), int(line.split()[-1])
        dev.kill()           # power cut: only what was written to flash comes back
        broker.start()
        sub = Subscriber(broker, "devices/#")
        dev.start(samples=10)
        restored = dev.wait_line("ring restored")
        assert "boot %d" % (boot + 1) in restored and " 0 torn" in restored
        stats = dev.finish()
        got = keys(sub.messages)
        assert {(boot, seq) for seq in range(last + 1)} <= got   # every persisted reading
        assert {(boot + 1, seq) for seq in range(10)} <= got
        assert stats["restored"] >= last + 1 and stats["dropped"] == 0
        sub.close()
    finally:
        broker.kill()


def test_torn_flash_page_is_detected_and_skipped(tmp_path):
    broker = Broker(tmp_path / "broker")
    dev = Device(tmp_path / "dev", port=broker.port, ring_file="ring.bin", ring_bytes=8192,
                 page_bytes=256, samples=60, interval_s=0.01).start()   # room for all 60
    try:
        dev.wait_line("sampled 60 readings")
        dev.interrupt()      # Ctrl-C: the open page is saved too
        ring = tmp_path / "dev" / "ring.bin"
        data = bytearray(ring.read_bytes())
        data[256 + 100:256 + 104] = b"\x00\xff\x00\xff"   # a write cut short in page 1
        ring.write_bytes(bytes(data))
        broker.start()
        sub = Subscriber(broker, "devices/#")
        dev.start(samples=1)
        restored = dev.wait_line("ring restored")
        assert "1 torn pages" in restored
        first_boot = int(restored.split()[-1]) - 1
        stats = dev.finish()
        assert stats["torn"] == 1
        first = [seq for boot, seq in keys(sub.messages) if boot == first_boot]
        missing = sorted(set(range(60)) - set(first))
        assert missing and missing == list(range(missing[0], missing[-1] + 1))   # one page
        assert len(missing) < 8 and stats["restored"] == 60 - len(missing)
        sub.close()
    finally:
        broker.kill()


def test_crash_is_logged_ring_saved_and_board_reset(tmp_path):
    broker = Broker(tmp_path / "broker")
    dev = Device(tmp_path / "dev", port=broker.port, ring_file="ring.bin", ring_bytes=4096,
                 ssid="lab", interval_s=0.02).start()
    try:
        dev.wait_line("WiFi up")
        dev.wait_line("connect failed")   # the broker is down: readings wait in the ring
        dev.wifi("crash")                 # the radio driver raises something unexpected
        assert dev.exit_status() == RESET
        crash = (tmp_path / "dev" / "crash.log").read_text()
        assert "RuntimeError: stand-in WiFi driver fault" in crash and "board.py" in crash
        seq = int(crash.split()[3])
        dev.wifi("up")
        broker.start()
        sub = Subscriber(broker, "devices/#")
        dev.start(samples=3)
        first_boot = int(dev.wait_line("ring restored").split()[-1]) - 1
        stats = dev.finish()
        got = keys(sub.messages)
        assert {(first_boot, n) for n in range(seq)} <= got   # nothing sampled was lost
        assert stats["restored"] == seq
        sub.close()
    finally:
        broker.kill()


def test_wifi_loss_drops_the_link_and_reconnects(tmp_path):
    broker = Broker(tmp_path / "broker").start()
    sub = Subscriber(broker, "devices/#")
    try:
        dev = Device(tmp_path / "dev", port=broker.port, ssid="lab", samples=50,
                     interval_s=0.1).start()
        dev.wait_line("connected to")
        dev.wifi("down")
        assert "WiFi down" in dev.wait_line("connection lost")
        dev.wait_line("WiFi association failed")   # and retries, backing off
        dev.wifi("up")
        stats = dev.finish()
        assert stats["wifi_drops"] == 1 and stats["connects"] >= 2
        wait_for(lambda: {seq for _, seq in keys(sub.messages)} == set(range(50)))
        assert stats["acked"] == 50 and stats["missed"] == 0
    finally:
        sub.close()
        broker.kill()


def test_edgeship_reads_the_agents_cbor(tmp_path, spawn):
    broker = Broker(tmp_path / "broker", extra="log_type subscribe").start()
    out = tmp_path / "out"
    try:
        edgeship = spawn(["-f", "0.2", "-i", "mqtt_client", "-p", "host=127.0.0.1",
                          "-p", "port=%d" % broker.port, "-p", "topic=devices/+/telemetry",
                          "-p", "format=cbor", "-p", "tag=$TOPIC",
                          "-o", "file", "-m", "devices.*", "-p", "path=%s" % out,
                          "-p", "file=sensors.jsonl", "-p", "format=plain", "-p", "mkdir=on"])
        log = os.path.join(broker.folder, "mosquitto.log")
        wait_for(lambda: "devices/+/telemetry" in open(log).read())   # subscribed
        Device(tmp_path / "dev", port=broker.port, samples=20).start().finish()
        path = out / "sensors.jsonl"
        wait_for(lambda: path.exists() and len(path.read_text().splitlines()) >= 20)
        records = [json.loads(line) for line in path.read_text().splitlines()]
        assert sorted(r["seq"] for r in records) == list(range(20))
        assert all(r["device"] == "fw-1" and "temp_c" in r for r in records)
        edgeship.kill()
    finally:
        broker.kill()


def test_cbor_payload_is_what_cbor2_reads(tmp_path):
    broker = Broker(tmp_path / "broker").start()
    sub = Subscriber(broker, "devices/fw-1/telemetry")
    try:
        Device(tmp_path / "dev", port=broker.port, samples=3).start().finish()
        wait_for(lambda: len(sub.messages) >= 3)
        record = cbor2.loads(sub.messages[0].payload)
        assert set(record) == {"device", "boot", "seq", "time", "temp_c"}
    finally:
        sub.close()
        broker.kill()


@given(st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 64 - 1) | st.floats(allow_nan=False)
    | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12))
def test_core_cbor_agrees_with_cbor2(value):
    assert cbor2.loads(dumps(value)) == value
