"""splunk input: a real edgeship child takes HEC requests from a plain HTTP client; answers
and records are those Fluent Bit 5.1.1 gave for the same requests (captured)."""

import pytest

from conftest import free_port
from listener import Listener, http_request

pytestmark = pytest.mark.e2e


def start(spawn, tmp_path, **keys):
    port = free_port()
    input_keys = {"Name": "splunk", "Listen": "127.0.0.1", "Port": port, "Tag": "hec"}
    input_keys.update(keys)
    listener = Listener(spawn, tmp_path, input_keys)
    listener.port = port
    return listener


def ask(port, method, path, body=None, headers=None):
    status, _, data = http_request(port, method, path, body, headers)
    return status, data


def test_tokens_records_and_answers_as_fluent_bit(spawn, tmp_path):
    listener = start(spawn, tmp_path, Splunk_Token="abc,def", Store_Token_In_Metadata="off",
                     Add_Remote_Addr="on")
    port = listener.port
    ok = (200, b'{"text":"Success","code":0}')
    assert ask(port, "POST", "/services/collector", b'{"event":"e1","time":1700000000}'
               b'{"event":"e2"}', {"Authorization": "Splunk abc",
                                   "Content-Type": "application/json"}) == ok
    assert ask(port, "POST", "/services/collector/raw", b"line1\nline2",
               {"Authorization": "Splunk DEF", "Content-Type": "text/plain"}) == ok
    # Fluent Bit drops the {"c":3} after the array; edgeship keeps it.
    assert ask(port, "POST", "/services/collector/event", b'[{"a":1},{"b":2}]{"c":3}',
               {"Authorization": "Splunk abc", "X-Forwarded-For": "10.1.2.3, 10.0.0.1",
                "Content-Type": "application/json"}) == ok
    records = listener.records()
    peer = records[0]["remote_addr"]
    assert peer.startswith("tcp://127.0.0.1:")
    assert records[:2] == [
        {"event": "e1", "time": 1700000000, "@splunk_token": "Splunk abc", "remote_addr": peer},
        {"event": "e2", "@splunk_token": "Splunk abc", "remote_addr": peer}]
    assert list(records[2]) == ["@splunk_token", "log", "remote_addr"]
    assert records[2]["log"] == "line1\nline2" and records[2]["@splunk_token"] == "Splunk DEF"
    assert records[3:] == [{"a": 1, "@splunk_token": "Splunk abc", "remote_addr": "10.1.2.3"},
                           {"b": 2, "@splunk_token": "Splunk abc", "remote_addr": "10.1.2.3"},
                           {"c": 3, "@splunk_token": "Splunk abc", "remote_addr": "10.1.2.3"}]


@pytest.mark.parametrize("method, path, body, headers, answer", [
    ("GET", "/services/collector/health", None, {}, (200, b'{"text":"Success","code":200}')),
    ("POST", "/services/collector", b"x", {"Authorization": "Splunk zzz"},
     (403, b'{"text":"Invalid token","code":4}')),
    ("POST", "/services/collector", b"x", {}, (401, b'{"text":"Token is required","code":2}')),
    ("POST", "/services/collector", b"x", {"Authorization": "Basic zzz"},
     (401, b'{"text":"Invalid authorization","code":3}')),
    ("POST", "/services/collector", b"nope", {"Authorization": "Splunk abc",
                                              "Content-Type": "application/json"},
     (400, b'{"text":"Invalid data format","code":6}')),
    ("POST", "/services/collector", b"", {"Authorization": "Splunk abc"},
     (400, b'{"text":"No data","code":5}')),
    ("POST", "/services/collector/raw", b"x", {"Authorization": "Splunk abc"},
     (400, b"error: header 'Content-Type' is not set\n")),
    ("POST", "/elsewhere", b"x", {"Authorization": "Splunk abc"},
     (400, b"error: invalid HTTP endpoint\n")),
    ("PUT", "/services/collector", b"x", {"Authorization": "Splunk abc"},
     (400, b"error: invalid HTTP method\n")),
])
def test_refusals_as_fluent_bit_answers_them(spawn, tmp_path, method, path, body, headers,
                                             answer):
    listener = start(spawn, tmp_path, Splunk_Token="abc")
    assert ask(listener.port, method, path, body, headers) == answer
    assert ask(listener.port, "POST", "/services/collector", b'{"ok":1}',
               {"Authorization": "Splunk abc"})[0] == 200
    assert listener.records() == [{"ok": 1}]


def test_without_tokens_anything_goes_and_tag_key_routes(spawn, tmp_path):
    listener = start(spawn, tmp_path, Tag_Key="sourcetype")
    assert ask(listener.port, "POST", "/services/collector/event/1.0",
               b'{"sourcetype":"web","n":1}{"n":2}')[0] == 200
    assert sorted((tag, r["n"]) for tag, _, r in listener.events()) == [("hec", 2), ("web", 1)]
