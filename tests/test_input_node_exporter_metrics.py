"""node_exporter_metrics: the exporter text of Fluent Bit 5.1.1 for a fake procfs/sysfs tree,
and this machine's own /proc through a running edgeship."""
import os

import pytest

from conftest import wait_for
from forward_capture import Capture
from edgeship.codecs import cmetrics
from edgeship.engine.log import Log
from edgeship.plugins.inputs.node_exporter_metrics.collectors import COLLECTORS

DATA = os.path.join(os.path.dirname(__file__), "data", "node_exporter")
FIXTURE = os.path.join(DATA, "fixture")
FIXTURE_METRICS = "cpu,cpufreq,meminfo,diskstats,loadavg,netdev,thermal_zone,stat,vmstat"
IGNORE_DEVICES = r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$"


def _collect(names, procfs, sysfs, options=None):
    ctx = cmetrics.Context()
    paths = {"procfs": procfs, "sysfs": sysfs}
    options = dict(options or {}, **{"diskstats.ignore_device_regex": IGNORE_DEVICES})
    collectors = [COLLECTORS[n](ctx, paths, options, Log("error")) for n in names.split(",")]
    for collector in collectors:
        collector.update(1795510555128445900)
    return cmetrics.decode(ctx.encode())


def test_the_fake_tree_gives_fluent_bits_exporter_text():
    contexts = _collect(FIXTURE_METRICS, os.path.join(FIXTURE, "proc"),
                        os.path.join(FIXTURE, "sys"))
    with open(os.path.join(DATA, "fixture.prom")) as f:
        assert cmetrics.render_prometheus(contexts) == f.read()


def test_this_machines_proc_has_the_families_and_labels():
    (context,) = _collect("cpu,meminfo,loadavg,netdev,stat,vmstat,uname,time,filesystem",
                          "/proc", "/sys", {
                              "filesystem.ignore_mount_point_regex": "^/(dev|proc|sys)($|/)",
                              "filesystem.ignore_filesystem_type_regex": "^(proc|sysfs)$"})
    families = {cmetrics.fqname(f["meta"]["opts"]): f for f in context["metrics"]}
    seconds = families["node_cpu_seconds_total"]
    assert seconds["meta"]["labels"] == ["cpu", "mode"]
    cpus = {s["labels"][0] for s in seconds["values"]}
    assert len(cpus) == os.cpu_count()
    assert {s["labels"][1] for s in seconds["values"]} == {
        "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"}
    assert families["node_memory_MemTotal_bytes"]["values"][0]["value"] > 0
    assert [s["labels"][0] for s in families["node_network_receive_bytes_total"]["values"]]
    assert families["node_uname_info"]["values"][0]["labels"][0] == "Linux"
    assert families["node_filesystem_size_bytes"]["values"]
    for name in ("node_load1", "node_context_switches_total", "node_boot_time_seconds"):
        assert families[name]["values"], name


@pytest.mark.e2e
def test_a_running_input_emits_a_metrics_chunk_per_interval(spawn, tmp_path):
    capture = Capture()
    log = tmp_path / "edgeship.log"
    spawn(["-i", "node_exporter_metrics", "-p", "scrape_interval=1",
           "-p", "path.procfs=%s" % os.path.join(FIXTURE, "proc"),
           "-p", "path.sysfs=%s" % os.path.join(FIXTURE, "sys"),
           "-p", "metrics=loadavg,nosuch,hwmon,loadavg", "-t", "ne",
           "-o", "forward", "-p", "port=%d" % capture.port, "-p", "match=*",
           "-f", "1", "-l", str(log)])
    wait_for(lambda: len(capture.frames) >= 2, timeout=30)
    tag, payload, options = capture.frames[0]
    assert tag == "ne" and options["fluent_signal"] == 1
    (context,) = cmetrics.decode(payload)
    assert [cmetrics.fqname(f["meta"]["opts"]) for f in context["metrics"]] == \
        ["node_load1", "node_load5", "node_load15"]
    assert context["metrics"][0]["values"][0]["value"] == 0.25
    assert "collectors not in edgeship, skipped: hwmon" in log.read_text()
