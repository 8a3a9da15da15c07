"""edgeship -> edgeship over the forward protocol, with real processes and sockets:
every mode and option, secure forward, TLS, Unix sockets, upstream failover, the
fluent-logger client, and a receiver killed with SIGKILL mid-stream."""
import json
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import accepts_connections, free_port, wait_for
from edgeship.codecs.msgpack import MsgpackCodec
from edgeship.core import forward

START_SEC = 1704164645
START_NSEC = 123456789


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def section(kind, **keys):
    lines = ["[%s]" % kind]
    lines += ["    %s %s" % (k, v) for k, v in keys.items() if v is not None]
    return "\n".join(lines) + "\n"


def service(**extra):
    keys = {"Flush": "0.2", "Grace": "2", "Log_Level": "info", "scheduler.base": "0.5",
            "scheduler.cap": "1"}
    keys.update(extra)
    return section("SERVICE", **keys)


def receiver_conf(tmp_path, port, out_dir, **input_keys):
    keys = {"Name": "forward", "Listen": "127.0.0.1", "Port": port}
    keys.update(input_keys)
    return write(tmp_path / ("recv-%s.conf" % port),
                 service(Log_File=str(tmp_path / ("recv-%s.log" % port)))
                 + section("INPUT", **keys)
                 + section("OUTPUT", Name="file", Match="*", Path=str(out_dir), Mkdir="on",
                           File="out.log"))


def start_receiver(spawn, tmp_path, out_dir=None, **input_keys):
    port = input_keys.pop("Port", None) or free_port()
    out_dir = out_dir or tmp_path / "out"
    conf = receiver_conf(tmp_path, port, out_dir, **input_keys)
    child = spawn(["-c", conf])
    if input_keys.get("Unix_Path"):
        wait_for(lambda: os.path.exists(input_keys["Unix_Path"]))
    else:
        wait_for(lambda: accepts_connections(port))
    child.port = port
    child.log = str(tmp_path / ("recv-%s.log" % port))
    return child


def dummy(tag, samples=2, copies=3, **extra):
    keys = {"Name": "dummy", "Tag": tag, "Dummy": json.dumps({"combo": tag, "n": 1}),
            "Samples": samples, "Copies": copies, "Rate": 20, "Flush_On_Startup": "on",
            "Start_time_sec": START_SEC, "Start_time_nsec": START_NSEC,
            "Fixed_Timestamp": "on"}
    keys.update(extra)
    return section("INPUT", **keys)


def forward_out(match, port, **keys):
    base = {"Name": "forward", "Match": match, "Host": "127.0.0.1", "Port": port,
            "Retry_Limit": "no_limits"}
    base.update(keys)
    return section("OUTPUT", **base)


def received(out_dir):
    """(tag, time_ns, record) lines of the receiver's file output (out_file format)."""
    path = os.path.join(str(out_dir), "out.log")
    if not os.path.exists(path):
        return []
    rows = []
    with open(path) as f:
        for line in f:
            m = re.match(r"^(\S+): \[(\d+)\.(\d+), (.*)\]$", line.rstrip("\n"))
            if m:
                rows.append((m.group(1), int(m.group(2)) * forward.NS + int(m.group(3)),
                             json.loads(m.group(4))))
    return rows


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


COMBOS = {
    "plain": {},
    "gzip": {"Compress": "gzip"},
    "ack": {"Require_ack_response": "on"},
    "gzip_ack": {"Compress": "gzip", "Require_ack_response": "on"},
    "gzip_thread_ack": {"Compress": "gzip", "compress.thread": "on",
                        "Require_ack_response": "on"},
    "no_meta_opts": {"Retain_metadata_in_forward_mode": "off", "Send_options": "on",
                     "Add_Option": "region eu-west"},
    "int_time_ack": {"Time_as_Integer": "on", "Require_ack_response": "on"},
}


def _sender_conf(tmp_path, name, port, secure, combos=COMBOS):
    parts = [service(Log_File=str(tmp_path / ("%s.log" % name)))]
    for combo, keys in combos.items():
        parts.append(dummy(combo))
        merged = dict(secure)
        merged.update(keys)
        parts.append(forward_out(combo, port, **merged))
    return write(tmp_path / ("%s.conf" % name), "".join(parts))


def _expect_all(out_dir, combos=COMBOS, tag_of=lambda combo: combo):
    def complete():
        rows = received(out_dir)
        return all(sum(1 for r in rows if r[2].get("combo") == c) >= 6 for c in combos) and rows
    rows = wait_for(complete, timeout=20)
    for combo in combos:
        mine = [r for r in rows if r[2]["combo"] == combo]
        assert len(mine) == 6, (combo, mine)      # no duplicates on a healthy link
        for tag, t, record in mine:
            assert tag == tag_of(combo)
            assert record == {"combo": combo, "n": 1}
            if combo.startswith("int_time"):
                assert t == START_SEC * forward.NS
            else:
                assert t == START_SEC * forward.NS + START_NSEC


SECURITY = {
    "open": ({}, {}),
    "shared_key": ({"Shared_Key": "s3cr3t", "Self_Hostname": "agg.example"},
                   {"Shared_Key": "s3cr3t", "Self_Hostname": "edge.example"}),
    "users": ({"Shared_Key": "s3cr3t", "Security.Users": "alice pa55word"},
              {"Shared_Key": "s3cr3t", "Username": "alice", "Password": "pa55word"}),
    "empty_key": ({"Empty_Shared_Key": "on"}, {"Empty_Shared_Key": "on"}),
}


@pytest.mark.e2e
@pytest.mark.parametrize("security", sorted(SECURITY))
def test_every_mode_and_option_arrives_exactly(spawn, tmp_path, security):
    server_keys, client_keys = SECURITY[security]
    recv = start_receiver(spawn, tmp_path, **server_keys)
    spawn(["-c", _sender_conf(tmp_path, "send", recv.port, client_keys)])
    _expect_all(tmp_path / "out")
    assert "closing connection" not in read(recv.log)


def test_tag_prefix_and_message_mode_record_accessor_tag(spawn, tmp_path):
    recv = start_receiver(spawn, tmp_path, Tag_Prefix="agg.")
    # $TAG is the record's tag in every template (the forward output once read it as a
    # record key named TAG); "dyn.$TAG.$n" is per record, so Message mode too.
    combos = {"msg": {"Tag": "per.$combo", "Require_ack_response": "on"},
              "fixed": {"Tag": "fixed.tag"}, "tagged": {"Tag": "dyn.$TAG.$n"},
              "static": {"Tag": "st.$TAG[0]"}}
    want = {"msg": "agg.per.msg", "fixed": "agg.fixed.tag", "tagged": "agg.dyn.tagged.1",
            "static": "agg.st.static"}
    spawn(["-c", _sender_conf(tmp_path, "send", recv.port, {}, combos)])
    _expect_all(tmp_path / "out", combos, want.get)


def test_wrong_shared_key_or_password_is_refused_and_retried(spawn, tmp_path):
    recv = start_receiver(spawn, tmp_path, Shared_Key="right",
                          **{"Security.Users": "alice pa55word"})
    wrong = {"bad_key": {"Shared_Key": "wrong", "Username": "alice", "Password": "pa55word"},
             "bad_password": {"Shared_Key": "right", "Username": "alice", "Password": "nope"}}
    conf = [service(Log_File=str(tmp_path / "send.log"))]
    for combo, keys in wrong.items():
        conf.append(dummy(combo))
        conf.append(forward_out(combo, recv.port, **keys))
    spawn(["-c", write(tmp_path / "send.conf", "".join(conf))])
    wait_for(lambda: read(recv.log).count("closing connection") >= 4, timeout=20)
    log = read(tmp_path / "send.log")
    assert "failed authorization: username/password mismatch" in log
    assert "server closed the connection during the handshake" in log
    assert "shared_key mismatch" in read(recv.log)
    assert received(tmp_path / "out") == []
    # the receiver carries on for a sender with the right credentials
    good = {"good": {"Shared_Key": "right", "Username": "alice", "Password": "pa55word"}}
    spawn(["-c", _sender_conf(tmp_path, "good", recv.port, {}, good)])
    _expect_all(tmp_path / "out", good)


def _certificates(tmp_path):
    d = tmp_path / "tls"
    d.mkdir()

    def run(*args):
        subprocess.run(["openssl"] + list(args), cwd=str(d), check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=edgeship test CA")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    write(d / "san.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
    run("req", "-x509", *ec, "-keyout", "other.key", "-out", "other.crt", "-days", "2",
        "-subj", "/CN=someone else")
    return d


@pytest.mark.e2e
def test_tls_with_verified_certificates(spawn, tmp_path):
    certs = _certificates(tmp_path)
    recv = start_receiver(spawn, tmp_path, tls="on", **{
        "tls.crt_file": certs / "server.crt", "tls.key_file": certs / "server.key",
        "Shared_Key": "s3cr3t"})
    tls = {"tls": "on", "tls.verify": "on", "tls.ca_file": certs / "ca.crt",
           "tls.verify_hostname": "on", "tls.vhost": "localhost", "Shared_Key": "s3cr3t"}
    combos = {"tls_gzip_ack": {"Compress": "gzip", "Require_ack_response": "on"},
              "tls_plain": {},
              "untrusted": {"tls.ca_file": certs / "other.crt"}}
    spawn(["-c", _sender_conf(tmp_path, "send", recv.port, tls, combos)])
    good = dict(combos)
    del good["untrusted"]
    _expect_all(tmp_path / "out", good)
    wait_for(lambda: "CERTIFICATE_VERIFY_FAILED" in read(tmp_path / "send.log"))
    assert not [r for r in received(tmp_path / "out") if r[2]["combo"] == "untrusted"]


def test_unix_socket_and_upstream_failover(spawn, tmp_path):
    sock = str(tmp_path / "fw.sock")
    recv_unix = start_receiver(spawn, tmp_path, Unix_Path=sock, Unix_Perm="0600", Port=free_port())
    assert oct(os.stat(sock).st_mode & 0o777) == "0o600"
    conf = [service(Log_File=str(tmp_path / "send.log")), dummy("unix"),
            section("OUTPUT", Name="forward", Match="unix", Unix_Path=sock,
                    Require_ack_response="on")]
    # an upstream whose first node is down: every chunk must fail over to the second
    recv = start_receiver(spawn, tmp_path, out_dir=tmp_path / "out2")
    upstream = write(tmp_path / "upstream.conf",
                     section("UPSTREAM", Name="aggregators")
                     + section("NODE", Name="down", Host="127.0.0.1", Port=free_port())
                     + section("NODE", Name="up", Host="127.0.0.1", Port=recv.port))
    conf += [dummy("ha", samples=6, copies=1, Rate=10),
             section("OUTPUT", Name="forward", Match="ha", Upstream=upstream,
                     Require_ack_response="on", Retry_Limit="no_limits")]
    spawn(["-c", write(tmp_path / "send.conf", "".join(conf))])
    _expect_all(tmp_path / "out", {"unix": {}})
    rows = wait_for(lambda: len(received(tmp_path / "out2")) >= 6 and received(tmp_path / "out2"))
    assert [r[2]["combo"] for r in rows] == ["ha"] * 6
    assert "could not deliver to node down (127.0.0.1:" in read(tmp_path / "send.log")
    assert recv_unix.proc.poll() is None


def test_upstream_file_takes_set_variables_and_the_relative_path_rule(spawn, tmp_path):
    """The upstream file is read by the config's own reader: ``@SET`` values of the main
    file expand in it (they were empty there), and a relative Upstream path not found from
    the current directory is taken from the main config's directory, as Fluent Bit does."""
    recv = start_receiver(spawn, tmp_path)
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    write(conf_dir / "upstream.conf", section("UPSTREAM", Name="aggregators")
          + section("NODE", Name="${NODE_NAME}", Host="127.0.0.1", Port="${RECV_PORT}"))
    conf = ("@SET RECV_PORT=%d\n@SET NODE_NAME=agg-1\n" % recv.port
            + service(Log_File=str(tmp_path / "send.log")) + dummy("ups")
            + section("OUTPUT", Name="forward", Match="ups", Upstream="upstream.conf",
                      Require_ack_response="on", Retry_Limit="no_limits"))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    spawn(["-c", write(conf_dir / "send.conf", conf)], cwd=str(elsewhere))
    _expect_all(tmp_path / "out", {"ups": {}})


@pytest.mark.e2e
def test_fluent_logger_client(spawn, tmp_path):
    from fluent import sender
    recv = start_receiver(spawn, tmp_path)
    plain = sender.FluentSender("app", host="127.0.0.1", port=recv.port)
    precise = sender.FluentSender("app", host="127.0.0.1", port=recv.port,
                                  nanosecond_precision=True)
    try:
        for i in range(5):
            assert plain.emit_with_time("int", START_SEC + i, {"combo": "int", "i": i})
            assert precise.emit_with_time("ns", START_SEC + i + 0.25, {"combo": "ns", "i": i})
    finally:
        plain.close()
        precise.close()
    rows = wait_for(lambda: len(received(tmp_path / "out")) >= 10 and received(tmp_path / "out"))
    assert sorted((r[0], r[1], r[2]["i"]) for r in rows if r[0] == "app.int") == [
        ("app.int", (START_SEC + i) * forward.NS, i) for i in range(5)]
    assert sorted((r[0], r[1], r[2]["i"]) for r in rows if r[0] == "app.ns") == [
        ("app.ns", (START_SEC + i) * forward.NS + 250000000, i) for i in range(5)]


@pytest.mark.e2e
def test_ack_is_sent_only_once_the_output_confirmed(spawn, tmp_path):
    """The receiver's file output cannot write (no directory, no Mkdir): no ack may come."""
    port = free_port()
    conf = write(tmp_path / "recv.conf", service(Log_File=str(tmp_path / "recv.log"))
                 + section("INPUT", Name="forward", Listen="127.0.0.1", Port=port)
                 + section("OUTPUT", Name="file", Match="*", Path=str(tmp_path / "missing"),
                           Retry_Limit="no_limits"))
    spawn(["-c", conf])
    wait_for(lambda: accepts_connections(port))
    codec = MsgpackCodec()
    encoder = forward.Encoder(codec.packb, require_ack=True, pack_entries=codec.pack_entries)
    frame, chunk = encoder.frame("t", [(START_SEC * forward.NS, {"a": 1})])
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(frame)
        conn.settimeout(1.5)
        with pytest.raises(socket.timeout):
            conn.recv(100)
        os.mkdir(str(tmp_path / "missing"))          # now the output can deliver
        conn.settimeout(10)
        assert conn.recv(100) == forward.ack_response(chunk)


def test_receiver_killed_mid_stream_loses_nothing_with_acks(spawn, tmp_path):
    out = tmp_path / "out"
    recv = start_receiver(spawn, tmp_path, out_dir=out)
    conf = write(tmp_path / "send.conf", service(Log_File=str(tmp_path / "send.log"))
                 + section("INPUT", Name="stdin", Tag="seq")
                 + forward_out("*", recv.port, Require_ack_response="on",
                               **{"net.io_timeout": "3"}))
    sender = spawn(["-c", conf], stdin=subprocess.PIPE)
    total = 3000

    def feed(start, stop):
        lines = "".join(json.dumps({"n": i}) + "\n" for i in range(start, stop))
        sender.proc.stdin.write(lines.encode())
        sender.proc.stdin.flush()

    for start in range(0, 1000, 100):
        feed(start, start + 100)
        time.sleep(0.02)
    wait_for(lambda: len(received(out)) >= 200)
    recv.kill()                                          # SIGKILL, mid-stream
    for start in range(1000, 2000, 100):
        feed(start, start + 100)
        time.sleep(0.02)
    time.sleep(1)
    start_receiver(spawn, tmp_path, out_dir=out, Port=recv.port)
    feed(2000, total)
    wait_for(lambda: {r[2]["n"] for r in received(out)} >= set(range(total)), timeout=30)
    assert "retry" in read(tmp_path / "send.log")


def test_aggregator_example_configs(spawn, tmp_path):
    from conftest import ROOT
    example = os.path.join(ROOT, "configs", "aggregator")
    sample = os.path.join(ROOT, "configs", "quickstart", "sample.log")
    log = tmp_path / "app.log"
    write(log, read(sample))
    port = free_port()
    env = {"AGGREGATOR_PORT": str(port), "AGGREGATOR_LISTEN": "127.0.0.1",
           "AGGREGATOR_OUT": str(tmp_path / "agg"), "EDGE_LOG": str(log)}
    spawn(["-c", os.path.join(example, "aggregator.conf")], env=env)
    wait_for(lambda: accepts_connections(port))
    spawn(["-c", os.path.join(example, "edge.conf")], env=env)
    lines = [json.loads(x) for x in read(sample).splitlines() if x.strip()]

    def arrived():
        text = read(tmp_path / "agg" / "edge.log")
        return text.count("\n") >= len(lines) and text
    text = wait_for(arrived)
    assert [json.loads(x.split(": [", 1)[1].split(", ", 1)[1][:-1])["msg"]
            for x in text.splitlines()] == [x["msg"] for x in lines]
