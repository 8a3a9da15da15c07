"""fluentbit_logs: edgeship's own log lines as records, from a real edgeship child (its start-up
warning, a tcp input's warnings about bad data) into a file output; lines logged while the
input emits its records are not taken back; the bound on waiting lines."""
import io
import json
import os
import socket
import time

from conftest import accepts_connections, free_port, wait_for
from edgeship.engine.loader import Loader
from edgeship.engine.log import Log, Mirror
from edgeship.plugins.inputs.fluentbit_logs import QUEUE_LIMIT

CONFIG = """\
[SERVICE]
    Flush     0.2
    Log_Level info
    Log_File  {log}
    No_Such_Key on
[INPUT]
    Name   tcp
    Listen 127.0.0.1
    Port   {port}
    Tag    data
[INPUT]
    Name fluentbit_logs
    Tag  logs
[FILTER]
    Name   python
    Match  logs
    Script fail.py
    Call   fail
[OUTPUT]
    Name  file
    Match logs
    Path  {out}
    File  logs.txt
[OUTPUT]
    Name  null
    Match data
"""


def records(path):
    """(time, record) of each line the file output wrote (``logs: [time, {...}]``)."""
    if not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        tag, _, body = line.partition(": ")
        assert tag == "logs"
        stamp, record = json.loads(body)
        found.append((stamp, record))
    return found


def send(port, data):
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(data)


def test_a_childs_own_warnings_come_out_as_records(spawn, tmp_path):
    port = free_port()
    log = tmp_path / "edgeship.log"
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "fail.py").write_text(
        "def fail(events):\n    raise RuntimeError('this filter fails on every batch')\n")
    conf = tmp_path / "edgeship.conf"
    conf.write_text(CONFIG.format(log=log, port=port, out=out))
    spawn(["-c", str(conf)])
    wait_for(lambda: accepts_connections(port))
    send(port, b"this is not json\n")

    def bad(n):
        return [r for _, r in records(out / "logs.txt")
                if "invalid JSON message" in r["message"]][n:]

    wait_for(lambda: bad(0), timeout=30)
    got = records(out / "logs.txt")
    # The warning written before any input existed comes first; then the start-up lines.
    first = got[0][1]
    assert first["level"] == "warn" and first["message"].startswith("[engine] ")
    assert "unknown [SERVICE] key 'no_such_key' ignored" in first["message"]
    assert {"level": "info", "message": "[tcp.0] listening on 127.0.0.1:%d" % port} \
        in [r for _, r in got]
    warning = bad(0)[0]
    assert list(warning) == ["level", "message"] and warning["level"] == "warn"
    assert warning["message"].startswith("[tcp.0] invalid JSON message, skipping: ")
    # The record's time is the line's: the Log_File line with the same text.
    stamp = [t for t, r in got if r == warning][0]
    micros = int(round(stamp * 1e6))
    when = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(micros // 1000000))
    assert "[%s.%03d] [ warn] %s" % (when, micros // 1000 % 1000, warning["message"]) \
        in log.read_text().splitlines()
    # A second bad message: its record comes after the failures of the filter on the
    # batches before it were logged; none of those failures is a record.
    send(port, b"nor is this\n")
    wait_for(lambda: bad(1), timeout=30)
    messages = [r["message"] for _, r in records(out / "logs.txt")]
    assert not [m for m in messages if "this filter fails" in m]
    assert "this filter fails on every batch" in log.read_text()


def build(tmp_path, body, service="Log_Level info"):
    conf = tmp_path / "edgeship.conf"
    conf.write_text("[SERVICE]\n    %s\n    No_Such_Key on\n%s[OUTPUT]\n    Name null\n"
                    "    Match *\n" % (service, body))
    loader = Loader(environ=dict(os.environ), log_stream=io.StringIO())
    return loader.build(loader.read(str(conf)))


def test_which_lines_are_taken_follows_the_log_levels(tmp_path):
    engine = build(tmp_path, "[INPUT]\n    Name fluentbit_logs\n[INPUT]\n    Name dummy\n"
                   "    Log_Level debug\n", service="Log_Level warn")
    logs, dummy = engine.inputs
    engine.log.info("not taken: the service logs warnings and errors")
    dummy.log.debug("taken: dummy.1 logs at debug level")
    dummy.log.error("taken too")
    assert [(r["level"], r["message"]) for _, r in logs.pending] == [
        ("warn", "[engine] %s:3: unknown [SERVICE] key 'no_such_key' ignored"
         % (tmp_path / "edgeship.conf")),
        ("debug", "[dummy.1] taken: dummy.1 logs at debug level"),
        ("error", "[dummy.1] taken too")]


def test_at_most_1024_lines_wait_and_the_rest_are_counted(tmp_path):
    engine = build(tmp_path, "[INPUT]\n    Name fluentbit_logs\n")
    logs, = engine.inputs
    for n in range(QUEUE_LIMIT + 10):
        logs.log.info("line %d", n)
    assert len(logs.pending) == QUEUE_LIMIT
    logs._flush()
    assert logs.context.counters["records"] == QUEUE_LIMIT
    assert [r["message"] for _, r in logs.pending] == [
        "[fluentbit_logs.0] 11 log lines dropped: 1024 were waiting"]


def test_the_mirror_keeps_start_up_lines_until_the_pipeline_starts():
    mirror = Mirror()
    log = Log("info", io.StringIO(), mirror=mirror)
    log.warn("before any tap")
    first, second = [], []
    mirror.tap(lambda *line: first.append(line[2]))
    log.child("tail.0").info("after the first tap")
    mirror.tap(lambda *line: second.append(line[2]))
    mirror.started()
    with mirror.muted():
        log.error("written, not mirrored")
    log.info("after the start")
    assert first == ["[engine] before any tap", "[tail.0] after the first tap",
                     "[engine] after the start"]
    assert second == first
    assert "written, not mirrored" in log.stream.getvalue()
    late = []
    mirror.tap(lambda *line: late.append(line))
    assert late == []
