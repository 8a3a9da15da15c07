"""Events and time.

An event is ``(time_ns, record)``: ``time_ns`` an int of nanoseconds since the epoch (so the
nanoseconds Fluent Bit keeps are never rounded away), ``record`` a dict. Events travel in
batches: a list of events that share one tag. Every stage works on a batch.

An event time is checked where it enters (parsers, inputs that take times from senders,
filters that set times) to lie in ``[0, TIME_LIMIT_NS)``: what Fluent Bit's EventTime holds
(seconds as uint32, 1970 to 2106), well inside msgpack's int64 of nanoseconds. Fluent Bit
loses a record with any other time ("error packing event"); edgeship refuses or replaces
the time where it enters, as each boundary's docstring says.
"""
import time

NS = 1000000000
TIME_LIMIT = 1 << 32            # seconds
TIME_LIMIT_NS = TIME_LIMIT * NS


def now_ns():
    return time.time_ns()


def from_seconds(seconds):
    """A float or int number of seconds as integer nanoseconds."""
    if isinstance(seconds, int):
        return seconds * NS
    whole = int(seconds // 1)
    return whole * NS + int(round((seconds - whole) * NS))


def in_range(time_ns):
    """True for a time an event may carry."""
    return 0 <= time_ns < TIME_LIMIT_NS


def checked_seconds(seconds):
    """Nanoseconds of a sender's time in (int or float) seconds, or None when it is outside
    the range an event may carry (NaN and the infinities included)."""
    if not 0 <= seconds < TIME_LIMIT:
        return None
    time_ns = from_seconds(seconds)
    return time_ns if time_ns < TIME_LIMIT_NS else None


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


def append_keys(events, pairs):
    """Set each ``(key, value)`` of ``pairs`` on every record of ``events`` as its last keys
    (a key the record had is moved there), in place: what metadata filters add."""
    if pairs:
        for _, record in events:
            for key, value in pairs:
                record.pop(key, None)
                record[key] = value
    return events
