"""configs/pi-host-metrics as shipped, on a fake Raspberry Pi 4 (tests/fake_pi.py) and a real
Mosquitto: every metric reaches its topic with Fluent Bit's keys and the Pi's values."""
import json
import os

from conftest import ROOT, wait_for
from fake_pi import FakePi, MEMINFO
from mosquitto import Broker, Subscriber

CONFIG = os.path.join(ROOT, "configs", "pi-host-metrics", "fluent-bit.conf")
TOPICS = ("cpu", "mem", "disk", "eth0", "wlan0", "thermal")


def test_every_metric_of_a_pi_reaches_its_topic(tmp_path, spawn):
    pi = FakePi(tmp_path / "pi")
    broker = Broker(tmp_path / "broker").start()
    subscriber = Subscriber(broker, "pi/#")
    try:
        env = dict(pi.environ(), MQTT_PORT=str(broker.port), HOSTNAME="pi-test",
                   METRICS_INTERVAL="1")
        spawn(["-c", CONFIG], env=env)

        def by_topic():
            seen = {}
            for message in list(subscriber.messages):
                seen.setdefault(message.topic, json.loads(message.payload))
            return seen

        seen = wait_for(lambda: len(by_topic()) == len(TOPICS) and by_topic())
        assert sorted(seen) == sorted("pi/pi-test/" + t for t in TOPICS)
        cpu = seen["pi/pi-test/cpu"]
        assert list(cpu)[:4] == ["time", "cpu_p", "user_p", "system_p"]
        assert list(cpu)[-3:] == ["cpu3.p_cpu", "cpu3.p_user", "cpu3.p_system"]
        mem = seen["pi/pi-test/mem"]
        assert (mem["Mem.total"], mem["Mem.free"]) == (MEMINFO["MemTotal"], MEMINFO["MemFree"])
        assert list(seen["pi/pi-test/disk"])[1:] == ["read_size", "write_size"]
        assert list(seen["pi/pi-test/eth0"])[1:] == [
            "eth0.rx.bytes", "eth0.rx.packets", "eth0.rx.errors", "eth0.tx.bytes",
            "eth0.tx.packets", "eth0.tx.errors"]
        assert list(seen["pi/pi-test/wlan0"])[1] == "wlan0.rx.bytes"
        thermal = seen["pi/pi-test/thermal"]
        assert (thermal["name"], thermal["type"], thermal["temp"]) == (
            "thermal_zone0", "cpu-thermal", 48.686)
    finally:
        subscriber.close()
        broker.kill()
