"""prometheus_exporter: Fluent Bit's /metrics text for node_exporter_metrics and
fluentbit_metrics, scraped by a real Prometheus."""
import os
import urllib.error
import urllib.request

import pytest

from conftest import accepts_connections, free_port, run_edgeship, wait_for
from prometheus import Prometheus

FIXTURE = os.path.join(os.path.dirname(__file__), "data", "node_exporter", "fixture")
EXPECTED = os.path.join(os.path.dirname(__file__), "data", "node_exporter", "fixture.prom")


def _get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def _start(spawn, tmp_path, extra_output=""):
    port = free_port()
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(
        "[SERVICE]\n    Flush 0.2\n    Log_File %s\n"
        "[INPUT]\n    Name node_exporter_metrics\n    Tag node\n    Scrape_Interval 1\n"
        "    metrics cpu,cpufreq,meminfo,diskstats,loadavg,netdev,thermal_zone,stat,vmstat\n"
        "    path.procfs %s/proc\n    path.sysfs %s/sys\n"
        "[INPUT]\n    Name fluentbit_metrics\n    Tag internal\n    Scrape_Interval 1\n"
        "[INPUT]\n    Name dummy\n    Tag logs\n"
        "[OUTPUT]\n    Name prometheus_exporter\n    Match *\n    Host 127.0.0.1\n"
        "    Port %d\n%s" % (tmp_path / "edgeship.log", FIXTURE, FIXTURE, port, extra_output))
    spawn(["-c", str(conf)])
    wait_for(lambda: accepts_connections(port))
    return port


@pytest.mark.e2e
def test_metrics_page_is_fluent_bits(spawn, tmp_path):
    port = _start(spawn, tmp_path)
    status, headers, body = _get(port, "/metrics")
    assert status == 200
    page = wait_for(lambda: "node_load1" in _get(port, "/metrics")[2]
                    and "fluentbit_uptime" in _get(port, "/metrics")[2]
                    and _get(port, "/metrics")[2], timeout=30)
    with open(EXPECTED) as f:
        assert f.read() in page      # the node part, byte for byte; logs never show up
    assert headers["Content-Type"] == "text/plain; version=0.0.4"
    status, _headers, body = _get(port, "/")
    assert (status, body) == (200, "Fluent Bit Prometheus Exporter\n")
    assert _get(port, "/nope")[0] == 404


def test_add_label_and_add_timestamp(spawn, tmp_path):
    port = _start(spawn, tmp_path, "    add_label env prod\n    add_timestamp on\n")
    page = wait_for(lambda: "node_load1" in _get(port, "/metrics")[2]
                    and _get(port, "/metrics")[2], timeout=30)
    line = [l for l in page.splitlines() if l.startswith("node_load1")][0]
    name, value, stamp = line.split(" ")
    assert name == 'node_load1{env="prod"}' and value == "0.25" and len(stamp) == 13


def test_add_label_needs_a_key_and_a_value():
    proc = run_edgeship(["-i", "dummy", "-o", "prometheus_exporter", "-p", "add_label=env",
                         "--dry-run"])
    assert proc.returncode != 0
    assert "'add_label' expects a key and a value" in proc.stderr


@pytest.mark.e2e
def test_a_real_prometheus_scrapes_it(spawn, tmp_path):
    port = _start(spawn, tmp_path)
    server = Prometheus(tmp_path / "prometheus", ["127.0.0.1:%d" % port])
    try:
        found = wait_for(lambda: server.query(
            'node_cpu_seconds_total{cpu="1",mode="system"}'), timeout=60)
        assert found[0][1] == 1.5 and found[0][0]["job"] == "edgeship"
        records = wait_for(lambda: server.query(
            'fluentbit_input_records_total{name="dummy.2"} > 0'), timeout=60)
        assert records[0][1] > 0
    finally:
        server.stop()
