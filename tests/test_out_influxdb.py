"""influxdb output: the requests Fluent Bit 5.1.1 sent (vectors) byte for byte, metrics as
cmetrics' influx lines, and the status rules (edgeship retries what Fluent Bit drops)."""
import os

import pytest

from conftest import wait_for
from http_receiver import response
from http_vectors import captured_body, captured_head, head_without_host, load, names, replay
from influxdb import Influx

FIXTURE = os.path.join(os.path.dirname(__file__), "data", "node_exporter", "fixture")

# Deliberate differences from the vectors (README "Where edgeship differs").
DIFFERENCES = {
    # Fluent Bit reports a 400 as delivered and logs it; edgeship drops what InfluxDB refuses
    # too (4xx), so the request is the same: only the log line differs.
    "out_influxdb_status_400_not_retried": "log",
}


@pytest.mark.parametrize("name", [n for n in names("out_influxdb_")
                                  if n != "out_influxdb_same_timestamp_dedupe"])
def test_requests_as_fluent_bit_sent_them(name, tmp_path):
    vec = load(name)
    receiver, err = replay(vec, tmp_path)
    for index, captured in enumerate(vec["requests"]):
        got = receiver.requests[index]
        assert head_without_host(got.head_raw, receiver.port) == captured_head(captured)
        assert got.body == captured_body(captured)
    if DIFFERENCES.get(name) == "log":
        assert "HTTP status=400" in err


def test_equal_times_are_moved_one_ns_apart_across_flushes(tmp_path):
    """Fluent Bit sent each dummy record in its own request; how records fall into flushes
    depends on timing, so the lines are compared whatever the requests that carried them."""
    vec = load("out_influxdb_same_timestamp_dedupe")
    expected = [line for request in vec["requests"]
                for line in captured_body(request).split(b"\n")]

    def lines(receiver):
        return [line for request in receiver.requests for line in request.body.split(b"\n")]
    receiver, _err = replay(vec, tmp_path, count=1,
                            settle=lambda r: wait_for(lambda: len(lines(r)) >= len(expected)))
    assert lines(receiver)[:len(expected)] == expected


def test_a_503_is_retried_where_fluent_bit_drops_it(tmp_path):
    vec = load("out_influxdb_default")
    answers = [response(503, b"restarting"), response(204, b"")]
    receiver, err = replay(vec, tmp_path, count=2,
                           answer=lambda request, index: answers[min(index, 1)])
    assert receiver.requests[0].body == receiver.requests[1].body == \
        captured_body(vec["requests"][0])
    assert "HTTP status=503" in err


@pytest.fixture
def influx(tmp_path):
    server = Influx(tmp_path / "influx")
    yield server
    server.stop()


def _conf(tmp_path, inputs, output):
    conf = tmp_path / "fluent-bit.conf"
    (tmp_path / "parsers.conf").write_text("[PARSER]\n    Name json\n    Format json\n")
    conf.write_text("[SERVICE]\n    Flush 0.2\n    Log_File %s\n    Parsers_File %s\n"
                    "%s[OUTPUT]\n    Name influxdb\n    Match *\n%s"
                    % (tmp_path / "edgeship.log", tmp_path / "parsers.conf", inputs, output))
    return str(conf)


@pytest.mark.e2e
def test_logs_and_metrics_reach_a_real_influxdb(spawn, tmp_path, influx):
    influx.query("CREATE DATABASE edge")
    logs = tmp_path / "app.log"
    logs.write_text("".join('{"level":"info","host":"pi-1","n":%d,"msg":"hello %d"}\n' % (i, i)
                            for i in range(20)))
    inputs = ("[INPUT]\n    Name tail\n    Path %s\n    Read_From_Head on\n    Tag app\n"
              "    Parser json\n"
              "[INPUT]\n    Name node_exporter_metrics\n    Tag node\n    Scrape_Interval 1\n"
              "    metrics loadavg,cpu\n    path.procfs %s/proc\n    path.sysfs %s/sys\n"
              % (logs, FIXTURE, FIXTURE))
    spawn(["-c", _conf(tmp_path, inputs, "    Port %d\n    Database edge\n    Tag_Keys host\n"
                       % influx.port)])
    wait_for(lambda: len(influx.rows('SELECT * FROM "app"', "edge")) == 20, timeout=30)
    rows = influx.rows('SELECT * FROM "app" WHERE "n" = 7', "edge")
    assert rows[0]["host"] == "pi-1" and rows[0]["msg"] == "hello 7" and rows[0]["_seq"]
    load = wait_for(lambda: influx.rows('SELECT "load1" FROM "node"', "edge"), timeout=30)
    assert load[0]["load1"] == 0.25
    cpu = influx.rows("SELECT \"seconds_total\" FROM \"node_cpu\" WHERE \"cpu\" = '1' "
                      "AND \"mode\" = 'system'", "edge")
    assert cpu[0]["seconds_total"] == 1.5


@pytest.mark.e2e
def test_basic_auth_against_an_influxdb_with_auth_on(spawn, tmp_path):
    server = Influx(tmp_path / "influx", auth=True)
    try:
        server.query("CREATE DATABASE edge")
        inputs = "[INPUT]\n    Name dummy\n    Tag secured\n    Dummy {\"v\":1}\n"
        spawn(["-c", _conf(tmp_path, inputs, "    Port %d\n    Database edge\n"
                           "    HTTP_User admin\n    HTTP_Passwd secret\n" % server.port)])
        wait_for(lambda: server.rows('SELECT * FROM "secured"', "edge"), timeout=30)
    finally:
        server.stop()


def test_a_wrong_password_is_refused_and_dropped_not_retried(spawn, tmp_path):
    server = Influx(tmp_path / "influx", auth=True)
    try:
        server.query("CREATE DATABASE edge")
        inputs = "[INPUT]\n    Name dummy\n    Tag secured\n    Dummy {\"v\":1}\n    Samples 1\n"
        log = tmp_path / "edgeship.log"
        spawn(["-c", _conf(tmp_path, inputs, "    Port %d\n    Database edge\n"
                           "    HTTP_User admin\n    HTTP_Passwd wrong\n" % server.port)])
        wait_for(lambda: log.exists() and "HTTP status=401" in log.read_text(), timeout=30)
        assert "will not be retried" in log.read_text()
    finally:
        server.stop()
