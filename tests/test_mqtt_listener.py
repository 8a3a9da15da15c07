"""[INPUT] mqtt (Fluent Bit's in_mqtt) replayed against the captures of the real Fluent Bit
5.1.1 (reference/vectors/mqtt_*.json): the exact bytes it answered, whether it closed the
connection, and the records it printed. Records leave edgeship through the mqtt output to a
real Mosquitto, where an independent subscriber reads them."""
import glob
import json
import os
import shlex
import socket
import subprocess
import time

import cbor2
import pytest

from conftest import SHARED, accepts_connections, free_port, wait_for
from mosquitto import Subscriber, running_broker

broker = pytest.fixture(running_broker, name="broker")

VECTORS = os.path.join(SHARED, "reference", "vectors")

# Where edgeship answers differently from Fluent Bit on purpose (see the module docstring of
# edgeship/core/mqtt.py): QoS 2 completes, MQTT 5 is understood.
DIFFERENT = {
    ("mqtt_publish_qos2_pubrec_pubrel", 2): "70020007",
    ("mqtt_mqtt5_connect_and_publish", 0): "2003000000",
}
EXTRA_RECORDS = {"mqtt_mqtt5_connect_and_publish": [{"topic": "v5/topic", "v": 5}]}


def load_vectors():
    vectors = []
    for path in sorted(glob.glob(os.path.join(VECTORS, "mqtt_*.json"))):
        with open(path) as f:
            vector = json.load(f)
        if vector.get("steps"):
            vectors.append(vector)
    return vectors


def input_options(vector):
    """The -p options of the captured Fluent Bit command that belong to the input."""
    words = shlex.split(vector["fluent_bit_command"])
    options = {}
    for i, word in enumerate(words[:words.index("-o")]):
        if word == "-p":
            key, value = words[i + 1].split("=", 1)
            if key not in ("listen", "port"):
                options[key] = value
    return options


def groups():
    by_options = {}
    for vector in load_vectors():
        key = tuple(sorted(input_options(vector).items()))
        by_options.setdefault(key, []).append(vector)
    return sorted(by_options.items())


def start_edgeship(spawn, broker, tmp_path, options, extra=""):
    port = free_port()
    lines = ["[SERVICE]", "    Flush 0.1", "    Grace 1",
             "[INPUT]", "    Name mqtt", "    Listen 127.0.0.1", "    Port %d" % port]
    lines += ["    %s %s" % kv for kv in options]
    lines += [extra, "[OUTPUT]", "    Name mqtt", "    Match *", "    Port %d" % broker.port,
              "    Topic out/$TAG", "    QoS 1"]
    path = tmp_path / "edgeship.conf"
    path.write_text("\n".join(lines) + "\n")
    child = spawn(["-c", str(path)])
    wait_for(lambda: accepts_connections(port))
    return child, port


def read_answer(sock, size, wait=0.3):
    """Up to ``size`` bytes (more if they come), and whether the peer closed."""
    data = b""
    sock.settimeout(wait)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if size and len(data) >= size:
            sock.settimeout(0.05)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return data, False
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def marker(port, n):
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(bytes.fromhex("101200044d5154540402003c000670792d726177"))
        body = b"\x00\x06marker" + json.dumps({"marker": n}).encode()
        sock.sendall(bytes((0x30, len(body))) + body)
        sock.sendall(b"\xe0\x00")
        read_answer(sock, 4)


def records_without_date(sub):
    out = []
    for m in sub.messages:
        record = json.loads(m.payload)
        del record["date"]
        out.append((m.topic, record))
    return out


GROUPS = groups()


@pytest.mark.parametrize("options,vectors", GROUPS,
                         ids=[",".join("%s=%s" % kv for kv in o) or "defaults" for o, _ in GROUPS])
def test_fluent_bit_vectors(tmp_path, broker, spawn, options, vectors):
    sub = Subscriber(broker, "out/#")
    _, port = start_edgeship(spawn, broker, tmp_path, options)
    tag = dict(options).get("tag", "mqtt.0")
    expected = []
    for vector in vectors:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            for n, step in enumerate(vector["steps"]):
                sock.sendall(bytes.fromhex(step["hex"]))
                want = DIFFERENT.get((vector["id"], n), step["fluent_bit_answered_hex"])
                got, closed = read_answer(sock, len(want) // 2)
                assert got.hex() == want, (vector["id"], step["client_sent"])
                assert closed == step["connection_closed_after_this_step"], \
                    (vector["id"], step["client_sent"])
                if closed:
                    break
        for line in vector["printed_json_lines"]:
            record = json.loads(line)
            del record["date"]
            expected.append(("out/" + tag, record))
        expected += [("out/" + tag, r) for r in EXTRA_RECORDS.get(vector["id"], [])]
    marker(port, 1)
    payload_key = dict(options).get("payload_key")
    body = {"marker": 1}
    expected.append(("out/" + tag, dict({"topic": "marker"},
                                        **({payload_key: body} if payload_key else body))))
    wait_for(lambda: len(sub.messages) >= len(expected))
    assert records_without_date(sub) == expected
    sub.close()


@pytest.mark.e2e
def test_paho_clients_v311_and_v5_json_and_cbor(tmp_path, broker, spawn):
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    sub = Subscriber(broker, "out/#")
    _, port = start_edgeship(spawn, broker, tmp_path, [("Format", "auto")])
    sent = []
    for protocol, name in ((paho.MQTTv311, "v311"), (paho.MQTTv5, "v5")):
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id="paho-" + name,
                             protocol=protocol)
        client.connect("127.0.0.1", port)
        client.loop_start()
        infos = []
        for qos in (0, 1, 2):
            body = {"qos": qos, "proto": name}
            infos.append(client.publish("paho/j%d" % qos, json.dumps(body), qos=qos))
            sent.append({"topic": "paho/j%d" % qos, **body})
            infos.append(client.publish("paho/c%d" % qos, cbor2.dumps(body), qos=qos))
            sent.append({"topic": "paho/c%d" % qos, **body})
        for info in infos:
            info.wait_for_publish(5)   # QoS 2 completes too: PUBREL gets its PUBCOMP
            assert info.is_published()
        client.disconnect()
        client.loop_stop()
    wait_for(lambda: len(sub.messages) >= len(sent))
    got = [r for _, r in records_without_date(sub)]
    assert sorted(got, key=json.dumps) == sorted(sent, key=json.dumps)
    sub.close()


@pytest.mark.e2e
def test_mosquitto_pub_json_and_cbor_file(tmp_path, broker, spawn):
    sub = Subscriber(broker, "out/#")
    _, port = start_edgeship(spawn, broker, tmp_path, [("Format", "auto"),
                                                      ("Payload_Key", "data")])
    cbor_file = tmp_path / "reading.cbor"
    cbor_file.write_bytes(cbor2.dumps({"t": 20.25, "raw": b"\x01\x02"[:0] or "ok"}))
    base = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-V", "mqttv311"]
    subprocess.run(base + ["-t", "m/json", "-q", "1", "-m", '{"t": 19.5}'], check=True,
                   timeout=10)
    subprocess.run(base + ["-t", "m/cbor", "-q", "2", "-f", str(cbor_file)], check=True,
                   timeout=10)
    wait_for(lambda: len(sub.messages) >= 2)
    assert [r for _, r in records_without_date(sub)] == [
        {"topic": "m/json", "data": {"t": 19.5}},
        {"topic": "m/cbor", "data": {"t": 20.25, "raw": "ok"}}]
    sub.close()


def test_credentials_and_tls(tmp_path, broker, spawn):
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion
    from mosquitto import Certs

    certs = Certs(str(tmp_path / "certs"))
    sub = Subscriber(broker, "out/#")
    extra = ("    Username dev\n    Password pw\n    tls on\n    tls.crt_file %s\n"
             "    tls.key_file %s\n" % (certs.server_crt, certs.server_key))
    _, port = start_edgeship(spawn, broker, tmp_path, [], extra)
    results = {}
    for password in ("wrong", "pw"):
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id="tls-" + password)
        client.tls_set(ca_certs=certs.ca)
        client.username_pw_set("dev", password)
        client.on_connect = lambda c, u, f, rc, p, pw=password: results.__setitem__(pw, rc)
        client.connect("127.0.0.1", port)
        client.loop_start()
        wait_for(lambda: password in results)
        if not results[password].is_failure:
            client.publish("secure/x", '{"s":1}', qos=1).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()
    assert results["wrong"].is_failure and not results["pw"].is_failure
    wait_for(lambda: sub.messages)
    assert records_without_date(sub) == [("out/mqtt.0", {"topic": "secure/x", "s": 1})]
    sub.close()


def test_garbage_and_oversized_clients_do_not_harm_others(tmp_path, broker, spawn):
    sub = Subscriber(broker, "out/#")
    child, port = start_edgeship(spawn, broker, tmp_path, [("Buffer_Size", "512")])
    good = socket.create_connection(("127.0.0.1", port))
    good.sendall(bytes.fromhex("101200044d5154540402003c000670792d726177"))
    assert read_answer(good, 4)[0] == bytes.fromhex("20020100")
    bad_inputs = [b"\xff" * 64, b"\x10\xff\xff\xff\xff\x7f", b"GET / HTTP/1.1\r\n\r\n",
                  bytes.fromhex("101200044d5154540402003c000670792d726177") + b"\x30\xff\x7f",
                  bytes.fromhex("101200044d5154540402003c000670792d726177") + b"\x36\x02\x00\x00"]
    for data in bad_inputs:
        with socket.create_connection(("127.0.0.1", port)) as bad:
            bad.sendall(data)
            assert read_answer(bad, 0, wait=2)[1], data   # closed by edgeship
    body = b"\x00\x04good" + b"\x00\x01" + b'{"still":"alive"}'
    good.sendall(bytes((0x32, len(body))) + body)
    assert read_answer(good, 4)[0] == bytes.fromhex("40020001")
    wait_for(lambda: sub.messages)
    assert records_without_date(sub) == [("out/mqtt.0", {"topic": "good", "still": "alive"})]
    assert child.proc.poll() is None
    good.close()
    sub.close()
