"""prometheus_remote_write: Fluent Bit's WriteRequest (protobuf bytes equal to a capture),
its request head (vector), and a real Prometheus 2.42 receiving what edgeship writes."""
import gzip
import os
import re

import cramjam
import pytest

from conftest import run_edgeship, wait_for
from http_receiver import Receiver, response
from http_vectors import load
from prometheus import Prometheus
from edgeship.codecs import cmetrics, remote_write

DATA = os.path.join(os.path.dirname(__file__), "data")
FIXTURE = os.path.join(DATA, "node_exporter", "fixture")


def test_the_write_request_is_cmetrics_bytes_for_bytes():
    with open(os.path.join(DATA, "cmetrics", "scrape_context.msgpack"), "rb") as f:
        contexts = cmetrics.decode(f.read())
    with open(os.path.join(DATA, "cmetrics", "scrape_addlabel_env_prod.remote_write"),
              "rb") as f:
        captured = f.read()
    ms = remote_write.decode(captured)[0][1][0][1]
    for family in contexts[0]["metrics"]:
        for series in family["values"]:
            series["ts"] = ms * 1000000
    assert remote_write.encode(contexts, [("env", "prod")], ms * 1000000) == captured
    # an hour later the same series are too old to send
    assert remote_write.encode(contexts, [], ms * 1000000 + 3601 * 10 ** 9) == b""


def _conf(tmp_path, port, extra=""):
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(
        "[SERVICE]\n    Flush 0.2\n    Log_File %s\n"
        "[INPUT]\n    Name node_exporter_metrics\n    Tag node\n    Scrape_Interval 1\n"
        "    metrics loadavg,cpu\n    path.procfs %s/proc\n    path.sysfs %s/sys\n"
        "[OUTPUT]\n    Name prometheus_remote_write\n    Match *\n    Host 127.0.0.1\n"
        "    Port %d\n    Uri /api/v1/write\n    Add_Label env prod\n%s"
        % (tmp_path / "edgeship.log", FIXTURE, FIXTURE, port, extra))
    return str(conf)


@pytest.mark.parametrize("compression", ["snappy", "gzip"])
def test_request_head_as_fluent_bit_sends_it(spawn, tmp_path, compression):
    vec = load("out_prometheus_remote_write_fluentbit_metrics")
    receiver = Receiver(lambda request, index: response(204, b""))
    try:
        spawn(["-c", _conf(tmp_path, receiver.port, "    Header X-Custom one\n"
                           "    compression %s\n" % compression)])
        wait_for(lambda: receiver.requests, timeout=30)
        got = receiver.requests[0]
    finally:
        receiver.close()
    expected = vec["request"]["head_raw"].replace("snappy", compression).encode()

    def masked(head):
        head = re.sub(rb"Host: [^\r]+", b"Host: H", head)
        return re.sub(rb"Content-Length: \d+", b"Content-Length: N", head)
    assert masked(got.head_raw) == masked(expected)
    body = (gzip.decompress(got.body) if compression == "gzip"
            else bytes(cramjam.snappy.decompress_raw(got.body)))
    series = remote_write.decode(body)
    load1 = [s for s in series if s[0][0] == ("__name__", "node_load1")][0]
    assert load1[0] == [("__name__", "node_load1"), ("env", "prod")]
    assert load1[1][0][0] == 0.25


@pytest.mark.e2e
def test_a_real_prometheus_receives_the_series(spawn, tmp_path):
    server = Prometheus(tmp_path / "prometheus", remote_write=True)
    try:
        spawn(["-c", _conf(tmp_path, server.port)])
        found = wait_for(lambda: server.query('node_cpu_seconds_total{cpu="1",mode="system"}'),
                         timeout=60)
        assert found[0][0]["env"] == "prod" and found[0][1] == 1.5
        assert server.query("node_load1")[0][1] == 0.25
    finally:
        server.stop()


def test_aws_auth_needs_a_region():
    proc = run_edgeship(["-i", "dummy", "-o", "prometheus_remote_write", "-p", "aws_auth=on",
                         "--dry-run"])
    assert proc.returncode != 0 and "needs aws_region" in proc.stderr
    proc = run_edgeship(["-i", "dummy", "-o", "prometheus_remote_write", "-p", "aws_auth=on",
                         "-p", "aws_region=eu-west-1", "--dry-run"])
    assert proc.returncode == 0, proc.stderr
