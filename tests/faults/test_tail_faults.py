"""tail under faults: copytruncate while the input is paused or behind a fast writer, several
rotations during one pause, a restart after a copytruncate, a path swapped for a directory or
a FIFO. Real files and real edgeship processes; every numbered line written is counted where it
comes out. Copies and rotated files stay under a name Path matches (``app.log*``), so every line
stays readable by some tool and the expected loss is zero: copy and truncate always happen while
the writer is stopped, which leaves logrotate's own window (lines written between its copy and
its truncate) empty."""
import collections
import json
import os
import re
import shutil
import sqlite3
import time

from conftest import accepts_connections, free_port, wait_for

from edgeship.plugins.inputs.tail import reading as tail_reading

LINE = "%s%07d " + "x" * 40 + "\n"          # 50 bytes: a series letter and a number


def write_lines(path, series, start, stop):
    with open(path, "a") as f:
        f.write("".join(LINE % (series, i) for i in range(start, stop)))


def copytruncate(path, copy):
    with open(path, "rb") as src, open(copy, "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.truncate(path, 0)


def delivered(out_file):
    """Counter of the (series, number) of every numbered line in a Format plain file output."""
    seen = collections.Counter()
    if not os.path.exists(out_file):
        return seen
    with open(out_file, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"([a-z])(\d{7}) x{40}$", json.loads(line)["log"])
            assert m, "a garbled line came out: %r" % line
            seen[(m.group(1), int(m.group(2)))] += 1
    return seen


class Newest:
    """The highest line number that came out in ``out_file`` so far (-1: none), read on from
    where the last call stopped."""

    def __init__(self, out_file):
        self.out_file = out_file
        self.pos = 0
        self.number = -1

    def __call__(self):
        try:
            with open(self.out_file, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except OSError:
            return self.number
        data = data[:data.rfind(b"\n") + 1]
        self.pos += len(data)
        self.number = max([self.number] + [int(n) for n in re.findall(rb'"[a-z](\d{7}) ', data)])
        return self.number


def missing(seen, series, count):
    return [i for i in range(count) if (series, i) not in seen]


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def config(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def edge_config(tmp_path, tail_keys, output):
    return config(tmp_path / "edge.conf", (
        "[SERVICE]\n    Flush 0.2\n    Grace 2\n    Log_Level info\n    Log_File %s\n"
        "    scheduler.base 0.2\n    scheduler.cap 0.5\n"
        "[INPUT]\n    Name tail\n    Tag app\n    Read_From_Head on\n    Refresh_Interval 0.3\n"
        "%s%s") % (tmp_path / "edge.log", "".join("    %s %s\n" % kv for kv in tail_keys),
                   output))


def file_output(out_dir):
    return ("[OUTPUT]\n    Name file\n    Match *\n    Path %s\n    Mkdir on\n    File out\n"
            "    Format plain\n" % out_dir)


def forward_output(port):
    return ("[OUTPUT]\n    Name forward\n    Match *\n    Host 127.0.0.1\n    Port %d\n"
            "    Retry_Limit no_limits\n" % port)


def start_receiver(spawn, tmp_path, port, out_dir):
    """An edgeship forward input -> file output: the output the edge waits for."""
    conf = config(tmp_path / "recv.conf",
                  "[SERVICE]\n    Flush 0.2\n    Log_Level info\n"
                  "[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port %d\n%s"
                  % (port, file_output(out_dir)))
    child = spawn(["-c", conf])
    wait_for(lambda: accepts_connections(port))
    return child


def test_copytruncate_while_paused_by_mem_buf_limit_loses_nothing(tmp_path, spawn):
    """The output is down, the tail is paused by Mem_Buf_Limit in the middle of the file, the
    file is copytruncated and grows past the old offset, then the output comes up: the new
    content is read from its start (before the fix it was read from the old offset)."""
    log = tmp_path / "app.log"
    old, new = 20000, 20000
    write_lines(log, "a", 0, old)
    port = free_port()
    out = tmp_path / "out"
    edge = spawn(["-c", edge_config(tmp_path, [("Path", "%s*" % log), ("Mem_Buf_Limit", "64k")],
                                    forward_output(port))])
    wait_for(lambda: "paused (mem buf overlimit)" in read(tmp_path / "edge.log"))
    copytruncate(log, tmp_path / "app.log.1")
    write_lines(log, "b", 0, new)
    start_receiver(spawn, tmp_path, port, out)

    def complete():
        seen = delivered(out / "out")
        return not missing(seen, "a", old) and not missing(seen, "b", new)

    try:
        wait_for(complete, timeout=90)
    except AssertionError:
        seen = delivered(out / "out")
        raise AssertionError("lost %d old and %d new lines" % (
            len(missing(seen, "a", old)), len(missing(seen, "b", new))))
    edge.kill()


def test_copytruncate_behind_a_fast_writer_reads_each_generation_from_its_start(tmp_path,
                                                                                spawn):
    """Bursts of several MB, far faster than the tail hands its lines on (a small
    Mem_Buf_Limit and the output's flush interval set its pace); each burst is copytruncated
    as soon as its first lines came out, so the truncation finds the tail in the middle of the
    file, and the next burst grows the file past the tail's offset at once. Path is app.log
    alone: what the tail had not read of a generation stays in its copy (copytruncate's own
    loss, at the end of a generation), but each generation must be read from its start, and
    the last one whole."""
    log = tmp_path / "app.log"
    log.write_text("")
    out = tmp_path / "out"
    budget = 128 * 1024
    spawn(["-c", edge_config(tmp_path, [("Path", str(log)), ("Mem_Buf_Limit", budget)],
                             file_output(out))])
    # The tail is at most its budget and a read block ahead of what came out.
    ahead = (budget + tail_reading.BLOCK) // len(LINE % ("c", 0)) + 1
    sizes = (100000,) * 7
    starts = [sum(sizes[:n]) for n in range(len(sizes) + 1)]
    # Made beforehand, so that each burst follows its copytruncate at once.
    bursts = ["".join(LINE % ("c", i) for i in range(start, start + size))
              for start, size in zip(starts, sizes)]
    newest = Newest(out / "out")
    with open(log, "a") as f:
        f.write(bursts[0])
    mid_file = 0
    for burst in range(1, len(sizes)):
        wait_for(lambda: newest() >= starts[burst - 1], timeout=60)
        mid_file += newest() + ahead < starts[burst]
        copytruncate(log, tmp_path / ("app.log.%d" % burst))
        with open(log, "a") as f:
            f.write(bursts[burst])
    wait_for(lambda: newest() == starts[-1] - 1, timeout=120, interval=0.5)
    seen = delivered(out / "out")
    for first, end in zip(starts, starts[1:]):
        got = sum(1 for n in range(first, end) if ("c", n) in seen)
        assert all(("c", n) in seen for n in range(first, first + got)), \
            "lines %d..%d: %d came out, not from the start of the generation" % (first, end, got)
    lost = [n for n in range(starts[-2], starts[-1]) if ("c", n) not in seen]
    assert not lost, "%d lines of the last generation lost" % len(lost)
    assert mid_file, "no copytruncate found the tail in the middle of the file"


def test_rotations_during_a_pause_are_all_followed(tmp_path, spawn):
    """While the output is down, app.log is renamed twice, each time replaced by a new file:
    every generation is picked up (and held open) during the pause, so none is lost."""
    log = tmp_path / "app.log"
    per = 10000
    write_lines(log, "a", 0, per)
    port = free_port()
    out = tmp_path / "out"
    edge_log = tmp_path / "edge.log"
    # Path matches app.log only: the renamed generations are followed through their open
    # descriptor, for Rotate_Wait and until they are read to their end.
    spawn(["-c", edge_config(tmp_path, [("Path", str(log)), ("Mem_Buf_Limit", "64k"),
                                        ("Rotate_Wait", "1")], forward_output(port))])
    wait_for(lambda: "paused (mem buf overlimit)" in read(edge_log))
    for generation, series in ((1, "b"), (2, "c")):
        os.rename(log, tmp_path / ("app.log.%d" % generation))
        write_lines(log, series, 0, per)
        wait_for(lambda: "=> %s/app.log.%d" % (tmp_path, generation) in read(edge_log))
    start_receiver(spawn, tmp_path, port, out)

    def lost():
        seen = delivered(out / "out")
        return sum(len(missing(seen, series, per)) for series in "abc")

    wait_for(lambda: lost() == 0, timeout=90)


def db_offset(db):
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT offset FROM in_tail_files").fetchone()[0]
    finally:
        conn.close()


def test_restart_after_a_copytruncate_while_stopped_reads_the_new_content(tmp_path, spawn):
    """The DB offset lies inside the new content after a copytruncate done while edgeship was
    not running (the file grew past it again): the offset marker shows the bytes before it
    changed, so the file is read from its start, as Fluent Bit 5.1.1 does."""
    log = tmp_path / "app.log"
    write_lines(log, "a", 0, 1000)
    db = str(tmp_path / "tail.db")
    out = tmp_path / "out"
    conf = edge_config(tmp_path, [("Path", str(log)), ("DB", db)], file_output(out))
    edge = spawn(["-c", conf])
    wait_for(lambda: not missing(delivered(out / "out"), "a", 1000))
    wait_for(lambda: db_offset(db) == os.path.getsize(log))
    assert edge.terminate()[0] == 0
    copytruncate(log, tmp_path / "app.log.1")
    write_lines(log, "b", 0, 3000)
    spawn(["-c", conf])
    wait_for(lambda: not missing(delivered(out / "out"), "b", 3000), timeout=30)


def test_path_swapped_for_a_directory_or_a_fifo_never_hangs(tmp_path, spawn):
    logs = tmp_path / "logs"
    logs.mkdir()
    out = tmp_path / "out"
    spawn(["-c", edge_config(tmp_path, [("Path", "%s/*.log" % logs)], file_output(out))])
    write_lines(logs / "a.log", "a", 0, 1000)
    write_lines(logs / "b.log", "b", 0, 1000)
    wait_for(lambda: not missing(delivered(out / "out"), "a", 1000))
    os.rename(logs / "a.log", tmp_path / "a.old")
    os.mkdir(logs / "a.log")
    os.rename(logs / "b.log", tmp_path / "b.old")
    os.mkfifo(logs / "b.log")
    write_lines(tmp_path / "a.old", "a", 1000, 2000)
    write_lines(tmp_path / "b.old", "b", 1000, 2000)
    write_lines(logs / "c.log", "c", 0, 1000)
    # The input is alive and kept reading the renamed files; nothing opened the FIFO.
    wait_for(lambda: not (missing(delivered(out / "out"), "a", 2000)
                          or missing(delivered(out / "out"), "b", 2000)
                          or missing(delivered(out / "out"), "c", 1000)), timeout=30)


# ---------------------------------------------------------------- random interleavings
# The tail input driven step by step in this process, on real files, by hypothesis: writes,
# copytruncates, renames, reads, polls, confirmations in any order and restarts from the DB.
# A pause of the input is simply a stretch of steps without a read. The block size is cut
# down so that a few thousand lines span many reads. Path is app.log alone: a copy is not
# followed, so the lines not read before a copytruncate are legitimately gone; what must hold
# is that each generation of the file is read from its start without a gap, and that the
# generations not copytruncated away are delivered whole.

MODEL_LINE = "%08d-------\n"                    # 16 bytes


class Model:
    """The files as hypothesis changes them, and the tail input that follows them."""

    def __init__(self, folder):
        self.folder = folder
        self.log = os.path.join(folder, "app.log")
        self.db = os.path.join(folder, "tail.db")
        open(self.log, "w").close()
        self.written = 0
        self.copies = 0
        # [first line, end line, how it ended]: the lines of each content app.log had
        # (a copytruncate or a rename ends one).
        self.generations = [[0, 0, None]]
        self.emitted = collections.Counter()
        self.confirmed = collections.Counter()
        self.tail = None
        self.start()

    def start(self):
        from edgeship.core.schema import Entry
        from edgeship.engine.loader import Loader, command_line_section
        section = command_line_section("INPUT", "tail", 1)
        section.entries += [Entry("path", self.log), Entry("db", self.db),
                            Entry("read_from_head", "on"), Entry("rotate_wait", "1000")]
        self.tail = Loader().build([section]).inputs[0]
        self.held = []                  # (ack, line numbers) emitted, not yet confirmed
        self.tail.context.emit = self.emit
        assert self.tail._open_db()
        self.tail._scan(startup=True)

    def emit(self, tag, events, size=0, ack=None):
        numbers = [int(record["log"][:8]) for _, record in events]
        self.emitted.update(numbers)
        ack.add()
        ack.seal()
        self.held.append((ack, numbers))

    def confirm(self, count):
        for ack, numbers in self.held[:count]:
            self.confirmed.update(numbers)
            ack.release()
        del self.held[:count]

    def write(self, count):
        with open(self.log, "a") as f:
            f.write("".join(MODEL_LINE % i for i in range(self.written, self.written + count)))
        self.written += count
        self.generations[-1][1] = self.written

    def next_generation(self, how):
        self.copies += 1
        self.generations[-1][2] = how
        self.generations.append([self.written, self.written, None])
        return self.log + ".%d" % self.copies

    def copytruncate(self, then_write):
        """logrotate's copytruncate, then the application goes on writing."""
        copytruncate(self.log, self.next_generation("copytruncate"))
        self.write(then_write)

    def rename(self, then_write):
        """A rename and a new file, which the application goes on writing."""
        # Each generation lives longer than a poll interval (the input polls while paused
        # too): one that comes and goes unseen in between is out of any poller's reach.
        self.poll()
        os.rename(self.log, self.next_generation("rename"))
        open(self.log, "w").close()
        self.write(then_write)

    def read(self, rounds):
        for _ in range(rounds):
            for f in list(self.tail.files.values()):
                if not (f.at_eof or f.closed or f.stalled):
                    self.tail._read(f)

    def poll(self):
        self.tail._poll(time.monotonic())
        self.tail._scan(startup=False)

    def restart(self):
        """SIGKILL and start again: batches not confirmed are gone with the process, so every
        line before the offset each file resumes at must have been confirmed."""
        for f in list(self.tail.files.values()):
            os.close(f.fd)
        self.tail.db.conn.close()
        # A renamed generation no longer matches Path: the new process does not look for it
        # (nor does Fluent Bit), so like a copy it keeps only what was read.
        for generation in self.generations:
            if generation[2] == "rename":
                generation[2] = "renamed before a restart"
        self.start()
        for f in self.tail.files.values():
            with open(f.name, "rb") as src:
                before = src.read(f.read_pos)
            for line in before.splitlines():
                assert int(line[:8]) in self.confirmed, \
                    "%s resumes at %d past unconfirmed line %s" % (f.name, f.read_pos, line)

    def drain(self):
        for _ in range(10000):
            self.confirm(len(self.held))
            self.poll()
            if all(f.at_eof or f.stalled for f in self.tail.files.values()):
                self.poll()             # a last look at sizes and contents
                if all(f.at_eof or f.stalled for f in self.tail.files.values()):
                    break
            self.read(1)
        self.confirm(len(self.held))
        for f in list(self.tail.files.values()):
            os.close(f.fd)
        self.tail.db.conn.close()

    def check(self):
        for first, end, how in self.generations:
            if how in ("copytruncate", "renamed before a restart"):
                # Read from its start up to where the copytruncate found the tail.
                got = [n for n in range(first, end) if n in self.emitted]
                assert got == list(range(first, first + len(got))), \
                    "a gap in lines %d..%d: %d of them read" % (first, end, len(got))
            else:
                lost = [n for n in range(first, end) if n not in self.confirmed]
                assert not lost, "%d of lines %d..%d lost, the first %d" % (
                    len(lost), first, end, lost[0])


def model_steps():
    """Steps for the model, writes and reads weighted up: (method, arguments...)."""
    from hypothesis import strategies as st
    # A block holds 256 lines: sizes around it and well past it, and a few single lines.
    lines = st.sampled_from([0, 1, 3, 200, 300, 700, 3000]) | st.integers(0, 3000)
    return st.lists(st.one_of(
        st.tuples(st.just("write"), lines), st.tuples(st.just("read"), st.integers(1, 3)),
        st.tuples(st.sampled_from(["copytruncate", "rename"]), lines),
        st.tuples(st.just("confirm"), st.integers(1, 5)),
        st.sampled_from([("poll",), ("restart",)])), min_size=5, max_size=40)


def test_random_interleavings_of_writes_rotations_pauses_and_restarts_lose_nothing():
    import tempfile

    from hypothesis import HealthCheck, example, given, settings

    @settings(max_examples=300, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(model_steps())
    # The reported case: a copytruncate while the input is behind, the file regrows past it.
    @example([("write", 3000), ("read", 1), ("copytruncate", 3000), ("read", 1)])
    def interleaving(steps):
        with tempfile.TemporaryDirectory() as folder:
            model = Model(folder)
            for step in steps:
                getattr(model, step[0])(*step[1:])
            model.drain()
            model.check()

    block = tail_reading.BLOCK
    tail_reading.BLOCK = 4096
    try:
        interleaving()
    finally:
        tail_reading.BLOCK = block
