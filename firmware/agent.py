"""The edgeship MicroPython agent's main loop: sample the sensors on a fixed schedule, keep each
reading in the ring (store.py) and publish it at QoS 1 (link.py), forgetting it only when the
broker acknowledged it. The loop never waits on the network, feeds the watchdog, checkpoints
the ring, publishes the counters, and runs under a guard that logs a crash, saves the ring and
resets the board. (startup.py reads config.json and builds the parts.)

A reading is ``{"device", "boot", "seq", "time", <sensor fields>}``: ``boot`` changes at every
reset (kept across a deep sleep) and ``seq`` counts within a boot, so (device, boot, seq) names
one reading downstream; ``time`` is Unix milliseconds as an integer (``"unsynced": true`` is
added while NTP has not set the clock). A reading is never an object in RAM beyond its turn:
it is encoded into the ring's buffer at once.
"""
import gc
import json
import sys
import time

from board import hw, log, ms_since
from link import UP, Link


def json_bytes(record):
    return json.dumps(record, separators=(",", ":")).encode()


class Agent:
    def __init__(self, conf, board, ring, sensors):
        self.conf, self.board, self.ring, self.sensors = conf, board, ring, sensors
        if conf["format"] == "cbor":
            from edgeship.core.cbor import dumps
            self.encode = dumps
        else:
            self.encode = json_bytes
        self.link = Link(conf, board, ring)
        self.sampled = self.missed = self.sensor_errors = 0
        self.started = time.ticks_ms()

    def sample(self):
        ring = self.ring
        record = {"device": self.conf["device_id"], "boot": ring.boot, "seq": ring.seq,
                  "time": self.board.now_ms()}
        if not self.board.synced:
            record["unsynced"] = True
        for sensor in self.sensors:
            try:
                sensor.read(record)
            except (OSError, ValueError) as exc:
                self.sensor_errors += 1
                if self.sensor_errors & (self.sensor_errors - 1) == 0:   # 1st, 2nd, 4th ...
                    log("sensor %s failed: %s" % (sensor.name, exc))
        ring.seq += 1
        self.sampled += 1
        ring.add(self.encode(record))

    def stats(self, full=False):
        """The counters; ``full``: the message of ``stats_topic``, with who and since when."""
        ring, link = self.ring, self.link
        out = {"sampled": self.sampled, "acked": link.acked, "dropped": ring.dropped,
               "torn": ring.torn, "restored": ring.kept, "connects": link.connects,
               "lost": link.lost, "wifi_drops": self.board.wifi_drops, "missed": self.missed,
               "sensor_errors": self.sensor_errors, "flash_errors": ring.flash_errors}
        if full:
            out["device"] = self.conf["device_id"]
            out["boot"] = ring.boot
            out["uptime_s"] = ms_since(self.started) // 1000
            out["mem_free"] = gc.mem_free()
        return out

    def run(self):
        conf, board, link, ring = self.conf, self.board, self.link, self.ring
        interval = int(conf["interval_s"] * 1000)
        samples = conf["samples"]
        due = persisted = reported = awake = time.ticks_ms()
        if conf["wdt_s"]:
            board.wdt = hw.WDT(timeout=board.wdt_ms)
        while True:
            board.feed()
            late = time.ticks_diff(time.ticks_ms(), due)
            if late >= 0 and (not samples or self.sampled < samples):
                if late >= interval:   # whole slots went by: count them, keep the grid
                    self.missed += late // interval
                    due = time.ticks_add(due, late // interval * interval)
                self.sample()
                due = time.ticks_add(due, interval)
                if self.sampled == samples:
                    log("sampled %d readings; sending what is left" % samples)
            online = board.wifi()
            board.ntp(online)
            link.step(online)
            now = time.ticks_ms()
            if time.ticks_diff(now, persisted) >= conf["persist_s"] * 1000:
                persisted = now
                if ring.checkpoint():
                    log("persisted boot %d up to seq %d" % (ring.boot, ring.seq - 1))
                gc.collect()
            if time.ticks_diff(now, reported) >= conf["stats_s"] * 1000 and link.state == UP and \
                    link.publish(conf["stats_topic"], self.encode(self.stats(True))):
                reported = now
            if samples and self.sampled >= samples and ring.empty():
                break
            if conf["sleep"] and (ring.empty() or ms_since(awake) > conf["awake_s"] * 1000):
                self.sleep(time.ticks_diff(due, time.ticks_ms()))
                awake = due = time.ticks_ms()
                continue
            link.wait(max(0, min(time.ticks_diff(due, time.ticks_ms()), 100)))
        link.disconnect(b"offline")
        ring.checkpoint()
        print("agent: done", json.dumps(self.stats()))

    def sleep(self, ms):
        """Duty cycle: say so, save the ring, sleep until the next reading is due (a deep
        sleep wakes up as a reset: main.py runs again, startup.py reads the ring back)."""
        self.link.disconnect(b"sleeping")
        self.ring.checkpoint(True)
        if ms > 0:
            if self.conf["sleep"] == "deep":
                hw.deepsleep(ms)
            self.board.lightsleep(ms)


def run(agent):
    """The main loop under the guard: Ctrl-C stops (keeping the ring); anything else (a
    MemoryError too) is logged to crash.log, the ring saved, and the board reset."""
    try:
        agent.run()
    except KeyboardInterrupt:
        agent.ring.checkpoint(True)
        raise
    except Exception as exc:
        sys.print_exception(exc)
        try:
            f = open("crash.log", "a")
            if f.seek(0, 2) > 4096:   # keep the last crash or two, not a full flash
                f.close()
                f = open("crash.log", "w")
            f.write("boot %d seq %d uptime %d ms\n" % (agent.ring.boot, agent.ring.seq,
                                                       ms_since(agent.started)))
            sys.print_exception(exc, f)
            f.close()
            agent.ring.checkpoint(True)
        except Exception as again:   # saving failed too: reset all the same
            print("agent: saving after the crash failed:", again)
        time.sleep_ms(2000)   # a moment to break in with Ctrl-C before the reset
        hw.reset()
