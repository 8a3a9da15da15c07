"""http input: a real edgeship child, curl and http.client as senders; records and answers
as Fluent Bit 5.1.1's vectors (in_http_*); the success answer only once the records were
delivered (at-least-once for HTTP senders)."""
import gzip
import http.client
import json
import socket
import ssl
import subprocess

import pytest

from conftest import free_port, run_edgeship, wait_for
from listener import Listener, section
from mosquitto import Certs
from test_inputs_tcp_udp import printed_records, vector

pytestmark = pytest.mark.e2e


def http_listener(spawn, tmp_path, extra="", output=None, **keys):
    port = free_port()
    input_keys = {"Name": "http", "Listen": "127.0.0.1", "Port": port, "Tag": "http.in"}
    input_keys.update(keys)
    listener = Listener(spawn, tmp_path, input_keys, extra=extra)
    listener.port = port
    return listener


def folder(tmp_path, name):
    path = tmp_path / name
    path.mkdir()
    return path


def parse_request(text):
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    method, target, _ = lines[0].split(" ")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    headers.pop("Host", None)
    headers.pop("Content-Length", None)
    return method, target, headers, body.encode("utf-8")


def first_answer(text):
    """The status and body of Fluent Bit's first answer (it writes a second after some)."""
    status = int(text.split(" ", 2)[1])
    body = text.split("\r\n\r\n", 1)[1]
    if "HTTP/1.1" in body:
        body = body[:body.index("HTTP/1.1")]
    return status, body


def replay(port, vec):
    answers = []
    for item in vec["stimulus"]:
        method, target, headers, body = parse_request(item["request_text"])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        conn.request(method, target, body=body or None, headers=headers)
        response = conn.getresponse()
        answers.append((response.status, response.read().decode()))
        conn.close()
    return answers


@pytest.mark.parametrize("name", ["in_http_json_variants", "in_http_form_and_errors"])
def test_records_tags_and_answers_as_the_vectors(spawn, tmp_path, name):
    vec = vector(name)
    listener = http_listener(spawn, tmp_path)
    answers = replay(listener.port, vec)
    assert answers == [first_answer(item["response_text"]) for item in vec["stimulus"]]
    expected = printed_records(vec)
    assert listener.wait_records(len(expected), by_time=True) == expected
    tags = [line.split(":")[0].split("] ")[1] for line in vec["printed_default_stdout_format"]]
    assert [tag for tag, _, _ in listener.events(by_time=True)] == tags


def test_tag_key_success_code_and_header_as_the_vector(spawn, tmp_path):
    vec = vector("in_http_tag_key_response_code")
    listener = http_listener(spawn, tmp_path, Tag_Key="app", Successful_Response_Code="200",
                             Success_Header="X-Ok yes")
    method, target, headers, body = parse_request(vec["stimulus"][0]["request_text"])
    conn = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=20)
    conn.request(method, target, body=body, headers=headers)
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"")
    assert response.getheader("x-ok") == "yes"
    # one arrival time, two tags (two files): compare without order
    assert sorted(map(json.dumps, listener.wait_records(2))) == sorted(
        map(json.dumps, printed_records(vec)))
    assert sorted((tag, record["v"]) for tag, _, record in listener.events()) == [
        ("http.in", 2), ("shop", 1)]


def test_204_and_remote_addr_as_the_vector(spawn, tmp_path):
    vec = vector("in_http_response_204_remote_addr")
    listener = http_listener(spawn, tmp_path, Successful_Response_Code="204",
                             Add_Remote_Addr="on")
    assert [status for status, _ in replay(listener.port, vec)] == [204, 204]
    assert listener.wait_records(2) == printed_records(vec)


def test_curl_gzip_and_ndjson(spawn, tmp_path):
    listener = http_listener(spawn, tmp_path)
    body = tmp_path / "body.gz"
    body.write_bytes(gzip.compress(b'{"a":1}\n') + gzip.compress(b'{"b":"\xe2\x9c\x93"}\n'))
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                          "-H", "Content-Type: application/json",
                          "-H", "Content-Encoding: gzip", "--data-binary", "@%s" % body,
                          "http://127.0.0.1:%d/gz.logs" % listener.port],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout == "201"
    assert listener.wait_records(2) == [{"a": 1}, {"b": "✓"}]
    assert {tag for tag, _, _ in listener.events()} == {"gz.logs"}


def test_bodies_over_the_limit_are_refused_413_even_once_decompressed(spawn, tmp_path):
    listener = http_listener(spawn, tmp_path, Buffer_Max_Size="1000")
    conn = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=20)
    conn.request("POST", "/", body=b'{"a":"' + b"x" * 1000 + b'"}',
                 headers={"Content-Type": "application/json"})
    assert conn.getresponse().status == 413
    bomb = gzip.compress(b'{"a":"' + b"x" * 100000 + b'"}')
    assert len(bomb) < 1000
    conn = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=20)
    conn.request("POST", "/", body=bomb, headers={"Content-Type": "application/json",
                                                   "Content-Encoding": "gzip"})
    assert conn.getresponse().status == 413
    conn = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=20)
    conn.request("POST", "/", body=b"not gzip", headers={"Content-Type": "application/json",
                                                         "Content-Encoding": "gzip"})
    response = conn.getresponse()
    assert (response.status, response.read()) == (400, b"error: unable to process records\n")
    conn = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=20)
    conn.request("POST", "/", body=b'{"ok":1}', headers={"Content-Type": "application/json"})
    assert conn.getresponse().status == 201
    assert listener.wait_records(1) == [{"ok": 1}]
    assert "cannot decompress the body" in listener.log()


def test_array_items_that_are_not_maps_are_skipped_not_the_rest(spawn, tmp_path):
    listener = http_listener(spawn, tmp_path)
    conn = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=20)
    conn.request("POST", "/", body=b'[{"a":1},2,"x",{"b":2}]',
                 headers={"Content-Type": "application/json"})
    assert conn.getresponse().status == 201
    assert listener.wait_records(2) == [{"a": 1}, {"b": 2}]
    wait_for(lambda: "skipped 2 array items that are not maps" in listener.log())


def test_the_answer_waits_until_the_output_delivered(spawn, tmp_path):
    # The output is a forward to a port nobody listens on yet: the request stays unanswered
    # while it retries, and is answered once a receiver took the records.
    receiver_port = free_port()
    forward = section("OUTPUT", {"Name": "forward", "Match": "*", "Host": "127.0.0.1",
                                 "Port": receiver_port, "Retry_Limit": "no_limits"})
    port = free_port()
    listener = Listener(spawn, folder(tmp_path, "sender"),
                        {"Name": "http", "Listen": "127.0.0.1", "Port": port}, extra=forward + section("SERVICE", {"scheduler.base": "0.2",
                                                            "scheduler.cap": "0.5"}))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/held", body=b'{"n":1}', headers={"Content-Type": "application/json"})
    wait_for(lambda: "failed to flush chunk of 1 records (tag held), retry" in listener.log())
    # Retried at least once, still no answer: nothing to read on the socket yet.
    conn.sock.settimeout(0.2)
    with pytest.raises(socket.timeout):
        conn.sock.recv(1, socket.MSG_PEEK)
    conn.sock.settimeout(60)
    receiver = Listener(spawn, folder(tmp_path, "receiver"),
                        {"Name": "forward", "Listen": "127.0.0.1", "Port": receiver_port})
    response = conn.getresponse()
    assert response.status == 201
    assert receiver.wait_records(1) == [{"n": 1}]
    assert receiver.events()[0][0] == "held"


def test_tls_with_curl(spawn, tmp_path):
    certs = Certs(str(tmp_path / "certs"))
    listener = http_listener(spawn, tmp_path, **{"tls": "on", "tls.crt_file": certs.server_crt,
                                                 "tls.key_file": certs.server_key})
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                          certs.ca, "-H", "Content-Type: application/x-www-form-urlencoded",
                          "--data-binary", "a=1&b=hello+world",
                          "https://localhost:%d/secure" % listener.port],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout == "201", out.stderr
    assert listener.wait_records(1) == [{"a": "1", "b": "hello world"}]
    context = ssl.create_default_context(cafile=certs.ca)
    conn = http.client.HTTPSConnection("localhost", listener.port, context=context, timeout=20)
    conn.request("POST", "/secure", body=json.dumps({"c": 3}),
                 headers={"Content-Type": "application/json"})
    assert conn.getresponse().status == 201
    assert listener.wait_records(2)[1] == {"c": 3}


def test_health_endpoint_and_bad_response_code(spawn, tmp_path):
    listener = http_listener(spawn, tmp_path, Enable_Health_Endpoint="on",
                             Successful_Response_Code="202")
    conn = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=20)
    conn.request("GET", "/health")
    response = conn.getresponse()
    assert response.status == 200 and json.loads(response.read())["status"] == "ok"
    conn.request("POST", "/", body=b'{"a":1}', headers={"Content-Type": "application/json"})
    assert conn.getresponse().status == 201
    assert ("http: 202 is not a supported response code (200, 201, 204): 201 is used"
            in listener.log())


def test_config_errors(tmp_path):
    proc = run_edgeship(["-i", "http", "-p", "port=http", "-o", "null", "--dry-run"])
    assert proc.returncode != 0 and "port" in proc.stderr.lower()
    proc = run_edgeship(["-i", "http", "-p", "tls=on", "-o", "null", "--dry-run"])
    assert proc.returncode != 0 and "tls.crt_file" in proc.stderr
