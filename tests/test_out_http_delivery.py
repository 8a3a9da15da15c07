"""The HTTP client and at-least-once delivery of the HTTP outputs, against a real nginx
(TLS, basic auth, keep-alive) and a recording receiver that is down, slow, failing or
hanging up: every record arrives, none twice beyond the chunk in flight, no hang."""
import collections
import os

import pytest

from conftest import Child, free_port, wait_for
from http_receiver import CLOSE, Receiver, response
from nginx import Nginx

LINES = 3000


def _write_lines(path, start, count):
    with open(path, "a") as f:
        f.write("".join('{"seq":%d,"msg":"line %d"}\n' % (i, i)
                        for i in range(start, start + count)))


def _config(tmp_path, output, service=""):
    (tmp_path / "parsers.conf").write_text("[PARSER]\n    Name json\n    Format json\n")
    path = tmp_path / "fluent-bit.conf"
    path.write_text("""
[SERVICE]
    Parsers_File parsers.conf
    Flush 0.2
    Grace 5
    scheduler.base 1
    scheduler.cap 1
    %s

[INPUT]
    Name tail
    Path %s
    Tag app
    Read_From_Head true
    Parser json
    DB %s

[OUTPUT]
    Match *
    Retry_Limit no_limits
%s
""" % (service, tmp_path / "in.log", tmp_path / "tail.db", output))
    return str(path)


def _seqs(receiver):
    seen = []
    for request in receiver.requests:
        seen += [record["seq"] for record in request.json_lines()]
    return seen


def _all_arrived(receiver, count):
    return set(_seqs(receiver)) >= set(range(count))


def _run_until_delivered(tmp_path, output, receiver, count=LINES, timeout=60):
    child = Child(["-c", _config(tmp_path, output)], cwd=str(tmp_path))
    try:
        wait_for(lambda: _all_arrived(receiver, count), timeout=timeout)
        code, _out, err = child.terminate(timeout=30)
    finally:
        child.kill()
    assert code == 0, err
    return err


def _http(port, extra=""):
    return """    Name http
    Host 127.0.0.1
    Port %d
    Format json_lines
    json_date_key false
%s""" % (port, extra)


def test_tls_basic_auth_and_keep_alive_through_nginx(tmp_path):
    receiver = Receiver()
    server = Nginx(tmp_path, receiver.port, users={"alice": "s3cr3t:pw"}, tls=True).start()
    _write_lines(tmp_path / "in.log", 0, 10)
    output = _http(server.port, """    tls on
    tls.verify on
    tls.ca_file %s
    tls.vhost localhost
    http_User alice
    http_Passwd s3cr3t:pw
    Workers 1
""" % server.certs.ca)
    child = Child(["-c", _config(tmp_path, output)], cwd=str(tmp_path))
    try:
        wait_for(lambda: _all_arrived(receiver, 10))
        _write_lines(tmp_path / "in.log", 10, 10)
        wait_for(lambda: _all_arrived(receiver, 20))
        code, _out, err = child.terminate()
    finally:
        child.kill()
        server.stop()
        receiver.close()
    assert code == 0, err
    assert sorted(_seqs(receiver)) == list(range(20))
    lines = server.log_lines()
    assert len(lines) >= 2
    assert all(line[2] == "alice" and line[3] == "200" for line in lines)
    # One TLS connection carried every request, numbered 1, 2, ... by nginx.
    assert {line[0] for line in lines} == {lines[0][0]}
    assert [int(line[1]) for line in lines] == list(range(1, len(lines) + 1))


def test_a_wrong_password_is_refused_and_dropped(tmp_path):
    receiver = Receiver()
    server = Nginx(tmp_path, receiver.port, users={"alice": "right"}).start()
    _write_lines(tmp_path / "in.log", 0, 5)
    output = _http(server.port, "    http_User alice\n    http_Passwd wrong\n")
    child = Child(["-c", _config(tmp_path, output)], cwd=str(tmp_path))
    try:
        wait_for(lambda: any(line[3] == "401" for line in server.log_lines()))
        code, _out, err = child.terminate()
    finally:
        child.kill()
        server.stop()
        receiver.close()
    assert receiver.requests == []
    assert "HTTP status=401" in err and "will not be retried" in err


def test_a_receiver_down_at_start_gets_everything_once_it_is_up(tmp_path):
    port = free_port()
    _write_lines(tmp_path / "in.log", 0, LINES)
    child = Child(["-c", _config(tmp_path, _http(port))], cwd=str(tmp_path))
    receiver = None
    try:
        wait_for(lambda: "could not flush records" in _read(child), timeout=30)
        receiver = Receiver(port=port)
        wait_for(lambda: _all_arrived(receiver, LINES), timeout=60)
        code, _out, err = child.terminate(timeout=30)
    finally:
        child.kill()
        if receiver is not None:
            receiver.close()
    assert code == 0
    assert sorted(_seqs(receiver)) == list(range(LINES))   # nothing twice: nothing in flight


def _read(child):
    """What edgeship logged so far (non-blocking read of its stderr pipe)."""
    os.set_blocking(child.proc.stderr.fileno(), False)
    data = child.proc.stderr.read() or b""
    child.seen = getattr(child, "seen", "") + data.decode("utf-8", "replace")
    return child.seen


@pytest.mark.parametrize("failure", ["500", "close", "slow"])
def test_failures_lose_nothing_and_duplicate_only_the_chunk_in_flight(failure, tmp_path):
    failed = []

    def answer(request, index):
        if len(failed) < 3 and index % 2 == 0:   # every other request, three times
            failed.append(index)
            if failure == "500":
                return response(500, b"oops")
            if failure == "close":
                return CLOSE
            return ("slow", 2.5, response())
        return response()

    receiver = Receiver(answer)
    _write_lines(tmp_path / "in.log", 0, LINES)
    try:
        err = _run_until_delivered(tmp_path, _http(receiver.port, "    net.io_timeout 1\n"),
                                   receiver)
    finally:
        receiver.close()
    refused = set(failed) if failure != "slow" else set()
    accepted = [record["seq"] for index, request in enumerate(receiver.requests)
                if index not in refused for record in request.json_lines()]
    assert set(accepted) == set(range(LINES))
    counts = collections.Counter(accepted)
    twice = {seq for seq, n in counts.items() if n > 1}
    if failure == "slow":
        # The slow answers came too late: those chunks were sent again, and only those.
        assert twice == {r["seq"] for i in failed for r in receiver.requests[i].json_lines()}
        assert "no answer within 1" in err
    else:
        assert twice == set()
    assert max(counts.values()) <= 2
