"""Fluent Bit style log lines on stderr: ``[2026/11/23 14:14:26.082] [ warn] [tail.0] text``.

Every line a pipeline's logs write also goes to its ``Mirror``, where the fluentbit_logs
inputs take them as records (``Context.tap_log``)."""
import contextlib
import sys
import threading
import time

LEVELS = {"off": 0, "error": 1, "warn": 2, "warning": 2, "info": 3, "debug": 4, "trace": 5}
_LABELS = {1: "error", 2: " warn", 3: " info", 4: "debug", 5: "trace"}
_NAMES = {0: "off", 1: "error", 2: "warn", 3: "info", 4: "debug", 5: "trace"}


class Mirror:
    """Where the lines of one pipeline's logs (the Log it was built with and every child)
    go besides the stream: the taps, ``tap(level name, time_ns, "[component] text")``.

    The lines written before the pipeline starts (``started()``) are kept, at most
    EARLY_LIMIT of them, and handed to a tap when it is added: a tap added while the
    pipeline is built sees the start-up lines too. A tap is called on the thread that
    wrote the line."""
    EARLY_LIMIT = 1024

    def __init__(self):
        self.taps = []
        self.early = []         # None once the pipeline started
        self._muted = None      # the thread whose lines are not mirrored (muted())

    def line(self, level, time_ns, text):
        if self._muted is not None and self._muted == threading.get_ident():
            return
        early = self.early
        if early is not None and len(early) < self.EARLY_LIMIT:
            early.append((level, time_ns, text))
        for tap in self.taps:
            tap(level, time_ns, text)

    def tap(self, callback):
        for line in self.early or ():
            callback(*line)
        self.taps.append(callback)

    def untap(self, callback):
        if callback in self.taps:
            self.taps.remove(callback)

    def started(self):
        self.early = None

    @contextlib.contextmanager
    def muted(self):
        """The lines this thread writes meanwhile are written but not mirrored: what a tap
        logs while it emits the lines it took cannot come back to it."""
        self._muted = threading.get_ident()
        try:
            yield
        finally:
            self._muted = None


class Log:
    # warn_often/error_often: one line per message per this many seconds.
    repeat_window = 1.0

    def __init__(self, level="info", stream=None, component="engine", mirror=None):
        self.level = LEVELS[level]
        self.stream = stream or sys.stderr
        self.component = component
        self.mirror = Mirror() if mirror is None else mirror
        self._repeats = {}      # message template -> [last written (monotonic), left out]

    def child(self, component, level=None):
        return Log(level or _NAMES[self.level], self.stream, component, self.mirror)

    def _write(self, level, message, args):
        if args:
            message = message % args
        now_ns = time.time_ns()
        now = now_ns / 1e9
        stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(now))
        text = "[%s] %s" % (self.component, message)
        try:
            self.stream.write("[%s.%03d] [%s] %s\n" % (
                stamp, (now_ns // 1000000) % 1000, _LABELS[level], text))
            self.stream.flush()
        except (OSError, ValueError):
            # stderr gone (closed pipe, full disk): a log line must never stop the engine,
            # or make it miss a SIGTERM because the signal handler's log line raised.
            pass
        self.mirror.line(_NAMES[level], now_ns, text)

    def error(self, message, *args):
        if self.level >= 1:
            self._write(1, message, args)

    def warn(self, message, *args):
        if self.level >= 2:
            self._write(2, message, args)

    def info(self, message, *args):
        if self.level >= 3:
            self._write(3, message, args)

    def warn_often(self, message, *args):
        """warn() for a message that may come once per record (a time that does not parse):
        at most one line per message per ``repeat_window`` seconds, the next one saying how
        many were left out, so a file of bad lines cannot flood the log."""
        if self.level >= 2:
            self._often(2, message, args)

    def error_often(self, message, *args):
        if self.level >= 1:
            self._often(1, message, args)

    def _often(self, level, message, args):
        now = time.monotonic()
        seen = self._repeats.get(message)
        if seen is not None and now - seen[0] < self.repeat_window:
            seen[1] += 1
            return
        left_out = seen[1] if seen is not None else 0
        self._repeats[message] = [now, 0]
        text = message % args if args else message
        if left_out:
            text += " (%d more like this left out)" % left_out
        self._write(level, text, ())

    def debug(self, message, *args):
        if self.level >= 4:
            self._write(4, message, args)

    def failure_streak(self):
        return FailureStreak(self)


class FailureStreak:
    """For a source that fails the same way at every try (a server down): the first failure
    of a streak, or a different one, is an error line, a repeat a debug line; ``recovered()``
    ends the streak and says whether there was one."""

    def __init__(self, log):
        self.log = log
        self.last = None

    def failed(self, message):
        if message != self.last:
            self.log.error("%s", message)
        else:
            self.log.debug("%s", message)
        self.last = message

    def recovered(self):
        ended = self.last is not None
        self.last = None
        return ended
