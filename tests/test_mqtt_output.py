"""[OUTPUT] mqtt against a real Mosquitto: every record checked by an independent paho
subscriber that decodes the payloads."""
import json
import os
import socket
import time

import cbor2
import msgpack
import pytest

from conftest import run_edgeship, wait_for
from mosquitto import Broker, Subscriber, running_broker


broker = pytest.fixture(running_broker, name="broker")


def config(tmp_path, body, flush="0.2"):
    path = tmp_path / "edgeship.conf"
    path.write_text("[SERVICE]\n    Flush %s\n    Grace 2\n    scheduler.base 1\n"
                    "    scheduler.cap 2\n%s" % (flush, body))
    return str(path)


def dummy(records, tag="app.log", copies=1, rate=20):
    return ("[INPUT]\n    Name dummy\n    Tag %s\n    Dummy %s\n    Samples %d\n"
            "    Copies %d\n    Rate %d\n    Flush_On_Startup on\n"
            % (tag, json.dumps(records), 1 if copies > 1 else 3, copies, rate))


def output(port, **options):
    lines = ["[OUTPUT]", "    Name mqtt", "    Match *", "    Port %d" % port]
    lines += ["    %s %s" % (k, v) for k, v in options.items()]
    return "\n".join(lines) + "\n"


def received(sub, count):
    wait_for(lambda: len(sub.messages) >= count)
    return sub.messages


@pytest.mark.e2e
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_every_qos_delivers_json_records(tmp_path, broker, spawn, qos):
    sub = Subscriber(broker, "out/#", qos=2)
    conf = config(tmp_path, dummy({"n": 1, "s": "x"}) + output(broker.port, Topic="out/$TAG",
                                                               QoS=qos))
    spawn(["-c", conf])
    messages = received(sub, 3)
    for m in messages:
        assert m.topic == "out/app.log"
        record = json.loads(m.payload)
        assert list(record) == ["date", "n", "s"] and record["n"] == 1
        assert abs(record["date"] - time.time()) < 60
    sub.close()


def test_topic_templates_tag_parts_and_record_accessors(tmp_path, broker, spawn):
    sub = Subscriber(broker, "t/#")
    # '-' belongs to a key name, as in every record accessor of Fluent Bit
    conf = config(tmp_path, dummy({"device-id": "dev7", "sensor": {"id": "s/1"}}, tag="site.gw")
                  + output(broker.port, Topic="t/$TAG[1]/$device-id/$sensor['id']",
                           json_date_key="false"))
    spawn(["-c", conf])
    m = received(sub, 1)[0]
    assert m.topic == "t/gw/dev7/s/1"
    assert json.loads(m.payload) == {"device-id": "dev7", "sensor": {"id": "s/1"}}
    sub.close()


@pytest.mark.parametrize("fmt", ["json_lines", "cbor", "msgpack"])
def test_batch_formats_one_message_per_chunk(tmp_path, broker, spawn, fmt):
    sub = Subscriber(broker, "b/#")
    conf = config(tmp_path, dummy({"k": "v", "f": 1.5}, copies=50)
                  + output(broker.port, Topic="b/x", Format=fmt, json_date_format="epoch"),
                  flush="1")
    spawn(["-c", conf])
    m = received(sub, 1)[0]
    time.sleep(0.3)
    assert len(sub.messages) == 1, "one chunk, one message"
    if fmt == "json_lines":
        records = [json.loads(line) for line in m.payload.decode().splitlines()]
    elif fmt == "cbor":
        records = cbor2.loads(m.payload)
    else:
        records = msgpack.unpackb(m.payload)
    assert len(records) == 50
    assert all(list(r) == ["date", "k", "f"] and r["f"] == 1.5 for r in records)
    assert all(isinstance(r["date"], int) for r in records)
    sub.close()


def test_payload_key_sends_one_field_raw(tmp_path, broker, spawn):
    sub = Subscriber(broker, "raw/#")
    conf = config(tmp_path, dummy({"log": "plain text line", "n": 1})
                  + output(broker.port, Topic="raw/1", Payload_Key="log"))
    spawn(["-c", conf])
    assert received(sub, 1)[0].payload == b"plain text line"
    sub.close()


def test_mqtt5_and_retain(tmp_path, broker, spawn):
    conf = config(tmp_path, dummy({"v": 5}) + output(broker.port, Topic="r/5", Protocol="5",
                                                     Retain="on", QoS="1"))
    live = Subscriber(broker, "r/#")
    spawn(["-c", conf])
    received(live, 1)   # published (not a fixed sleep: a slow start would come after)
    live.close()
    # A subscriber that comes later still gets the retained message.
    sub = Subscriber(broker, "r/#")
    m = received(sub, 1)[0]
    assert m.retain and json.loads(m.payload)["v"] == 5
    sub.close()


@pytest.mark.e2e
def test_tls_with_client_certificate(tmp_path, spawn):
    broker = Broker(tmp_path / "broker", tls=True, require_certificate=True).start()
    try:
        certs = broker.certs
        sub = Subscriber(broker, "tls/#", ca_certs=certs.ca, certfile=certs.client_crt,
                         keyfile=certs.client_key)
        conf = config(tmp_path, dummy({"secure": True}) + output(
            broker.port, Topic="tls/x", tls="on", **{"tls.ca_file": certs.ca,
                                                     "tls.crt_file": certs.client_crt,
                                                     "tls.key_file": certs.client_key,
                                                     "tls.verify_hostname": "on"}))
        spawn(["-c", conf])
        assert json.loads(received(sub, 1)[0].payload)["secure"] is True
        sub.close()
    finally:
        broker.kill()


def test_tls_refuses_an_unknown_certificate_authority(tmp_path, spawn):
    broker = Broker(tmp_path / "broker", tls=True).start()
    try:
        conf = config(tmp_path, dummy({"a": 1}) + output(broker.port, tls="on"))
        child = spawn(["-c", conf])
        time.sleep(1.5)
        child.proc.terminate()
        err = child.proc.stderr.read().decode()
        assert "cannot connect" in err and "CERTIFICATE_VERIFY_FAILED" in err
    finally:
        broker.kill()


def test_tls_vhost_is_the_name_sent_and_checked(tmp_path, spawn):
    # The broker's certificate names 127.0.0.1 and localhost, not the tls.vhost below.
    broker = Broker(tmp_path / "broker", tls=True).start()
    try:
        conf = config(tmp_path, dummy({"a": 1}) + output(
            broker.port, tls="on", **{"tls.ca_file": broker.certs.ca,
                                      "tls.verify_hostname": "on",
                                      "tls.vhost": "elsewhere.example"}))
        child = spawn(["-c", conf])
        time.sleep(1.5)
        child.proc.terminate()
        err = child.proc.stderr.read().decode()
        assert "cannot connect" in err and "'elsewhere.example'" in err
    finally:
        broker.kill()


def test_password_file_auth(tmp_path, spawn):
    broker = Broker(tmp_path / "broker", users={"edge": "s3cret", "reader": "r"}).start()
    try:
        sub = Subscriber(broker, "auth/#", username="reader", password="r")
        good = config(tmp_path, dummy({"ok": 1}) + output(broker.port, Topic="auth/ok",
                                                          Username="edge", Password="s3cret"))
        spawn(["-c", good])
        assert json.loads(received(sub, 1)[0].payload)["ok"] == 1
        bad_dir = tmp_path / "bad"
        bad_dir.mkdir()
        bad = config(bad_dir, dummy({"ok": 0}) + output(broker.port, Topic="auth/bad",
                                                        Username="edge", Password="wrong"))
        child = spawn(["-c", bad])
        time.sleep(1.5)
        child.proc.terminate()
        assert child.proc.wait(10) == 0, "a refused login is retried, not a crash"
        assert "refused the connection" in child.proc.stderr.read().decode()
        assert all(m.topic != "auth/bad" for m in sub.messages)
        sub.close()
    finally:
        broker.kill()


def test_websockets_transport(tmp_path, spawn):
    broker = Broker(tmp_path / "broker", websockets=True).start()
    try:
        sub = Subscriber(broker, "ws/#")
        conf = config(tmp_path, dummy({"via": "ws"}) + "[OUTPUT]\n    Name mqtt\n    Match *\n"
                      "    Port %d\n    Transport websockets\n    Topic ws/x\n" % broker.ws_port)
        spawn(["-c", conf])
        assert json.loads(received(sub, 1)[0].payload)["via"] == "ws"
        sub.close()
    finally:
        broker.kill()


def test_last_will_when_edgeship_dies(tmp_path, broker, spawn):
    sub = Subscriber(broker, "#")
    conf = config(tmp_path, dummy({"a": 1}) + output(
        broker.port, Topic="data/x", Will_Topic="status/edge", Will_Payload="offline",
        Keepalive="2"))
    child = spawn(["-c", conf])

    def status():
        return [m for m in sub.messages if m.topic.startswith("status/")]
    # Connected (its will registered) once its records arrive; not a fixed sleep.
    wait_for(lambda: any(m.topic == "data/x" for m in sub.messages))
    assert not status()
    child.kill()   # SIGKILL: no DISCONNECT, so the broker publishes the will
    m = wait_for(status)[0]
    assert m.topic == "status/edge" and m.payload == b"offline"
    sub.close()


def test_broker_down_at_start_then_records_arrive(tmp_path, spawn):
    broker = Broker(tmp_path / "broker")
    try:
        conf = config(tmp_path, dummy({"late": 1}) + output(broker.port, Topic="late/x",
                                                            Retry_Limit="no_limits"))
        child = spawn(["-c", conf])
        time.sleep(1.0)
        assert child.proc.poll() is None
        broker.start()
        sub = Subscriber(broker, "late/#")
        assert json.loads(received(sub, 3)[0].payload)["late"] == 1
        sub.close()
    finally:
        broker.kill()


def test_broker_killed_and_restarted_mid_stream_loses_nothing(tmp_path, spawn):
    """QoS 1 from a numbered stream (published into edgeship's mqtt listener); the broker is
    SIGKILLed and restarted twice; every number must reach the subscriber at least once."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    broker = Broker(tmp_path / "broker", extra="persistence true\npersistence_location %s/\n"
                    "autosave_interval 1\nautosave_on_changes true\n" % (tmp_path / "broker"))
    broker.start()
    listen = _free_port()
    got = set()
    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="durable-sub", clean_session=False)
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe("seq/#", 1)
    sub.on_message = lambda c, u, m: got.add(json.loads(m.payload)["i"])
    sub.reconnect_delay_set(0.1, 0.5)
    sub.connect("127.0.0.1", broker.port)
    sub.loop_start()
    try:
        conf = config(tmp_path, "[INPUT]\n    Name mqtt\n    Listen 127.0.0.1\n    Port %d\n"
                      % listen + output(broker.port, Topic="seq/x", QoS="1",
                                        Retry_Limit="no_limits", Reconnect_Max="1",
                                        Ack_Timeout="5"))
        spawn(["-c", conf])
        pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="numbers")
        wait_for(lambda: _connect_ok(pub, listen))
        pub.loop_start()
        total = 600
        for i in range(total):
            pub.publish("n", json.dumps({"i": i}), qos=1).wait_for_publish(5)
            if i in (150, 400):
                broker.kill()
            if i in (250, 480):
                broker.start()
            time.sleep(0.002)
        wait_for(lambda: len(got) == total, timeout=60)
        assert got == set(range(total))
        pub.disconnect()
        pub.loop_stop()
    finally:
        sub.loop_stop()
        broker.kill()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _connect_ok(client, port):
    try:
        client.connect("127.0.0.1", port)
        return True
    except OSError:
        return False


def test_config_errors_name_the_key(tmp_path):
    for options, key in (({"QoS": "3"}, "qos"), ({"Format": "cbor", "Payload_Key": "log"},
                                                 "payload_key"),
                         ({"Topic": "a/+/b"}, "topic"), ({"Topic": "t/$a|$b"}, "topic")):
        conf = config(tmp_path, dummy({"a": 1}) + output(1883, **options))
        result = run_edgeship(["-c", conf, "--dry-run"])
        assert result.returncode != 0
        assert "edgeship.conf" in result.stderr and "'%s'" % key in result.stderr, result.stderr
    assert os.path.exists(conf)


def test_example_configs_load(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for name in ("pi-sensor-gateway", "app-log-shipper"):
        result = run_edgeship(["-c", os.path.join(root, "configs", name, "fluent-bit.conf"),
                               "--dry-run"], env={"APP_LOG_DIR": str(tmp_path),
                                                  "STATE_DIRECTORY": str(tmp_path)})
        assert result.returncode == 0, result.stderr
