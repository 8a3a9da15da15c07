"""fluentbit_metrics: edgeship's counters under Fluent Bit's internal metric names, emitted by a
running edgeship and relayed as Fluent Bit's metrics frames."""
import pytest

from conftest import wait_for
from forward_capture import Capture
from edgeship.codecs import cmetrics
from edgeship.core import VERSION


def _series(context):
    """{(family name, labels tuple): value} of a decoded context."""
    found = {}
    for family in context["metrics"]:
        name = cmetrics.fqname(family["meta"]["opts"])
        for series in family["values"]:
            found[(name, tuple(series.get("labels", ())))] = series.get("value")
    return found


@pytest.mark.e2e
def test_counters_of_a_running_pipeline(spawn, tmp_path):
    capture = Capture()
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(
        "[SERVICE]\n    Flush 0.2\n    Log_File %s\n"
        "[INPUT]\n    Name dummy\n    Alias my_dummy\n    Tag app\n    Rate 50\n"
        "[INPUT]\n    Name fluentbit_metrics\n    Tag internal\n    Scrape_Interval 0.5\n"
        "[FILTER]\n    Name grep\n    Match app\n    Exclude message nothing\n"
        "[OUTPUT]\n    Name null\n    Match app\n"
        "[OUTPUT]\n    Name forward\n    Match internal\n    Port %d\n"
        % (tmp_path / "edgeship.log", capture.port))
    spawn(["-c", str(conf)])

    def later_scrape():
        for tag, payload, options in capture.frames[1:]:
            series = _series(cmetrics.decode(payload)[0])
            if series.get(("fluentbit_output_proc_records_total", ("null.0",))):
                return tag, options, series
        return None
    tag, options, series = wait_for(later_scrape, timeout=30)
    assert tag == "internal" and options["fluent_signal"] == 1
    assert series[("fluentbit_input_records_total", ("my_dummy",))] > 0
    assert series[("fluentbit_input_metrics_scrapes_total", ("fluentbit_metrics.1",))] >= 2
    assert series[("fluentbit_filter_drop_records_total", ("grep.0",))] == 0
    assert series[("fluentbit_output_errors_total", ("forward.1",))] == 0
    hostname = [labels for name, labels in series if name == "fluentbit_uptime"][0]
    assert len(hostname) == 1
    started = series[("fluentbit_process_start_time_seconds", hostname)]
    assert series[("fluentbit_build_info", hostname + (VERSION, "linux"))] == started
