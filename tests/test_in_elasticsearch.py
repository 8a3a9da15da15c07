"""elasticsearch input: a real edgeship child takes Bulk API requests from a plain HTTP
client; the answers are those Fluent Bit 5.1.1 gave to the same requests (captured), the
records those it printed."""
import gzip
import json

import pytest

from conftest import free_port
from listener import Listener, http_request

pytestmark = pytest.mark.e2e

BULK = (b'{"index":{"_index":"logs"}}\n{"msg":"one","n":1}\n'
        b'{"create":{"_index":"x","_id":"7"}}\n{"msg":"two"}\n'
        b'{"update":{"_id":"1"}}\n{"doc":{"a":1}}\n{"delete":{"_id":"2"}}\n'
        b'{"index":{}}\n{"msg":"three"}\n')
FLUENT_BIT_ANSWER = (b'{"errors":true,"items":[{"index":{"status":201,"result":"created"}},'
                     b'{"create":{"status":201,"result":"created"}},'
                     b'{"update":{"status":403,"result":"forbidden"}},'
                     b'{"delete":{"status":404,"result":"not_found"}},'
                     b'{"index":{"status":201,"result":"created"}}]}')
FLUENT_BIT_RECORDS = [{"@meta": {"index": {"_index": "logs"}}, "msg": "one", "n": 1},
                      {"@meta": {"create": {"_index": "x", "_id": "7"}}, "msg": "two"},
                      {"@meta": {"index": {}}, "msg": "three"}]


def start(spawn, tmp_path, **keys):
    port = free_port()
    input_keys = {"Name": "elasticsearch", "Listen": "127.0.0.1", "Port": port, "Tag": "es"}
    input_keys.update(keys)
    listener = Listener(spawn, tmp_path, input_keys)
    listener.port = port
    return listener


def test_a_bulk_request_is_answered_and_recorded_as_fluent_bit_does(spawn, tmp_path):
    listener = start(spawn, tmp_path)
    status, kind, answer = http_request(listener.port, "POST", "/_bulk", BULK,
                               {"Content-Type": "application/x-ndjson"})
    assert (status, kind, answer) == (200, "application/json", FLUENT_BIT_ANSWER)
    # The answer came after the records were written: they are all there already.
    assert listener.records() == FLUENT_BIT_RECORDS
    assert {tag for tag, _, _ in listener.events()} == {"es"}


def test_gzip_tag_key_and_the_discovery_endpoints(spawn, tmp_path):
    listener = start(spawn, tmp_path, Tag_Key="service", Meta_Key="meta", Hostname="edge1",
                     Version="7.10.2")
    body = gzip.compress(b'{"create":{}}\n{"service":"web","m":1}\n{"index":{}}\n{"m":2}\n')
    status, _, answer = http_request(listener.port, "POST", "/_bulk", body,
                            {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert status == 200 and json.loads(answer)["errors"] is False
    events = listener.events()
    assert sorted((tag, record["m"]) for tag, _, record in events) == [("es", 2), ("web", 1)]
    assert all("meta" in record for _, _, record in events)
    assert http_request(listener.port, "GET", "/")[2] == (
        b'{"version":{"number":"7.10.2","build_flavor":"Fluent Bit OSS"},'
        b'"tagline":"Fluent Bit\'s Bulk API compatible endpoint"}')
    nodes = json.loads(http_request(listener.port, "GET", "/_nodes/http")[2])
    node = next(iter(nodes["nodes"].values()))
    assert node["http"]["publish_address"] == "edge1:%d" % listener.port
    assert node["http"]["max_content_length_in_bytes"] == 4000000   # 4M, as Fluent Bit says
    assert http_request(listener.port, "HEAD", "/")[0] == 200
    assert http_request(listener.port, "PUT", "/logs")[::2] == (200, b"{}")


@pytest.mark.parametrize("method, path, body, headers, answer", [
    ("POST", "/logs/_bulk", b"{}", {"Content-Type": "application/json"},
     b"error: invalid HTTP endpoint\n"),
    ("POST", "/_bulk", b"{}", {}, b"error: header 'Content-Type' is not set\n"),
    ("POST", "/_bulk", b"{}", {"Content-Type": "text/plain"}, b"error: invalid 'Content-Type'\n"),
    ("DELETE", "/x", None, {}, b"error: invalid HTTP method\n"),
    ("POST", "/_bulk", b'{"index":{}}\n', {"Content-Type": "application/json"},
     b"error: invalid bulk payload\n"),
    ("POST", "/_bulk", b"nope", {"Content-Type": "application/json"},
     b"error: invalid bulk payload\n"),
])
def test_bad_requests_are_answered_400_and_the_input_carries_on(spawn, tmp_path, method, path,
                                                                 body, headers, answer):
    listener = start(spawn, tmp_path)
    assert http_request(listener.port, method, path, body, headers)[::2] == (400, answer)
    status, _, _ = http_request(listener.port, "POST", "/_bulk", b'{"index":{}}\n{"ok":1}\n',
                       {"Content-Type": "application/json"})
    assert status == 200 and listener.records() == [{"@meta": {"index": {}}, "ok": 1}]


def test_an_unknown_action_ends_the_request(spawn, tmp_path):
    listener = start(spawn, tmp_path)
    body = b'{"index":{}}\n{"a":1}\n{"bogus":{}}\n{"b":2}\n{"index":{}}\n{"c":3}\n'
    status, _, answer = http_request(listener.port, "POST", "/_bulk", body,
                            {"Content-Type": "application/json"})
    assert status == 200 and answer == (
        b'{"errors":true,"items":[{"index":{"status":201,"result":"created"}},'
        b'{"unknown":{"status":400,"result":"bad_request"}}]}')
    assert listener.records() == [{"@meta": {"index": {}}, "a": 1}]
