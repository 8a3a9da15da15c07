"""kmsg input: the kernel log, from ``/dev/kmsg`` (in_kmsg).

One record per kernel message: ``{"priority": 6, "sequence": 3, "sec": 0, "usec": 0,
"msg": "BIOS-provided physical RAM map:"}``.

Kept from Fluent Bit 5.1.1 (plugins/in_kmsg): reading starts at the beginning of the kernel's
buffer (every buffered message comes at once), then follows new messages as they come;
``priority`` is the syslog level (the prefix & 7); a message whose level is above
``Prio_Level`` (default 8: none) is dropped; ``sec``/``usec`` split the timestamp
(microseconds since boot); the record time is the boot time in whole seconds plus that
timestamp (boot time = now - ``/proc/uptime`` at start). A kmsg that cannot be opened stops
edgeship at start with the reason (reading it needs root or CAP_SYSLOG when
kernel.dmesg_restrict is 1).

Differences: ``msg`` is the message only; Fluent Bit also keeps the device dictionary lines
the kernel appends (``\\n SUBSYSTEM=...``) minus their last character. Messages the kernel
overwrote before they were read (EPIPE) are logged, not a silent stop. Fluent Bit reads the
fraction of /proc/uptime as microseconds; edgeship reads it as the fraction it is.

``EDGESHIP_KMSG`` names another file to read instead (tests use a regular file of kmsg
records; a regular file is read to its end, then again every second for what was added).
"""
import asyncio
import errno
import os
import stat

from edgeship.core import events as ev
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import Input
from edgeship.plugins.inputs._host import Host

READ_SIZE = 8192        # a kmsg record is at most 1 KiB of text plus its dictionary
FILE_POLL = 1.0


class KmsgInput(Input):
    name = "kmsg"
    description = "Kernel Log Buffer"
    options = (
        Option("Prio_Level", "int", "8",
               help="drop the messages whose priority is above this (0-8; 8 keeps all)"),
    )

    def configure(self):
        host = Host()
        self.path = host.kmsg
        self.prio_level = self.conf["prio_level"]
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise ConfigError("kmsg: cannot open %s: %s%s" % (
                self.path, exc.strerror,
                " (reading the kernel log needs root or CAP_SYSLOG)"
                if exc.errno in (errno.EACCES, errno.EPERM) else ""))
        try:
            uptime = float(host.read(host.proc("uptime")).split()[0])
        except (OSError, ValueError, IndexError) as exc:
            os.close(self.fd)
            raise ConfigError("kmsg: could not get system boot time: %s" % exc)
        self.boot_sec = int(ev.now_ns() / ev.NS - uptime)
        self.device = stat.S_ISCHR(os.fstat(self.fd).st_mode)
        self.pending = b""
        self.malformed = 0

    async def run(self):
        self._wake = asyncio.Event()
        try:
            if self.device:
                await self._follow_device()
            else:
                await self._follow_file()
        finally:
            os.close(self.fd)
            self.fd = -1

    _wake = None

    def stop(self):
        Input.stop(self)
        if self._wake is not None:
            self._wake.set()

    async def _follow_device(self):
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        loop.add_reader(self.fd, readable.set)
        try:
            while not self.stopping:
                waiter = asyncio.ensure_future(readable.wait())
                stopper = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                readable.clear()
                await self.context.room()
                self._take(self._read_records())
        finally:
            loop.remove_reader(self.fd)

    def _read_records(self):
        """Every record ready on the device: one read() returns one record."""
        records = []
        while True:
            try:
                data = os.read(self.fd, READ_SIZE)
            except BlockingIOError:
                return records
            except OSError as exc:
                if exc.errno == errno.EPIPE:
                    self.log.warn("kernel messages were overwritten before they were read")
                    continue
                raise
            if not data:
                return records
            records.append(data)

    async def _follow_file(self):
        while not self.stopping:
            data = os.read(self.fd, READ_SIZE)
            if data:
                self.pending += data
                lines = self.pending.split(b"\n")
                self.pending = lines.pop()
                await self.context.room()
                self._take(lines)
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), FILE_POLL)
            except asyncio.TimeoutError:
                pass

    def _take(self, records):
        events = []
        bad = 0
        for raw in records:
            if raw.startswith(b" ") or not raw.strip():
                continue                        # a dictionary line (" SUBSYSTEM=...")
            event = self._event(raw.split(b"\n", 1)[0].decode("utf-8", "replace"))
            if event is None:
                bad += 1
            elif event is not False:
                events.append(event)
        if bad:
            self.malformed += bad
            self.log.warn("%d kernel log lines not in the kmsg format, skipped", bad)
        if events:
            self.context.emit(self.tag, events, sum(len(r) for r in records))

    def _event(self, line):
        """The event of one record, False when its priority is filtered out, None when it is
        not a kmsg record (``prio,seq,usec,flags;text``)."""
        head, semicolon, text = line.partition(";")
        fields = head.split(",")
        if not semicolon or len(fields) < 3:
            return None
        try:
            prefix, sequence, usec = int(fields[0]), int(fields[1]), int(fields[2])
        except ValueError:
            return None
        priority = prefix & 7
        if priority > self.prio_level:
            return False
        sec, usec = divmod(usec, 1000000)
        time_ns = (self.boot_sec + sec) * ev.NS + usec * 1000
        return (time_ns, {"priority": priority, "sequence": sequence, "sec": sec,
                          "usec": usec, "msg": text})


PLUGIN = KmsgInput
