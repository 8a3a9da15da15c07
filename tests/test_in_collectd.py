"""collectd input: real collectd (Debian's collectd-core) sends its network plugin's
packets to a real edgeship child; the binary protocol's corner cases from crafted packets."""
import shutil
import struct
import subprocess

import pytest

from conftest import free_port, run_edgeship, wait_for
from listener import Listener
from edgeship.plugins.inputs.collectd import TypesDbError, decode, parse_types_db

COLLECTD = shutil.which("collectd") or "/usr/sbin/collectd"
TYPES_DB = "/usr/share/collectd/types.db"


@pytest.mark.e2e
def test_collectd_load_and_memory_values_become_records(spawn, tmp_path):
    port = free_port()
    listener = Listener(spawn, tmp_path, {"Name": "collectd", "Listen": "127.0.0.1",
                                          "Port": port, "Tag": "collectd"})
    conf = tmp_path / "collectd.conf"
    conf.write_text('Hostname "edgehost"\nFQDNLookup false\nInterval 1\nBaseDir "%s"\n'
                    'PIDFile "%s/collectd.pid"\nTypesDB "%s"\nLoadPlugin load\n'
                    'LoadPlugin memory\nLoadPlugin network\n<Plugin network>\n'
                    '  Server "127.0.0.1" "%d"\n</Plugin>\n'
                    % (tmp_path, tmp_path, TYPES_DB, port))
    collectd = subprocess.Popen([COLLECTD, "-f", "-C", str(conf)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: {r.get("plugin") for r in listener.records()} >= {"load", "memory"})
    finally:
        collectd.kill()
        collectd.wait()
    records = listener.records()
    load = [r for r in records if r["plugin"] == "load"][0]
    # type_instance and plugin_instance are there ("") when an earlier value list of the same
    # datagram set them: the parts only say what changed.
    assert [k for k in load if k not in ("type_instance", "plugin_instance")] == [
        "type", "time", "interval", "plugin", "host", "shortterm", "midterm", "longterm"]
    assert load.get("type_instance", "") == "" and load.get("plugin_instance", "") == ""
    assert load["host"] == "edgehost" and load["interval"] == 1.0
    assert all(isinstance(load[k], float) for k in ("shortterm", "midterm", "longterm"))
    used = [r for r in records if r.get("type_instance") == "used"][0]
    assert used["type"] == "memory" and used["value"] > 0


def _part(kind, body):
    return struct.pack(">HH", kind, 4 + len(body)) + body


def _text(kind, text):
    return _part(kind, text.encode() + b"\0")


def _values(*values):
    kinds = bytes(kind for kind, _ in values)
    data = b"".join(struct.pack("<d" if kind == 1 else ">q" if kind == 2 else ">Q", value)
                    for kind, value in values)
    return _part(6, struct.pack(">H", len(values)) + kinds + data)


TYPES = {"if_octets": ["rx", "tx"], "gauge": ["value"], "derive": ["value"]}


def test_a_datagram_sets_a_header_then_each_value_list_is_a_record():
    packet = (_text(0, "pi") + _part(8, struct.pack(">Q", 3 << 30)) + _text(2, "interface")
              + _text(3, "eth0") + _text(4, "if_octets") + _values((0, 10), (3, 20))
              + _part(9, struct.pack(">Q", 1 << 29)) + _text(4, "derive") + _text(5, "x")
              + _values((2, -5)) + _text(4, "gauge") + _part(0x0100, b"ignored")
              + _values((1, 2.5)))
    errors = []
    assert decode(packet, TYPES, errors) == [
        {"type": "if_octets", "time": 3.0, "plugin": "interface", "plugin_instance": "eth0",
         "host": "pi", "rx": 10, "tx": 20},
        {"type": "derive", "type_instance": "x", "time": 3.0, "interval": 0.5,
         "plugin": "interface", "plugin_instance": "eth0", "host": "pi", "value": -5},
        {"type": "gauge", "type_instance": "x", "time": 3.0, "interval": 0.5,
         "plugin": "interface", "plugin_instance": "eth0", "host": "pi", "value": 2.5}]
    assert errors == []


def test_a_bad_part_loses_only_itself():
    errors = []
    packet = (_text(4, "nosuch") + _values((1, 1.0)) + _text(4, "gauge") + _values((7, 1))
              + _part(1, b"\0\0") + _values((1, 9.0)) + _text(4, "gauge") + _values((1, 4.0))
              + struct.pack(">HH", 2, 400) + b"cut")
    assert decode(packet, TYPES, errors) == [{"type": "gauge", "value": 9.0},
                                             {"type": "gauge", "value": 4.0}]
    assert errors == ["no such type found 'nosuch'", "unknown data type 7",
                      "data truncated (2 < 8)", "invalid part length (400, remaining 7)"]


def test_a_string_part_without_its_nul_is_ignored():
    errors = []
    packet = _text(4, "gauge") + _part(0, b"no-nul") + _values((1, 1.0))
    assert decode(packet, TYPES, errors) == [{"type": "gauge", "value": 1.0}]


def test_types_db_later_definitions_win_and_bad_lines_are_refused():
    types = parse_types_db("# comment\nfoo  a:GAUGE:0:U, b:DERIVE:0:U\r\nbar v:GAUGE:0:U\n")
    parse_types_db("foo z:GAUGE:U:U\n", types)
    assert types == {"foo": ["z"], "bar": ["v"]}
    for bad in ("lonely\n", "foo \n", "foo novalue\n"):
        with pytest.raises(TypesDbError):
            parse_types_db(bad)
    assert len(parse_types_db(open(TYPES_DB).read())) > 100


def test_an_unreadable_types_db_warns_in_a_dry_run_and_stops_a_run(tmp_path):
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[INPUT]\n    Name collectd\n    TypesDB %s/missing.db\n"
                    "[OUTPUT]\n    Name null\n    Match *\n" % tmp_path)
    dry = run_edgeship(["--dry-run", "-c", str(conf)])
    assert dry.returncode == 0 and "failed to load" in dry.stderr
    run = run_edgeship(["-c", str(conf)])
    assert run.returncode != 0 and "failed to load" in run.stderr
