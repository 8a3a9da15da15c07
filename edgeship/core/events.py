"""Events and time.

An event is ``(time_ns, record)``: ``time_ns`` an int of nanoseconds since the epoch (so the
nanoseconds Fluent Bit keeps are never rounded away), ``record`` a dict. Events travel in
batches: a list of events that share one tag. Every stage works on a batch.
"""
import time

NS = 1000000000


def now_ns():
    return time.time_ns()


def from_seconds(seconds):
    """A float or int number of seconds as integer nanoseconds."""
    if isinstance(seconds, int):
        return seconds * NS
    whole = int(seconds // 1)
    return whole * NS + int(round((seconds - whole) * NS))


def to_seconds(time_ns):
    """Float seconds (what Fluent Bit calls a double timestamp)."""
    return time_ns / NS


def split(time_ns):
    """(seconds, nanoseconds) with 0 <= nanoseconds < 1e9."""
    return time_ns // NS, time_ns % NS


def format_sec_nsec(time_ns):
    """``1711360801.000000000``: Fluent Bit's sec.nsec rendering."""
    sec, nsec = split(time_ns)
    return "%d.%09d" % (sec, nsec)
