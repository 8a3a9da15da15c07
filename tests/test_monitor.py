"""The monitoring HTTP API on a real process, asked with curl: every endpoint's status,
content type and shape as Fluent Bit 5.1.1 gives them, with the numbers of a known run;
the health check turning to error on failed retries; a real Prometheus scraping it."""
import json
import re
import shutil
import subprocess
import urllib.parse
import urllib.request

from conftest import free_port, wait_for
from test_forward_e2e import section, write


def curl(port, path, *args):
    """(status, headers as a dict of lower-case names, body) of ``curl -i``."""
    out = subprocess.run(["curl", "-s", "-i", "--max-time", "10"] + list(args)
                         + ["http://127.0.0.1:%d%s" % (port, path)],
                         capture_output=True, check=True).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def get_json(port, path):
    status, headers, body = curl(port, path)
    assert headers["content-type"] == "application/json", (path, headers)
    return status, json.loads(body)


def answers(port):
    try:
        return curl(port, "/")[0] == 200
    except subprocess.CalledProcessError:
        return False


def _conf(tmp_path, http, *extra_service, samples=5, rate=50, **outputs):
    keys = {"Flush": "0.2", "Grace": "1", "HTTP_Server": "On", "HTTP_Listen": "127.0.0.1",
            "HTTP_Port": http, "Log_File": str(tmp_path / "edgeship.log")}
    keys.update(dict(extra_service))
    text = section("SERVICE", **keys)
    text += section("INPUT", Name="dummy", Samples=samples, Rate=rate, Alias="sensor",
                    Dummy='{"message": "reading", "value": 1}')
    text += section("FILTER", Name="grep", Match="*", Exclude="message nothing")
    text += section("OUTPUT", Name="null", Match="*")
    for alias, keys in outputs.items():
        text += section("OUTPUT", Alias=alias, **keys)
    return write(tmp_path / "fluent-bit.conf", text)


def test_every_endpoint_with_the_numbers_of_a_known_run(spawn, tmp_path):
    http = free_port()
    spawn(["-c", _conf(tmp_path, http, ("Health_Check", "On"), ("Hot_Reload", "On"))])
    wait_for(lambda: answers(http))

    def delivered():
        metrics = get_json(http, "/api/v1/metrics")[1]
        return metrics["output"]["null.0"]["proc_records"] == 5 and metrics

    metrics = wait_for(delivered)
    assert metrics["input"] == {"sensor": {"records": 5, "bytes": metrics["input"]["sensor"]
                                           ["bytes"]}}
    assert metrics["input"]["sensor"]["bytes"] > 0
    assert metrics["filter"] == {"grep.0": {"drop_records": 0, "add_records": 0, "records": 5}}
    assert list(metrics["output"]["null.0"]) == ["proc_records", "proc_bytes", "errors",
                                                 "retries", "retries_failed",
                                                 "dropped_records", "retried_records"]
    assert metrics["output"]["null.0"]["proc_bytes"] > 0

    status, root = get_json(http, "/")
    assert status == 200 and root["fluent-bit"]["version"] == "5.1.1"

    status, uptime = get_json(http, "/api/v1/uptime")
    assert status == 200 and isinstance(uptime["uptime_sec"], int)
    assert re.match(r"^Fluent Bit has been running:  0 day, 0 hour, \d+ minutes? and \d+ "
                    r"seconds?$", uptime["uptime_hr"]), uptime

    status, headers, body = curl(http, "/api/v1/metrics/prometheus")
    assert status == 200 and headers["content-type"] == "text/plain; version=0.0.4"
    text = body.decode()
    assert re.search(r'^fluentbit_input_records_total\{name="sensor"\} 5 \d{13}$', text, re.M)
    assert re.search(r'^fluentbit_output_proc_records_total\{name="null.0"\} 5 \d{13}$', text,
                     re.M)
    assert "# HELP fluentbit_output_retries_failed_total Number of abandoned batches because " \
        "the maximum number of re-tries was reached.\n" in text
    assert 'fluentbit_build_info{version="5.1.1",edition="Community"} 1\n' in text

    status, headers, body = curl(http, "/api/v2/metrics/prometheus")
    assert status == 200 and headers["content-type"] == "text/plain; version=0.0.4"
    text = body.decode()
    assert '\nfluentbit_input_records_total{name="sensor"} 5\n' in text
    assert '\nfluentbit_output_proc_records_total{name="null.0"} 5\n' in text
    assert '\nfluentbit_filter_records_total{name="grep.0"} 5\n' in text
    assert re.search(r'^fluentbit_hot_reloaded_times\{hostname="[^"]+"\} 0$', text, re.M)
    assert "# TYPE fluentbit_storage_chunks gauge\n" in text

    status, headers, body = curl(http, "/api/v2/metrics")
    assert status == 200 and "content-type" not in headers
    assert re.search(r'^\d{4}-\d\d-\d\dT[\d:.]+Z fluentbit_input_records_total\{name="sensor"\}'
                     r' = 5$', body.decode(), re.M)

    status, storage = get_json(http, "/api/v1/storage")
    assert status == 200
    assert set(storage["storage_layer"]["chunks"]) == {"total_chunks", "mem_chunks",
                                                       "fs_chunks", "fs_chunks_up",
                                                       "fs_chunks_down"}
    assert storage["input_chunks"]["sensor"]["status"]["overlimit"] is False

    assert curl(http, "/api/v1/health")[0::2] == (200, b"ok\n")
    assert get_json(http, "/api/v2/health") == (200, {
        "status": "ok", "errors": 0, "retries_failed": 0, "error_limit": 5,
        "retry_failure_limit": 5, "period_limit": 60})

    status, plugins = get_json(http, "/api/v1/plugins")
    assert "tail" in plugins["plugins"]["inputs"] and "null" in plugins["plugins"]["outputs"]

    assert get_json(http, "/api/v2/reload") == (200, {"hot_reload_count": 0})
    status, headers, body = curl(http, "/api/v2/reload", "-X", "DELETE")
    assert (status, headers["allow"], body) == (405, "GET, POST, PUT", b"")
    assert curl(http, "/api/v2/reload", "-X", "POST", "-d", "{}")[2] == \
        b'{"reload":"done","status":0}'
    wait_for(lambda: get_json(http, "/api/v2/reload")[1] == {"hot_reload_count": 1})

    # Exact paths, as Fluent Bit: a query string is ignored, a trailing slash is not found.
    assert curl(http, "/api/v1/uptime?pretty=1")[0] == 200
    assert curl(http, "/api/v1/metrics/")[0::2] == (404, b"")
    assert curl(http, "/nothing")[0::2] == (404, b"")


def test_flags_on_the_command_line_and_endpoints_that_need_their_key(spawn, tmp_path):
    http = free_port()
    spawn(["-i", "dummy", "-o", "null", "-H", "-L", "127.0.0.1", "-P", str(http)])
    wait_for(lambda: answers(http))
    assert curl(http, "/api/v1/health")[0] == 404           # Health_Check is off
    assert get_json(http, "/api/v2/health")[1]["status"] == "ok"
    assert curl(http, "/api/v2/reload", "-X", "PUT", "-d", "")[2] == \
        b'{"reload":"not enabled","status":-1}'
    http2 = free_port()
    spawn(["-i", "dummy", "-o", "null", "-H", "-L", "127.0.0.1", "-P", str(http2), "-Y"])
    wait_for(lambda: answers(http2))
    assert curl(http2, "/api/v1/storage")[0] == 200         # storage.metrics is on by default
    assert curl(http2, "/api/v2/reload", "-X", "PUT", "-d", "")[2] == \
        b'{"reload":"done","status":0}'
    wait_for(lambda: get_json(http2, "/api/v2/reload")[1] == {"hot_reload_count": 1})


def test_health_turns_to_error_on_failed_retries_and_back(spawn, tmp_path):
    http, dead = free_port(), free_port()
    spawn(["-c", _conf(tmp_path, http, ("Health_Check", "On"), ("HC_Retry_Failure_Count", "1"),
                       ("HC_Period", "3"), ("scheduler.base", "0.2"), ("scheduler.cap", "0.3"),
                       ("storage.metrics", "off"), samples=20, rate=10,
                       dead_fwd={"Name": "forward", "Match": "*", "Host": "127.0.0.1",
                                 "Port": dead, "Retry_Limit": "1"})])
    wait_for(lambda: answers(http))
    assert curl(http, "/api/v1/storage")[0] == 404          # storage.metrics off

    def unhealthy():
        status, state = get_json(http, "/api/v2/health")
        return status == 500 and state

    state = wait_for(unhealthy)
    assert state["status"] == "error" and state["retries_failed"] > 1
    assert state["retry_failure_limit"] == 1 and state["period_limit"] == 3
    assert curl(http, "/api/v1/health")[0::2] == (500, b"error\n")
    output = get_json(http, "/api/v1/metrics")[1]["output"]["dead_fwd"]
    assert output["retries_failed"] >= 2
    # Once the 20 records are all given up, no more failures: after HC_Period seconds it
    # recovers by itself.
    wait_for(lambda: get_json(http, "/api/v1/metrics")[1]["output"]["dead_fwd"]
             ["dropped_records"] == 20)
    wait_for(lambda: get_json(http, "/api/v2/health")[0] == 200, timeout=15)
    assert curl(http, "/api/v1/health")[0::2] == (200, b"ok\n")


PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def test_a_real_prometheus_scrapes_the_endpoint(spawn, tmp_path):
    http, prom_port = free_port(), free_port()
    spawn(["-c", _conf(tmp_path, http)])
    wait_for(lambda: answers(http))
    config = write(tmp_path / "prometheus.yml", (
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: edgeship\n"
        "    metrics_path: /api/v1/metrics/prometheus\n"
        "    static_configs:\n"
        "      - targets: ['127.0.0.1:%d']\n" % http))
    log = open(str(tmp_path / "prometheus.log"), "w")
    prometheus = subprocess.Popen(
        [PROMETHEUS, "--config.file", config, "--storage.tsdb.path", str(tmp_path / "tsdb"),
         "--web.listen-address", "127.0.0.1:%d" % prom_port], stdout=log, stderr=log,
        start_new_session=True)
    try:
        def query():
            url = "http://127.0.0.1:%d/api/v1/query?%s" % (prom_port, urllib.parse.urlencode(
                {"query": 'fluentbit_input_records_total{name="sensor"}'}))
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    result = json.loads(response.read())["data"]["result"]
            except OSError:
                return None
            return result and result[0]["value"][1] == "5" and result[0]

        series = wait_for(query, timeout=60)
        assert series["metric"]["job"] == "edgeship"
        assert series["metric"]["instance"] == "127.0.0.1:%d" % http
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
        log.close()
