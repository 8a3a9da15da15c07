"""Fluent Bit style log lines on stderr: ``[2026/11/23 14:14:26.082] [ warn] [tail.0] text``."""
import sys
import time

LEVELS = {"off": 0, "error": 1, "warn": 2, "warning": 2, "info": 3, "debug": 4, "trace": 5}
_LABELS = {1: "error", 2: " warn", 3: " info", 4: "debug", 5: "trace"}


class Log:
    def __init__(self, level="info", stream=None, component="engine"):
        self.level = LEVELS[level]
        self.stream = stream or sys.stderr
        self.component = component

    def child(self, component, level=None):
        log = Log.__new__(Log)
        log.level = LEVELS[level] if level else self.level
        log.stream = self.stream
        log.component = component
        return log

    def _write(self, level, message, args):
        if args:
            message = message % args
        now = time.time()
        stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(now))
        try:
            self.stream.write("[%s.%03d] [%s] [%s] %s\n" % (
                stamp, int(now * 1000) % 1000, _LABELS[level], self.component, message))
            self.stream.flush()
        except (OSError, ValueError):
            # stderr gone (closed pipe, full disk): a log line must never stop the engine,
            # or make it miss a SIGTERM because the signal handler's log line raised.
            pass

    def error(self, message, *args):
        if self.level >= 1:
            self._write(1, message, args)

    def warn(self, message, *args):
        if self.level >= 2:
            self._write(2, message, args)

    def info(self, message, *args):
        if self.level >= 3:
            self._write(3, message, args)

    def debug(self, message, *args):
        if self.level >= 4:
            self._write(4, message, args)
