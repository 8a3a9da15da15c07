"""End to end durability with real child processes and real files: tail -> spool -> an output
that is slow, fails, or is dead (tests/spool_child.py), SIGKILL at random moments, damaged
segments, a size limit, a full disk.

Counts are scaled down from the issue's (200k lines, 20 kills) to keep the suite quick on a
small machine; the logic is the same.
"""
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest

from edgeship.codecs.entries import unpack_entries
from edgeship.storage.queue import CHUNK_BYTES
from edgeship.storage.segment import Segment, base_of
from conftest import wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = [sys.executable, os.path.join(HERE, "spool_child.py")]
PAD = "x" * 150


def _line(i):
    return "line-%07d %s" % (i, PAD)


class Setup:
    """Files of one scenario, and the edgeship child running on them."""

    def __init__(self, tmp_path, spool=None, output_extra="", input_extra="", service_extra="",
                 storage_type="filesystem"):
        self.dir = str(tmp_path)
        self.log = os.path.join(self.dir, "app.log")
        self.out = os.path.join(self.dir, "delivered.txt")
        self.dead = os.path.join(self.dir, "dead")
        self.spool = spool or os.path.join(self.dir, "spool")
        self.stderr_path = os.path.join(self.dir, "stderr.txt")
        self.lines = 0
        self.proc = None
        open(self.log, "w").close()
        self.conf = os.path.join(self.dir, "fluent-bit.conf")
        with open(self.conf, "w") as f:
            f.write("""[SERVICE]
    Flush           0.2
    Grace           1
    storage.path    {spool}
    scheduler.base  0
    scheduler.cap   1
{service_extra}
[INPUT]
    Name             tail
    Path             {log}
    Read_From_Head   on
    Refresh_Interval 1
    DB               {db}
    Tag              app
    storage.type     {storage_type}
{input_extra}
[OUTPUT]
    Name        flaky
    Match       *
    Path        {out}
    Dead_File   {dead}
    Retry_Limit no_limits
{output_extra}
""".format(spool=self.spool, log=self.log, db=os.path.join(self.dir, "tail.db"), out=self.out,
           dead=self.dead, service_extra=service_extra, input_extra=input_extra,
           output_extra=output_extra, storage_type=storage_type))

    def append(self, count):
        with open(self.log, "a") as f:
            f.write("".join(_line(i) + "\n" for i in range(self.lines, self.lines + count)))
        self.lines += count

    def start(self):
        self.proc = subprocess.Popen(CHILD + ["-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=open(self.stderr_path, "a"),
                                     start_new_session=True, cwd=self.dir)

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)

    def stderr(self):
        with open(self.stderr_path) as f:
            return f.read()

    def delivered(self):
        if not os.path.exists(self.out):
            return []
        with open(self.out) as f:
            return [line[:12] for line in f.read().splitlines()]

    def batches(self):
        with open(self.out + ".batches") as f:
            return [int(n) for n in f.read().split()]

    def spool_records(self):
        """Line numbers of every chunk in the output's spool, by chunk (read back as the
        replay would; while edgeship runs, a segment it deletes meanwhile is skipped)."""
        chunks = []
        for segment in self.segments():
            try:
                frames = list(segment.scan(keep_payload=True))
            except FileNotFoundError:
                continue  # the running edgeship deleted it (confirmed or over the limit)
            for frame in frames:
                numbers = [int(r["log"][5:12])
                           for _, r in unpack_entries(frame.payload, frame.count)]
                chunks.append((segment, frame.position, frame.size, numbers))
        return chunks

    def segments(self):
        directory = os.path.join(self.spool, "flaky.0")
        if not os.path.isdir(directory):
            return []
        bases = sorted(b for b in map(base_of, os.listdir(directory)) if b is not None)
        return [Segment(directory, b) for b in bases]

    def disk_usage(self):
        directory = os.path.join(self.spool, "flaky.0")
        total = 0
        for name in os.listdir(directory) if os.path.isdir(directory) else ():
            try:
                total += os.path.getsize(os.path.join(directory, name))
            except FileNotFoundError:
                pass  # deleted while we looked
        return total

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.kill()


@pytest.fixture
def setups():
    made = []
    yield made
    for setup in made:
        setup.cleanup()


def _expected(count):
    return ["line-%07d" % i for i in range(count)]


@pytest.mark.e2e
def test_sigkill_at_random_moments_loses_nothing(tmp_path, setups):
    rnd = random.Random(20261123)
    s = Setup(tmp_path, output_extra="    Delay 0.05\n    Fail_Ratio 0.2")
    setups.append(s)
    kills = 8
    for _ in range(kills):
        s.start()
        # Lines keep coming while the output delivers, fails and retries; then SIGKILL.
        deadline = time.monotonic() + rnd.uniform(0.8, 2.0)
        while time.monotonic() < deadline:
            s.append(rnd.randrange(50, 400))
            time.sleep(0.05)
        s.kill()
    s.start()
    wanted = set(_expected(s.lines))
    wait_for(lambda: wanted <= set(s.delivered()), timeout=60, interval=0.2)
    assert s.stop() == 0
    delivered = s.delivered()
    assert set(delivered) == wanted
    duplicates = len(delivered) - len(wanted)
    # At most one flush batch per kill: the one delivered but not yet confirmed.
    assert duplicates <= sum(sorted(s.batches())[-kills:]), duplicates
    assert "Traceback" not in s.stderr()


def test_power_loss_damage_costs_only_the_damaged_chunks(tmp_path, setups):
    rnd = random.Random(77)
    s = Setup(tmp_path, service_extra="    Flush 0.1")
    setups.append(s)
    open(s.dead, "w").close()
    for _ in range(3):           # each run writes its own segment
        s.start()
        wait_for(lambda: os.path.isdir(os.path.join(s.spool, "flaky.0")))
        for _ in range(20):      # tail polls every 0.25 s: several chunks per run
            s.append(100)
            time.sleep(0.1)
        wait_for(lambda: sum(len(c[3]) for c in s.spool_records()) == s.lines, timeout=30)
        s.kill()
    chunks = s.spool_records()
    assert len(chunks) >= 12 and len(s.segments()) == 3
    # Power loss: segments cut at random offsets, random bits flipped.
    damaged_at = {}
    for segment in {c[0].path: c[0] for c in chunks}.values():
        with open(segment.path, "rb") as f:
            data = bytearray(f.read())
        flips = [rnd.randrange(len(data)) for _ in range(rnd.randrange(1, 3))]
        for spot in flips:
            data[spot] ^= 1 << rnd.randrange(8)
        cut = rnd.randrange(len(data) // 2, len(data)) if rnd.random() < 0.5 else len(data)
        with open(segment.path, "wb") as f:
            f.write(bytes(data[:cut]))
        damaged_at[segment.path] = (flips, cut)
    intact = set()
    for segment, position, size, numbers in chunks:
        flips, cut = damaged_at[segment.path]
        if position + size <= cut and not any(position <= x < position + size for x in flips):
            intact.update("line-%07d" % n for n in numbers)
    assert 0 < len(intact) < s.lines
    os.unlink(s.dead)
    s.start()
    wait_for(lambda: len(s.delivered()) >= len(intact), timeout=30)
    assert s.stop() == 0
    assert sorted(s.delivered()) == sorted(intact)
    log = s.stderr()
    assert "Traceback" not in log
    for path in damaged_at:
        assert re.search(re.escape(path) + r": skipped \d+ damaged bytes at position \d+", log)
    check = subprocess.run([sys.executable, "-m", "edgeship", "spool", "check", s.spool],
                           capture_output=True, text=True)
    assert check.returncode == 1 and "DAMAGED" in check.stdout


def test_total_limit_size_with_a_dead_output(tmp_path, setups):
    limit = 1024 * 1024
    s = Setup(tmp_path, output_extra="    storage.total_limit_size 1M")
    setups.append(s)
    open(s.dead, "w").close()
    s.start()
    peak = 0
    for _ in range(50):
        s.append(500)
        for _ in range(3):
            peak = max(peak, s.disk_usage())
            time.sleep(0.02)

    def dropped():
        return sum(int(n) for n in re.findall(r"storage.total_limit_size \(\d+ bytes\) reached: "
                                              r"dropped the \d+ oldest chunks \((\d+) records",
                                              s.stderr()))

    def settled():
        held = sum(len(c[3]) for c in s.spool_records())
        return held + dropped() == s.lines

    wait_for(settled, timeout=30)
    peak = max(peak, s.disk_usage())
    assert s.stop() == 0
    assert dropped() > 0
    assert peak <= limit + CHUNK_BYTES + 64 * 1024
    # Alive again: what was kept is delivered in order, and with what was dropped makes all.
    os.unlink(s.dead)
    s.start()
    kept = s.lines - dropped()
    wait_for(lambda: len(s.delivered()) >= kept, timeout=30)
    assert s.stop() == 0
    assert s.delivered() == _expected(s.lines)[dropped():]


def test_dead_output_then_alive_drains_the_backlog_in_order(tmp_path, setups):
    s = Setup(tmp_path, service_extra="    scheduler.base 1\n    scheduler.cap 60")
    setups.append(s)
    open(s.dead, "w").close()
    s.start()
    for _ in range(20):
        s.append(500)
        time.sleep(0.05)
    wait_for(lambda: sum(len(c[3]) for c in s.spool_records()) == s.lines, timeout=30)
    time.sleep(2)  # a few failed retries: the backoff grows
    os.unlink(s.dead)
    # Retry waits of up to a minute by now: the backlog goes right after the first success.
    wait_for(lambda: len(s.delivered()) >= s.lines, timeout=20)
    assert s.stop() == 0
    assert s.delivered() == _expected(s.lines)
    assert "succeeded at retry" in s.stderr()


def test_disk_full_falls_back_to_memory_and_loses_nothing(tmp_path, setups):
    mount = str(tmp_path / "small")
    os.mkdir(mount)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mount], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip("cannot mount a 1 MB tmpfs here: %s" % exc)
    try:
        s = Setup(tmp_path, spool=mount, input_extra="    Mem_Buf_Limit 2M")
        setups.append(s)
        open(s.dead, "w").close()
        s.start()
        for _ in range(20):
            s.append(1000)   # 3.4 MB of lines for a 1 MB disk
            time.sleep(0.05)
        wait_for(lambda: "IN MEMORY ONLY" in s.stderr(), timeout=30)
        assert s.proc.poll() is None
        os.unlink(s.dead)
        wait_for(lambda: len(s.delivered()) >= s.lines, timeout=30)
        assert s.stop() == 0
        assert s.delivered() == _expected(s.lines)
        log = s.stderr()
        assert "No space left on device" in log
        assert "Traceback" not in log
    finally:
        for setup in setups:
            setup.cleanup()
        subprocess.run(["umount", mount], capture_output=True)


def test_memory_storage_pauses_the_input_and_resumes_it(tmp_path, setups):
    s = Setup(tmp_path, storage_type="memory", input_extra="    Mem_Buf_Limit 100K")
    setups.append(s)
    open(s.dead, "w").close()
    s.append(5000)       # 800 KB of lines for a 100 KB budget
    s.start()
    wait_for(lambda: "tail.0 paused (mem buf overlimit)" in s.stderr())
    assert s.delivered() == []
    os.unlink(s.dead)
    wait_for(lambda: len(s.delivered()) >= s.lines, timeout=30)
    assert s.stop() == 0
    assert s.delivered() == _expected(s.lines)
    assert "tail.0 resume (mem buf overlimit)" in s.stderr()
