"""podman_metrics input: a running edgeship reads Podman on the fake Pi (tests/fake_pi.py:
containers.json, the cgroup v2 or v1 tree, /proc/PID/net/dev) and serves what Fluent Bit 5.1.1
served for the same tree (the pages below, from the binary's prometheus_exporter, without its
own fluentbit_input_* families), but for the differences the plugin's docstring lists."""
import calendar
import json
import os
import time
import urllib.request

import pytest

from conftest import Printed, accepts_connections, free_port, run_edgeship, wait_for
from fake_pi import PODMAN, PODMAN_VALUES, FakePi, FakePodman
from edgeship.plugins.inputs import _cgroups
from edgeship.plugins.inputs.podman_metrics import containers, net_counters, scopes

WEB, BACKUP, SENSOR = (c[0] for c in PODMAN)
LABELS = {"WEB": 'id="%s",name="web",image="docker.io/library/nginx:1.25"' % WEB,
          "SENSOR": 'id="%s",name="sensor-reader",image="unknown"' % SENSOR}

_MEMORY = """\
# HELP container_memory_usage_bytes Container memory usage in bytes
# TYPE container_memory_usage_bytes counter
container_memory_usage_bytes{WEB} 52428800
container_memory_usage_bytes{SENSOR} 8388608
# HELP container_memory_max_usage_bytes Container max memory usage in bytes
# TYPE container_memory_max_usage_bytes counter
container_memory_max_usage_bytes{WEB} 73400320
container_memory_max_usage_bytes{SENSOR} 9437184
"""
_CPU = """\
# HELP container_cpu_user_seconds_total Container cpu usage in seconds in user mode
# TYPE container_cpu_user_seconds_total counter
container_cpu_user_seconds_total{WEB} 98765
container_cpu_user_seconds_total{SENSOR} 2
# HELP container_cpu_usage_seconds_total Container cpu usage in seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{WEB} 123456
container_cpu_usage_seconds_total{SENSOR} 4
"""
_DISK = """\
# HELP container_disk_read_bytes_total Container block I/O bytes read
# TYPE container_disk_read_bytes_total counter
container_disk_read_bytes_total{WEB} 1052672
container_disk_read_bytes_total{SENSOR} 0
# HELP container_disk_write_bytes_total Container block I/O bytes written
# TYPE container_disk_write_bytes_total counter
container_disk_write_bytes_total{WEB} 532480
container_disk_write_bytes_total{SENSOR} 0
# HELP container_disk_reads_total Container block I/O reads completed
# TYPE container_disk_reads_total counter
container_disk_reads_total{WEB} 302
container_disk_reads_total{SENSOR} 0
# HELP container_disk_writes_total Container block I/O writes completed
# TYPE container_disk_writes_total counter
container_disk_writes_total{WEB} 123
container_disk_writes_total{SENSOR} 0
"""
_NETWORK = """\
# HELP container_network_receive_bytes_total Network received bytes
# TYPE container_network_receive_bytes_total counter
container_network_receive_bytes_total{WEB,interface="eth0"} 1234567
container_network_receive_bytes_total{SENSOR,interface="eth0"} 42
# HELP container_network_receive_errors_total Network received errors
# TYPE container_network_receive_errors_total counter
container_network_receive_errors_total{WEB,interface="eth0"} 2
container_network_receive_errors_total{SENSOR,interface="eth0"} 0
# HELP container_network_transmit_bytes_total Network transmited bytes
# TYPE container_network_transmit_bytes_total counter
container_network_transmit_bytes_total{WEB,interface="eth0"} 617284
container_network_transmit_bytes_total{SENSOR,interface="eth0"} 22
# HELP container_network_transmit_errors_total Network transmitedd errors
# TYPE container_network_transmit_errors_total counter
container_network_transmit_errors_total{WEB,interface="eth0"} 3
container_network_transmit_errors_total{SENSOR,interface="eth0"} 1
"""
_RSS = """\
# HELP container_memory_rss Container RSS in bytes
# TYPE container_memory_rss gauge
container_memory_rss{WEB} 31457280
container_memory_rss{SENSOR} 4194304
"""
# web's memory.max is "max": no limit series for it (its family comes when sensor's is set).
FLUENT_BIT_V2 = _MEMORY + _CPU + _DISK + _NETWORK + """\
# HELP container_spec_memory_limit_bytes Container memory limit in bytes
# TYPE container_spec_memory_limit_bytes counter
container_spec_memory_limit_bytes{SENSOR} 268435456
"""
FLUENT_BIT_V1 = _MEMORY + """\
# HELP container_spec_memory_limit_bytes Container memory limit in bytes
# TYPE container_spec_memory_limit_bytes counter
container_spec_memory_limit_bytes{WEB} 9.2233720368547717e+18
container_spec_memory_limit_bytes{SENSOR} 268435456
""" + _CPU + _NETWORK + _RSS


def _page_text(template):
    for key, labels in LABELS.items():
        template = template.replace("{%s}" % key, "{%s}" % labels).replace(
            "{%s," % key, "{%s," % labels)
    return template


def _start(spawn, tmp_path, fake, *options, interval="0.3"):
    """edgeship reading ``fake`` every ``interval`` s into stdout and a prometheus_exporter:
    (Printed stdout, exporter port, log path)."""
    exporter = free_port()
    log = tmp_path / "edgeship.log"
    args = ["-i", "podman_metrics", "-p", "scrape_interval=%s" % interval,
            "-p", "path.config=%s" % fake.config, "-p", "path.sysfs=%s" % fake.cgroup,
            "-p", "path.procfs=%s" % fake.pi.procfs, "-t", "podman"]
    for option in options:
        args += ["-p", option]
    args += ["-o", "stdout", "-m", "*", "-o", "prometheus_exporter", "-p", "host=127.0.0.1",
             "-p", "port=%d" % exporter, "-m", "*", "-f", "0.2", "-l", str(log)]
    printed = Printed(spawn(args))
    wait_for(lambda: accepts_connections(exporter))
    return printed, exporter, log


def _page(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as answer:
        return answer.read().decode()


def _collections(printed):
    """{series: value} of each collection the stdout output printed whole, in order (every
    series of one collection carries its time; the last one may not be whole yet)."""
    found = {}
    for line in printed.lines():
        stamp, sep, rest = line.partition(" ")
        if sep and " = " in rest and stamp[:2] == "20":
            series, _, value = rest.rpartition(" = ")
            found.setdefault(stamp, {})[series] = float(value)
    return list(found.values())[:-1]


def _stamps(printed):
    return {line.split(" ", 1)[0] for line in printed.lines() if " = " in line}


def _series_of(collection, cid):
    return [s for s in collection if 'id="%s"' % cid in s]


# ---------------------------------------------------------------------------- the binary's pages
@pytest.mark.e2e
def test_cgroup_v2_page_is_fluent_bits_but_cpu_seconds_and_rss(spawn, tmp_path):
    fake = FakePodman(FakePi(tmp_path / "pi"), cgroup_version=2)
    printed, exporter, log = _start(spawn, tmp_path, fake)
    wait_for(lambda: len(_collections(printed)) >= 3)
    page = _page(exporter)
    # The differences: v2's cpu.stat counts microseconds (Fluent Bit divides them by 10^9),
    # and v2's rss is memory.stat's anon (Fluent Bit looks for an rss key v2 does not have).
    expected = FLUENT_BIT_V2.replace("{WEB} 98765\n", "{WEB} 98765432\n").replace(
        "{SENSOR} 2\n", "{SENSOR} 2999\n").replace("{WEB} 123456\n", "{WEB} 123456789\n").replace(
        "{SENSOR} 4\n", "{SENSOR} 4000\n") + _RSS
    assert page == _page_text(expected)
    web = PODMAN_VALUES[WEB]
    assert web["cpu"] // 10 ** 6 == 123456789 and web["cpu"] // 10 ** 9 == 123456
    # Once each, however many collections: the missing image name. "max" is no problem.
    wait_for(lambda: log.read_text().count("Using config file %s" % fake.config) == 1
             and "Detected cgroups v2" in log.read_text())
    text = log.read_text()
    assert text.count("Image name was not found for %s" % SENSOR) == 1, text
    assert "memory.max" not in text and "backup" not in text


@pytest.mark.e2e
def test_cgroup_v1_page_is_fluent_bits_scraped_at_start(spawn, tmp_path):
    fake = FakePodman(FakePi(tmp_path / "pi"), cgroup_version=1)
    # 60 s between collections: the page comes from the scrape at start.
    _printed, exporter, log = _start(spawn, tmp_path, fake, "scrape_on_start=on", interval="60")
    page = wait_for(lambda: "container_" in _page(exporter) and _page(exporter))
    assert page == _page_text(FLUENT_BIT_V1)
    assert "Detected cgroups v1" in log.read_text()


# ---------------------------------------------------------------------------- containers change
@pytest.mark.e2e
def test_containers_stopping_and_starting_between_collections(spawn, tmp_path):
    fake = FakePodman(FakePi(tmp_path / "pi"), cgroup_version=2)
    printed, exporter, _log = _start(spawn, tmp_path, fake)
    first = wait_for(lambda: _collections(printed))[0]
    assert _series_of(first, WEB) and _series_of(first, SENSOR)
    assert not _series_of(first, BACKUP)                 # listed, stopped: no cgroup
    # web stops, then sensor's memory moves: a collection with the new value started after
    # web's cgroup was gone, so web is not in it (Fluent Bit would still send its last values).
    fake.stop(WEB)
    fake.values[SENSOR]["memory"] = 8392704
    fake.write()
    moved = 'container_memory_usage_bytes{%s}' % LABELS["SENSOR"]
    after = wait_for(lambda: [c for c in _collections(printed) if c.get(moved) == 8392704])
    assert not _series_of(after[0], WEB)
    assert len(_series_of(after[0], SENSOR)) == 14
    # backup starts: its series come, web's stay away from the page too.
    fake.start(BACKUP)
    backup = 'container_memory_usage_bytes{id="%s",name="backup",' \
             'image="docker.io/library/alpine:3.19"}' % BACKUP
    page = wait_for(lambda: backup in _page(exporter) and _page(exporter))
    assert "%s 1048576\n" % backup in page
    assert WEB not in page and moved + " 8392704\n" in page


@pytest.mark.e2e
def test_malformed_containers_json_is_logged_each_collection_and_emits_nothing(spawn,
                                                                             tmp_path):
    fake = FakePodman(FakePi(tmp_path / "pi"), cgroup_version=2)
    good = open(fake.config).read()
    with open(fake.config, "w") as f:
        f.write(good[:len(good) // 2])                   # cut while podman wrote it
    printed, _exporter, log = _start(spawn, tmp_path, fake)
    wait_for(lambda: log.read_text().count("is not JSON") >= 2)
    for text in ('{"containers": []}', ""):                # not an array; empty
        with open(fake.config, "w") as f:
            f.write(text)
        wait_for(lambda: "expected an array" in log.read_text() if text
                 else "cannot read %s: empty file" % fake.config in log.read_text())
    fixed = time.time_ns()
    with open(fake.config + ".new", "w") as f:
        f.write(good)
    os.replace(fake.config + ".new", fake.config)
    stamps = wait_for(lambda: _stamps(printed))
    # Nothing was emitted while containers.json was not right, and the input went on.
    assert all(_nanoseconds(stamp) > fixed for stamp in stamps)
    assert printed.child.proc.poll() is None


def _nanoseconds(stamp):
    """The stdout output's 2026-11-24T19:47:09.108881994Z as Unix nanoseconds."""
    whole, fraction = stamp.rstrip("Z").split(".")
    seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return seconds * 10 ** 9 + int(fraction.ljust(9, "0"))


# ---------------------------------------------------------------------------- the readers
def test_containers_json_entries():
    listed = containers([
        {"id": "a", "names": ["one", "two"], "metadata": '{"image-name":"img:1"}'},
        {"id": "b", "names": ["nometa"]},                                   # not a container
        {"names": ["noid"], "metadata": "{}"},                              # skipped
        {"id": "c", "names": [], "metadata": '{"image-id":"x"}'},
        {"id": "d", "names": ["n"], "metadata": "not json"},
        {"id": "e", "names": ["n"], "metadata": {"image-name": "object"}},
        "junk"])
    assert listed == [("a", "two", "img:1"), ("c", "", None), ("d", "n", None),
                      ("e", "n", None)]


def test_cgroup_folders_are_walked_as_fluent_bit_walks_them(tmp_path):
    root = tmp_path / "cgroup"
    for folder in ("machine.slice/libpod-aaa.scope/container", "machine.slice/libpod-conmon-aaa"
                   ".scope", "libpod_parent/libpod-bbb", "user.slice/libpod-ccc.scope",
                   "system.slice/ssh.service"):
        (root / folder).mkdir(parents=True)
    os.symlink(root / "machine.slice", root / "libpod-link")          # not followed
    found = scopes(str(root))
    assert sorted(rel for rel, _full in found) == [
        "/libpod_parent/libpod-bbb", "/machine.slice/libpod-aaa.scope",
        "/user.slice/libpod-ccc.scope"]
    assert all(full == str(root) + rel for rel, full in found)
    with pytest.raises(OSError):
        scopes(str(tmp_path / "missing"))


def test_net_dev_as_fluent_bit_reads_it():
    head = "Inter-|   Receive   |  Transmit\n face |bytes packets|bytes packets\n"
    rows = ["    lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16",
            "  eth0: 100 7 2 0 0 0 0 0 50 5 3 0 0 0 0 0",
            "veth12: 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",
            "wlan0: 9 9"]
    assert net_counters(head + "\n".join(rows) + "\n") == [
        ("eth0", [100, 2, 50, 3]), ("wlan0", [9, None, None, None])]
    assert net_counters(head) == []


def test_cgroup_file_numbers():
    assert _cgroups.first_number("52428800\n") == 52428800
    assert _cgroups.first_number("max\n") is None and _cgroups.first_number("") is None
    assert _cgroups.first_number("4242\n4243\n") == 4242
    assert _cgroups.keyed_number("usage_usec 10\nuser_usec 7\n", "user_usec") == 7
    assert _cgroups.keyed_number("total_rss 1\n", "rss") is None
    assert _cgroups.io_totals("8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=9 dios=9\n"
                              "179:0 rbytes=10 wbytes=20 rios=30 wios=40\n") == (11, 22, 33, 44)
    assert _cgroups.io_totals("") == (0, 0, 0, 0)


def test_help_lists_the_options():
    proc = run_edgeship(["-i", "podman_metrics", "-h"])
    assert proc.returncode == 0, proc.stderr
    for option in ("scrape_interval", "scrape_on_start", "path.config", "path.sysfs",
                   "path.procfs"):
        assert option in proc.stdout


def test_fake_containers_json_is_podmans_shape(tmp_path):
    fake = FakePodman(FakePi(tmp_path / "pi"), cgroup_version=2)
    entries = json.load(open(fake.config))
    assert [e["names"] for e in entries] == [["web"], ["backup"], ["sensor-reader"]]
    assert json.loads(entries[0]["metadata"])["image-name"] == "docker.io/library/nginx:1.25"
