"""[OUTPUT] syslog: the bytes Fluent Bit 5.1.1 sent (vectors, TCP and UDP), Debian's rsyslog
as the receiver (imtcp and imudp, RFC 5424 and 3164, octet-counted frames next to ours), and
a receiver that is down, comes back or closes mid-stream."""
import json

import pytest

from conftest import run_edgeship, wait_for
from edgeship.plugins.outputs.syslog import facility_of, severity_of
from mosquitto import Certs
from rsyslog import Rsyslog
from stream_receivers import TcpCapture, run_tcp_vector, run_udp_vector, vector_names

# Vectors edgeship reproduces byte for byte; deliberate differences: none.
TCP_VECTORS = ["out_syslog_tcp_maxsize_40", "out_syslog_tcp_rfc3164_all_keys",
               "out_syslog_tcp_rfc3164_no_keys", "out_syslog_tcp_rfc5424_all_keys",
               "out_syslog_tcp_rfc5424_no_keys", "out_syslog_tcp_rfc5424_presets"]
UDP_VECTORS = ["out_syslog_udp_maxsize_40", "out_syslog_udp_rfc3164_all_keys",
               "out_syslog_udp_rfc5424_all_keys"]


def test_every_vector_is_compared():
    assert vector_names("out_syslog_") == sorted(TCP_VECTORS + UDP_VECTORS)


@pytest.mark.parametrize("name", TCP_VECTORS)
def test_tcp_bytes_equal_fluent_bit(tmp_path, spawn, name):
    want, got = run_tcp_vector(tmp_path, spawn, name)
    assert got == want


@pytest.mark.parametrize("name", UDP_VECTORS)
def test_udp_datagrams_equal_fluent_bit(tmp_path, spawn, name):
    want, got = run_udp_vector(tmp_path, spawn, name)
    assert got == want


# ---------------------------------------------------------------------------------------------
# Debian's rsyslog as the receiver

def config(tmp_path, lines_file, port, **output):
    keys = {"Name": "syslog", "Match": "*", "Host": "127.0.0.1", "Port": str(port),
            "Retry_Limit": "no_limits"}
    keys.update(output)
    text = ("[SERVICE]\n    Flush 0.2\n    Grace 2\n    scheduler.base 0.2\n"
            "    scheduler.cap 0.5\n    Log_File %s\n    Parsers_File %s\n"
            % (tmp_path / "edgeship.log", tmp_path / "parsers.conf"))
    text += ("[INPUT]\n    Name tail\n    Path %s\n    Read_From_Head on\n    Tag app\n"
             "    Parser js\n" % lines_file)
    text += "[OUTPUT]\n" + "".join("    %s %s\n" % kv for kv in keys.items())
    (tmp_path / "parsers.conf").write_text("[PARSER]\n    Name js\n    Format json\n")
    path = tmp_path / "edgeship.conf"
    path.write_text(text)
    return str(path)


def append(path, records):
    with open(path, "a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))


def logged(tmp_path, text):
    path = tmp_path / "edgeship.log"
    return path.exists() and text in path.read_text()


ALL_KEYS = {"Syslog_Message_Key": "message", "Syslog_Severity_Key": "sev",
            "Syslog_Facility_Key": "fac", "Syslog_Hostname_Key": "host",
            "Syslog_Appname_Key": "app", "Syslog_Procid_Key": "pid",
            "Syslog_Msgid_Key": "mid", "Syslog_SD_Key": "origin"}
RECORDS = [
    {"message": "hello syslog", "sev": "err", "fac": "local0", "host": "web-1", "app": "myapp",
     "pid": 1234, "mid": "ID47", "origin": {"ip": "10.0.0.1", "q": 'v"]'}},
    {"message": "second \u2713 unicode", "sev": 4, "fac": "5", "host": "web-2", "app": "app2"},
]


@pytest.fixture
def rsyslog(tmp_path):
    server = Rsyslog(tmp_path / "rsyslog").start()
    yield server
    server.kill()


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["tcp", "udp"])
def test_rfc5424_into_rsyslog(tmp_path, spawn, rsyslog, mode):
    lines = tmp_path / "in.jsonl"
    append(lines, RECORDS)
    port = rsyslog.tcp_port if mode == "tcp" else rsyslog.udp_port
    spawn(["-c", config(tmp_path, lines, port, Mode=mode, **ALL_KEYS)])
    got = wait_for(lambda: len(rsyslog.messages()) >= 2 and rsyslog.messages())
    first, second = got
    assert first["pri"] == "131" and first["hostname"] == "web-1" and first["app"] == "myapp"
    assert first["procid"] == "1234" and first["msgid"] == "ID47"
    assert first["sd"] == '[origin ip="10.0.0.1" q="v\\"\\]"]'
    assert first["msg"].lstrip("\ufeff") == "hello syslog"
    assert second["pri"] == "44" and second["procid"] == "-" and second["sd"] == "-"
    assert second["msg"].lstrip("\ufeff") == "second \u2713 unicode"


def test_rfc3164_into_rsyslog(tmp_path, spawn, rsyslog):
    lines = tmp_path / "in.jsonl"
    append(lines, RECORDS)
    spawn(["-c", config(tmp_path, lines, rsyslog.tcp_port, Mode="tcp",
                        Syslog_Format="rfc3164", **ALL_KEYS)])
    first, second = wait_for(lambda: len(rsyslog.messages()) >= 2 and rsyslog.messages())
    assert (first["pri"], first["hostname"], first["app"], first["procid"]) == \
        ("131", "web-1", "myapp", "1234")
    assert first["msg"].strip() == "hello syslog"
    assert (second["pri"], second["app"]) == ("44", "app2")


def numbered(first, last):
    return [{"message": "n=%d" % i} for i in range(first, last)]


def received_numbers(rsyslog):
    return sorted(int(m["msg"].lstrip("\ufeff").split("=")[1]) for m in rsyslog.messages())


def test_rsyslog_down_at_start_then_up_loses_nothing(tmp_path, spawn):
    server = Rsyslog(tmp_path / "rsyslog")
    try:
        lines = tmp_path / "in.jsonl"
        append(lines, numbered(0, 300))
        spawn(["-c", config(tmp_path, lines, server.tcp_port, Mode="tcp",
                            Syslog_Message_Key="message")])
        wait_for(lambda: logged(tmp_path, "could not deliver"))
        server.start()
        wait_for(lambda: len(server.messages()) >= 300, timeout=30)
        assert received_numbers(server) == list(range(300))
    finally:
        server.kill()


def test_rsyslog_killed_mid_stream_then_back(tmp_path, spawn):
    """rsyslogd is SIGKILLed after a first batch arrived (its connection dies with it);
    records that come while it is down wait in the queue and arrive once it is back."""
    server = Rsyslog(tmp_path / "rsyslog").start()
    try:
        lines = tmp_path / "in.jsonl"
        append(lines, numbered(0, 100))
        spawn(["-c", config(tmp_path, lines, server.tcp_port, Mode="tcp",
                            Syslog_Message_Key="message")])
        wait_for(lambda: len(server.messages()) >= 100)
        server.kill()
        append(lines, numbered(100, 400))
        wait_for(lambda: logged(tmp_path, "could not deliver"), timeout=30)
        server.start()
        wait_for(lambda: len(set(received_numbers(server))) >= 400, timeout=30)
        assert sorted(set(received_numbers(server))) == list(range(400))
    finally:
        server.kill()


def test_tls_mode(tmp_path, spawn):
    certs = Certs(str(tmp_path / "certs"))
    capture = TcpCapture(ssl_ctx=certs.server_context())
    try:
        lines = tmp_path / "in.jsonl"
        append(lines, numbered(0, 3))
        spawn(["-c", config(tmp_path, lines, capture.port, Mode="tls",
                            Syslog_Message_Key="message", Syslog_Format="rfc3164",
                            **{"tls.ca_file": certs.ca})])
        wait_for(lambda: capture.data().count(b"\n") >= 3)
        assert [line.split(b" ", 4)[-1] for line in capture.data().splitlines()] == \
            [b"n=0", b"n=1", b"n=2"]
    finally:
        capture.stop()


@pytest.mark.parametrize("options, key", [
    ({"Mode": "dtls"}, "mode"), ({"Mode": "udp", "tls": "on"}, "tls"),
    ({"Syslog_Severity_Preset": "8"}, "syslog_severity_preset"),
    ({"Syslog_Facility_Preset": "24"}, "syslog_facility_preset"),
    ({"Syslog_Format": "rfc9999"}, "syslog_format")])
def test_config_errors_name_the_key(tmp_path, options, key):
    lines = tmp_path / "in.jsonl"
    append(lines, numbered(0, 1))
    result = run_edgeship(["-c", config(tmp_path, lines, 514, **options), "--dry-run"])
    assert result.returncode != 0
    assert key.lower() in result.stderr.lower(), result.stderr


def test_severity_and_facility_values_as_fluent_bit_reads_them():
    assert [severity_of(v) for v in (b"0", b"7", b"8", b"ERR", b"warning", b"warn", b"error",
                                     b"77", b"")] == [0, 7, None, 3, 4, None, None, None, None]
    assert [facility_of(v) for v in (b"9", b"10", b"23", b"24", b"29", b"30", b"Local7",
                                     b"security", b"local8")] == \
        [9, 10, 23, None, None, None, 23, 13, None]
