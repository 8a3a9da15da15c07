"""loki output: the pushes Fluent Bit 5.1.1 sent (vectors), byte for byte where edgeship
sends the same streams, entry for entry where it groups them; statuses as Loki answers."""
import json

import pytest

from http_receiver import response
from http_vectors import (assert_same_gzip_request, captured_body, captured_head,
                          head_without_host, load, names, replay)

# Deliberate differences (README "Where edgeship differs"): records with the same labels
# share one stream (Fluent Bit: a stream per record once a label reads the record).
GROUPED = {"out_loki_labels_static_and_record_accessor", "out_loki_label_keys",
           "out_loki_auto_kubernetes_labels_on", "out_loki_structured_metadata"}
GZIP = {"out_loki_basic_auth_header_gzip"}


def _entries(body):
    """(labels, value) of every entry of a push, in stream order."""
    return [(tuple(stream["stream"].items()), json.dumps(value))
            for stream in json.loads(body)["streams"] for value in stream["values"]]


@pytest.mark.parametrize("name", names("out_loki_"))
def test_pushes_as_fluent_bit_sent_them(name, tmp_path):
    vec = load(name)
    receiver, err = replay(vec, tmp_path)
    for got, captured in zip(receiver.requests, vec["requests"]):
        head = head_without_host(got.head_raw, receiver.port)
        if name in GZIP:
            assert_same_gzip_request(got, captured, receiver.port)
            continue
        if name in GROUPED:
            assert sorted(_entries(got.body)) == sorted(_entries(captured_body(captured)))
            streams = json.loads(got.body)["streams"]
            assert len(streams) == len({tuple(s["stream"].items()) for s in streams})
            continue
        assert head == captured_head(captured)
        assert got.body == captured_body(captured)
    if name == "out_loki_status_500_retry_new_connection":
        assert [r.connection for r in receiver.requests] == [1, 2]
    if name == "out_loki_status_400_no_retry":
        assert "HTTP status=400 entry out of order" in err


def test_records_with_the_same_labels_share_a_stream(tmp_path):
    vec = load("out_loki_labels_static_and_record_accessor")
    receiver, _ = replay(vec, tmp_path, config_edit=lambda c: c.replace(
        "Labels job=x, $level, app=$app", "Labels job=x, app=$app"))
    streams = json.loads(receiver.requests[0].body)["streams"]
    assert [(s["stream"], len(s["values"])) for s in streams] == [
        ({"job": "x", "app": "shop"}, 2), ({"job": "x", "app": "billing"}, 1)]
    assert all('\\"app\\"' not in json.dumps(s) for s in streams)


def test_label_map_path(tmp_path):
    vec = load("out_loki_default")
    (tmp_path / "map.json").write_text('{"app": "service", "nested": {"b": {"c": "cee"}}}')
    receiver, _ = replay(vec, tmp_path, count=1, config_edit=lambda c: c.replace(
        "Name  loki", "Name  loki\n    Label_Map_Path map.json"))
    streams = json.loads(receiver.requests[0].body)["streams"]
    assert streams[0]["stream"] == {"service": "shop", "cee": "d"}
    assert streams[1]["stream"] == {"service": "shop"}
    assert streams[2]["stream"] == {"service": "billing"}


def test_one_failed_tenant_is_retried_alone(tmp_path):
    vec = load("out_loki_tenant_id_key")
    answers = {"shop": [response(204, b"")], "billing": [response(503, b"busy"),
                                                         response(204, b"")]}

    def answer(request, index):
        queue = answers[request.header("X-Scope-OrgID")]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    receiver, err = replay(vec, tmp_path, count=3, answer=answer, config_edit=lambda c: c.replace(
        "[SERVICE]", "[SERVICE]\n    scheduler.base 1\n    scheduler.cap 1"))
    tenants = [r.header("X-Scope-OrgID") for r in receiver.requests]
    assert sorted(tenants) == ["billing", "billing", "shop"]
    assert "HTTP status=503 busy" in err
