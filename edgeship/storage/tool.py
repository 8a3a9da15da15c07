"""``edgeship spool dump PATH [--records]`` and ``edgeship spool check PATH``.

PATH is a ``storage.path``, one output's spool directory in it, or a single ``.seg`` file.
dump prints every chunk like Kafka's DumpLogSegments (segment, offset, position, create time,
tag, records, size, crc, output, confirm state) and every damaged byte range; check prints
only problems and a summary, and exits 1 when anything is damaged (2 when PATH is unusable).
"""
import json
import os
import sys
import time

from edgeship.core import chunkframe as cf
from edgeship.storage import records
from edgeship.storage.segment import Segment, base_of

USAGE = """usage: edgeship spool dump PATH [--records]
       edgeship spool check PATH
"""


def _segments(path):
    """[(output name, Segment)] under ``path``, in order."""
    if os.path.isfile(path):
        base = base_of(os.path.basename(path))
        if base is None:
            raise ValueError("%s is not a spool segment (<20 digits>.seg)" % path)
        directory = os.path.dirname(os.path.abspath(path))
        return [(os.path.basename(directory), Segment(directory, base))]
    if not os.path.isdir(path):
        raise ValueError("%s: no such file or directory" % path)
    names = os.listdir(path)
    bases = sorted(b for b in map(base_of, names) if b is not None)
    if bases or not any(os.path.isdir(os.path.join(path, n)) for n in names):
        output = os.path.basename(os.path.abspath(path))
        return [(output, Segment(path, b)) for b in bases]
    found = []
    for name in sorted(names):
        if os.path.isdir(os.path.join(path, name)):
            found.extend(_segments(os.path.join(path, name)))
    return found


def _set_aside(path):
    """Damaged segments a run has set aside (kept for inspection)."""
    if os.path.isfile(path):
        return []
    out = []
    for root, _dirs, files in os.walk(path):
        out.extend(os.path.join(root, f) for f in sorted(files) if f.endswith(".seg.damaged"))
    return out


def _stamp(ns):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10 ** 9)) + ".%03dZ" % (
        ns // 10 ** 6 % 1000)


class Report:
    def __init__(self, out, verbose, with_records):
        self.out = out
        self.verbose = verbose
        self.with_records = with_records
        self.segments = self.chunks = self.waiting = self.records = 0
        self.damaged = self.damaged_bytes = self.index_errors = 0

    def line(self, text):
        self.out.write(text + "\n")

    def segment(self, output, segment):
        self.segments += 1
        items = segment.scan(keep_payload=self.with_records)
        confirmed = segment.confirmed()
        if self.verbose:
            self.line("Dumping %s (output %s)" % (segment.path, output))
        positions = {}
        for item in items:
            if isinstance(item, cf.Damage):
                self.damaged += 1
                self.damaged_bytes += item.length
                self.line("DAMAGED %s position: %d length: %d reason: %s"
                          % (segment.path, item.position, item.length, item.reason))
                continue
            positions[item.offset] = item.position
            state = "confirmed" if item.offset in confirmed else "waiting"
            self.chunks += 1
            self.records += item.count
            self.waiting += state == "waiting"
            if self.verbose:
                self.line("offset: %d position: %d CreateTime: %s tag: %s records: %d "
                          "first: %s last: %s size: %d crc valid: true output: %s state: %s"
                          % (item.offset, item.position, _stamp(item.created_ns), item.tag,
                             item.count, _stamp(item.first_ns), _stamp(item.last_ns),
                             item.size, output, state))
            if self.with_records:
                for time_ns, record in records.unpack(item.payload):
                    self.line("| [%d.%09d, %s]" % (time_ns // 10 ** 9, time_ns % 10 ** 9,
                                                   json.dumps(record, default=repr,
                                                              ensure_ascii=False)))
        for offset, position in segment.index():
            if positions.get(offset) != position:
                self.index_errors += 1
                self.line("INDEX %s: offset %d at position %d is not a chunk there"
                          % (segment.index_path, offset, position))

    def summary(self):
        self.line("%d segments, %d chunks (%d waiting, %d records), %d damaged ranges "
                  "(%d bytes), %d bad index entries"
                  % (self.segments, self.chunks, self.waiting, self.records, self.damaged,
                     self.damaged_bytes, self.index_errors))


def main(argv, out=None):
    out = out or sys.stdout
    args = [a for a in argv if not a.startswith("--")]
    flags = [a for a in argv if a.startswith("--")]
    if len(args) != 2 or args[0] not in ("dump", "check") or \
            any(f != "--records" for f in flags) or (flags and args[0] != "dump"):
        sys.stderr.write(USAGE)
        return 2
    command, path = args
    try:
        segments = _segments(path)
    except (ValueError, OSError) as exc:
        sys.stderr.write("edgeship spool: %s\n" % exc)
        return 2
    report = Report(out, command == "dump", "--records" in flags)
    for output, segment in segments:
        try:
            report.segment(output, segment)
        except OSError as exc:
            report.damaged += 1
            report.line("UNREADABLE %s: %s" % (segment.path, exc))
    for path_aside in _set_aside(path):
        report.damaged += 1
        report.line("DAMAGED %s: set aside by an earlier run" % path_aside)
    report.summary()
    if command == "check" and (report.damaged or report.index_errors):
        return 1
    return 0
