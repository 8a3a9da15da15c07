"""Host-metric inputs (cpu, mem, disk, netif, thermal, proc, health, random, head, kmsg).

Exact values come from a fake Raspberry Pi 4 tree (tests/fake_pi.py, read through
EDGESHIP_PROCFS/EDGESHIP_SYSFS); shapes come from this machine's real /proc, through the
real edgeship process, compared with what Fluent Bit 5.1.1 printed (the vectors)."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import EDGESHIP, SHARED, free_port, run_edgeship, wait_for
from fake_pi import FakePi, PROCESS_FDS, PROCESS_NAME, PROCESS_PID, PROCESS_STATUS
from filter_helpers import load

VECTORS = os.path.join(SHARED, "reference", "vectors")


def vector(name):
    with open(os.path.join(VECTORS, name + ".json"), encoding="utf-8") as f:
        return json.load(f)


def vector_records(name):
    """The records Fluent Bit printed (json_lines, without the ``date`` key)."""
    records = []
    for line in vector(name)["printed_json_lines"]:
        record = json.loads(line)
        record.pop("date")
        records.append(record)
    return records


@pytest.fixture
def pi(tmp_path, monkeypatch):
    fake = FakePi(tmp_path / "pi")
    for key, value in fake.environ().items():
        monkeypatch.setenv(key, value)
    return fake


def plugin(tmp_path, name, *lines):
    body = "".join("    %s\n" % line for line in lines)
    return load(tmp_path, "[INPUT]\n    Name %s\n%s" % (name, body)).inputs[0]


def collect(input_plugin):
    return input_plugin.collect(time.time_ns())


# ---------------------------------------------------------------------------- cpu
def test_cpu_whole_machine_and_each_core_on_a_pi(tmp_path, pi):
    assert os.sysconf("SC_CLK_TCK") == 100      # USER_HZ, the same on a Pi
    cpu = plugin(tmp_path, "cpu")
    cpu.start()
    for core, (user, nice, system) in enumerate([(40, 10, 10), (50, 0, 0), (30, 0, 20),
                                                 (30, 0, 10)]):
        pi.cores[core][0] += user
        pi.cores[core][1] += nice
        pi.cores[core][2] += system
        pi.cores[core][3] += 100 - user - nice - system
    pi.write()
    record, = collect(cpu)
    assert list(record.items()) == [
        ("cpu_p", 50.0), ("user_p", 40.0), ("system_p", 10.0),
        ("cpu0.p_cpu", 60.0), ("cpu0.p_user", 50.0), ("cpu0.p_system", 10.0),
        ("cpu1.p_cpu", 50.0), ("cpu1.p_user", 50.0), ("cpu1.p_system", 0.0),
        ("cpu2.p_cpu", 50.0), ("cpu2.p_user", 30.0), ("cpu2.p_system", 20.0),
        ("cpu3.p_cpu", 40.0), ("cpu3.p_user", 30.0), ("cpu3.p_system", 10.0)]
    assert all(type(v) is float for v in record.values())
    # Nothing moved since: zeros, still doubles.
    record, = collect(cpu)
    assert set(record.values()) == {0.0} and all(type(v) is float for v in record.values())


def test_cpu_divides_by_the_configured_interval(tmp_path, pi):
    cpu = plugin(tmp_path, "cpu", "Interval_Sec 0", "Interval_NSec 500000000")
    cpu.start()
    pi.cores[0][0] += 50     # half a second of one core out of four
    pi.write()
    record, = collect(cpu)
    assert (record["cpu_p"], record["user_p"], record["cpu0.p_cpu"]) == (25.0, 25.0, 100.0)


def test_cpu_of_one_process(tmp_path, pi):
    cpu = plugin(tmp_path, "cpu", "PID %d" % PROCESS_PID)
    cpu.start()
    pi.process["utime"] += 80
    pi.process["stime"] += 20
    pi.write()
    assert collect(cpu) == [{"cpu_p": 25.0, "user_p": 20.0, "system_p": 5.0}]


def test_cpu_of_a_process_that_does_not_exist_is_refused_at_its_line(tmp_path, pi):
    conf = tmp_path / "f.conf"
    conf.write_text("[INPUT]\n    Name cpu\n    PID 999999\n[OUTPUT]\n    Name null\n"
                    "    Match *\n")
    proc = run_edgeship(["-c", str(conf), "--dry-run"], env=pi.environ())
    assert proc.returncode != 0
    assert "%s:3: key 'pid'" % conf in proc.stderr and "could not obtain CPU data" in proc.stderr


# ---------------------------------------------------------------------------- mem
def test_mem_of_a_pi_and_of_one_process(tmp_path, pi):
    assert list(collect(plugin(tmp_path, "mem"))[0].items()) == [
        ("Mem.total", 3884316), ("Mem.used", 3884316 - 2947616), ("Mem.free", 2947616),
        ("Swap.total", 102396), ("Swap.used", 10240), ("Swap.free", 92156)]
    record, = collect(plugin(tmp_path, "mem", "PID %d" % PROCESS_PID))
    rss = 2500 * os.sysconf("SC_PAGE_SIZE")
    assert list(record)[6:] == ["proc_bytes", "proc_hr"] and record["proc_bytes"] == rss
    if rss == 10240000:
        assert record["proc_hr"] == "9.77M"


def test_mem_human_sizes_as_fluent_bit_prints_them():
    from edgeship.plugins.inputs.mem import human_size
    assert [human_size(n) for n in (0, 1023, 1024, 14381056, 5 * 1024 ** 3)] == [
        "0 b", "1023 b", "1.00K", "13.71M", "5.00G"]


def test_mem_process_gone_is_warned_once_and_dropped(tmp_path, pi):
    mem = plugin(tmp_path, "mem", "PID 424242")
    record, = collect(mem)
    assert "proc_bytes" not in record and mem.pid == 0


# ---------------------------------------------------------------------------- disk
def test_disk_first_tick_is_silent_then_deltas_of_matching_devices(tmp_path, pi):
    disk = plugin(tmp_path, "disk", "Dev_Name mmcblk0")
    disk.start()
    pi.disks["mmcblk0"][0] += 1000      # before the first tick: never reported
    pi.write()
    assert collect(disk) == []
    for name, read, written in (("mmcblk0", 100, 24), ("mmcblk0p2", 100, 24),
                                ("ram0", 7, 7)):
        pi.disks[name][0] += read
        pi.disks[name][1] += written
    pi.write()
    # mmcblk0 "contains" matches the disk and its partitions, not ram0.
    assert collect(disk) == [{"read_size": 200 * 512, "write_size": 48 * 512}]
    everything = plugin(tmp_path, "disk")
    everything.start()
    collect(everything)
    pi.disks["ram0"][0] += 2
    pi.write()
    assert collect(everything) == [{"read_size": 1024, "write_size": 0}]


def test_disk_reset_counter_and_new_device_do_not_jump(tmp_path, pi):
    disk = plugin(tmp_path, "disk")
    disk.start()
    collect(disk)
    pi.disks["mmcblk0"] = [10, 10]      # removed and added again: counters restart
    pi.disks["mmcblk1"] = [50, 0]       # plugged in after the start
    pi.disk_numbers["mmcblk1"] = (179, 32)
    pi.write()
    assert collect(disk) == [{"read_size": 10 * 512, "write_size": 10 * 512}]


# ---------------------------------------------------------------------------- netif
def test_netif_eth0_exact_name_and_verbose_keys(tmp_path, pi):
    netif = plugin(tmp_path, "netif", "Interface eth0")
    netif.start()
    assert collect(netif) == []         # the first tick only reads
    pi.interfaces["eth0"] = [v + i for i, v in enumerate(pi.interfaces["eth0"])]
    pi.interfaces["eth0.100"] = [v + 1000 for v in pi.interfaces["eth0.100"]]
    pi.write()
    record, = collect(netif)
    assert list(record.items()) == [("eth0.rx.bytes", 0), ("eth0.rx.packets", 1),
                                    ("eth0.rx.errors", 2), ("eth0.tx.bytes", 8),
                                    ("eth0.tx.packets", 9), ("eth0.tx.errors", 10)]
    verbose = plugin(tmp_path, "netif", "Interface wlan0", "Verbose on")
    collect(verbose)
    pi.interfaces["wlan0"][0] += 1500
    pi.write()
    record, = collect(verbose)
    expected = [json.loads(line) for line in vector("in_netif_lo_verbose")["printed_json_lines"]]
    assert [k.replace("wlan0.", "lo.") for k in record] == [k for k in expected[0] if k != "date"]
    assert record["wlan0.rx.bytes"] == 1500 and sum(record.values()) == 1500


def test_netif_interface_absent_then_back(tmp_path, pi):
    netif = plugin(tmp_path, "netif", "Interface usb0")
    assert collect(netif) == [] and netif.absent
    pi.interfaces["usb0"] = [100] * 16
    pi.write()
    assert collect(netif) == []         # back: a fresh first reading, not a jump from 0
    pi.interfaces["usb0"][0] += 10
    pi.write()
    assert collect(netif)[0]["usb0.rx.bytes"] == 10


def test_netif_test_at_init_and_required_interface(tmp_path, pi):
    for body, key, line in (("    Interface nope0\n    Test_At_Init on\n", "test_at_init", 4),
                            ("", "interface", 1)):
        conf = tmp_path / "f.conf"
        conf.write_text("[INPUT]\n    Name netif\n%s[OUTPUT]\n    Name null\n    Match *\n"
                        % body)
        proc = run_edgeship(["-c", str(conf), "--dry-run"], env=pi.environ())
        assert proc.returncode != 0 and "f.conf:%d: key '%s'" % (line, key) in proc.stderr, \
            proc.stderr


# ---------------------------------------------------------------------------- thermal
def test_thermal_zone_of_a_pi(tmp_path, pi):
    assert collect(plugin(tmp_path, "thermal")) == [
        {"name": "thermal_zone0", "type": "cpu-thermal", "temp": 48.686}]
    pi.temp = 51234
    pi.write()
    assert collect(plugin(tmp_path, "thermal", "Type_Regex ^cpu"))[0]["temp"] == 51.234
    assert collect(plugin(tmp_path, "thermal", "Type_Regex gpu")) == []
    assert collect(plugin(tmp_path, "thermal", "Name_Regex zone[1-9]")) == []


def test_thermal_zones_in_number_order_and_hwmon_fallback(tmp_path, pi, monkeypatch):
    for n, kind in ((10, "ten"), (2, "two")):
        pi._file("sys/class/thermal/thermal_zone%d/type" % n, kind + "\n")
        pi._file("sys/class/thermal/thermal_zone%d/temp" % n, "-1500\n")
    assert [r["name"] for r in collect(plugin(tmp_path, "thermal"))] == [
        "thermal_zone0", "thermal_zone2", "thermal_zone10"]
    assert collect(plugin(tmp_path, "thermal", "Type_Regex two"))[0]["temp"] == -1.5
    bare = FakePi(tmp_path / "bare")
    import shutil
    shutil.rmtree(os.path.join(bare.sysfs, "class", "thermal"))
    bare._file("sys/class/hwmon/hwmon0/name", "rpi_volt\n")
    bare._file("sys/class/hwmon/hwmon1/name", "cpu_thermal\n")
    bare._file("sys/class/hwmon/hwmon1/temp1_input", "45277\n")
    monkeypatch.setenv("EDGESHIP_SYSFS", bare.sysfs)
    assert collect(plugin(tmp_path, "thermal")) == [
        {"name": "hwmon1_temp1_input", "type": "cpu_thermal", "temp": 45.277}]


def test_thermal_invalid_regex_is_a_config_error(tmp_path, pi):
    conf = tmp_path / "f.conf"
    conf.write_text("[INPUT]\n    Name thermal\n    Name_Regex (unclosed\n"
                    "[OUTPUT]\n    Name null\n    Match *\n")
    proc = run_edgeship(["-c", str(conf), "--dry-run"])
    assert proc.returncode != 0 and "f.conf:3: key 'name_regex'" in proc.stderr, proc.stderr


# ---------------------------------------------------------------------------- proc
def test_proc_alive_with_memory_and_fds(tmp_path, pi):
    record, = collect(plugin(tmp_path, "proc", "Proc_Name %s" % PROCESS_NAME))
    expected = [("alive", True), ("proc_name", PROCESS_NAME), ("pid", PROCESS_PID)]
    expected += [("mem.Vm" + k, PROCESS_STATUS["Vm" + k] * 1000)
                 for k in ("Peak", "Size", "Lck", "HWM", "RSS", "Data", "Stk", "Exe", "Lib",
                           "PTE", "Swap")]
    assert list(record.items()) == expected + [("fd", PROCESS_FDS)]
    assert [k for k, _ in shape(record)] == [k for k, _ in vector_shape("in_proc_alive")]
    assert collect(plugin(tmp_path, "proc", "Proc_Name %s" % PROCESS_NAME, "Mem off",
                          "Fd off")) == [{"alive": True, "proc_name": PROCESS_NAME,
                                          "pid": PROCESS_PID}]
    assert collect(plugin(tmp_path, "proc", "Proc_Name %s" % PROCESS_NAME, "Alert on")) == []


def test_proc_not_running_sends_zeros_not_garbage(tmp_path, pi):
    record, = collect(plugin(tmp_path, "proc", "Proc_Name no-such-proc-xyz", "Alert on"))
    fb = vector_records("in_proc_not_running")[0]
    assert list(record) == list(fb)
    assert (record["alive"], record["pid"], record["fd"]) == (False, -1, 0)
    assert all(record[k] == 0 for k in record if k.startswith("mem."))


def test_proc_real_process_shape(tmp_path):
    record, = collect(plugin(tmp_path, "proc", "Proc_Name %s"
                             % os.path.basename(sys.executable)))
    assert record["alive"] and shape(record) == vector_shape("in_proc_alive")


# ---------------------------------------------------------------------------- health
def test_health_against_a_listening_socket_and_a_closed_port(tmp_path):
    import asyncio
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    closed = free_port()

    def probe(*lines):
        health = plugin(tmp_path, "health", "Host 127.0.0.1", *lines)
        sent = []
        health.context.emit = lambda tag, events, *a: sent.extend(r for _, r in events)
        asyncio.run(health.tick())
        return sent

    try:
        assert probe("Port %d" % port, "Add_Host on", "Add_Port on") == \
            [{"alive": True, "hostname": "127.0.0.1", "port": port}]
        assert vector_records("in_health_port_up")[0].keys() == \
            probe("Port %d" % port, "Add_Host on", "Add_Port on")[0].keys()
        assert probe("Port %d" % port, "Alert on") == vector_records("in_health_alert_up")
        assert listener.accept()[0] is not None      # the probe really connected
    finally:
        listener.close()
    assert probe("Port %d" % closed) == vector_records("in_health_port_down")[:1]
    assert probe("Port %d" % closed, "Alert on", "Add_Port on") == [
        {"alive": False, "port": closed}]


@pytest.mark.e2e
def test_health_through_the_real_process(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        port = listener.getsockname()[1]
        up, = records_of(["-i", "health", "-p", "host=127.0.0.1", "-p", "port=%d" % port,
                          "-p", "interval_sec=0", "-p", "interval_nsec=200000000"], 1)
        assert shape(up) == vector_shape("in_health_port_down") and up["alive"] is True
    finally:
        listener.close()


# ---------------------------------------------------------------------------- random
def test_random_samples(tmp_path):
    rand = plugin(tmp_path, "random", "Samples 2")
    values = [collect(rand)[0]["rand_value"] for _ in range(2)]
    assert rand.done and all(0 <= v < 2 ** 64 for v in values) and values[0] != values[1]
    assert plugin(tmp_path, "random", "Samples 0").done
    assert not plugin(tmp_path, "random").done


@pytest.mark.e2e
def test_random_stops_after_its_samples(tmp_path):
    conf = tmp_path / "r.conf"
    conf.write_text("[SERVICE]\n    Flush 0.2\n[INPUT]\n    Name random\n    Samples 2\n"
                    "    Interval_Sec 0\n    Interval_NSec 100000000\n"
                    "[INPUT]\n    Name random\n    Tag beat\n    Interval_Sec 0\n"
                    "    Interval_NSec 100000000\n"
                    "[OUTPUT]\n    Name stdout\n    Match random.0\n    Format json_lines\n"
                    "[OUTPUT]\n    Name file\n    Match beat\n    Path %s\n" % tmp_path)
    proc = subprocess.Popen(EDGESHIP + ["-c", str(conf)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        # Positive signal first: the unlimited input made ten records meanwhile.
        wait_for(lambda: (tmp_path / "beat").exists()
                 and len((tmp_path / "beat").read_text().splitlines()) >= 10)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    records = [json.loads(line) for line in out.decode().splitlines()]
    assert [shape(r) for r in records] == [vector_shape("in_random_samples")] * 2


# ---------------------------------------------------------------------------- head
SAMPLE = "line one\nline two \u2713\n{\"not\":\"parsed\"}\nline four\n"


@pytest.mark.parametrize("lines, name", [
    ((), "in_head_default"),
    (("Lines 2",), "in_head_lines"),
    (("Buf_Size 12",), "in_head_buf_size"),
])
def test_head_records_equal_the_vectors(tmp_path, monkeypatch, lines, name):
    assert vector(name)["input_files"]["sample.txt"] == SAMPLE
    (tmp_path / "sample.txt").write_text(SAMPLE, encoding="utf-8")
    monkeypatch.chdir(tmp_path)     # File as written: relative to the current directory
    head = plugin(tmp_path, "head", "File sample.txt", *lines)
    assert collect(head) == vector_records(name)[:1]


def test_head_split_line_without_the_nul_defect(tmp_path, monkeypatch):
    (tmp_path / "sample.txt").write_text(SAMPLE, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    head = plugin(tmp_path, "head", "File sample.txt", "Lines 3", "Split_Line on",
                  "Add_Path on", "Key text")
    fb = vector_records("in_head_split_line")[0]
    assert collect(head) == [{k: v.rstrip("\0") for k, v in fb.items()}]
    five = plugin(tmp_path, "head", "File sample.txt", "Lines 6", "Split_Line on")
    record, = collect(five)
    assert list(record) == ["line%d" % n for n in range(6)]
    assert (record["line3"], record["line4"], record["line5"]) == ("line four", "", "")
    default, = collect(plugin(tmp_path, "head", "File sample.txt", "Split_Line on"))
    assert len(default) == 10


def test_head_reads_the_file_again_each_time_and_survives_its_absence(tmp_path):
    path = tmp_path / "state"
    head = plugin(tmp_path, "head", "File %s" % path, "Add_Path on")
    assert collect(head) == [] and head.failed
    path.write_text("on\n")
    assert collect(head) == [{"head": "on\n", "path": str(path)}]
    path.write_text("off\n")
    assert collect(head) == [{"head": "off\n", "path": str(path)}]


# ---------------------------------------------------------------------------- kmsg
KMSG = ("5,0,0,-;Linux version 6.1.21-v8+ (dom@buildbot) #1642 SMP PREEMPT\n"
        "6,1,0,-;Machine model: Raspberry Pi 4 Model B Rev 1.4\n"
        "3,2,1500000,-;mmc0: error -110 whilst initialising SD card\n"
        " SUBSYSTEM=mmc\n"
        " DEVICE=+mmc:mmc0\n"
        "7,3,2750001,-;debug noise\n"
        "30,4,3000000,c;systemd[1]: Started Journal Service.\n"
        "garbage line\n")


def test_kmsg_from_a_fake_kmsg_file(tmp_path, pi, monkeypatch):
    import asyncio
    kmsg = tmp_path / "kmsg"
    kmsg.write_text(KMSG)
    monkeypatch.setenv("EDGESHIP_KMSG", str(kmsg))
    reader = plugin(tmp_path, "kmsg", "Prio_Level 6")
    sent = []
    reader.context.emit = lambda tag, events, *a: sent.extend(events)

    async def read_until_three():
        task = asyncio.ensure_future(reader.run())
        while len(sent) < 4 and not task.done():
            await asyncio.sleep(0.01)
        reader.stop()
        await task

    asyncio.run(read_until_three())
    assert [r for _, r in sent] == [
        {"priority": 5, "sequence": 0, "sec": 0, "usec": 0,
         "msg": "Linux version 6.1.21-v8+ (dom@buildbot) #1642 SMP PREEMPT"},
        {"priority": 6, "sequence": 1, "sec": 0, "usec": 0,
         "msg": "Machine model: Raspberry Pi 4 Model B Rev 1.4"},
        {"priority": 3, "sequence": 2, "sec": 1, "usec": 500000,
         "msg": "mmc0: error -110 whilst initialising SD card"},
        # facility 3 (daemon) << 3 | level 6: priority is the level
        {"priority": 6, "sequence": 4, "sec": 3, "usec": 0,
         "msg": "systemd[1]: Started Journal Service."}]
    assert [shape(r) for _, r in sent][0] == vector_shape("in_kmsg")
    boot = reader.boot_sec
    assert abs(boot - (time.time() - 12345.67)) < 5
    assert [t for t, _ in sent] == [boot * 10 ** 9, boot * 10 ** 9,
                                    (boot + 1) * 10 ** 9 + 500000000, (boot + 3) * 10 ** 9]
    assert reader.malformed == 1 and reader.fd == -1


def test_kmsg_that_cannot_be_opened_is_a_clear_error(tmp_path, pi):
    conf = tmp_path / "k.conf"
    conf.write_text("[INPUT]\n    Name kmsg\n[OUTPUT]\n    Name null\n    Match *\n")
    env = dict(pi.environ(), EDGESHIP_KMSG=str(tmp_path / "missing"))
    proc = run_edgeship(["-c", str(conf)], env=env)
    assert proc.returncode != 0
    assert "k.conf:1: kmsg: cannot open %s: No such file or directory" % (
        tmp_path / "missing") in proc.stderr, proc.stderr


@pytest.mark.e2e
def test_kmsg_real_device_shape():
    try:
        os.close(os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK))
    except OSError as exc:
        pytest.skip("/dev/kmsg is not readable here (%s): the fake file test covers the "
                    "parsing; this one needs root or CAP_SYSLOG" % exc.strerror)
    first, = records_of(["-i", "kmsg"], 1)
    assert shape(first) == vector_shape("in_kmsg") and first["sequence"] == 0


# ------------------------------------------------------------- the real process, real /proc
def records_of(args, count, env=None, timeout=30):
    """The first ``count`` records edgeship prints (json_lines) for ``args``, with their
    ``date``; edgeship is then killed."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.Popen(EDGESHIP + list(args) + ["-o", "stdout", "-p", "format=json_lines",
                                                     "-f", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env)
    records = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < count and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            records.append(json.loads(line))
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert len(records) == count, err.decode()
    return records


def shape(record):
    return [(k, type(v).__name__) for k, v in record.items() if k != "date"]


def vector_shape(name):
    """(key, Python type) of what Fluent Bit printed; its JSON prints a double with a
    fraction, or as ``1.0``, so the types are exact."""
    return shape(vector_records(name)[0])


def test_real_proc_shapes_match_fluent_bit(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGESHIP_PROCFS", raising=False)
    monkeypatch.delenv("EDGESHIP_SYSFS", raising=False)
    cores = os.sysconf("SC_NPROCESSORS_ONLN")
    cpu = plugin(tmp_path, "cpu")
    cpu.start()
    record, = collect(cpu)
    assert shape(record) == [(k, "float") for k in ["cpu_p", "user_p", "system_p"] + [
        "cpu%d.%s" % (n, k) for n in range(cores) for k in ("p_cpu", "p_user", "p_system")]]
    assert vector_shape("in_cpu_system") == shape(record)[:len(vector_shape("in_cpu_system"))]
    pid_cpu = plugin(tmp_path, "cpu", "PID %d" % os.getpid())
    pid_cpu.start()
    assert shape(collect(pid_cpu)[0]) == vector_shape("in_cpu_pid")

    mem, = collect(plugin(tmp_path, "mem"))
    assert shape(mem) == vector_shape("in_mem_system")
    assert mem["Mem.total"] == mem["Mem.used"] + mem["Mem.free"] > 0
    mem, = collect(plugin(tmp_path, "mem", "PID %d" % os.getpid()))
    # proc_hr: the string Fluent Bit meant, not the pointer it packs (an int).
    assert shape(mem) == vector_shape("in_mem_pid")[:7] + [("proc_hr", "str")]

    for name, lines, vector_name in (("disk", (), "in_disk"),
                                     ("netif", ("Interface lo",), "in_netif_lo"),
                                     ("netif", ("Interface lo", "Verbose on"),
                                      "in_netif_lo_verbose")):
        metric = plugin(tmp_path, name, *lines)
        metric.start()
        assert collect(metric) == []
        assert shape(collect(metric)[0]) == vector_shape(vector_name)


@pytest.mark.e2e
def test_real_process_collects_every_interval():
    cpu = records_of(["-i", "cpu", "-p", "interval_sec=0", "-p", "interval_nsec=300000000"], 3)
    assert [list(r)[:4] for r in cpu] == [["date", "cpu_p", "user_p", "system_p"]] * 3
    netif, = records_of(["-i", "netif", "-p", "interface=lo", "-p", "interval_sec=0",
                         "-p", "interval_nsec=200000000"], 1)
    assert list(netif)[1:] == [k for k, _ in vector_shape("in_netif_lo")]


@pytest.mark.e2e
def test_fake_pi_through_the_real_process(tmp_path):
    pi = FakePi(tmp_path / "pi")
    thermal, = records_of(["-i", "thermal", "-t", "pi.temp"], 1, env=pi.environ())
    assert shape(thermal) == [("name", "str"), ("type", "str"), ("temp", "float")]
    assert thermal["temp"] == 48.686
    cpu, = records_of(["-i", "cpu"], 1, env=pi.environ())
    assert len(shape(cpu)) == 3 + 4 * 3 and cpu["cpu3.p_system"] == 0.0


@pytest.mark.parametrize("name, options", [
    ("cpu", ("PID", "Interval_Sec", "Interval_NSec")),
    ("mem", ("PID", "Interval_Sec")),
    ("disk", ("Dev_Name", "Interval_Sec")),
    ("netif", ("Interface", "Verbose", "Test_At_Init", "Interval_Sec")),
    ("thermal", ("Name_Regex", "Type_Regex", "Interval_Sec")),
    ("proc", ("Proc_Name", "Alert", "Mem", "Fd", "Interval_Sec")),
    ("health", ("Host", "Port", "Alert", "Add_Host", "Add_Port", "Interval_Sec")),
    ("random", ("Samples", "Interval_Sec")),
    ("head", ("File", "Key", "Buf_Size", "Split_Line", "Lines", "Add_Path", "Interval_Sec")),
    ("kmsg", ("Prio_Level",)),
])
def test_each_input_lists_its_options(name, options):
    proc = run_edgeship(["-i", name, "-h"])
    assert proc.returncode == 0, proc.stderr
    assert all(option in proc.stdout for option in options)


@pytest.mark.parametrize("section, line, key", [
    ("Name proc\n", 1, "proc_name"),
    ("Name health\n    Host h\n    Port 70000\n", 4, "port"),
    ("Name head\n    File x\n    Lines many\n", 4, "lines"),
    ("Name random\n    Sample 3\n", 3, "sample"),
    ("Name cpu\n    Interval_Sec one\n", 3, "interval_sec"),  # "1s" is 1, as atoi reads it
])
def test_bad_options_name_file_line_and_key(tmp_path, section, line, key):
    conf = tmp_path / "bad.conf"
    conf.write_text("[INPUT]\n    %s[OUTPUT]\n    Name null\n    Match *\n" % section)
    proc = run_edgeship(["-c", str(conf), "--dry-run"])
    assert proc.returncode != 0
    assert "bad.conf:%d: key '%s'" % (line, key) in proc.stderr, proc.stderr
