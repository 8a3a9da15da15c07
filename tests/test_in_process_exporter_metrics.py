"""process_exporter_metrics: the exporter text Fluent Bit 5.1.1 served for the fake Raspberry
Pi tree (tests/fake_pi.py; tests/data/process_exporter), this machine's /proc, and a running
edgeship whose metrics chunks follow processes that end."""
import io
import os
import re
import time

import pytest

from conftest import wait_for
from fake_pi import FakePi, PROCESS_PID, ZOMBIE_PID
from forward_capture import Capture
from edgeship.codecs import cmetrics
from edgeship.core.errors import ConfigError
from edgeship.engine.loader import Loader
from edgeship.plugins.inputs import process_exporter_metrics as pe

DATA = os.path.join(os.path.dirname(__file__), "data", "process_exporter")


def fluent_bits_text(differences=True):
    """What Fluent Bit served for the fake tree; with ``differences``, as edgeship serves
    it: the zombie keeps its whole name "(sd-pam)", and a thread's context switches are
    labelled with its process's name (README: where edgeship differs)."""
    with open(os.path.join(DATA, "fake_pi.prom")) as f:
        text = f.read()
    if differences:
        text = text.replace('name="(sd-pam"', 'name="(sd-pam)"')
        text = text.replace('process_thread_context_switches_total{name="sensor-io"',
                            'process_thread_context_switches_total{name="sensor-daemon"')
    return text


def exporter(tmp_path, procfs, *lines):
    """The input built by the real loader from a config; its log is ``plugin.log.stream``."""
    body = "".join("    %s\n" % line for line in ("path.procfs %s" % procfs,) + lines)
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[SERVICE]\n    Log_Level info\n[INPUT]\n    Name process_exporter_metrics\n"
                    + body + "[OUTPUT]\n    Name null\n    Match *\n")
    loader = Loader(environ=dict(os.environ), log_stream=io.StringIO())
    return loader.build(loader.read(str(conf))).inputs[0]


def served(plugin, passes=1):
    """The exporter text after ``passes`` passes (the one at start, then each tick)."""
    for _ in range(passes):
        plugin.update(time.time_ns())
    payload = plugin.metrics.encode()
    return cmetrics.render_prometheus(cmetrics.decode(payload)) if payload else ""


def families(text):
    """{family: [series line]} of an exporter text."""
    found = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            found.setdefault(line.split("{", 1)[0], []).append(line)
    return found


@pytest.fixture
def pi(tmp_path):
    return FakePi(tmp_path / "pi")


def test_the_fake_pi_gives_fluent_bits_exporter_text(tmp_path, pi):
    plugin = exporter(tmp_path, pi.procfs)
    assert served(plugin, passes=2) == fluent_bits_text()


def test_metrics_entries_are_taken_by_their_start_as_fluent_bit_does(tmp_path, pi):
    assert pe.selected(["cpu", "bogus", "thread_wchanx", "Thread", "fdx", "start_time",
                        "START_TIM", "start_ti"]) == (
        {"cpu", "thread_wchan", "thread", "fd", "start_time"}, ["bogus", "start_ti"])
    plugin = exporter(tmp_path, pi.procfs, "metrics state, bogus ,IO")
    text = served(plugin)
    assert sorted(families(text)) == ["process_read_bytes_total", "process_states",
                                      "process_write_bytes_total"]
    log = plugin.log.stream.getvalue()
    assert "[ warn] [process_exporter_metrics.0] Unknown metrics: bogus" in log
    assert "Unknown metrics: IO" not in log


def test_include_and_exclude_patterns_search_the_name(tmp_path, pi):
    text = served(exporter(tmp_path, pi.procfs, "metrics state",
                           "process_include_pattern sensor|pam",
                           "process_exclude_pattern ^sensor"))
    assert {re.search(r'pid="(\d+)"', line).group(1)
            for line in families(text)["process_states"]} == {str(ZOMBIE_PID)}
    with pytest.raises(ConfigError, match="process_exclude_pattern"):
        exporter(tmp_path, pi.procfs, "process_exclude_pattern (")


def test_a_process_that_ends_leaves_the_next_pass(tmp_path, pi):
    plugin = exporter(tmp_path, pi.procfs)
    before = families(served(plugin))
    pi.end_process(PROCESS_PID)                 # its thread goes with it
    after = families(served(plugin))
    assert "process_thread_cpu_seconds_total" not in after
    for name, lines in before.items():
        kept = [line for line in lines if "sensor" not in line]    # its name, its thread
        assert after.get(name, []) == kept, name


def test_counters_follow_the_process_and_a_thread_that_ends(tmp_path, pi):
    plugin = exporter(tmp_path, pi.procfs, "metrics cpu,thread")
    served(plugin)
    pi.process["utime"] += 250                  # 300 -> 550 ticks: 5 whole seconds
    pi.write()
    os.remove(os.path.join(pi.procfs, str(PROCESS_PID), "task", "1240", "stat"))
    found = families(served(plugin))
    assert 'mode="user"} 5' in found["process_cpu_seconds_total"][0]
    assert "process_thread_cpu_seconds_total" not in found
    assert found["process_num_threads"][0].endswith(" 2")
    # A counter that went down (the PID taken by a new process) takes its new value.
    pi.process["utime"] = 100
    pi.write()
    assert 'mode="user"} 1' in families(served(plugin))["process_cpu_seconds_total"][0]


def test_numbers_are_read_as_fluent_bits_strtoll(tmp_path):
    assert pe.u64("123") == 123
    assert pe.u64(" 42 kB") == 42
    assert pe.u64("-1") == 2 ** 64 - 1
    assert pe.u64("x") is None
    assert pe.u64("9223372036854775808") is None


def test_a_procfs_that_cannot_be_listed_is_logged_once(tmp_path):
    plugin = exporter(tmp_path, str(tmp_path / "missing"))
    assert served(plugin, passes=3) == ""
    assert plugin.log.stream.getvalue().count("cannot list the processes of") == 1
    (tmp_path / "missing").mkdir()
    served(plugin)
    assert "can be listed again" in plugin.log.stream.getvalue()


def test_this_machines_proc_has_fluent_bits_families_and_labels(tmp_path):
    text = served(exporter(tmp_path, "/proc"))
    expected = {}
    for line in fluent_bits_text(differences=False).splitlines():
        if line.startswith("#"):
            continue
        name, labels = line.split("{", 1)
        expected[name] = re.findall(r'(\w+)="', labels)
    found = families(text)
    assert set(found) <= set(expected)
    for name, lines in found.items():
        for line in lines:
            assert re.findall(r'(\w+)="', line.split("{", 1)[1]) == expected[name], line
    me = [line for line in found["process_states"] if 'pid="%d"' % os.getpid() in line]
    assert len(me) == 6 and 'ppid="%d"' % os.getppid() in me[0]
    assert any(line.endswith(" 1") for line in me)
    mine = [line for line in found["process_open_filedesc"] if 'pid="%d"' % os.getpid() in line]
    assert len(mine) == 1


@pytest.mark.e2e
def test_a_running_input_emits_a_chunk_per_interval_and_drops_ended_processes(spawn,
                                                                             tmp_path, pi):
    capture = Capture()
    spawn(["-i", "process_exporter_metrics", "-p", "scrape_interval=1",
           "-p", "path.procfs=%s" % pi.procfs, "-t", "pe",
           "-o", "forward", "-p", "port=%d" % capture.port, "-p", "match=*", "-f", "1"])
    wait_for(lambda: capture.frames, timeout=30)
    tag, payload, options = capture.frames[0]
    assert tag == "pe" and options["fluent_signal"] == 1
    assert cmetrics.render_prometheus(cmetrics.decode(payload)) == fluent_bits_text()
    pi.end_process(ZOMBIE_PID)
    seen = len(capture.frames)

    def zombie_gone():
        for _, payload, _ in capture.frames[seen:]:
            text = cmetrics.render_prometheus(cmetrics.decode(payload))
            if 'pid="%d"' % ZOMBIE_PID not in text:
                return text
        return None

    text = wait_for(zombie_gone, timeout=30)
    assert 'pid="%d"' % PROCESS_PID in text
