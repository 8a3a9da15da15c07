"""disk input: bytes read and written on the block devices since the last collection
(in_disk).

Every interval it reads ``/proc/diskstats`` once and emits ``{"read_size":0,
"write_size":12288}`` (unsigned integers): Δ sectors × 512, summed over every line whose
device name contains ``Dev_Name`` (every line when it is not set: whole disks and their
partitions are both counted, as in Fluent Bit).

Kept from Fluent Bit 5.1.1 (plugins/in_disk): the counters are read at start and at the first
tick, and the first tick emits nothing, so the first record comes two intervals after the
start; "contains" matching (``mmcblk0`` also counts ``mmcblk0p1`` and ``mmcblk0p2``).

Differences, for safety: Fluent Bit keeps the counters by line number and sizes its table at
start, so a device plugged in later shifts every line (and writes past the table); edgeship
keeps them by device name, and a device that appears starts from its first reading. A counter
that goes down (a device removed and added again) counts from 0 instead of wrapping to a huge
number.
"""
from edgeship.core.schema import Option
from edgeship.plugins.inputs._host import Host, delta
from edgeship.plugins.inputs._interval import IntervalInput, interval_options

SECTOR = 512


class DiskInput(IntervalInput):
    name = "disk"
    description = "Diskstats"
    options = interval_options() + (
        Option("Dev_Name", help="only the devices whose name contains this (default: all)"),
    )

    def configure(self):
        self.host = Host()
        self.dev_name = self.conf["dev_name"]
        self.before = {}
        self.first = True
        self.failed = False

    def _read(self):
        """{device: (sectors read, sectors written)} of the devices Dev_Name selects."""
        counters = {}
        for line in self.host.read(self.host.proc("diskstats")).splitlines():
            fields = line.split()
            if len(fields) < 10:
                continue
            if self.dev_name and self.dev_name not in fields[2]:
                continue
            counters[fields[2]] = (int(fields[5]), int(fields[9]))
        return counters

    def start(self):
        self.before = self._sample() or {}

    def _sample(self):
        try:
            counters = self._read()
        except (OSError, ValueError) as exc:
            if not self.failed:
                self.log.error("cannot read %s: %s", self.host.proc("diskstats"), exc)
            self.failed = True
            return None
        self.failed = False
        return counters

    def collect(self, now_ns):
        now = self._sample()
        if now is None:
            return []
        read = written = 0
        for device, (sectors_read, sectors_written) in now.items():
            before = self.before.get(device, (sectors_read, sectors_written))
            read += delta(sectors_read, before[0])
            written += delta(sectors_written, before[1])
        self.before = now
        if self.first:
            self.first = False
            return []
        return [{"read_size": read * SECTOR, "write_size": written * SECTOR}]


PLUGIN = DiskInput
