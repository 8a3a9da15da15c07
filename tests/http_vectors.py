"""Replays a Fluent Bit 5.1.1 HTTP output vector (../shared/reference/vectors/out_*.json):
the same config, input file and parsers run under edgeship against a Receiver that answers
as the capture server did; the requests are then compared with the captured ones."""
import base64
import gzip
import json
import os
import re

from conftest import SHARED, Child, wait_for
from http_receiver import Receiver

VECTORS = os.path.join(SHARED, "reference", "vectors")


def load(name):
    with open(os.path.join(VECTORS, name + ".json"), encoding="utf-8") as f:
        return json.load(f)


def names(prefix):
    return sorted(n[:-5] for n in os.listdir(VECTORS)
                  if n.startswith(prefix) and n.endswith(".json"))


def captured_body(request):
    if "body_base64" in request:
        return base64.b64decode(request["body_base64"])
    return request.get("body", "").encode("utf-8")


def captured_answer(vec, index):
    requests = vec["requests"]
    return requests[min(index, len(requests) - 1)]["capture_server_answered"].encode("latin-1")


def replay(vec, tmp_path, count=None, answer=None, config_edit=None, settle=None,
           until_exit=False):
    """Run the vector's config under edgeship until ``count`` requests (default: as many as
    captured) arrived, or with ``until_exit`` until edgeship exits by itself (a config_edit
    gave tail Exit_On_Eof); returns (receiver, edgeship's stderr)."""
    receiver = Receiver(answer or (lambda request, index: captured_answer(vec, index)))
    config = re.sub(r"(?im)^(\s*Port\s+)\d+", r"\g<1>%d" % receiver.port,
                    vec["fluent_bit_config"])
    if config_edit:
        config = config_edit(config)
    (tmp_path / "fluent-bit.conf").write_text(config)
    (tmp_path / "parsers.conf").write_text(vec.get("parsers_conf", ""))
    (tmp_path / "records.jsonl").write_text(
        "".join(line + "\n" for line in vec.get("input_file_lines", [])))
    child = Child(["-c", str(tmp_path / "fluent-bit.conf")], cwd=str(tmp_path))
    try:
        if until_exit:
            err = child.proc.communicate(timeout=30)[1].decode()
        else:
            wanted = len(vec["requests"]) if count is None else count
            wait_for(lambda: len(receiver.requests) >= wanted, timeout=30)
            if settle:
                settle(receiver)
            _code, _out, err = child.terminate()
    finally:
        child.kill()
        receiver.close()
    return receiver, err


def head_without_host(head, port):
    return head.replace(b"Host: 127.0.0.1:%d\r\n" % port, b"Host: 127.0.0.1:PORT\r\n")


def without_length(head):
    """``head`` with its Content-Length value masked."""
    return re.sub(rb"Content-Length: \d+", b"Content-Length: N", head)


def assert_same_gzip_request(got, captured, port):
    """``got`` is the ``captured`` request but for the deflate stream (zlib's, not miniz's):
    the same body once decompressed, the same head but for Content-Length."""
    assert gzip.decompress(got.body) == gzip.decompress(captured_body(captured))
    assert without_length(head_without_host(got.head_raw, port)) == \
        without_length(captured_head(captured))


def captured_head(request):
    return re.sub(r"Host: 127\.0\.0\.1:\d+\r\n", "Host: 127.0.0.1:PORT\r\n",
                  request["head_raw"]).encode("latin-1")
