"""docker input: a real edgeship child reading cgroup v2 and v1 trees laid out as Docker and
the kernel lay them out, and Docker's containers folder."""
import json

import pytest

from conftest import Printed, wait_for
from edgeship.plugins.inputs.docker import container_name

pytestmark = pytest.mark.e2e

WEB = "a" * 8 + "0123456789abcdef" * 3 + "b" * 8
DB = "c" * 64
BROKEN = "d" * 64


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def containers(tmp_path, names):
    root = tmp_path / "containers"
    for cid, name in names.items():
        write(root / cid / "config.v2.json",
              '{"StreamConfig":{},"State":{"Running":true},"ID":"%s","Name":"%s",'
              '"Config":{"Hostname":"x"}}' % (cid, name))
    return root


def start(spawn, tmp_path, sysfs, root, **keys):
    conf = tmp_path / "fluent-bit.conf"
    extra = "".join("    %s %s\n" % pair for pair in keys.items())
    conf.write_text("[SERVICE]\n    Flush 0.1\n    Log_File %s\n"
                    "[INPUT]\n    Name docker\n    Interval_Sec 0\n"
                    "    Interval_NSec 200000000\n    path.sysfs %s\n    path.containers %s\n"
                    "%s[OUTPUT]\n    Name stdout\n    Match *\n    Format json_lines\n"
                    "    json_date_key false\n" % (tmp_path / "log", sysfs, root, extra))
    return Printed(spawn(["-c", str(conf)]))


def test_cgroup_v2_containers(spawn, tmp_path):
    sysfs = tmp_path / "cgroup"
    write(sysfs / "cgroup.controllers", "cpu memory\n")
    for cid, cpu, mem, limit in ((WEB, 6000000000, 5 * 2 ** 30, "max\n"),
                                 (DB, 123, 4096, "1073741824\n")):
        scope = sysfs / "system.slice" / ("docker-%s.scope" % cid)
        write(scope / "cpu.stat", "usage_usec %d\nuser_usec 1\nsystem_usec 2\n" % cpu)
        write(scope / "memory.current", "%d\n" % mem)
        write(scope / "memory.max", limit)
    (sysfs / "system.slice" / ("docker-%s.scope" % BROKEN)).mkdir()
    (sysfs / "system.slice" / "ssh.service").mkdir()
    root = containers(tmp_path, {WEB: "/web", DB: "/db", BROKEN: "/broken"})
    printed = start(spawn, tmp_path, sysfs, root)
    wait_for(lambda: len(printed.records()) >= 2)
    records = [json.loads(line) for line in printed.records()[:2]]
    # 6,000 s of CPU and 5 GiB: past what Fluent Bit's 32-bit values hold.
    assert records == [
        {"id": WEB[:12], "name": "/web", "cpu_used": 6000000000, "mem_used": 5 * 2 ** 30,
         "mem_limit": 2 ** 64 - 1},
        {"id": DB[:12], "name": "/db", "cpu_used": 123, "mem_used": 4096,
         "mem_limit": 1073741824}]
    log = tmp_path / "log"
    wait_for(lambda: "Detected cgroups v2" in log.read_text()
             and "container %s left out" % BROKEN[:12] in log.read_text())
    assert log.read_text().count("left out") == 1      # once, not every interval


def test_cgroup_v1_and_include_exclude(spawn, tmp_path):
    sysfs = tmp_path / "cgroup"
    for cid, cpu, mem in ((WEB, 999, 10), (DB, 5, 20)):
        write(sysfs / "cpu" / "docker" / cid / "cpuacct.usage", "%d\n" % cpu)
        write(sysfs / "memory" / "docker" / cid / "memory.usage_in_bytes", "%d\n" % mem)
        write(sysfs / "memory" / "docker" / cid / "memory.limit_in_bytes",
              "9223372036854771712\n")
    root = containers(tmp_path, {WEB: "/web", DB: "/db"})
    printed = start(spawn, tmp_path, sysfs, root, Include="%s %s" % (WEB[:12], DB),
                    Exclude=DB[:12])
    wait_for(lambda: len(printed.records()) >= 2)
    records = [json.loads(line) for line in printed.records()]
    assert all(r == {"id": WEB[:12], "name": "/web", "cpu_used": 999, "mem_used": 10,
                     "mem_limit": 9223372036854771712} for r in records)


def test_the_name_is_the_first_name_value():
    assert container_name('{"ID":"x","Name": "/web","Config":{"Name":"no"}}') == "/web"
    assert container_name('{"ContainerName":"x"}') is None
    assert container_name('{"Name":42}') is None
