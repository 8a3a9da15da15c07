"""opentelemetry input: a real edgeship child takes OTLP/HTTP requests from the OpenTelemetry
Python SDK's exporters and from a plain HTTP client. The expected records, metrics and
answers are what Fluent Bit 5.1.1 wrote and answered for the same requests (captured from
the binary into its file output)."""
import gzip
import http.client
import logging
import socket

import cramjam
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import \
    ExportMetricsServiceRequest

from conftest import free_port, wait_for
from listener import Listener, http_request, section

pytestmark = pytest.mark.e2e
PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


def logs_request():
    req = ExportLogsServiceRequest()
    resource_logs = req.resource_logs.add()
    attribute = resource_logs.resource.attributes.add()
    attribute.key, attribute.value.string_value = "service.name", "pump"
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "lib"
    log = scope_logs.log_records.add()
    log.time_unix_nano, log.body.string_value = 1700000000123456789, "hello"
    log.severity_number, log.trace_id = 9, bytes(range(16))
    log = scope_logs.log_records.add()
    log.time_unix_nano = 1700000001000000000
    for key, kind, value in (("msg", "string_value", "kv"), ("n", "int_value", -3),
                             ("b", "bytes_value", b"\x00\x01"), ("unset", None, None)):
        pair = log.body.kvlist_value.values.add()
        pair.key = key
        if kind:
            setattr(pair.value, kind, value)
    log = scope_logs.log_records.add()
    log.observed_time_unix_nano = 1700000002000000000      # no body, no time
    log = scope_logs.log_records.add()
    log.time_unix_nano, log.body.double_value = 1700000003000000000, 2.5
    return req.SerializeToString()


FLUENT_BIT_LOGS = (
    'v1_logs: [1700000000.123456789, {"log":"hello"}]\n'
    'v1_logs: [1700000001.000000000, {"msg":"kv","n":-3,"b":"\\u0000\\u0001","unset":null}]\n'
    'v1_logs: [1700000002.000000000, {"log":null}]\n'
    'v1_logs: [1700000003.000000000, {"log":2.5}]\n')


def metrics_request():
    req = ExportMetricsServiceRequest()
    resource_metrics = req.resource_metrics.add()
    scope_metrics = resource_metrics.scope_metrics.add()
    t = 1700000000000000000

    def attributes(point, **values):
        for key, (kind, value) in values.items():
            pair = point.attributes.add()
            pair.key = key
            setattr(pair.value, kind, value)

    metric = scope_metrics.metrics.add()
    metric.name, metric.description, metric.unit = "temp", "temperature", "C"
    point = metric.gauge.data_points.add(time_unix_nano=t, as_double=21.5)
    point = metric.gauge.data_points.add(time_unix_nano=t, as_int=7)
    attributes(point, room=("string_value", "hall"), floor=("int_value", 2))
    point = metric.gauge.data_points.add(time_unix_nano=t, as_double=1.25)
    attributes(point, floor=("bool_value", True))
    metric = scope_metrics.metrics.add(name="requests_total")
    metric.sum.is_monotonic, metric.sum.aggregation_temporality = True, 2
    point = metric.sum.data_points.add(time_unix_nano=t, start_time_unix_nano=t - 10**16,
                                       as_int=12)
    attributes(point, code=("string_value", "200"))
    metric = scope_metrics.metrics.add(name="latency", description="lat")
    metric.histogram.aggregation_temporality = 2
    metric.histogram.data_points.add(time_unix_nano=t, count=6, sum=3.5,
                                     explicit_bounds=[0.1, 1.0], bucket_counts=[1, 2, 3])
    metric = scope_metrics.metrics.add(name="sizes")
    point = metric.summary.data_points.add(time_unix_nano=t, count=4, sum=10.0)
    point.quantile_values.add(quantile=0.5, value=2.0)
    point.quantile_values.add(quantile=0.9, value=4.0)
    metric = scope_metrics.metrics.add(name="updown")
    metric.sum.is_monotonic, metric.sum.aggregation_temporality = False, 1
    metric.sum.data_points.add(time_unix_nano=t, as_double=-4.0)
    return req.SerializeToString()


FLUENT_BIT_METRICS = (
    '2023-11-14T22:13:20.000000000Z requests_total{code="200"} = 12\n'
    '2023-11-14T22:13:20.000000000Z updown = -4\n'
    '2023-11-14T22:13:20.000000000Z temp = 21.5\n'
    '2023-11-14T22:13:20.000000000Z temp{room="hall",floor="2"} = 7\n'
    '2023-11-14T22:13:20.000000000Z temp{floor="1"} = 1.25\n'
    '2023-11-14T22:13:20.000000000Z sizes = { quantiles = { 0.5=2, 0.9=4 }, sum=10, '
    'count=4 }\n'
    '2023-11-14T22:13:20.000000000Z latency = { buckets = { 0.1=1, 1=2, +Inf=3 }, sum=3.5, '
    'count=6 }\n')

JSON_LOGS = b'''{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name",
 "value":{"stringValue":"pump"}}]},"scopeLogs":[{"scope":{"name":"lib"},"logRecords":[
 {"timeUnixNano":"1700000000123456789","severityNumber":9,"body":{"stringValue":"hello"},
  "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"},
 {"timeUnixNano":"1700000001000000000","body":{"kvlistValue":{"values":[
  {"key":"msg","value":{"stringValue":"kv"}},{"key":"n","value":{"doubleValue":1.5}},
  {"key":"arr","value":{"arrayValue":{"values":[{"boolValue":true},{"intValue":"7"}]}}}]}}},
 {"observedTimeUnixNano":"1700000002000000000","body":{"intValue":"5"}},
 {"timeUnixNano":1700000003000000000}]}]}]}'''

FLUENT_BIT_JSON_LOGS = (
    'v1_logs: [1700000000.123456789, {"log":"hello"}]\n'
    'v1_logs: [1700000001.000000000, {"msg":"kv","n":1.5,"arr":[true,7]}]\n'
    'v1_logs: [1700000002.000000000, {"log":5}]\n'
    'v1_logs: [1700000003.000000000, {}]\n')


def start(spawn, tmp_path, extra="", **keys):
    tmp_path.mkdir(exist_ok=True)
    port = free_port()
    input_keys = {"Name": "opentelemetry", "Listen": "127.0.0.1", "Port": port}
    input_keys.update(keys)
    listener = Listener(spawn, tmp_path, input_keys, extra=extra)
    listener.port = port
    return listener


def written(listener, name, ending, times=1):
    """The text of the output file ``name`` once it ends with ``ending`` and holds it
    ``times`` times."""
    path = listener.out / name

    def complete():
        text = path.read_text() if path.exists() else ""
        return text if text.endswith(ending) and text.count(ending) >= times else None
    return wait_for(complete)


def test_protobuf_logs_and_metrics_as_fluent_bit(spawn, tmp_path):
    listener = start(spawn, tmp_path)
    assert http_request(listener.port, "POST", "/v1/logs", logs_request(), PROTOBUF) == \
        (201, None, b"")
    assert written(listener, "v1_logs", "{\"log\":2.5}]\n") == FLUENT_BIT_LOGS
    gzipped = gzip.compress(metrics_request())
    assert http_request(listener.port, "POST", "/v1/metrics", gzipped,
                        dict(PROTOBUF, **{"Content-Encoding": "gzip"}))[0] == 201
    assert written(listener, "v1_metrics", "count=6 }\n") == FLUENT_BIT_METRICS
    # zstd, as the Collector's otlphttp exporter sends with `compression: zstd`.
    squeezed = bytes(cramjam.zstd.compress(logs_request()))
    assert http_request(listener.port, "POST", "/v1/logs", squeezed,
                        dict(PROTOBUF, **{"Content-Encoding": "zstd"}))[0] == 201
    assert written(listener, "v1_logs", "{\"log\":2.5}]\n", times=2) == FLUENT_BIT_LOGS * 2


def test_json_logs_as_fluent_bit_and_the_tag_rules(spawn, tmp_path):
    listener = start(spawn, tmp_path)
    assert http_request(listener.port, "POST", "/v1/logs", JSON_LOGS, JSON)[0] == 201
    assert written(listener, "v1_logs", "{}]\n") == FLUENT_BIT_JSON_LOGS
    # A bytes body, which Fluent Bit's JSON path refuses with the whole request, is taken.
    body = (b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"1",'
            b'"body":{"bytesValue":"aGk="}}]}]}]}')
    assert http_request(listener.port, "POST", "/v1/logs", body, {})[0] == 201
    assert written(listener, "v1_logs", '"hi"}]\n').endswith(
        'v1_logs: [0.000000001, {"log":"hi"}]\n')

    tagged = start(spawn, tmp_path / "tagged", Tag="otel", Logs_Body_Key="message",
                   Successful_Response_Code="200")
    untagged = start(spawn, tmp_path / "untagged", Tag_From_Uri="off")
    for listener in (tagged, untagged):
        assert http_request(listener.port, "POST", "/v1/logs", JSON_LOGS, JSON)[0] in (200, 201)
    assert tagged.wait_records(4)[:2] == [
        {"message": "hello"}, {"message": {"msg": "kv", "n": 1.5, "arr": [True, 7]}}]
    assert {event[0] for event in tagged.events()} == {"otel"}
    untagged.wait_records(4)
    assert {event[0] for event in untagged.events()} == {"opentelemetry.0"}


@pytest.mark.parametrize("method, path, body, headers, answer", [
    ("POST", "/v1/logs", b"garbage", PROTOBUF,
     (400, b"invalid request: deserialisation error\n")),
    ("POST", "/v1/metrics", b"{}", {}, (400, b"invalid request: deserialisation error\n")),
    ("POST", "/v1/logs", b"[1]", JSON, (400, b"invalid request: deserialisation error\n")),
    ("POST", "/v1/logs", b"x", {"Content-Type": "text/plain"},
     (400, b"invalid request: deserialisation error\n")),
    ("POST", "/v1/logs", b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"xyz"}]}]}]}',
     JSON, (400, b"invalid request: deserialisation error\n")),
    ("POST", "/v1/logs", b'{"resourceLogs":' + b'[' * 5000 + b']' * 5000 + b'}', JSON,
     (400, b"invalid request: deserialisation error\n")),
    ("POST", "/v1/logs", b"", JSON, (400, b"error: invalid content-length\n")),
    ("GET", "/v1/logs", None, {}, (400, b"error: invalid HTTP method\n")),
    ("POST", "/v2/logs", b"x", {}, (404, b"error: invalid endpoint\n")),
    ("POST", "/opentelemetry.proto.collector.logs.v1.LogsService/Export", b"x", PROTOBUF,
     (404, b"error: invalid endpoint\n")),
    ("POST", "/v1/traces", b"{}", JSON,
     (501, b"error: edgeship does not carry traces (raw_traces on takes OTLP/JSON traces "
           b"as records)\n")),
])
def test_refusals_and_the_process_goes_on(spawn, tmp_path, method, path, body, headers,
                                          answer):
    listener = start(spawn, tmp_path)
    status, _, data = http_request(listener.port, method, path, body, headers)
    assert (status, data) == answer
    assert http_request(listener.port, "POST", "/v1/logs", JSON_LOGS, JSON)[0] == 201
    assert listener.wait_records(4)[0] == {"log": "hello"}


def test_a_body_nested_too_deep_is_refused_and_the_next_taken(spawn, tmp_path):
    req = ExportLogsServiceRequest()
    value = req.resource_logs.add().scope_logs.add().log_records.add().body
    for _ in range(80):
        value = value.array_value.values.add()
    value.string_value = "deep"
    listener = start(spawn, tmp_path)
    assert http_request(listener.port, "POST", "/v1/logs", req.SerializeToString(),
                        PROTOBUF)[0] == 400
    assert http_request(listener.port, "POST", "/v1/logs", JSON_LOGS, JSON)[0] == 201
    assert listener.wait_records(4)[0] == {"log": "hello"}
    assert "POST /v1/logs answered 400: logs: " in listener.log()


def test_raw_traces_are_records(spawn, tmp_path):
    listener = start(spawn, tmp_path, Raw_Traces="on")
    trace = b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"op"}]}]}]}'
    assert http_request(listener.port, "POST", "/v1/traces", trace, JSON)[0] == 201
    assert listener.wait_records(1) == [
        {"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "op"}]}]}]}]
    assert listener.events()[0][0] == "v1_traces"
    # Protobuf traces would need a traces signal: refused, so the exporter reports it.
    assert http_request(listener.port, "POST", "/v1/traces", b"\x0a\x00", PROTOBUF)[0] == 501


def test_the_sdk_exporters_deliver_logs_and_metrics(spawn, tmp_path):
    """The OpenTelemetry Python SDK as the sender: a logging handler and a meter, each
    exporting OTLP/HTTP protobuf to edgeship."""
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    listener = start(spawn, tmp_path)
    url = "http://127.0.0.1:%d/v1/" % listener.port
    resource = Resource.create({"service.name": "pump"})
    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(url + "logs")))
    logger = logging.getLogger("edgeship-otel-test")
    logger.propagate = False
    handler = LoggingHandler(logger_provider=logs)
    logger.addHandler(handler)
    try:
        logger.warning("pressure %d bar", 3)
        logger.error("valve stuck")
    finally:
        logger.removeHandler(handler)
        logs.shutdown()
    records = listener.wait_records(2)
    assert [record["log"] for record in records] == ["pressure 3 bar", "valve stuck"]

    reader = PeriodicExportingMetricReader(OTLPMetricExporter(url + "metrics"),
                                           export_interval_millis=3600000)
    meters = MeterProvider(resource=resource, metric_readers=[reader])
    counter = meters.get_meter("pump").create_counter("strokes", unit="1",
                                                      description="pump strokes")
    counter.add(5, {"pump": "a"})
    counter.add(2, {"pump": "b"})
    meters.shutdown()       # exports once, and must have been answered with success
    text = written(listener, "v1_metrics", "\n")
    assert text.count("strokes{pump=") == 2, text
    assert 'strokes{pump="a"} = 5\n' in text and 'strokes{pump="b"} = 2\n' in text


def test_metrics_are_answered_only_once_delivered(spawn, tmp_path):
    """The exporter's request stays unanswered while the output retries, and is answered
    once the receiver took the metrics."""
    receiver_port = free_port()
    forward = section("OUTPUT", {"Name": "forward", "Match": "v1_metrics", "Host": "127.0.0.1",
                                 "Port": receiver_port, "Retry_Limit": "no_limits"})
    sender = start(spawn, tmp_path / "sender", extra=forward + section(
        "SERVICE", {"scheduler.base": "0.2", "scheduler.cap": "0.5"}))
    conn = http.client.HTTPConnection("127.0.0.1", sender.port, timeout=60)
    conn.request("POST", "/v1/metrics", body=metrics_request(), headers=PROTOBUF)
    wait_for(lambda: "(tag v1_metrics), retry" in sender.log())
    conn.sock.settimeout(0.2)
    with pytest.raises(socket.timeout):
        conn.sock.recv(1, socket.MSG_PEEK)
    conn.sock.settimeout(60)
    (tmp_path / "receiver").mkdir()
    receiver = Listener(spawn, tmp_path / "receiver",
                        {"Name": "forward", "Listen": "127.0.0.1", "Port": receiver_port})
    assert conn.getresponse().status == 201
    assert written(receiver, "v1_metrics", "count=6 }\n") == FLUENT_BIT_METRICS
