"""opentelemetry output: request bodies byte-equal to Fluent Bit 5.1.1's (tests/data/otlp/), and
a real edgeship process sending logs and metrics to a stand-in OTLP/HTTP Collector
(tests/otlp_collector.py) that decodes them with opentelemetry-proto: bodies, times,
severities, attributes, metric types, values and labels; gzip and zstd; a 400 dropped, a 503
retried then delivered; TLS through a real nginx."""
import os

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import \
    ExportMetricsServiceRequest

from conftest import run_edgeship, wait_for
from edgeship.codecs import cmetrics, otlp
from edgeship.core.accessor import accessor
from nginx import Nginx
from otlp_collector import Collector, attributes

DATA = os.path.join(os.path.dirname(__file__), "data")
FIXTURE = os.path.join(DATA, "node_exporter", "fixture")
CUMULATIVE = 2


def _read(name):
    with open(os.path.join(DATA, "otlp", name), "rb") as f:
        return f.read()


def _encoder(body_key_attributes):
    return otlp.LogsEncoder([accessor("$log"), accessor("$message")], body_key_attributes,
                            accessor("$SeverityText"), accessor("$SeverityNumber"),
                            accessor("$TraceId"), accessor("$SpanId"))


def test_log_requests_are_fluent_bits_bytes():
    # Fluent Bit: two dummy inputs -> opentelemetry with logs_body_key_attributes true.
    for name, record in [
            ("dummy_log_body_key_attributes.logs.pb",
             {"log": "hello", "SeverityText": "WARN", "SeverityNumber": 13,
              "TraceId": "0123456789abcdef0123456789abcdef", "SpanId": "0011223344556677",
              "k": {"a": [1, None, 2.5]}}),
            ("dummy_message_body_key_attributes.logs.pb", {"message": "m", "x": 1})]:
        captured = _read(name)
        request = ExportLogsServiceRequest()
        request.ParseFromString(captured)
        time_ns = request.resource_logs[0].scope_logs[0].log_records[0].time_unix_nano
        problems = set()
        assert _encoder(True).requests([(time_ns, record)], 1000, problems) == [captured]
        assert not problems
    # Without logs_body_key_attributes the other keys are not sent (as there).
    request.ParseFromString(_encoder(False).requests([(5, {"message": "m", "x": 1})], 1000,
                                                     set())[0])
    record = request.resource_logs[0].scope_logs[0].log_records[0]
    assert record.body.string_value == "m" and not record.attributes


def test_log_records_without_a_body_key_and_with_bad_ids():
    problems = set()
    body = _encoder(False).requests(
        [(1, {"n": 2 ** 64 - 1, "bad": b"\xff".decode("utf-8", "surrogateescape"),
              "TraceId": "not hex", "SpanId": b"12345678", "SeverityNumber": 25}),
         (2, {"log": None})], 1, problems)
    assert len(body) == 2 and problems == {"invalid trace_id"}
    request = ExportLogsServiceRequest()
    request.ParseFromString(body[0])
    record = request.resource_logs[0].scope_logs[0].log_records[0]
    whole = attributes(record.body.kvlist_value.values)
    assert whole["n"] == -1 and whole["bad"] == "\ufffd"   # Fluent Bit's int64 cast; UTF-8
    assert record.span_id == b"12345678" and record.trace_id == b""
    assert record.severity_number == 0                      # out of 1-24: left out
    request.ParseFromString(body[1])
    assert not request.resource_logs[0].scope_logs[0].log_records[0].body.WhichOneof("value")


def test_metrics_request_is_fluent_bits_bytes():
    # Fluent Bit: prometheus_scrape of scrape_source.prom -> opentelemetry, add_label env prod
    # (counter, gauge, untyped, summary, histogram); the context is the same scrape's.
    captured = _read("scrape_addlabel_env_prod.metrics.pb")
    request = ExportMetricsServiceRequest()
    request.ParseFromString(captured)
    time_ns = request.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0] \
        .time_unix_nano
    with open(os.path.join(DATA, "cmetrics", "scrape_context.msgpack"), "rb") as f:
        contexts = cmetrics.decode(f.read())
    for family in contexts[0]["metrics"]:
        for series in family["values"]:
            series["ts"] = time_ns
    skipped = []
    assert otlp.metrics_request(contexts, [("env", "prod")], skipped) == captured
    assert not skipped
    # Two contexts: two ResourceMetrics, as Fluent Bit's concatenated MetricsData read.
    request.ParseFromString(otlp.metrics_request(contexts * 2, [], skipped))
    assert len(request.resource_metrics) == 2


def _conf(tmp_path, inputs, output):
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(
        "[SERVICE]\n    Flush 0.2\n    Grace 5\n    Log_File %s\n    scheduler.base 1\n"
        "    scheduler.cap 1\n%s"
        "[OUTPUT]\n    Name opentelemetry\n    Match *\n    Retry_Limit no_limits\n%s"
        % (tmp_path / "edgeship.log", inputs, output))
    return str(conf)


def _log(tmp_path):
    path = tmp_path / "edgeship.log"
    return path.read_text() if path.exists() else ""


DUMMY = ('{"log":"sshd started","SeverityText":"INFO","SeverityNumber":9,'
         '"TraceId":"0af7651916cd43dd8448eb211c80319c","SpanId":"b7ad6b7169203331",'
         '"unit":"ssh.service","pid":42}')


@pytest.mark.e2e
def test_logs_reach_the_collector(spawn, tmp_path):
    collector = Collector()
    inputs = ("[INPUT]\n    Name dummy\n    Tag edge.ssh\n    Dummy %s\n    Samples 1\n"
              "    Copies 5\n    Start_time_sec 1700000000\n    Start_time_nsec 123456789\n"
              "    Fixed_Timestamp on\n"
              "[INPUT]\n    Name dummy\n    Tag edge.other\n    Samples 1\n"
              "    Dummy {\"msg\":\"x\",\"n\":1.5,\"nested\":{\"a\":[1,null,true]}}\n" % DUMMY)
    output = ("    Host 127.0.0.1\n    Port %d\n    batch_size 2\n    logs_body_key_attributes on\n"
              "    Header X-Scope-OrgID edge\n    http_User alice\n    http_Passwd pw\n"
              % collector.port)
    try:
        spawn(["-c", _conf(tmp_path, inputs, output)])
        wait_for(lambda: len(collector.log_records()) >= 6, timeout=30)
    finally:
        collector.close()
    records = collector.log_records()
    ssh = [r for r in records if r.body.string_value == "sshd started"]
    assert len(ssh) == 5
    # Five records of one chunk in requests of at most batch_size 2 records.
    sizes = sorted(len(r.resource_logs[0].scope_logs[0].log_records) for r in collector.logs)
    assert sizes == [1, 1, 2, 2]
    first = ssh[0]
    assert first.time_unix_nano == 1700000000123456789 and first.observed_time_unix_nano == 0
    assert first.severity_text == "INFO" and first.severity_number == 9
    assert first.trace_id.hex() == "0af7651916cd43dd8448eb211c80319c"
    assert first.span_id.hex() == "b7ad6b7169203331"
    assert attributes(first.attributes) == {
        "SeverityText": "INFO", "SeverityNumber": 9,
        "TraceId": "0af7651916cd43dd8448eb211c80319c", "SpanId": "b7ad6b7169203331",
        "unit": "ssh.service", "pid": 42}
    other = [r for r in records if r.body.WhichOneof("value") == "kvlist_value"][0]
    whole = other.body.kvlist_value.values
    assert [kv.key for kv in whole] == ["msg", "n", "nested"]
    assert attributes(whole)["n"] == 1.5 and not other.attributes
    nested = attributes(whole)["nested"].values[0].value.array_value.values
    assert [v.WhichOneof("value") for v in nested] == ["int_value", None, "bool_value"]
    request = collector.requests[0]
    assert request.path == "/v1/logs"
    assert [name for name, _ in request.headers] == [
        "Host", "Content-Length", "Content-Type", "Authorization", "User-Agent",
        "X-Scope-OrgID", "Connection"]
    assert request.header("User-Agent") == "Fluent-Bit"
    assert "HTTP status=200" in _log(tmp_path)


@pytest.mark.e2e
@pytest.mark.parametrize("compress", ["", "gzip", "zstd"])
def test_host_metrics_reach_the_collector(spawn, tmp_path, compress):
    collector = Collector()
    inputs = ("[INPUT]\n    Name node_exporter_metrics\n    Tag metrics.node\n"
              "    Scrape_Interval 1\n    metrics loadavg,cpu,meminfo\n"
              "    path.procfs %s/proc\n    path.sysfs %s/sys\n" % (FIXTURE, FIXTURE))
    output = ("    Host 127.0.0.1\n    Port %d\n    Metrics_Uri v1/metrics\n"
              "    Add_Label service.name edge\n    Add_Label env prod\n%s"
              % (collector.port, "    compress %s\n" % compress if compress else ""))
    try:
        spawn(["-c", _conf(tmp_path, inputs, output)])
        wait_for(lambda: collector.metric("node_load1"), timeout=30)
    finally:
        collector.close()
    assert collector.requests[0].path == "/v1/metrics"
    assert collector.requests[0].header("Content-Encoding") == (compress or None)
    load = collector.metric("node_load1")
    assert load.WhichOneof("data") == "gauge"
    assert load.gauge.data_points[0].as_double == 0.25
    assert attributes(load.gauge.data_points[0].attributes) == {
        "service.name": "edge", "env": "prod"}
    cpu = collector.metric("node_cpu_seconds_total")
    assert cpu.WhichOneof("data") == "sum" and cpu.description
    assert cpu.sum.is_monotonic and cpu.sum.aggregation_temporality == CUMULATIVE
    points = {(a["cpu"], a["mode"]): p.as_double for p, a in
              [(p, attributes(p.attributes)) for p in cpu.sum.data_points]}
    assert points[("1", "system")] == 1.5
    keys = [kv.key for kv in cpu.sum.data_points[0].attributes]
    assert keys == ["service.name", "env", "cpu", "mode"]   # static labels first
    assert cpu.sum.data_points[0].time_unix_nano > 0
    assert collector.metric("node_memory_MemTotal_bytes").gauge.data_points[0].as_double > 0


def _tail_conf(tmp_path, port, extra=""):
    (tmp_path / "parsers.conf").write_text("[PARSER]\n    Name json\n    Format json\n")
    inputs = ("[INPUT]\n    Name tail\n    Path %s\n    Tag app\n    Read_From_Head true\n"
              "    Parser json\n    DB %s\n" % (tmp_path / "in.log", tmp_path / "tail.db"))
    conf = _conf(tmp_path, inputs, "    Host 127.0.0.1\n    Port %d\n%s" % (port, extra))
    with open(conf) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(text.replace("[SERVICE]\n", "[SERVICE]\n    Parsers_File parsers.conf\n"))
    return conf


def _append(tmp_path, *messages):
    with open(tmp_path / "in.log", "a") as f:
        f.write("".join('{"message":"%s"}\n' % m for m in messages))


def _bodies(collector):
    return [r.body.string_value for r in collector.log_records()]


@pytest.mark.e2e
@pytest.mark.parametrize("failure", [503, 500])
def test_a_refused_request_is_dropped_and_a_server_failure_retried(spawn, tmp_path, failure):
    # First request: 400 (dropped, logged with the answer); second: 503 (retried, as Fluent
    # Bit does) or 500 (retried too: Fluent Bit drops it); then 200.
    collector = Collector(status=lambda index: {0: 400, 1: failure}.get(index, 200))
    _append(tmp_path, "refused")
    try:
        child = spawn(["-c", _tail_conf(tmp_path, collector.port)])
        wait_for(lambda: len(collector.requests) >= 1, timeout=30)
        _append(tmp_path, "retried")
        wait_for(lambda: "retried" in _bodies(collector), timeout=30)
        _append(tmp_path, "after")
        wait_for(lambda: "after" in _bodies(collector), timeout=30)
        code, _, err = child.terminate()
    finally:
        collector.close()
    assert code == 0, err
    assert _bodies(collector) == ["retried", "after"]      # "refused" never came back
    sent = [r.body for r in collector.requests]
    assert sent[0] != sent[1] and sent[1] == sent[2]       # the 503'd request sent again
    log = _log(tmp_path)
    assert "HTTP status=400\nrefused by the test" in log
    assert "HTTP status=%d\nrefused by the test" % failure in log


@pytest.mark.e2e
def test_tls_to_a_collector_behind_nginx(spawn, tmp_path):
    collector = Collector()
    server = Nginx(tmp_path, collector.port, tls=True).start()
    _append(tmp_path, "one", "two")
    try:
        spawn(["-c", _tail_conf(tmp_path, server.port,
                                "    tls on\n    tls.verify on\n    tls.ca_file %s\n"
                                "    tls.vhost localhost\n    log_response_payload off\n"
                                % server.certs.ca)])
        wait_for(lambda: sorted(_bodies(collector)) == ["one", "two"], timeout=30)
    finally:
        server.stop()
        collector.close()
    assert all(line[3] == "200" for line in server.log_lines())


@pytest.mark.parametrize("option, message", [
    ("grpc=on", "grpc is not available in edgeship"),
    ("aws_auth=on", "AWS signing needs aws_region"),
    ("add_label=lonely", "'add_label' expects a key and a value"),
    ("compress=brotli", "compress"),
    ("logs_max_scopes=-1", "logs_max_scopes"),
])
def test_what_cannot_work_is_a_config_error(option, message):
    proc = run_edgeship(["-i", "dummy", "-o", "opentelemetry", "-p", option, "--dry-run"])
    assert proc.returncode != 0 and message in proc.stderr


def test_http2_and_traces_uri_are_accepted():
    proc = run_edgeship(["-i", "dummy", "-o", "opentelemetry", "-p", "http2=on", "-p",
                         "traces_uri=/v1/traces", "--dry-run"])
    assert proc.returncode == 0 and "edgeship speaks HTTP/1.1" in proc.stderr
