"""es and opensearch outputs: the _bulk requests Fluent Bit 5.1.1 sent (vectors), byte for
byte, and bulk answers judged item by item against a receiver answering as Elasticsearch
documents it (errors:true with per-item statuses, 429 and 5xx)."""
import json
import re

import pytest

from http_receiver import response
from http_vectors import (assert_same_gzip_request, captured_body, captured_head,
                          head_without_host, load, names, replay)

# Deliberate differences from the vectors (README "Where edgeship differs").
GZIP = {"out_es_compress_gzip", "out_opensearch_compress_gzip"}   # zlib's deflate, not miniz's
# edgeship retries only the refused records of a chunk: Fluent Bit's es keeps none of them
# (one accepted item makes the chunk delivered), its opensearch resends the accepted ones.
ONLY_REFUSED_RETRIED = {"out_es_bulk_errors_true_partial_no_retry": 2,
                        "out_opensearch_bulk_errors_true_partial_retried": 2}
# A 409 (the document exists) counts as delivered: Fluent Bit's es retries all-409 answers.
CONFLICT_IS_DELIVERED = {"out_es_bulk_errors_true_all_409": 1}

ALL = names("out_es_") + names("out_opensearch_")


@pytest.mark.parametrize("name", ALL)
def test_bulk_requests_as_fluent_bit_sent_them(name, tmp_path):
    vec = load(name)
    count = ONLY_REFUSED_RETRIED.get(name) or CONFLICT_IS_DELIVERED.get(name)
    receiver, err = replay(vec, tmp_path, count=count)
    sent = receiver.requests
    first, captured = sent[0], vec["requests"][0]
    if name in GZIP:
        assert_same_gzip_request(first, captured, receiver.port)
        return
    assert head_without_host(first.head_raw, receiver.port) == captured_head(captured)
    assert first.body == captured_body(captured)
    if name in ONLY_REFUSED_RETRIED:
        lines = captured_body(captured).split(b"\n")
        assert sent[1].body == lines[2] + b"\n" + lines[3] + b"\n"   # record 2 alone
        assert "1 of 3 record(s) refused by the bulk request" in err
        assert "test error 400" in err
        return
    if name in CONFLICT_IS_DELIVERED:
        return
    for index, captured in enumerate(vec["requests"][1:], 1):
        assert sent[index].body == captured_body(captured)
        assert head_without_host(sent[index].head_raw, receiver.port) == \
            captured_head(captured)
    if "trace_error" in name:
        assert "error: Output" in err and "mapper_parsing_exception" in err
    if "trace_output" in name:
        pass  # stdout is checked in test_trace_output_prints_the_body


def _bulk_answer(statuses):
    items = []
    for index, status in enumerate(statuses):
        item = {"_index": "my-index", "_id": "id%d" % index, "status": status}
        if status >= 300:
            item["error"] = {"type": "es_rejected_execution_exception" if status == 429
                             else "mapper_parsing_exception", "reason": "reason %d" % status}
        items.append({"create": item})
    return response(200, json.dumps({"took": 1, "errors": any(s >= 300 for s in statuses),
                                     "items": items}))


@pytest.mark.parametrize("plugin", ["es", "opensearch"])
def test_a_429_item_is_retried_alone_until_accepted(plugin, tmp_path):
    """Elasticsearch answers 429 per item when its write queue is full: only that record is
    sent again, and the chunk is done once it is accepted."""
    vec = load("out_%s_index_default_type" % plugin)
    answers = [_bulk_answer([201, 429, 201]), _bulk_answer([429]), _bulk_answer([201])]
    receiver, err = replay(vec, tmp_path, count=3,
                           answer=lambda request, index: answers[min(index, 2)],
                           config_edit=_fast_retries)
    bodies = [r.body for r in receiver.requests]
    assert bodies[0].count(b"\n") == 6
    assert bodies[1] == bodies[2] and bodies[1].count(b"\n") == 2 and b"second" in bodies[1]
    assert "es_rejected_execution_exception: reason 429" in err


def test_a_5xx_status_and_a_non_bulk_answer_are_retried_whole(tmp_path):
    vec = load("out_es_index_default_type")
    answers = [response(503, '{"error":"unavailable"}'), response(200, "<html>proxy</html>"),
               _bulk_answer([201, 201, 201])]
    receiver, err = replay(vec, tmp_path, count=3,
                           answer=lambda request, index: answers[min(index, 2)],
                           config_edit=_fast_retries)
    assert receiver.requests[0].body == receiver.requests[1].body == receiver.requests[2].body
    assert "HTTP status=503" in err and "not a bulk answer" in err


def test_trace_output_prints_the_body(tmp_path):
    from conftest import run_edgeship
    from http_receiver import Receiver
    receiver = Receiver(lambda request, index: _bulk_answer([201, 201, 201]))
    try:
        vec = load("out_es_trace_output_on")
        (tmp_path / "parsers.conf").write_text(vec["parsers_conf"])
        (tmp_path / "records.jsonl").write_text(
            "".join(line + "\n" for line in vec["input_file_lines"]))
        config = re.sub(r"(?m)^(\s*Port\s+)\d+", r"\g<1>%d" % receiver.port,
                        vec["fluent_bit_config"]).replace(
            "Read_From_Head true", "Read_From_Head true\n    Exit_On_Eof true")
        (tmp_path / "fluent-bit.conf").write_text(config)
        done = run_edgeship(["-c", "fluent-bit.conf"], cwd=str(tmp_path))
    finally:
        receiver.close()
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == vec["fluent_bit_stdout"]


def _fast_retries(config):
    return config.replace("[SERVICE]", "[SERVICE]\n    scheduler.base 1\n    scheduler.cap 1",
                          1).replace("Match *", "Match *\n    Retry_Limit 5", 1)


def test_cloud_id_and_cloud_auth_name_the_server(tmp_path):
    """Cloud_ID is <name>:base64(<region>$<es host>[:<port>]$<kibana host>) and the server is
    <es host>.<region>: here 127.0 + 0.1 is this machine, on the receiver's port."""
    import base64
    vec = load("out_es_index_default_type")
    holder = {}

    def edit(config):
        port = re.search(r"(?m)^\s*Port\s+(\d+)", config).group(1)
        cloud = base64.b64encode(("0.1$127.0:%s$kibana" % port).encode()).decode()
        holder["port"] = port
        return re.sub(r"(?m)^\s*Host.*\n\s*Port.*\n",
                      "    Cloud_ID edge:%s\n    Cloud_Auth elastic:changeme\n" % cloud, config)

    receiver, _ = replay(vec, tmp_path, config_edit=edit)
    assert receiver.requests[0].header("Host") == "127.0.0.1:%s" % holder["port"]
    assert receiver.requests[0].header("Authorization") == "Basic ZWxhc3RpYzpjaGFuZ2VtZQ=="
