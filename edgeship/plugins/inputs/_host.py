"""Reading the host's procfs and sysfs for the host-metric inputs (cpu, mem, disk, netif,
proc, thermal): one open and read of a small text file per value, no process spawned.

The roots are ``/proc`` and ``/sys`` unless the environment variables ``EDGESHIP_PROCFS`` and
``EDGESHIP_SYSFS`` name other folders, and the kernel log is ``/dev/kmsg`` unless
``EDGESHIP_KMSG`` names another file (read when an input is configured). Tests point them at
a fake Raspberry Pi 4 tree; on a device they also let edgeship in a container read the
host's ``/proc`` mounted elsewhere (``-v /proc:/host/proc``).
"""
import os

PROCFS_ENV = "EDGESHIP_PROCFS"
SYSFS_ENV = "EDGESHIP_SYSFS"
KMSG_ENV = "EDGESHIP_KMSG"


class Host:
    """The procfs and sysfs roots, and the readers more than one input needs. Every reader
    raises OSError when its file cannot be read (a process that is gone included)."""

    def __init__(self, environ=None):
        environ = os.environ if environ is None else environ
        self.procfs = environ.get(PROCFS_ENV) or "/proc"
        self.sysfs = environ.get(SYSFS_ENV) or "/sys"
        self.kmsg = environ.get(KMSG_ENV) or "/dev/kmsg"

    def proc(self, *parts):
        return os.path.join(self.procfs, *[str(p) for p in parts])

    def sys(self, *parts):
        return os.path.join(self.sysfs, *[str(p) for p in parts])

    @staticmethod
    def read(path):
        """A small text file as a str (procfs files are ASCII; anything else is replaced)."""
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def process_stat(self, pid):
        """The fields of ``/proc/PID/stat`` after the command name (``split_stat``)."""
        path = self.proc(pid, "stat")
        return split_stat(self.read(path), path)[1]


def split_stat(text, path="stat"):
    """The command name and the fields after it of a ``/proc/PID/stat`` (or
    ``/proc/PID/task/TID/stat``) text. The name may hold spaces and parentheses, so it runs
    from the first '(' to the last ')'. Field 0 is the state, 1 the parent's pid, 7 minflt,
    9 majflt, 11 utime, 12 stime, 17 num_threads, 19 starttime, 20 vsize, 21 rss (pages), as
    proc(5) numbers them from 3. OSError when the text has no name (a process that ended
    while it was read leaves an empty file)."""
    start = text.find("(")
    end = text.rfind(")")
    if start < 0 or end < start:
        raise OSError("%s: no command name" % path)
    return text[start + 1:end], text[end + 1:].split()


def colon_fields(text):
    """``{key: value}`` of a procfs file of ``Key: value`` lines (``/proc/PID/status``,
    ``/proc/PID/io``), values stripped; a line without ':' is left out."""
    fields = {}
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if colon:
            fields[key] = value.strip()
    return fields


def net_dev(text):
    """The interfaces of a ``/proc/net/dev`` text, in its order: ``(name, [column texts])``
    for each line after the two header lines (receive bytes, packets, errs, drop, fifo,
    frame, compressed, multicast, then the eight transmit columns)."""
    rows = []
    for line in text.splitlines()[2:]:
        name, colon, rest = line.partition(":")
        if colon:
            rows.append((name.strip(), rest.split()))
    return rows


def delta(now, before):
    """How much a kernel counter grew since the last read. A counter that went down was
    reset (the device or interface was removed and added again): it counts from 0."""
    return now - before if now >= before else now


def fgets_pieces(data, size, at_eof, limit=None):
    """What C's ``fgets(buf, size, f)`` calls return over the bytes ``data``: pieces ending
    after a newline (kept), or of ``size`` - 1 bytes when a line is longer. Returns (pieces,
    the bytes left over): an unfinished last line waits for more data unless ``at_eof``.
    At most ``limit`` pieces when given."""
    pieces = []
    start, end, longest = 0, len(data), size - 1
    while start < end and (limit is None or len(pieces) < limit):
        newline = data.find(b"\n", start, start + longest)
        if newline >= 0:
            stop = newline + 1
        elif end - start >= longest:
            stop = start + longest
        elif at_eof:
            stop = end
        else:
            break
        pieces.append(data[start:stop])
        start = stop
    return pieces, data[start:]
