"""Malformed input at in_forward: truncated frames, wrong types, huge declared sizes, bad
gzip, bad handshakes. The session must refuse it cleanly (in process, many examples), and a
real edgeship must close each bad connection, count it, keep memory bounded and keep
serving the others."""
import socket
import struct

from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import accepts_connections, free_port, wait_for
from edgeship.codecs.msgpack import MsgpackCodec
from edgeship.core import events as ev
from edgeship.core import forward
from test_forward_e2e import section, service, write

CODEC = MsgpackCodec()
T = 1704164645 * forward.NS
LIMIT = 64 * 1024


def _good_frames():
    enc = forward.Encoder(CODEC.packb, require_ack=True, pack_entries=CODEC.pack_entries)
    frame, _ = enc.frame("app", [(T, {"msg": "x" * 50, "n": i}) for i in range(20)])
    gz, _ = forward.Encoder(CODEC.packb, compress=True, pack_entries=CODEC.pack_entries).frame(
        "app", [(T, {"a": 1})] * 5)
    msg, _ = enc.message("app", (T, {"k": "v"}))
    return [frame, gz, msg]


GOOD = _good_frames()


def _bad_values():
    return st.one_of(st.none(), st.booleans(), st.integers(-2 ** 63, 2 ** 64 - 1),
                     st.floats(allow_nan=True), st.text(max_size=20), st.binary(max_size=20),
                     st.lists(st.integers(), max_size=3),
                     st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))


def _huge_declared():
    headers = [b"\xdd", b"\xdf", b"\xdb", b"\xc6", b"\xc7"]
    return st.builds(lambda h, n, tail: b"\x93\xa3app" + h + struct.pack(">I", n) + tail,
                     st.sampled_from(headers), st.integers(LIMIT, 2 ** 32 - 1),
                     st.binary(max_size=64))


def _bad_gzip():
    return st.builds(
        lambda junk, cut: (b"\x93\xa3app" + forward.pack_bin(b"\x1f\x8b\x08" + junk)
                           + b"\x81\xaacompressed\xa4gzip") if cut else
        (b"\x93\xa3app" + forward.pack_bin(forward.gzip_compress(b"\x00" * 200000))
         + b"\x81\xaacompressed\xa4gzip"),
        st.binary(max_size=200), st.booleans())


def _wrong_types():
    return st.builds(lambda parts: CODEC.packb(parts),
                     st.lists(_bad_values(), min_size=0, max_size=5))


MALFORMED = st.one_of(
    st.builds(lambda f, cut: f[:max(1, int(len(f) * cut))], st.sampled_from(GOOD),
              st.floats(0.01, 0.99)),                                    # truncated
    _wrong_types(), _huge_declared(), _bad_gzip(),
    st.binary(min_size=1, max_size=300),                                 # noise
)


def _session(key=None):
    return forward.ServerSession(CODEC, LIMIT, key, "agg", {}, b"n" * 16, b"a" * 16)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MALFORMED, st.integers(1, 64))
def test_session_refuses_malformed_input_without_raising(data, step):
    session = _session()
    for i in range(0, len(data), step):
        result = session.receive(data[i:i + step])
        for kind, request in result.events:
            assert kind == forward.REQUEST
            for t, record in request.events:
                assert isinstance(t, int) and ev.in_range(t) and isinstance(record, dict)
        assert session.pending() <= LIMIT
        if result.close is not None:
            break
    # the 200 kB gzip bomb in a 64 kB budget is refused, not inflated
    assert session.pending() <= LIMIT


def test_a_time_past_2106_is_refused_as_a_negative_one():
    # Message mode: Fluent Bit drops it ("could not ingest Forward message: -4"); here the
    # frame is refused as one with a negative time is. Forward mode keeps the entries before.
    for frame in (["app", 2 ** 40, {"a": 1}], ["app", 2 ** 32, {"a": 1}],
                  ["app", [[T // forward.NS, {"a": 1}], [1e12, {"a": 2}]]]):
        session = _session()
        result = session.receive(CODEC.packb(frame))
        assert "invalid time field" in result.close
        assert [event for _, r in result.events for event in r.events] == \
            ([(T, {"a": 1})] if isinstance(frame[1], list) else [])


@settings(max_examples=200, deadline=None)
@given(st.one_of(_wrong_types(), st.binary(max_size=200),
                 st.builds(lambda salt: forward.ping("h", salt, "0" * 128), st.binary(max_size=20))))
def test_bad_handshakes_are_refused(data):
    session = _session("key")
    assert session.send((forward.HELO,)).startswith(b"\x92\xa4HELO")
    assert session.receive(data).events == []
    assert not session.authenticated


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _closed_by_server(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        try:
            conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(65536):
                pass
        except (ConnectionResetError, BrokenPipeError):
            pass
    return True


def test_real_server_closes_counts_and_carries_on(spawn, tmp_path):
    port = free_port()
    log = tmp_path / "recv.log"
    conf = write(tmp_path / "recv.conf", service(Log_File=str(log))
                 + section("INPUT", Name="forward", Listen="127.0.0.1", Port=port,
                           Buffer_Chunk_Size="16k", Buffer_Max_Size="64k")
                 + section("OUTPUT", Name="null", Match="*"))
    child = spawn(["-c", conf])

    wait_for(lambda: accepts_connections(port))
    keeper = socket.create_connection(("127.0.0.1", port), timeout=10)
    keeper.sendall(GOOD[0][:10])               # a slow, honest sender mid-frame
    sent = {"bad": 0}
    rss = []

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                      HealthCheck.function_scoped_fixture])
    @given(MALFORMED)
    def throw(data):
        oracle = _session()
        if oracle.receive(data).close is not None or oracle.pending():
            sent["bad"] += 1
        assert _closed_by_server(port, data)
        rss.append(_rss_kb(child.proc.pid))

    throw()
    # every bad connection was closed and counted; the honest one still gets its ack
    wait_for(lambda: open(str(log)).read().count("closing connection") >= sent["bad"])
    keeper.sendall(GOOD[0][10:])
    reply = keeper.recv(100)
    assert reply.startswith(b"\x81\xa3ack")
    keeper.close()
    assert child.proc.poll() is None
    assert max(rss) < 120 * 1024, max(rss)
