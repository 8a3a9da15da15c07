"""[INPUT] mqtt_client against a real Mosquitto: formats, $TOPIC tags, persistent sessions
and acknowledgements that wait for the records to be delivered."""
import json
import os
import time

import cbor2
import msgpack
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from conftest import wait_for
from mosquitto import Broker, Subscriber, running_broker

broker = pytest.fixture(running_broker, name="broker")


def config(tmp_path, broker, out_port=None, **options):
    """mqtt_client from ``broker`` -> mqtt output to ``out_port`` (default: the same broker,
    topic out/$TAG)."""
    lines = ["[SERVICE]", "    Flush 0.1", "    Grace 1", "    scheduler.base 1",
             "    scheduler.cap 1",
             "[INPUT]", "    Name mqtt_client", "    Port %d" % broker.port]
    options.setdefault("Topic", "in/#")
    options.setdefault("Client_Id", "edgeship-test-in")
    for key, value in options.items():
        for item in value if isinstance(value, list) else [value]:
            lines.append("    %s %s" % (key, item))
    lines += ["[OUTPUT]", "    Name mqtt", "    Match *",
              "    Port %d" % (out_port or broker.port), "    Topic out/$TAG",
              "    json_date_key false", "    Retry_Limit no_limits", "    Reconnect_Max 1"]
    path = tmp_path / "edgeship.conf"
    path.write_text("\n".join(lines) + "\n")
    return ["-c", str(path)]


def publisher(broker):
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client


def publish(client, topic, payload, qos=1):
    client.publish(topic, payload, qos=qos).wait_for_publish(5)


def started(child, broker):
    """Wait until edgeship's input has subscribed (its session exists on the broker)."""
    probe = publisher(broker)
    sub = Subscriber(broker, "out/#")
    deadline = time.monotonic() + 15
    while not sub.messages and time.monotonic() < deadline:
        publish(probe, "in/probe", '{"probe":1}')
        time.sleep(0.2)
    assert sub.messages, "edgeship did not pick up messages"
    probe.disconnect()
    probe.loop_stop()
    return sub


def subscribed(sub, pub, topic, body):
    """Publish ``body`` on ``topic`` until edgeship passes one on: its subscription is in place
    (a fixed sleep loses that race on a slow machine). The caller skips the probes' records."""
    wait_for(lambda: publish(pub, topic, body) or sub.messages, interval=0.3)


def records(sub, skip_probes=True):
    out = [(m.topic, json.loads(m.payload)) for m in sub.messages]
    return [r for r in out if not (skip_probes and r[1].get("topic") == "in/probe")]


@pytest.mark.e2e
def test_formats_and_topic_tags(tmp_path, broker, spawn):
    cases = {
        "json": (b'{"t":21.5}\n{"t":22.0}', [{"t": 21.5}, {"t": 22.0}]),
        "cbor": (cbor2.dumps([{"a": 1}, {"a": 2}]), [{"a": 1}, {"a": 2}]),
        "msgpack": (msgpack.packb({"m": "x"}), [{"m": "x"}]),
        "raw": (b"plain line", [{"log": "plain line"}]),
    }
    for fmt, (body, want) in cases.items():
        folder = tmp_path / fmt
        folder.mkdir()
        child = spawn(config(folder, broker, Format=fmt, Tag="dev.$TOPIC",
                             Client_Id="in-" + fmt, Topic="in/%s/#" % fmt))
        sub = Subscriber(broker, "out/#")
        pub = publisher(broker)
        subscribed(sub, pub, "in/%s/probe" % fmt, body)
        publish(pub, "in/%s/room1" % fmt, body)

        def room1():
            return [r for r in records(sub) if r[0].endswith(".room1")]
        wait_for(lambda: len(room1()) >= len(want))
        time.sleep(0.2)
        assert room1() == [("out/dev.in.%s.room1" % fmt, dict({"topic": "in/%s/room1" % fmt},
                                                              **r)) for r in want]
        child.kill()
        sub.close()
        pub.disconnect()


def test_topic_tags_are_record_accessor_templates(tmp_path):
    """$TOPIC is rendered by the one record-accessor engine: it ends where any accessor
    ends, and '-' belongs to a key name (it was a text replace of '$TOPIC' before)."""
    from filter_helpers import load
    tags = {}
    for tag in ("dev.$TOPIC", "dev.$TOPIC.raw", "$TOPIC-raw", "$TOPIC"):
        section = ("[INPUT]\n    Name mqtt_client\n    Topic x/#\n    Tag %s\n" % tag)
        plugin = load(tmp_path, section).inputs[0]
        tags[tag] = plugin._tag("/site/room1")
    assert tags == {"dev.$TOPIC": "dev.site.room1", "dev.$TOPIC.raw": "dev.site.room1.raw",
                    "$TOPIC-raw": "mqtt_client.0", "$TOPIC": "site.room1"}


def test_undecodable_and_scalar_payloads_are_kept(tmp_path, broker, spawn):
    spawn(config(tmp_path, broker, Topic_Key="false", Key="value"))
    sub = Subscriber(broker, "out/#")
    pub = publisher(broker)
    subscribed(sub, pub, "in/x", b"probe")
    for body in (b"not json", b"42", b"[1,2]"):
        publish(pub, "in/x", body)

    def kept():
        return [r for _, r in records(sub) if r != {"value": "probe"}]
    wait_for(lambda: len(kept()) >= 3)
    assert kept() == [{"value": "not json"}, {"value": 42}, {"value": [1, 2]}]
    sub.close()


def test_persistent_session_catches_up_after_edgeship_restart(tmp_path, broker, spawn):
    args = config(tmp_path, broker, Tag="sensors")
    child = spawn(args)
    sub = started(child, broker)
    child.kill()                      # SIGKILL: the broker keeps the session
    pub = publisher(broker)
    for i in range(20):
        publish(pub, "in/n", json.dumps({"i": i}))
    spawn(args)
    wait_for(lambda: len(records(sub)) >= 20)
    got = sorted(r["i"] for _, r in records(sub))
    assert got == list(range(20))
    sub.close()


@pytest.mark.e2e
def test_messages_are_acked_only_after_delivery(tmp_path, broker, spawn):
    """The output broker is down: edgeship holds the messages unacknowledged; SIGKILLed, it
    loses nothing, because the input broker sends them again on the next start."""
    upstream = Broker(tmp_path / "upstream")          # not started yet
    try:
        args = config(tmp_path, broker, out_port=upstream.port, Tag="relay")
        # A file output beside the dead one shows when the input has subscribed (a probe
        # comes out), rather than a fixed sleep; nothing is acknowledged while one is dead.
        probes = tmp_path / "probes"
        probes.mkdir()
        child = spawn(args + ["-o", "file", "-m", "*", "-p", "path=%s" % probes])
        pub = publisher(broker)
        wait_for(lambda: publish(pub, "in/probe", '{"probe":1}') or os.listdir(str(probes)),
                 interval=0.3)
        for i in range(10):
            publish(pub, "in/n", json.dumps({"i": i}))
        time.sleep(1.0)
        child.kill()
        upstream.start()
        sub = Subscriber(upstream, "out/#")
        spawn(args)
        wait_for(lambda: len(records(sub)) >= 10)      # the probes come again too
        assert sorted(r["i"] for _, r in records(sub)) == list(range(10))
        sub.close()
    finally:
        upstream.kill()


def test_tls_and_auth_with_mqtt5(tmp_path, spawn):
    broker = Broker(tmp_path / "broker", tls=True, users={"edge": "pw"}).start()
    try:
        certs = broker.certs
        tls = {"ca_certs": certs.ca}
        sub = Subscriber(broker, "out/#", username="edge", password="pw", **tls)
        path = tmp_path / "edgeship.conf"
        path.write_text("""[SERVICE]
    Flush 0.1
[INPUT]
    Name mqtt_client
    Port {port}
    Topic in/#
    Protocol 5
    Username edge
    Password pw
    tls on
    tls.ca_file {ca}
[OUTPUT]
    Name mqtt
    Match *
    Port {port}
    Topic out/x
    Username edge
    Password pw
    tls on
    tls.ca_file {ca}
""".format(port=broker.port, ca=certs.ca))
        spawn(["-c", str(path)])
        pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="tls-pub")
        pub.tls_set(ca_certs=certs.ca)
        pub.username_pw_set("edge", "pw")
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        # Published until edgeship has subscribed (not a fixed sleep: a slow start loses one).
        deadline = time.monotonic() + 20
        while not sub.messages and time.monotonic() < deadline:
            publish(pub, "in/s", '{"secure":true}')
            time.sleep(0.3)
        wait_for(lambda: sub.messages)
        record = json.loads(sub.messages[0].payload)
        assert record["topic"] == "in/s" and record["secure"] is True
        sub.close()
        pub.disconnect()
        pub.loop_stop()
    finally:
        broker.kill()
