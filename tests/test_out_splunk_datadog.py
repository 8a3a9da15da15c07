"""splunk and datadog outputs: the requests Fluent Bit 5.1.1 sent (vectors), byte for byte,
and their status rules against receivers answering as HEC and Datadog's intake do."""

import pytest

from http_vectors import (assert_same_gzip_request, captured_body, captured_head,
                          head_without_host, load, names, replay)

GZIP = {"out_splunk_http_user_channel_gzip", "out_datadog_include_tag_key_gzip_header"}
SENT_ONCE = {"out_splunk_status_400_no_retry"}


@pytest.mark.parametrize("name", names("out_splunk_") + names("out_datadog_"))
def test_requests_as_fluent_bit_sent_them(name, tmp_path):
    vec = load(name)
    receiver, err = replay(vec, tmp_path)
    for got, captured in zip(receiver.requests, vec["requests"]):
        head = head_without_host(got.head_raw, receiver.port)
        if name in GZIP:
            assert_same_gzip_request(got, captured, receiver.port)
            continue
        assert head == captured_head(captured)
        assert got.body == captured_body(captured)
    if name in SENT_ONCE:
        assert len(receiver.requests) == 1 and "HTTP status=400" in err


def test_datadog_provider_ecs_moves_ecs_attributes_to_ddtags(tmp_path):
    """The body Fluent Bit 5.1.1 sent for this record and config (checked on the binary)."""
    vec = load("out_datadog_service_source_tags_message_key")
    line = ('{"ts":"2024-01-02T03:04:05.123456789Z","log":"hi","container_name":"/web",'
            '"ecs_cluster":"arn:aws:ecs:eu-west-1:1:cluster/prod",'
            '"ecs_task_definition":"web:7",'
            '"ecs_task_arn":"arn:aws:ecs:eu-west-1:1:task/prod/abc","container_id":""}')
    vec = dict(vec, input_file_lines=[line])
    receiver, _ = replay(vec, tmp_path, count=1, config_edit=lambda c: c.replace(
        "dd_message_key msg", "dd_message_key log\n    provider ecs"))
    body = receiver.requests[0].body
    assert body == (
        b'[{"timestamp":1704164645123,"ddsource":"src","service":"svc","hostname":"h1",'
        b'"message":"hi","container_id":"","ddtags":"container_name:web,cluster_name:prod,'
        b'task_family:web,task_version:7,task_arn:arn:aws:ecs:eu-west-1:1:task/prod/abc,'
        b'region:eu-west-1,task_id:prod/abc,env:prod,team:a"}]')
