"""splunk and datadog outputs: the requests Fluent Bit 5.1.1 sent (vectors), byte for byte,
and their status rules against receivers answering as HEC and Datadog's intake do."""
import gzip
import re

import pytest

from http_vectors import captured_body, captured_head, head_without_host, load, names, replay

GZIP = {"out_splunk_http_user_channel_gzip", "out_datadog_include_tag_key_gzip_header"}
SENT_ONCE = {"out_splunk_status_400_no_retry"}


def _no_length(head):
    return re.sub(rb"Content-Length: \d+", b"", head)


@pytest.mark.parametrize("name", names("out_splunk_") + names("out_datadog_"))
def test_requests_as_fluent_bit_sent_them(name, tmp_path):
    vec = load(name)
    receiver, err = replay(vec, tmp_path)
    for got, captured in zip(receiver.requests, vec["requests"]):
        head = head_without_host(got.head_raw, receiver.port)
        if name in GZIP:
            assert gzip.decompress(got.body) == gzip.decompress(captured_body(captured))
            assert _no_length(head) == _no_length(captured_head(captured))
            continue
        assert head == captured_head(captured)
        assert got.body == captured_body(captured)
    if name in SENT_ONCE:
        assert len(receiver.requests) == 1 and "HTTP status=400" in err
