"""Hot reload (Hot_Reload On, -Y, SIGHUP, POST /api/v2/reload) on real processes: a bad new
config keeps the old pipeline, a reload while the output is dead loses nothing, twenty
reloads under load lose nothing and leak no file descriptors or memory."""
import asyncio
import io
import json
import os
import signal
import sys
import types
import urllib.request

import pytest

from edgeship.core.schema import Option
from edgeship.engine.loader import Loader
from edgeship.engine.plugin import OK, Output

from conftest import free_port, wait_for
from test_forward_e2e import received, section, service, start_receiver, write
from test_outputs_file import fill, small_disk  # noqa: F401 (a fixture)


def api(port, path, method="GET"):
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                     data=b"" if method in ("POST", "PUT") else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def api_json(port, path, method="GET"):
    return json.loads(api(port, path, method)[1])


def reloads(port):
    """Reloads done; None while the server does not answer yet."""
    try:
        return api_json(port, "/api/v2/reload")["hot_reload_count"]
    except OSError:
        return None


def records_in(port):
    try:
        metrics = api_json(port, "/api/v1/metrics")
    except OSError:
        return 0
    return sum(entry["records"] for entry in metrics["input"].values())


def log_of(tmp_path):
    return str(tmp_path / "edgeship.log")


def read_log(tmp_path):
    try:
        with open(log_of(tmp_path)) as f:
            return f.read()
    except OSError:
        return ""


def numbered(path, start, count):
    with open(path, "a") as f:
        f.write("".join('{"seq": %d}\n' % n for n in range(start, start + count)))


def sequence_numbers(out_dir):
    return {record["seq"] for _tag, _t, record in received(out_dir) if "seq" in record}


def test_a_bad_new_config_keeps_the_old_pipeline_running(spawn, tmp_path):
    http = free_port()
    good = (service(HTTP_Server="On", HTTP_Listen="127.0.0.1", HTTP_Port=http,
                    Hot_Reload="On", Log_File=log_of(tmp_path))
            + section("INPUT", Name="dummy", Rate=20) + section("OUTPUT", Name="null", Match="*"))
    conf = write(tmp_path / "fluent-bit.conf", good)
    child = spawn(["-c", conf])
    wait_for(lambda: records_in(http) > 0)
    write(conf, good.replace("Name null", "Name nul"))
    assert api_json(http, "/api/v2/reload", "POST") == {"reload": "done", "status": 0}
    wait_for(lambda: "the running one is kept" in read_log(tmp_path))
    assert "section 'nul' tried to instance a plugin name that doesn't exist (did you mean " \
        "'null'?)" in read_log(tmp_path)
    # Still reading and delivering, not reloaded.
    before = records_in(http)
    wait_for(lambda: records_in(http) > before)
    assert reloads(http) == 0
    child.proc.send_signal(signal.SIGHUP)  # the same again through the signal
    wait_for(lambda: read_log(tmp_path).count("the running one is kept") == 2)
    assert child.proc.poll() is None
    # A good config again: it reloads.
    write(conf, good)
    child.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: reloads(http) == 1)
    assert "[ info] [reload] successful reload done" in read_log(tmp_path)
    code, _out, _err = child.terminate()
    assert code == 0


def test_without_hot_reload_sighup_is_logged_and_ignored(spawn, tmp_path):
    http = free_port()
    conf = write(tmp_path / "fluent-bit.conf",
                 service(HTTP_Server="On", HTTP_Listen="127.0.0.1", HTTP_Port=http,
                         Log_File=log_of(tmp_path))
                 + section("INPUT", Name="dummy", Rate=20)
                 + section("OUTPUT", Name="null", Match="*"))
    child = spawn(["-c", conf])
    wait_for(lambda: records_in(http) > 0)
    child.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "[ warn] [reload] hot reloading is not enabled" in read_log(tmp_path))
    assert api_json(http, "/api/v2/reload", "POST") == {"reload": "not enabled",
                                                        "status": -1}
    before = records_in(http)
    wait_for(lambda: records_in(http) > before)
    assert child.terminate()[0] == 0


def _pipeline(tmp_path, http, forward_port, spool=None):
    """Two tail inputs (one spooled, one in memory) to one forward output."""
    keys = dict(HTTP_Server="On", HTTP_Listen="127.0.0.1", HTTP_Port=http, Hot_Reload="On",
                Log_File=log_of(tmp_path), Grace="2")
    keys["storage.path"] = str(spool or tmp_path / "spool")
    text = service(**keys)
    for name, storage in (("disk", "filesystem"), ("ram", "memory")):
        text += section("INPUT", Name="tail", Path=str(tmp_path / ("%s.log" % name)),
                        Tag=name, Read_from_Head="on", DB=str(tmp_path / ("%s.db" % name)),
                        Parser="json", Refresh_Interval="0.2", **{"storage.type": storage})
    text += section("OUTPUT", Name="forward", Match="*", Host="127.0.0.1", Port=forward_port,
                    Alias="to_receiver", Retry_Limit="no_limits")
    return text


def _parsers(tmp_path):
    return write(tmp_path / "parsers.conf", "[PARSER]\n    Name json\n    Format json\n")


@pytest.fixture(params=["spool", "full spool"])
def spool(request, tmp_path):
    """The spool folder: on the test's disk, or on a 1 MB tmpfs filled up (every spool write
    fails: the spooled input's chunks stay in memory only)."""
    if request.param == "spool":
        yield tmp_path / "spool"
        return
    disk = request.getfixturevalue("small_disk")
    (disk / "spool").mkdir()
    fill(disk)
    yield disk / "spool"


def test_a_reload_while_the_output_is_dead_loses_nothing(spawn, tmp_path, spool):
    http, forward_port = free_port(), free_port()
    conf = write(tmp_path / "fluent-bit.conf", _pipeline(tmp_path, http, forward_port, spool))
    parsers = _parsers(tmp_path)
    numbered(tmp_path / "disk.log", 0, 3000)
    numbered(tmp_path / "ram.log", 100000, 3000)
    child = spawn(["-c", conf, "-R", parsers])
    wait_for(lambda: records_in(http) == 6000)
    # Nothing listens on forward_port: every chunk waits, spooled or in memory.
    wait_for(lambda: api_json(http, "/api/v1/metrics")["output"]["to_receiver"]["retries"] > 0)
    for count in (1, 2):
        assert api(http, "/api/v2/reload", "PUT")[0] == 200
        wait_for(lambda: reloads(http) == count)
    assert "handed over by the reload" in read_log(tmp_path)
    if spool.parent == tmp_path / "disk":     # full: the spooled input's chunks were in RAM
        assert "IN MEMORY ONLY" in read_log(tmp_path)
    numbered(tmp_path / "disk.log", 3000, 500)
    numbered(tmp_path / "ram.log", 103000, 500)
    receiver = start_receiver(spawn, tmp_path, Port=forward_port)
    expected = set(range(0, 3500)) | set(range(100000, 103500))
    wait_for(lambda: sequence_numbers(tmp_path / "out") >= expected, timeout=60)
    assert child.terminate()[0] == 0
    receiver.kill()


def _fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_twenty_reloads_under_load_lose_nothing_and_leak_nothing(spawn, tmp_path):
    http = free_port()
    receiver = start_receiver(spawn, tmp_path)
    conf = write(tmp_path / "fluent-bit.conf", _pipeline(tmp_path, http, receiver.port))
    parsers = _parsers(tmp_path)
    child = spawn(["-c", conf, "-R", parsers])
    wait_for(lambda: reloads(http) == 0)
    written = 0
    samples = {}
    for count in range(1, 21):
        numbered(tmp_path / "disk.log", written, 200)
        numbered(tmp_path / "ram.log", 100000 + written, 200)
        written += 200
        assert api_json(http, "/api/v2/reload", "POST") == {"reload": "done", "status": 0}
        wait_for(lambda: reloads(http) == count)
        if count in (5, 20):
            # Settled: what was written is delivered, then the process is measured.
            expected = set(range(written)) | set(range(100000, 100000 + written))
            wait_for(lambda: sequence_numbers(tmp_path / "out") >= expected, timeout=60)
            samples[count] = (_fds(child.proc.pid), _rss_kb(child.proc.pid))
    fds5, rss5 = samples[5]
    fds20, rss20 = samples[20]
    assert fds20 <= fds5, samples
    assert rss20 - rss5 < 8 * 1024, samples  # KiB: fifteen more reloads, under 8 MiB more
    assert child.terminate()[0] == 0


# ------------------------------------------------------------------ in process
class HeldOutput(Output):
    """Every flush waits until ``release`` is set: an output that never answers (a
    blackholed host), as Fluent Bit's reload hangs on."""
    name = "held"
    description = "test output"
    options = (Option("Unused", help="no option needed"),)

    def configure(self):
        self.release = None
        self.started = 0
        self.delivered = []

    async def flush(self, chunk):
        self.started += 1
        if self.release is None:
            self.release = asyncio.Event()
        await self.release.wait()
        self.delivered.extend(record.get("n") for _, record in chunk.events())
        return OK


def _engine(tmp_path):
    sys.modules.setdefault("edgeship.plugins.outputs.held",
                           types.ModuleType("edgeship.plugins.outputs.held")).PLUGIN = HeldOutput
    conf = write(tmp_path / "held.conf",
                 service(Grace="2") + section("INPUT", Name="dummy", Samples=1, Tag="t")
                 + section("OUTPUT", Name="held", Match="*", Workers=2))
    loader = Loader(log_stream=io.StringIO())
    return loader.build(loader.read(conf))


def test_a_flush_that_never_answers_does_not_hold_the_reload_and_its_chunk_carries_over(
        tmp_path):
    async def scenario():
        old = _engine(tmp_path)
        await old.start()
        source = old.inputs[0].context
        for first in (0, 10, 20):
            source.emit("t", [(0, {"n": n}) for n in range(first, first + 10)])
            old.storage.tick()
        held = old.outputs[0].plugin
        while held.started < 2:  # two workers, both stuck
            await asyncio.sleep(0.01)
        new = _engine(tmp_path)
        # Half of Grace for the flushes in flight, then on: wait_for fails on a hang.
        handed = await asyncio.wait_for(old.hand_over({"held.0"}), 30)
        await new.start(None, handed)
        fresh = new.outputs[0].plugin
        fresh.release = asyncio.Event()
        fresh.release.set()
        while not set(range(30)) <= set(fresh.delivered):
            await asyncio.sleep(0.01)
        new.shutdown()
        await new.finish()
        return handed, held

    handed, held = asyncio.run(scenario())
    # The three chunks, two of them stuck in flushes that were cancelled, in their order.
    assert [c.count for c in handed["held.0"]] == [10, 10, 10]
    assert held.delivered == []      # the old output never answered
