"""prometheus_remote_write input: a real edgeship child takes remote write requests (snappy
protobuf over HTTP) from a real Prometheus and from http.client; the metrics and answers are
those Fluent Bit 5.1.1 made and gave for the same requests (tests/data/remote_write)."""
import gzip
import http.client
import os
import threading
import urllib.request
import zlib

import cramjam
import pytest
from hypothesis import given, settings, strategies as st

from conftest import Printed, free_port, run_edgeship, wait_for
from forward_capture import Capture
from listener import section
from prometheus import Prometheus
from edgeship.codecs import cmetrics, remote_write

DATA = os.path.join(os.path.dirname(__file__), "data", "remote_write")
T = 1700000000123          # ms


def _read(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def write_request(series, metadata=()):
    """A serialized WriteRequest: ``series`` of (labels, samples, histogram points),
    ``metadata`` of (type, family name, help)."""
    request = remote_write._write_request_class()()
    for labels, samples, *points in series:
        ts = request.timeseries.add()
        for name, value in labels:
            ts.labels.add(name=name.encode(),
                          value=value if isinstance(value, bytes) else value.encode())
        for value, ms in samples:
            ts.samples.add(value=value, timestamp=ms)
        for fields in (points[0] if points else ()):
            point = ts.histograms.add()
            for key, value in fields.items():
                if key.endswith("_spans"):
                    for offset, length in value:
                        getattr(point, key).add(offset=offset, length=length)
                elif isinstance(value, list):
                    getattr(point, key).extend(value)
                else:
                    setattr(point, key, value)
    for kind, name, text in metadata:
        request.metadata.add(type=kind, metric_family_name=name.encode(), help=text.encode())
    return request.SerializeToString()


def fixture_request():
    return write_request([
        ([("__name__", "demo_gauge"), ("job", "x")], [(1.5, T), (2.5, T + 1000)]),
        ([("__name__", "demo_total"), ("job", "x"), ("code", "200")], [(7, T)]),
        ([("job", "y"), ("__name__", "demo_untyped")], [(3, T)]),
        ([("__name__", "demo_dup"), ("k", "1"), ("k", "2")], [(4, T)]),
        ([("__name__", "demo_nosamples"), ("job", "x")], []),
        ([("__name__", "demo_hist"), ("job", "x")], [],
         [{"count_float": 6.0, "sum": 12.5, "positive_spans": [(1, 2), (2, 1)],
           "positive_counts": [1.0, 2.0, 3.0], "timestamp": T}]),
        ([("__name__", "demo_summary")], [(9, T)]),
        ([("__name__", "demo_nul"), ("v", b"a\0b")], [(5, T)]),
        ([("job", "nameless")], [(6, T)]),
        ([("__name__", "demo_last"), ("job", "x")], [(8, T)]),
    ], [(1, "demo_total", "A counter."), (0, "demo_untyped", "Unknown."),
        (5, "demo_summary", "S."), (3, "demo_hist", "H.")])


def snappy(data):
    return bytes(cramjam.snappy.compress_raw(data))


def post(port, body, path="/api/v1/write", method="POST", encoding="snappy", timeout=20):
    """(status, body) of one request; ``encoding`` None sends the body as it is."""
    headers = {"Content-Type": "application/x-protobuf",
               "X-Prometheus-Remote-Write-Version": "0.1.0"}
    if encoding:
        headers["Content-Encoding"] = encoding
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Edgeship:
    """edgeship with the input on a free port into ``outputs`` (config text), its log in a
    file."""

    def __init__(self, spawn, tmp_path, outputs, service=None, **keys):
        self.port = free_port()
        self.log_path = tmp_path / "edgeship.log"
        service_keys = {"Flush": "0.1", "Grace": "1", "Log_Level": "debug",
                        "Log_File": self.log_path}
        service_keys.update(service or {})
        input_keys = {"Name": "prometheus_remote_write", "Listen": "127.0.0.1",
                      "Port": self.port, "Tag": "prw"}
        input_keys.update(keys)
        conf = tmp_path / "edgeship.conf"
        conf.write_text(section("SERVICE", service_keys) + section("INPUT", input_keys)
                        + outputs)
        self.child = spawn(["-c", str(conf)])
        self.printed = Printed(self.child)
        wait_for(lambda: "listening on" in self.log() or self.child.proc.poll() is not None)
        assert self.child.proc.poll() is None, self.log()

    def log(self):
        return self.log_path.read_text() if self.log_path.exists() else ""


STDOUT = section("OUTPUT", {"Name": "stdout", "Match": "*"})


# --------------------------------------------------------------------------- the codec
def test_fluent_bits_context_bytes_for_bytes():
    request = _read("request.pb")
    assert fixture_request() == request
    contexts, skipped = remote_write.to_contexts(request)
    assert b"".join(c.encode() for c in contexts) == _read("fluent_bit_context.msgpack")
    assert skipped == [("demo_summary", "type summary is not supported")]


@pytest.mark.parametrize("series, metadata, reason", [
    ([([("__name__", "a"), ("", "v")], [(1, T)])], (), "a label without a name"),
    ([([("__name__", "")], [(1, T)])], (), "no name"),
    ([([("__name__", "a")], [(1, T)])], [(2, "a", "")], "no HELP text"),
    ([([("__name__", "a")], [(1, T)])], [(6, "a", "i")], "type info is not supported"),
    ([([("__name__", "a")], [], [{"sum": 1.0, "count_int": 3, "timestamp": T}])], (),
     "a histogram without buckets"),
    # integer native histograms (deltas) have no float counts: cmetrics makes no buckets
    ([([("__name__", "a")], [], [{"count_int": 3, "positive_spans": [(0, 2)],
                                  "positive_deltas": [1, 1], "timestamp": T}])], (),
     "a histogram without buckets"),
    ([([("__name__", "a")], [], [{"positive_spans": [(0, 1)], "positive_counts": [1.0],
                                  "timestamp": T}])], (), "a histogram point without count"),
])
def test_series_cmetrics_refuses_are_left_out_with_a_reason(series, metadata, reason):
    keep = ([("__name__", "kept")], [(1, T)])
    contexts, skipped = remote_write.to_contexts(write_request(series + [keep], metadata))
    assert skipped == [(series[0][0][0][1], reason)]
    assert [f.name for f in contexts[0].families] == ["kept"]


def test_times_wrap_and_invalid_utf8_becomes_replacement_characters():
    contexts, _ = remote_write.to_contexts(write_request(
        [([("__name__", "a"), ("v", b"\xff")], [(1, -5)])]))
    text = cmetrics.render_text(cmetrics.decode(contexts[0].encode()))
    assert text == '2554-07-21T23:34:33.704551616Z a{__name__="a",v="\ufffd"} = 1\n'


def test_more_series_than_a_context_holds_make_several_contexts():
    count = 65536
    body = write_request([([("__name__", "m%d" % i)], [(i, T)]) for i in range(count)])
    contexts, skipped = remote_write.to_contexts(body)
    assert skipped == [] and [len(c.families) for c in contexts] == [65535, 1]
    decoded = cmetrics.decode(b"".join(c.encode() for c in contexts))
    assert decoded[1]["metrics"][0]["meta"]["opts"]["name"] == "m65535"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_are_a_context_cmetrics_reads_or_a_refusal(data):
    try:
        contexts, _ = remote_write.to_contexts(data)
    except remote_write.RemoteWriteError:
        return
    for context in contexts:
        payload = context.encode()
        if payload is not None:
            cmetrics.decode(payload)


# --------------------------------------------------------------------------- end to end
@pytest.mark.e2e
def test_a_real_prometheus_writes_its_own_metrics_through(spawn, tmp_path):
    exporter = free_port()
    edgeship = Edgeship(spawn, tmp_path, section("OUTPUT", {
        "Name": "prometheus_exporter", "Match": "*", "Host": "127.0.0.1", "Port": exporter}),
        URI="/api/v1/write")
    url = "http://127.0.0.1:%d/api/v1/write" % edgeship.port
    server = Prometheus(tmp_path / "prometheus", scrape_self=True, write_to=url)
    try:
        def exported():
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % exporter,
                                        timeout=10) as r:
                return r.read().decode()
        up = ('up{__name__="up",instance="127.0.0.1:%d",job="prometheus"} 1'
              % server.port)
        text = wait_for(lambda: up in exported() and exported(), timeout=90)
        assert "# HELP up -\n# TYPE up gauge\n" in text
        # Prometheus' own view of a series it wrote, label for label (it sends them sorted)
        build = wait_for(lambda: server.query("prometheus_build_info"), timeout=60)[0][0]
        line = "prometheus_build_info{%s} 1" % ",".join(
            '%s="%s"' % (key, build[key]) for key in sorted(build))
        assert line in wait_for(lambda: "prometheus_build_info{" in exported()
                                and exported())
    finally:
        server.stop()
    assert "answered 400" not in edgeship.log()


@pytest.mark.e2e
def test_the_metrics_and_answers_are_fluent_bits(spawn, tmp_path):
    edgeship = Edgeship(spawn, tmp_path, STDOUT, URI="/api/v1/write",
                        successful_response_code="204")
    good = write_request([([("__name__", "after")], [(1, T)])])
    refusals = [
        (snappy(good), "/elsewhere", "POST", "snappy", (400, b"error: invalid endpoint\n")),
        (snappy(good), "/api/v1/write", "PUT", "snappy",
         (400, b"error: invalid HTTP method\n")),
        (b"", "/api/v1/write", "POST", None, (400, b"error: invalid payload\n")),
        (b"\x00\x01 not snappy", "/api/v1/write", "POST", "snappy",
         (400, b"error: invalid request\n")),
        (snappy(b"\xff\xff\xff\xff"), "/api/v1/write", "POST", "snappy",
         (400, b"error: invalid request\n")),
        (zlib.compress(good), "/api/v1/write", "POST", "deflate",       # not undone
         (400, b"error: invalid request\n")),
        (snappy(write_request([([("__name__", "s")], [(1, T)])], [(5, "s", "S")])),
         "/api/v1/write", "POST", "snappy", (400, b"error: invalid request\n")),
    ]
    for body, path, method, encoding, answer in refusals:
        assert post(edgeship.port, body, path, method, encoding) == answer, path
    # every encoding Fluent Bit undoes, and none
    for body, encoding in [(snappy(fixture_request()), "snappy"),
                           (gzip.compress(good), "gzip"),
                           (bytes(cramjam.zstd.compress(good)), "zstd"),
                           (good, None),
                           (snappy(good), "SNAPPY"),
                           (bytes(cramjam.snappy.compress(good)), "snappy")]:   # framed
        assert post(edgeship.port, body, "/api/v1/write?q=1", "POST", encoding) == (204, b"")
    expected = [line.split(" ", 1)[1] for line in
                _read("fluent_bit_stdout.txt").decode().splitlines()]
    expected += ['after{__name__="after"} = 1'] * 5
    assert wait_for(lambda: len(edgeship.printed.metrics()) >= len(expected)
                    and edgeship.printed.metrics()) == expected
    log = edgeship.log()
    assert "series left out, the first ('demo_summary'): type summary is not supported" in log
    # refusals are logged, one line per while (the next says how many were left out)
    assert "POST /elsewhere answered 400: error: invalid endpoint" in log


@pytest.mark.e2e
def test_bodies_over_the_limit_are_refused_413_even_once_decompressed(spawn, tmp_path):
    edgeship = Edgeship(spawn, tmp_path, STDOUT, **{"http_server.buffer_max_size": "2000"})
    big = write_request([([("__name__", "big"), ("v", "x" * 5000)], [(1, T)])])
    assert post(edgeship.port, big, encoding=None)[0] == 413
    for encoding, body in [("snappy", snappy(big)), ("gzip", gzip.compress(big)),
                           ("zstd", bytes(cramjam.zstd.compress(big))),
                           ("snappy", bytes(cramjam.snappy.compress(big)))]:
        assert len(body) < 2000
        assert post(edgeship.port, body, encoding=encoding)[0] == 413, encoding
    assert post(edgeship.port, snappy(write_request([([("__name__", "small")], [(2, T)])])))\
        == (201, b"")
    assert wait_for(lambda: edgeship.printed.metrics()) == ['small{__name__="small"} = 2']


@pytest.mark.e2e
def test_the_answer_waits_until_the_output_delivered(spawn, tmp_path):
    # A forward output to a port nobody listens on yet: the request stays unanswered while
    # it retries, and is answered once a receiver took the metrics.
    receiver_port = free_port()
    edgeship = Edgeship(spawn, tmp_path, section("OUTPUT", {
        "Name": "forward", "Match": "*", "Host": "127.0.0.1", "Port": receiver_port,
        "Retry_Limit": "no_limits"}),
        service={"scheduler.base": "0.2", "scheduler.cap": "0.5"})
    answers = []
    sender = threading.Thread(target=lambda: answers.append(post(
        edgeship.port, snappy(write_request([([("__name__", "held")], [(1, T)])])),
        timeout=60)))
    sender.start()
    wait_for(lambda: "(tag prw), retry" in edgeship.log())
    assert answers == [] and sender.is_alive()
    receiver = Capture(receiver_port)
    sender.join(60)
    assert answers == [(201, b"")]
    frame = wait_for(lambda: receiver.frames)[0]
    assert frame[0] == "prw"
    context = cmetrics.decode(frame[1])[0]
    assert context["metrics"][0]["meta"]["opts"]["name"] == "held"


def test_an_unsupported_response_code_is_tolerated_and_help_works():
    proc = run_edgeship(["-i", "prometheus_remote_write", "-p", "successful_response_code=202",
                         "-o", "stdout", "--dry-run"])
    assert proc.returncode == 0
    assert ("prometheus_remote_write: 202 is not a supported response code (200, 201, 204): "
            "201 is used") in proc.stderr
    proc = run_edgeship(["-i", "prometheus_remote_write", "-p", "successful_response_code=202",
                         "-o", "stdout", "--dry-run", "--strict"])
    assert proc.returncode != 0
    proc = run_edgeship(["-i", "prometheus_remote_write", "-h"])
    assert proc.returncode == 0 and "successful_response_code" in proc.stdout.lower()
