"""[OUTPUT] tcp: the bytes Fluent Bit 5.1.1 sent (vectors), TLS, and a receiver that is down,
comes back, or closes the connection mid-stream."""
import io
import json

import msgpack

import pytest

from conftest import wait_for
from mosquitto import Certs
from stream_receivers import TcpCapture, run_tcp_vector, vector_names

# Vectors edgeship reproduces byte for byte.
TCP_VECTORS = ["out_tcp_json", "out_tcp_json_lines", "out_tcp_json_lines_date_iso8601",
               "out_tcp_json_stream", "out_tcp_raw_message_key_dollar",
               "out_tcp_raw_message_key_without_dollar"]
# Deliberate differences: vector -> what edgeship sends instead.
DIFFERENCES = {
    # The chunk's bytes as edgeship stores them: the smallest map headers where Fluent Bit's
    # log encoder writes map32 ones (edgeship/codecs/entries.py); the same values.
    "out_tcp_msgpack": "same entries, smallest map headers",
}


def test_every_vector_is_compared():
    assert vector_names("out_tcp_") == sorted(TCP_VECTORS + list(DIFFERENCES))


@pytest.mark.parametrize("name", TCP_VECTORS)
def test_bytes_equal_fluent_bit(tmp_path, spawn, name):
    want, got = run_tcp_vector(tmp_path, spawn, name)
    assert got == want


def unpack_all(data):
    return list(msgpack.Unpacker(io.BytesIO(data), raw=False, ext_hook=msgpack.ExtType))


def test_msgpack_sends_the_same_entries(tmp_path, spawn):
    want, got = run_tcp_vector(tmp_path, spawn, "out_tcp_msgpack",
                               done=lambda data: len(unpack_all(data)) == 3)
    assert got != want
    assert unpack_all(got) == unpack_all(want) and len(unpack_all(got)) == 3


def numbered_config(tmp_path, port, lines_file, **output):
    keys = {"Name": "tcp", "Match": "*", "Host": "127.0.0.1", "Port": str(port),
            "Format": "json_lines", "Retry_Limit": "no_limits"}
    keys.update(output)
    text = ("[SERVICE]\n    Flush 0.2\n    Grace 2\n    scheduler.base 0.2\n"
            "    scheduler.cap 0.5\n    Log_File %s\n" % (tmp_path / "edgeship.log") +
            "[INPUT]\n    Name tail\n    Path %s\n    Read_From_Head on\n    Tag n\n" % lines_file)
    text += "[OUTPUT]\n" + "".join("    %s %s\n" % kv for kv in keys.items())
    path = tmp_path / "edgeship.conf"
    path.write_text(text)
    return str(path)


def logged(tmp_path, text):
    path = tmp_path / "edgeship.log"
    return path.exists() and text in path.read_text()


def append(path, first, last):
    with open(path, "a") as f:
        f.write("".join(json.dumps({"i": i}) + "\n" for i in range(first, last)))


def numbers(capture):
    """The numbers of the complete lines received, connection after connection (a connection
    dropped in the middle of a write ends with part of a line)."""
    with capture.lock:
        pieces = [bytes(c) for c in capture.connections]
    return [json.loads(json.loads(line)["log"])["i"]
            for data in pieces for line in data.split(b"\n")[:-1]]


@pytest.mark.e2e
def test_receiver_down_then_up_loses_nothing(tmp_path, spawn):
    capture = TcpCapture()
    capture.stop()       # the port refuses connections
    lines = tmp_path / "in.jsonl"
    append(lines, 0, 500)
    spawn(["-c", numbered_config(tmp_path, capture.port, lines)])
    wait_for(lambda: logged(tmp_path, "could not deliver"), timeout=20)
    append(lines, 500, 1000)
    capture.start()
    wait_for(lambda: len(numbers(capture)) >= 1000, timeout=30)
    got = numbers(capture)
    assert sorted(set(got)) == list(range(1000))
    capture.stop()


def test_receiver_closing_the_connection_gets_a_new_one(tmp_path, spawn):
    capture = TcpCapture()
    lines = tmp_path / "in.jsonl"
    append(lines, 0, 100)
    spawn(["-c", numbered_config(tmp_path, capture.port, lines)])
    wait_for(lambda: len(numbers(capture)) == 100)
    capture.close_connections()     # the receiver closes between flushes
    append(lines, 100, 300)
    wait_for(lambda: len(numbers(capture)) >= 300)
    assert numbers(capture) == list(range(300))
    assert len(capture.connections) == 2
    capture.stop()


def test_receiver_gone_for_good_mid_stream_then_back(tmp_path, spawn):
    """The receiver closes and stops listening while records keep coming; what is appended
    meanwhile waits in the queue and arrives once it listens again."""
    capture = TcpCapture()
    lines = tmp_path / "in.jsonl"
    append(lines, 0, 100)
    spawn(["-c", numbered_config(tmp_path, capture.port, lines)])
    wait_for(lambda: len(numbers(capture)) == 100)
    capture.stop()
    append(lines, 100, 400)
    wait_for(lambda: logged(tmp_path, "could not deliver"), timeout=20)
    capture.start()
    wait_for(lambda: len(set(numbers(capture))) >= 400, timeout=30)
    assert sorted(set(numbers(capture))) == list(range(400))
    capture.stop()


def test_receiver_that_stops_reading_times_out_and_gets_everything_later(tmp_path, spawn):
    """The receiver stops reading: the kernel buffers fill, the write cannot finish within
    net.io_timeout, the flush is retried (the connection dropped with what it still held);
    once the receiver reads again every record arrives."""
    capture = TcpCapture()
    capture.reading.clear()
    lines = tmp_path / "in.jsonl"
    with open(lines, "w") as f:     # ~24 MB: more than the loopback socket buffers hold
        f.write("".join(json.dumps({"i": i, "pad": "x" * 1000}) + "\n" for i in range(24000)))
    spawn(["-c", numbered_config(tmp_path, capture.port, lines,
                                 **{"net.io_timeout": "1"})])
    wait_for(lambda: logged(tmp_path, "could not deliver"), timeout=30)
    capture.reading.set()
    wait_for(lambda: len(set(numbers(capture))) >= 24000, timeout=60)
    assert sorted(set(numbers(capture))) == list(range(24000))
    capture.stop()


def test_tls(tmp_path, spawn):
    certs = Certs(str(tmp_path / "certs"))
    capture = TcpCapture(ssl_ctx=certs.server_context())
    lines = tmp_path / "in.jsonl"
    append(lines, 0, 50)
    spawn(["-c", numbered_config(tmp_path, capture.port, lines, tls="on",
                                 **{"tls.ca_file": certs.ca, "tls.verify_hostname": "on",
                                    "Host": "localhost"})])
    wait_for(lambda: len(numbers(capture)) >= 50)
    assert numbers(capture) == list(range(50))
    capture.stop()


@pytest.mark.e2e
def test_spooled_chunks_survive_a_sigkill_and_drain_when_the_receiver_comes_back(
        tmp_path, spawn):
    """The receiver is down; the chunks go to the spool (storage.type filesystem); edgeship is
    SIGKILLed, the file it read is deleted, and it is started again: only the spool can
    deliver; then the receiver comes up and gets every record."""
    capture = TcpCapture()
    capture.stop()
    lines = tmp_path / "in.jsonl"
    append(lines, 0, 500)
    conf = tmp_path / "spooled.conf"
    conf.write_text(
        "[SERVICE]\n    Flush 0.2\n    Grace 2\n    scheduler.base 0.2\n"
        "    scheduler.cap 0.5\n    Log_File %s\n    storage.path %s\n"
        "[INPUT]\n    Name tail\n    Path %s\n    Read_From_Head on\n    Tag n\n"
        "    DB %s\n    storage.type filesystem\n"
        "[OUTPUT]\n    Name tcp\n    Match *\n    Port %d\n    Format json_lines\n"
        "    Retry_Limit no_limits\n"
        % (tmp_path / "edgeship.log", tmp_path / "spool", lines, tmp_path / "tail.db",
           capture.port))
    first = spawn(["-c", str(conf)])
    wait_for(lambda: logged(tmp_path, "could not deliver 500 records"))
    first.kill()
    lines.unlink()
    spawn(["-c", str(conf)])
    capture.start()
    wait_for(lambda: len(set(numbers(capture))) >= 500, timeout=30)
    assert sorted(set(numbers(capture))) == list(range(500))
    capture.stop()
