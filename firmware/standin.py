"""Stand-in for a board's watchdog, RTC, reset and sleep on the MicroPython unix port, whose
``machine`` module has none of them: board.py uses it in place of ``machine`` (and
standin_wifi.py in place of ``network``), so the board layer's code paths run, and are tested,
on a PC. Neither is flashed onto a board.

Tests steer them through files in ``$STANDIN_DIR`` (default: the working directory) and
``$STANDIN_CLOCK`` (``unset``: the RTC starts at 2000, as after a power-up):
``rtc.bin`` is the RTC memory, kept across a deep sleep, which ends the process with status 4
(the next start is its wake-up); ``reset()`` ends it with status 3, and whoever started it
starts it again, as a board reboots; ``wifi`` steers the radio (standin_wifi.py). The watchdog
cannot interrupt a stalled interpreter from inside, so it checks on every feed: a gap longer
than its timeout resets, as the real one would have.
"""
import os
import sys
import time

DEEPSLEEP_RESET = 4
_DIR = (os.getenv("STANDIN_DIR") or ".") + "/"
# STANDIN_CLOCK=unset: the clock starts at 2000-01-01, as a board's RTC after power-up
_offset_ns = 946684800000000000 - time.time_ns() if os.getenv("STANDIN_CLOCK") == "unset" else 0


try:   # a marker left by a deep sleep: this start is its wake-up
    os.remove(_DIR + "slept")
    _cause = DEEPSLEEP_RESET
except OSError:
    _cause = 1


def reset_cause():
    return _cause


def time_ns():
    return time.time_ns() + _offset_ns


def unique_id():
    return bytes.fromhex(os.getenv("STANDIN_UID") or "0ed935419a01")


def reset():
    print("standin: reset")
    sys.exit(3)


lightsleep = time.sleep_ms


def deepsleep(ms):
    open(_DIR + "slept", "w").close()
    print("standin: deep sleep", ms)
    sys.exit(4)


class WDT:
    def __init__(self, timeout):
        self.timeout = timeout
        self.fed = time.ticks_ms()

    def feed(self):
        gap = time.ticks_diff(time.ticks_ms(), self.fed)
        if gap > self.timeout:
            print("standin: watchdog expired after", gap, "ms")
            reset()
        self.fed = time.ticks_ms()


class RTC:
    def memory(self, *data):
        if not data:
            try:
                with open(_DIR + "rtc.bin", "rb") as f:
                    return f.read()
            except OSError:
                return b""
        with open(_DIR + "rtc.bin", "wb") as f:
            f.write(data[0])

    def datetime(self, dt):
        """Set the clock: (year, month, day, weekday, hours, minutes, seconds, subseconds)."""
        global _offset_ns
        # mktime is local time on the unix port: less mktime(gmtime(0)) makes it UTC
        secs = time.mktime((dt[0], dt[1], dt[2], dt[4], dt[5], dt[6], 0, 0)) - \
            time.mktime(time.gmtime(0))
        _offset_ns = secs * 1000000000 - time.time_ns()
