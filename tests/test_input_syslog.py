"""syslog input: a real edgeship child fed by util-linux's logger (unix and UDP sockets),
Debian's rsyslog (forwarding over TCP, RFC 5424 with octet counting) and raw sockets
replaying Fluent Bit 5.1.1's vectors (in_syslog_*); no Parsers_File: the stock syslog parsers
are built in."""
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import time

import pytest

from conftest import free_port, run_edgeship, wait_for
from listener import Listener
from mosquitto import Certs
from test_inputs_tcp_udp import printed_records, vector

pytestmark = pytest.mark.e2e


def syslog_listener(spawn, tmp_path, **keys):
    input_keys = {"Name": "syslog", "Tag": "syslog.in"}
    if keys.get("Mode", "unix_udp") in ("tcp", "udp"):
        input_keys.update(Listen="127.0.0.1", Port=free_port())
    else:
        input_keys["Path"] = str(tmp_path / "syslog.sock")
    input_keys.update(keys)
    listener = Listener(spawn, tmp_path, input_keys)
    listener.port = input_keys.get("Port")
    listener.path = input_keys.get("Path")
    return listener


def event_seconds(listener):
    return [float(stamp) for _, stamp, _ in listener.events()]


def vector_seconds(vec):
    return [json.loads(line)["date"] for line in vec["printed_json_lines"]]


def send_tcp(port, data):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(data)
    return sock


@pytest.mark.parametrize("name,mode,parser", [
    ("in_syslog_tcp_rfc5424", "tcp", "syslog-rfc5424"),
    ("in_syslog_tcp_rfc3164", "tcp", "syslog-rfc3164"),
    ("in_syslog_udp_rfc5424", "udp", "syslog-rfc5424"),
    ("in_syslog_udp_rfc3164", "udp", "syslog-rfc3164"),
    ("in_syslog_unix_udp_rfc5424", "unix_udp", "syslog-rfc5424"),
    ("in_syslog_unix_udp_no_parser", "unix_udp", None),
])
def test_records_as_the_vectors(spawn, tmp_path, name, mode, parser):
    vec = vector(name)
    listener = syslog_listener(spawn, tmp_path, Mode=mode, Parser=parser)
    if mode == "tcp":
        sock = send_tcp(listener.port, bytes.fromhex(vec["stimulus"][0]["client_sent_hex"]))
    else:
        sock = socket.socket(socket.AF_UNIX if mode == "unix_udp" else socket.AF_INET,
                             socket.SOCK_DGRAM)
        target = listener.path if mode == "unix_udp" else ("127.0.0.1", listener.port)
        for item in vec["stimulus"]:
            data = bytes.fromhex(item["datagram_hex"]) if "datagram_hex" in item \
                else item["unix_datagram_text"].encode()
            sock.sendto(data, target)
    expected = printed_records(vec)
    assert listener.wait_records(len(expected)) == expected
    if "rfc5424" in name:
        # Times from the messages, to the microsecond; the one without a fraction does not
        # match the stock Time_Format: arrival time, no time key, as in Fluent Bit.
        assert event_seconds(listener)[:2] == vector_seconds(vec)[:2]
    sock.close()


def test_octet_counting_raw_and_source_keys_as_the_vector(spawn, tmp_path):
    vec = vector("in_syslog_tcp_octet_counting")
    listener = syslog_listener(spawn, tmp_path, Mode="tcp", Format="octet_counting",
                               Raw_Message_Key="raw", Source_Address_Key="src")
    sock = send_tcp(listener.port, bytes.fromhex(vec["stimulus"][0]["client_sent_hex"]))
    here = "tcp://127.0.0.1:%d" % sock.getsockname()[1]
    expected = printed_records(vec)
    for record in expected:
        record["src"] = here
    assert listener.wait_records(2) == expected
    sock.close()


def test_a_message_the_parser_does_not_match_is_kept_and_logged(spawn, tmp_path):
    # Fluent Bit drops it (in_syslog_tcp_no_parser); edgeship keeps it under "log".
    vec = vector("in_syslog_tcp_no_parser")
    listener = syslog_listener(spawn, tmp_path, Mode="tcp")
    sock = send_tcp(listener.port, bytes.fromhex(vec["stimulus"][0]["client_sent_hex"]))
    rfc3164 = "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8"
    assert listener.wait_records(2) == [{"log": rfc3164}] + printed_records(vec)
    assert ("error parsing log message with parser 'syslog-rfc5424', kept under 'log'"
            in listener.log())
    sock.close()


def test_a_bad_octet_count_closes_only_that_connection(spawn, tmp_path):
    listener = syslog_listener(spawn, tmp_path, Mode="tcp", Format="octet_counting",
                               Buffer_Max_Size="100")
    bad = send_tcp(listener.port, b"x5 <13>1")
    assert bad.recv(10) == b""                                  # closed by edgeship
    over = send_tcp(listener.port, b"101 <13>1")
    assert over.recv(10) == b""
    message = b"<13>1 2024-01-02T03:04:07.5Z h a 1 - - still served"
    good = send_tcp(listener.port, b"%d %s" % (len(message), message))
    assert listener.wait_records(1) == [{"pri": "13", "time": "2024-01-02T03:04:07.5Z",
                                         "host": "h", "ident": "a", "pid": "1", "msgid": "-",
                                         "extradata": "-", "message": "still served"}]
    log = listener.log()
    assert "invalid octet-counting length" in log
    assert "frame of 101 bytes is over the limit of 100" in log
    for sock in (bad, over, good):
        sock.close()


def test_newline_framing_over_unix_tcp_with_nul_and_permissions(spawn, tmp_path):
    listener = syslog_listener(spawn, tmp_path, Mode="unix_tcp", Unix_Perm="0600",
                               Source_Address_Key="src")
    assert stat.S_IMODE(os.stat(listener.path).st_mode) == 0o600
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(listener.path)
    sock.sendall(b"<13>Jan  2 03:04:05 one: first\x00<13>Jan  2 03:04:05 two[7]: sec")
    sock.sendall(b"ond\n")
    assert listener.wait_records(2) == [
        {"pri": "13", "time": "Jan  2 03:04:05", "ident": "one", "message": "first",
         "src": "unix://" + listener.path},
        {"pri": "13", "time": "Jan  2 03:04:05", "ident": "two", "pid": "7",
         "message": "second", "src": "unix://" + listener.path}]
    sock.close()


def test_logger_to_the_unix_datagram_socket(spawn, tmp_path):
    listener = syslog_listener(spawn, tmp_path)      # Mode unix_udp, parser rfc3164-local
    assert stat.S_IMODE(os.stat(listener.path).st_mode) == 0o644
    subprocess.run(["logger", "-u", listener.path, "--socket-errors=on", "-t", "myapp",
                    "--id=4242", "hello from logger ✓"], check=True, timeout=10)
    [record] = listener.wait_records(1)
    assert record["ident"] == "myapp" and record["pid"] == "4242"
    assert record["message"] == "hello from logger ✓"
    assert record["pri"] == "13"
    assert time.strftime("%b") in record["time"]


def test_logger_over_udp_in_rfc5424(spawn, tmp_path):
    listener = syslog_listener(spawn, tmp_path, Mode="udp", Source_Address_Key="src")
    subprocess.run(["logger", "-n", "127.0.0.1", "-P", str(listener.port), "-d",
                    "--rfc5424", "-t", "udpapp", "--msgid", "M1", "-p", "local0.warning",
                    "over udp"], check=True, timeout=10)
    [record] = listener.wait_records(1)
    assert record["pri"] == str(16 * 8 + 4)
    assert (record["ident"], record["msgid"], record["message"]) == ("udpapp", "M1", "over udp")
    assert record["extradata"].startswith("[timeQuality ")
    assert record["src"].startswith("udp://127.0.0.1:")
    # the record time is the message's, which has microseconds
    [(_, stamp, _)] = listener.events()
    assert stamp.split(".")[1] == record["time"].split(".")[1][:6] + "000"


RSYSLOG_CONF = """\
global(workDirectory="{work}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{socket}" CreatePath="on")
action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp"
       TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
"""


@pytest.fixture
def rsyslog(tmp_path):
    """Start Debian's rsyslogd in the foreground with its own config, forwarding to a port."""
    rsyslogd = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    if not os.path.exists(rsyslogd):
        pytest.fail("rsyslog is not installed: apt-get install -y rsyslog")
    procs = []

    def start(port):
        folder = tmp_path / "rsyslog"
        work = folder / "work"
        work.mkdir(parents=True)
        conf = folder / "rsyslog.conf"
        sock = folder / "in.sock"
        conf.write_text(RSYSLOG_CONF.format(work=work, socket=sock, port=port))
        proc = subprocess.Popen([rsyslogd, "-n", "-f", str(conf), "-i", str(folder / "pid")],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        procs.append(proc)
        wait_for(lambda: sock.exists() or proc.poll() is not None)
        assert proc.poll() is None, proc.stdout.read()
        return str(sock)

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_rsyslog_forwards_rfc5424_octet_counted_over_tcp(spawn, tmp_path, rsyslog):
    listener = syslog_listener(spawn, tmp_path, Mode="tcp", Format="octet_counting",
                               Parser="syslog-rfc5424", Raw_Message_Key="raw")
    rsyslog_socket = rsyslog(listener.port)
    lines = ["first line", "second ✓ line", "third line with [brackets]"]
    for line in lines:
        subprocess.run(["logger", "-u", rsyslog_socket, "--socket-errors=on", "-t", "relay",
                        "--id=99", line], check=True, timeout=10)
    records = listener.wait_records(3)
    assert [r["message"].strip() for r in records] == lines
    for record in records:
        assert (record["ident"], record["pid"], record["msgid"]) == ("relay", "99", "-")
        assert record["raw"].startswith("<13>1 ")
        assert record["host"] == socket.gethostname().split(".")[0]
    # rsyslog's RFC 3339 times have microseconds: the record time is the message's
    for _, stamp, record in listener.events():
        micro = record["time"].split(".")[1][:6]
        assert stamp.split(".")[1] == micro + "000", (stamp, record["time"])


def test_config_errors_name_the_key(tmp_path):
    # Fluent Bit finds a missing Path only at start: the run stops, a dry run warns
    proc = run_edgeship(["-i", "syslog", "-p", "mode=unix_tcp", "-o", "null"])
    assert proc.returncode != 0 and "needs Path" in proc.stderr
    proc = run_edgeship(["-i", "syslog", "-p", "mode=tcp", "-p", "parser=nope", "-o", "null",
                         "--dry-run"])
    assert proc.returncode != 0 and "parser 'nope' not found" in proc.stderr
    proc = run_edgeship(["-i", "syslog", "-p", "mode=sctp", "-o", "null", "--dry-run"])
    assert proc.returncode != 0 and "mode" in proc.stderr.lower()
    proc = run_edgeship(["-i", "syslog", "-p", "path=/tmp/x", "-p", "unix_perm=9z",
                         "-o", "null", "--dry-run"])
    assert proc.returncode != 0 and "Unix_Perm must be octal" in proc.stderr


def test_tcp_over_tls(spawn, tmp_path):
    certs = Certs(str(tmp_path / "certs"))
    listener = syslog_listener(spawn, tmp_path, Mode="tcp", **{
        "tls": "on", "tls.crt_file": certs.server_crt, "tls.key_file": certs.server_key})
    context = ssl.create_default_context(cafile=certs.ca)
    with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(b"<13>1 2024-01-02T03:04:05.5Z h app 7 - - over tls\n")
            assert listener.wait_records(1)[0]["message"] == "over tls"
