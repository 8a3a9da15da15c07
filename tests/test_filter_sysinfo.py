"""sysinfo filter: a real edgeship child adds this machine's facts under the keys set."""
import json
import os
import socket

from conftest import run_edgeship


def test_the_facts_go_under_their_keys_in_fluent_bit_order():
    proc = run_edgeship(["-i", "stdin", "-F", "sysinfo", "-m", "*",
                         "-p", "kernel_version_key=kernel",
                         "-p", "hostname_key=host", "-p", "fluentbit_version_key=fb",
                         "-p", "os_name_key=os", "-p", "os_version_key=osv",
                         "-o", "stdout", "-m", "*", "-p", "format=json_lines",
                         "-p", "json_date_key=false", "-f", "0.2"], input='{"log":"x"}\n')
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert records, proc.stderr
    uname = os.uname()
    assert list(records[0].items()) == [
        ("log", "x"), ("fb", "5.1.1"), ("os", "linux"), ("host", socket.gethostname()),
        ("osv", uname.version), ("kernel", uname.release)]


def test_no_key_set_adds_nothing():
    proc = run_edgeship(["-i", "stdin", "-F", "sysinfo", "-m", "*", "-o", "stdout", "-m", "*",
                         "-p", "format=json_lines", "-p", "json_date_key=false", "-f", "0.2"],
                        input='{"log":"x"}\n')
    assert [json.loads(line) for line in proc.stdout.splitlines()
            if line.startswith("{")] == [{"log": "x"}]
