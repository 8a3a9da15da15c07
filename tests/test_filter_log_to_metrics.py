"""log_to_metrics filter: a real edgeship child; the metrics printed by the stdout output are
the lines Fluent Bit 5.1.1 printed for the same config and records (checked on the real
binary, timestamps aside)."""
import pytest

from conftest import Printed, run_edgeship, wait_for
from edgeship.plugins.filters.log_to_metrics import label_text

pytestmark = pytest.mark.e2e

RECORD = '{"log":"abc","level":"info","n":3.5,"s":"7.25x","k":{"pod":"p1"}}'


def config(tmp_path, filters, samples=3, record=RECORD, outputs=None):
    text = ("[SERVICE]\n    Flush 0.2\n    Grace 2\n    Log_File %s\n"
            "[INPUT]\n    Name dummy\n    Dummy %s\n    Samples %d\n    Rate 20\n    Tag app\n"
            % (tmp_path / "log", record, samples))
    for keys in filters:
        text += "[FILTER]\n    Name log_to_metrics\n    Match app\n"
        text += "".join("    %s %s\n" % pair for pair in keys)
    text += outputs or ("[OUTPUT]\n    Name stdout\n    Match metric.*\n"
                        "[OUTPUT]\n    Name stdout\n    Match app\n    Format json_lines\n")
    path = tmp_path / "fluent-bit.conf"
    path.write_text(text)
    return path


COUNTER = [("Tag", "metric.a"), ("metric_mode", "counter"), ("metric_name", "count_plain"),
           ("metric_description", "plain fields"), ("regex", "log ^a"),
           ("label_field", "level"), ("add_label", "pod $k['pod']")]
GAUGE = [("Tag", "metric.b"), ("metric_mode", "gauge"), ("metric_name", "g"),
         ("metric_description", "dollar fields"), ("value_field", "$s"), ("regex", "$log ^a"),
         ("label_field", "$level"), ("add_label", "num $n")]
HISTOGRAM = [("Tag", "metric.c"), ("metric_mode", "histogram"), ("metric_name", "h"),
             ("metric_description", "hist"), ("value_field", "n"), ("bucket", "5"),
             ("bucket", "1")]


def test_counter_gauge_and_histogram_as_fluent_bit_prints_them(spawn, tmp_path):
    child = spawn(["-c", str(config(tmp_path, [COUNTER, GAUGE, HISTOGRAM]))])
    printed = Printed(child)
    wait_for(lambda: "count=3 }" in "\n".join(printed.metrics())
             and len(printed.records()) == 3)
    metrics = printed.metrics()
    assert metrics[-1] == "log_metric_histogram_h = { buckets = { 1=0, 5=3, +Inf=3 }, sum=10.5, count=3 }"
    assert 'log_metric_counter_count_plain{level="info",pod="p1"} = 3' in metrics
    assert 'log_metric_gauge_g{$level="info",num="3.500000"} = 7.25' in metrics
    # The records pass on unchanged.
    assert all('"log":"abc","level":"info","n":3.5' in line for line in printed.records())


def test_rules_choose_the_records_counted_and_discard_logs_drops_them_all(spawn, tmp_path):
    counted = [("Tag", "metric.x"), ("metric_description", "d"), ("regex", "log ^x"),
               ("Discard_Logs", "on")]
    unmatched = [("Tag", "metric.y"), ("metric_description", "d"), ("metric_name", "y"),
                 ("exclude", "level info")]
    path = config(tmp_path, [unmatched, counted], samples=4,
                  record='{"log":"xyz","level":"info"}')
    child = spawn(["-c", str(path)])
    printed = Printed(child)
    wait_for(lambda: any(line.endswith("= 4") for line in printed.metrics()))
    before = printed.lines()
    code, out, _ = child.terminate()
    assert code == 0
    lines = before + out.splitlines()
    assert not any(line.startswith("{") for line in lines)       # discarded
    assert not any("log_metric_counter_y" in line for line in lines)  # excluded: no series


def test_an_interval_emits_what_changed_and_the_last_change_at_shutdown(spawn, tmp_path):
    keys = [("Tag", "metric.i"), ("metric_description", "d"), ("Flush_Interval_Sec", "60")]
    child = spawn(["-c", str(config(tmp_path, [keys], samples=2))])
    printed = Printed(child)
    wait_for(lambda: len(printed.records()) == 2)
    assert printed.metrics() == []          # the minute has not passed
    code, out, _ = child.terminate()
    assert code == 0
    assert [line.split(" ", 1)[1] for line in out.splitlines() if " = " in line] == [
        "log_metric_counter_a = 2"]


def test_values_that_are_missing_or_not_numbers_are_logged_once_per_batch(spawn, tmp_path):
    keys = [("Tag", "metric.v"), ("metric_mode", "gauge"), ("metric_description", "d"),
            ("value_field", "$v")]
    path = config(tmp_path, [keys], samples=2, record='{"v":{"a":1}}')
    spawn(["-c", str(path)])
    log = tmp_path / "log"
    wait_for(lambda: log.exists() and "cannot convert given value to metric" in log.read_text())
    keys[3] = ("value_field", "$missing")
    other = tmp_path / "other"
    other.mkdir()
    spawn(["-c", str(config(other, [keys], samples=2))])
    wait_for(lambda: (other / "log").exists()
             and "given value field is empty or not existent" in (other / "log").read_text())


@pytest.mark.parametrize("keys, message", [
    ([("metric_description", "d")], "Metric tag is not set"),
    ([("Tag", "t")], "metric_description is not set"),
    ([("Tag", "t"), ("metric_description", "d"), ("metric_mode", "summary")],
     "invalid 'mode' value"),
    ([("Tag", "t"), ("metric_description", "d"), ("metric_mode", "gauge")],
     "value_field is not set"),
    ([("Tag", "t"), ("metric_description", "d"), ("metric_mode", "histogram"),
      ("value_field", "v"), ("bucket", "1"), ("bucket", "big")],
     "Error during conversion of bucket 'big'"),
    ([("Tag", "t"), ("metric_description", "d"), ("add_label", "lonely")],
     "invalid label, expected name and key"),
])
def test_config_errors_name_the_file_and_line(tmp_path, keys, message):
    path = config(tmp_path, [keys])
    proc = run_edgeship(["--dry-run", "-c", str(path)])
    assert proc.returncode != 0
    assert message in proc.stderr and str(path) in proc.stderr


@pytest.mark.parametrize("value, text", [
    ("info", "info"), (3, "3"), (-2, "-2"), (3.5, "3.500000"), (True, ""), (None, ""),
    ({"a": 1}, ""), ("\u00e9" * 200, "\u00e9" * 125),
])
def test_label_text_is_what_fluent_bit_prints(value, text):
    assert label_text(value) == text
