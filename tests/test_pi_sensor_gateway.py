"""configs/pi-sensor-gateway as shipped, with the MicroPython agent as shipped: agent -> the Pi's
Mosquitto -> edgeship -> the upstream broker over TLS. Every reading the agent took arrives
upstream, with the agent's own field names."""
import os

import cbor2

from conftest import ROOT, wait_for
from device import Device
from mosquitto import Broker, Subscriber

CONFIG = os.path.join(ROOT, "configs", "pi-sensor-gateway", "fluent-bit.conf")


def upstream_records(messages):
    out = []
    for message in list(messages):
        value = cbor2.loads(message.payload)
        out += value if isinstance(value, list) else [value]   # a batch, or one record
    return out


def test_every_agent_reading_reaches_the_upstream_broker(tmp_path, spawn):
    local = Broker(tmp_path / "local", extra="log_type subscribe").start()
    upstream = Broker(tmp_path / "upstream", tls=True).start()
    aggregator = Subscriber(upstream, "gateways/#", ca_certs=upstream.certs.ca)
    try:
        spawn(["-c", CONFIG], env={
            "LOCAL_MQTT_PORT": str(local.port), "UPSTREAM_HOST": "127.0.0.1",
            "UPSTREAM_PORT": str(upstream.port), "UPSTREAM_CA": upstream.certs.ca,
            "HOSTNAME": "gw-test", "STATE_DIRECTORY": str(tmp_path)})
        log = os.path.join(local.folder, "mosquitto.log")
        wait_for(lambda: "devices/+/telemetry" in open(log).read())   # edgeship subscribed
        stats = Device(tmp_path / "dev", port=local.port, samples=40).start().finish()
        assert stats["acked"] == 40
        wait_for(lambda: len(upstream_records(aggregator.messages)) >= 40)
        records = upstream_records(aggregator.messages)
        assert {m.topic for m in aggregator.messages} == {"gateways/gw-test/fw-1"}
        assert {(r["boot"], r["seq"]) for r in records} == \
            {(records[0]["boot"], seq) for seq in range(40)}
        for r in records:
            assert r["device"] == "fw-1" and r["gateway"] == "gw-test"
            assert isinstance(r["time"], int) and isinstance(r["temp_c"], float)
        assert len(records) == 40   # and none twice
    finally:
        aggregator.close()
        upstream.kill()
        local.kill()


def test_readings_without_a_device_name_are_dropped_not_forwarded(tmp_path, spawn):
    local = Broker(tmp_path / "local", extra="log_type subscribe").start()
    upstream = Broker(tmp_path / "upstream", tls=True).start()
    aggregator = Subscriber(upstream, "gateways/#", ca_certs=upstream.certs.ca)
    try:
        spawn(["-c", CONFIG], env={
            "LOCAL_MQTT_PORT": str(local.port), "UPSTREAM_PORT": str(upstream.port),
            "UPSTREAM_CA": upstream.certs.ca, "HOSTNAME": "gw-test",
            "STATE_DIRECTORY": str(tmp_path)})
        log = os.path.join(local.folder, "mosquitto.log")
        wait_for(lambda: "devices/+/telemetry" in open(log).read())
        publisher = Subscriber(local, "unused/#")   # a paho client to publish with
        publisher.client.publish("devices/x/telemetry", cbor2.dumps({"seq": 1}), qos=1)
        # the agent's readings come after it on the same input: once they are upstream,
        # the one without a device name went through the filters too
        Device(tmp_path / "dev", port=local.port, samples=3).start().finish()
        wait_for(lambda: len(upstream_records(aggregator.messages)) >= 3)
        assert {r["device"] for r in upstream_records(aggregator.messages)} == {"fw-1"}
        publisher.close()
    finally:
        aggregator.close()
        upstream.kill()
        local.kill()
