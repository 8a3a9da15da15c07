"""``edgeship spool dump PATH [--records]`` and ``edgeship spool check PATH``.

PATH is a ``storage.path``, one output's spool directory in it, or a single ``.seg`` file.
dump prints every chunk like Kafka's DumpLogSegments (segment, offset, position, create time,
tag, records, size, crc, output, confirm state), every damaged byte range and every chunk the
index lists that the segment lost; check prints only problems and a summary, and exits 1 when
anything is damaged or lost (2 when PATH is unusable). Segments a replay set aside
(``*.damaged``) are read too, so check tells the same losses before and after a replay.
"""
import json
import os
import sys
import time

from edgeship.codecs import cmetrics
from edgeship.codecs.entries import unpack_entries
from edgeship.core import chunkframe as cf
from edgeship.storage import legacy
from edgeship.storage.segment import IDX, SEG, SET_ASIDE, Segment, base_of

USAGE = """usage: edgeship spool dump PATH [--records]
       edgeship spool check PATH
"""
_LIVE = (SEG, IDX)
_ASIDE = (SEG + SET_ASIDE, IDX + SET_ASIDE)


def _segments(path):
    """[(output name, Segment, set aside)] under ``path``, in order."""
    if os.path.isfile(path):
        filename = os.path.basename(path)
        base = base_of(filename, (SEG, SEG + SET_ASIDE))
        if base is None:
            raise ValueError("%s is not a spool segment (<20 digits>.seg)" % path)
        directory = os.path.dirname(os.path.abspath(path))
        aside = filename.endswith(SET_ASIDE)
        return [(os.path.basename(directory),
                 Segment(directory, base, SET_ASIDE if aside else ""), aside)]
    if not os.path.isdir(path):
        raise ValueError("%s: no such file or directory" % path)
    names = os.listdir(path)
    live = {b for b in (base_of(n, _LIVE) for n in names) if b is not None}
    aside = {b for b in (base_of(n, _ASIDE) for n in names) if b is not None}
    if live or aside or not any(os.path.isdir(os.path.join(path, n)) for n in names):
        output = os.path.basename(os.path.abspath(path))
        return ([(output, Segment(path, b, SET_ASIDE), True) for b in sorted(aside)]
                + [(output, Segment(path, b), False) for b in sorted(live)])
    found = []
    for name in sorted(names):
        if os.path.isdir(os.path.join(path, name)):
            found.extend(_segments(os.path.join(path, name)))
    return found


def _stamp(ns):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10 ** 9)) + ".%03dZ" % (
        ns // 10 ** 6 % 1000)


class Report:
    def __init__(self, out, verbose, with_records):
        self.out = out
        self.verbose = verbose
        self.with_records = with_records
        self.segments = self.chunks = self.waiting = self.records = 0
        self.damaged = self.damaged_bytes = self.index_errors = self.lost = self.set_aside = 0

    def line(self, text):
        self.out.write(text + "\n")

    def segment(self, output, segment, set_aside=False):
        self.segments += 1
        seen = segment.inspect(keep_payload=self.with_records)
        if self.verbose:
            self.line("Dumping %s (output %s)%s" % (
                segment.path, output, " (set aside by an earlier run)" if set_aside else ""))
        if set_aside:
            self.set_aside += 1
        for item in seen.damage:
            self.damaged += 1
            self.damaged_bytes += item.length
            self.line("DAMAGED %s position: %d length: %d reason: %s"
                      % (segment.path, item.position, item.length, item.reason))
        for offset, position, why in seen.lost:
            self.lost += 1
            self.line("LOST %s offset: %d position: %d reason: %s"
                      % (segment.path, offset, position, why))
        for offset, position in seen.bad_index:
            self.index_errors += 1
            self.line("INDEX %s: offset %d at position %d matches no chunk"
                      % (segment.index_path, offset, position))
        for problem in seen.problems:
            self.index_errors += 1
            self.line("INDEX %s: %s" % (segment.path, problem))
        for item in seen.frames:
            state = "confirmed" if item.offset in seen.confirmed else "waiting"
            self.chunks += 1
            self.records += item.count
            self.waiting += state == "waiting"
            if self.verbose:
                self.line("offset: %d position: %d CreateTime: %s tag: %s records: %d "
                          "first: %s last: %s size: %d crc valid: true output: %s state: %s"
                          % (item.offset, item.position, _stamp(item.created_ns), item.tag,
                             item.count, _stamp(item.first_ns), _stamp(item.last_ns),
                             item.size, output, state))
            if self.with_records and item.version == cf.METRICS:
                for line in cmetrics.render_text(cmetrics.decode(item.payload)).splitlines():
                    self.line("| " + line)
            elif self.with_records:
                if item.version == 1:
                    events = legacy.events(item.payload)
                else:
                    events = unpack_entries(item.payload, item.count)
                for time_ns, record in events:
                    self.line("| [%d.%09d, %s]" % (time_ns // 10 ** 9, time_ns % 10 ** 9,
                                                   json.dumps(record, default=repr,
                                                              ensure_ascii=False)))

    def summary(self):
        self.line("%d segments, %d chunks (%d waiting, %d records), %d damaged ranges "
                  "(%d bytes), %d lost chunks, %d bad index entries, %d set aside"
                  % (self.segments, self.chunks, self.waiting, self.records, self.damaged,
                     self.damaged_bytes, self.lost, self.index_errors, self.set_aside))

    def failed(self):
        return bool(self.damaged or self.lost or self.index_errors or self.set_aside)


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
    for output, segment, set_aside in segments:
        try:
            report.segment(output, segment, set_aside)
        except OSError as exc:
            report.damaged += 1
            report.line("UNREADABLE %s: %s" % (segment.path, exc))
    report.summary()
    if command == "check" and report.failed():
        return 1
    return 0
