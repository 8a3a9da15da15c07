"""Metrics chunks end to end: Fluent Bit's metrics forward frame into in_forward, through the
queues and the spool, out of forward (the same frame, acked) and stdout (its text lines)."""
import asyncio
import io
import os
import socket

import msgpack
import pytest

from conftest import accepts_connections, free_port, wait_for
from forward_capture import Capture
from edgeship.codecs import cmetrics
from edgeship.codecs.entries import METRICS
from edgeship.core import chunkframe as cf
from edgeship.core import forward
from edgeship.engine.log import Log
from edgeship.storage.manager import Storage

DATA = os.path.join(os.path.dirname(__file__), "data", "cmetrics")
with open(os.path.join(DATA, "scrape_context.msgpack"), "rb") as _f:
    CONTEXT = _f.read()


def metrics_frame(payload, chunk=None):
    options = {"fluent_signal": 1}
    if chunk:
        options = {"chunk": chunk, "fluent_signal": 1}
    return msgpack.packb(["scraped", payload, options], use_bin_type=True)


def _send(port, data, expect_ack=None):
    """Send ``data``; the reply (an ack map) or None when the server closed first."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(data)
        if expect_ack is None:
            return None
        unpacker = msgpack.Unpacker(raw=False)
        while True:
            piece = conn.recv(4096)
            if not piece:
                return None
            unpacker.feed(piece)
            for reply in unpacker:
                return reply


def _relay_conf(tmp_path, in_port, outputs):
    conf = tmp_path / "relay.conf"
    conf.write_text("[SERVICE]\n    Flush 0.2\n    Log_File %s\n    storage.path %s\n"
                    "[INPUT]\n    Name forward\n    Port %d\n    storage.type filesystem\n%s"
                    % (tmp_path / "relay.log", tmp_path / "spool", in_port, outputs))
    return str(conf)


def test_fluent_bits_metrics_frame_is_relayed_as_it_came(spawn, tmp_path):
    capture = Capture()
    in_port = free_port()
    relay = spawn(["-c", _relay_conf(tmp_path, in_port,
                                     "[OUTPUT]\n    Name forward\n    Match *\n    Port %d\n"
                                     "    Require_Ack_Response on\n" % capture.port)])
    wait_for(lambda: accepts_connections(in_port))
    assert _send(in_port, metrics_frame(CONTEXT, "abc123"), expect_ack=True) == \
        {"ack": "abc123"}
    wait_for(lambda: capture.frames)
    tag, payload, options = capture.frames[0]
    assert (tag, payload) == ("scraped", CONTEXT)
    assert list(options) == ["chunk", "fluent_signal"] and options["fluent_signal"] == 1
    assert options["chunk"] == forward.chunk_id(CONTEXT)
    # Fluent Bit's bytes: bin16 payload, map32 options, no size key.
    assert b"".join(capture.raw).startswith(b"\x93\xa7scraped\xc5\x03\xe5" + CONTEXT
                                            + b"\xdf\x00\x00\x00\x02\xa5chunk")
    assert relay.proc.poll() is None


def test_metrics_print_as_text_on_stdout_and_bad_contexts_close_the_connection(spawn,
                                                                            tmp_path):
    in_port = free_port()
    child = spawn(["-c", _relay_conf(tmp_path, in_port,
                                     "[OUTPUT]\n    Name stdout\n    Match *\n")])
    wait_for(lambda: accepts_connections(in_port))
    (context,) = cmetrics.decode(CONTEXT)
    context["metrics"][0]["meta"]["ver"] = 3
    # Refused as Fluent Bit refuses it: the connection closes, no ack.
    assert _send(in_port, metrics_frame(msgpack.packb(context), "bad"), expect_ack=True) is None
    assert _send(in_port, metrics_frame(CONTEXT, "good"), expect_ack=True) == {"ack": "good"}
    # Only the first context of a payload is ingested, as Fluent Bit does.
    assert _send(in_port, metrics_frame(CONTEXT + CONTEXT, "two"), expect_ack=True) == \
        {"ack": "two"}
    code, out, _ = child.terminate()
    expected = cmetrics.render_text(cmetrics.decode(CONTEXT))
    assert code == 0 and out == expected * 2
    log = (tmp_path / "relay.log").read_text()
    assert "cmt_decode_msgpack_create failed" in log and "version 3" in log


def test_a_metrics_chunk_survives_in_the_spool_as_its_own_kind(tmp_path):
    async def scenario():
        log = Log("error", io.StringIO())
        service = {"storage.path": str(tmp_path), "storage.sync": "normal",
                   "storage.backlog.mem_limit": 1 << 20,
                   "storage.delete_irrecoverable_chunks": False}
        storage = Storage(service, log, 1 << 20, lambda: None)
        queue = storage.add_output("out.0", 0, lambda: None, lambda *a: None)
        storage.start()
        budget = storage.add_input("in.0", "filesystem")
        storage.put_metrics(budget, "m", CONTEXT, None, [queue])
        storage.put(budget, "m", [(1, {"log": "x"})], None, [queue])
        storage.tick()
        await storage.close()
        again = Storage(service, log, 1 << 20, lambda: None)
        queue = again.add_output("out.0", 0, lambda: None, lambda *a: None)
        again.start()
        chunks = [await again.load(c) for c in queue.pending()]
        await again.close()
        return chunks
    metrics, logs = asyncio.run(scenario())
    assert (metrics.signal, metrics.tag, metrics.count, metrics.payload) == \
        (METRICS, "m", 1, CONTEXT)
    assert logs.signal != METRICS and logs.events() == [(1, {"log": "x"})]


@pytest.mark.parametrize("version", [cf.LOGS, cf.METRICS])
def test_frames_keep_their_kind(version):
    data = cf.encode(1, "t", b"payload", 1, 0, 0, 0, version)
    frame = cf.decode_at(data)
    assert frame.version == version and frame.payload == b"payload"
