"""serial input: records from a serial device (in_serial), opened with pyserial.

Kept from Fluent Bit 5.1.1 (records checked against its binary through a pty): the options ``File``, ``Bitrate`` (8N1, no flow control),
``Separator``, ``Format json``, ``Min_Bytes``; ``Format`` and ``Separator`` together are an
error. Every record is ``{"msg": ...}`` stamped with the time it was read. At each read a
leading NUL (an FTDI handshake) and then a leading CR or LF of the buffer are dropped.
- ``Separator S``: every piece before S is ``{"msg": "<piece>"}``; empty pieces are skipped;
  the piece after the last S waits for more bytes.
- ``Format json``: JSON values one after another (whitespace between them optional); each is
  ``{"msg": <value>}`` (a map nests under ``msg``); an incomplete value waits.
- neither: what one read returned is ``{"msg": "<bytes>"}``.

Differences from Fluent Bit, for safety:
- A device that is missing at start or unplugged later is reopened with backoff
  (``edgeship.core.backoff``, 1 s to 30 s), one warning when it goes and one info line when
  it is back; Fluent Bit refuses to start without the device and stops reading for good
  once it is gone. Bytes read before an unplug are not lost: with a Separator the piece
  that had no separator yet is emitted as a record of its own (a device that comes back
  starts a new line, so joining the two halves would make a line that never was); an
  incomplete JSON value is counted as invalid.
- A separator missing for 8191 bytes (Fluent Bit's buffer) emits those bytes as a record;
  Fluent Bit discards them.
- Invalid JSON skips to the end of its line, counted and logged once per batch; Fluent Bit
  5.1.1 keeps the invalid bytes at the head of its buffer and emits nothing more from the
  device (checked on the binary through a pty).
- ``Bitrate`` is used as given, whatever the rate (pyserial sets a non-standard one, such as
  250000, through the kernel's custom-rate call); Fluent Bit silently uses 9600 for a rate
  outside its list (none above 230400). ``Format`` must be json or none (Fluent Bit reads
  any other word as none).
- ``Min_Bytes`` is VMIN, as in Fluent Bit (0 or less means 1), and at most 255 (the byte
  termios holds; Fluent Bit cuts a larger number silently). Both read non-blocking, where
  it delays no read; it makes a read of an empty device fail with EAGAIN, so a read of 0
  bytes means the device hung up.
- Invalid UTF-8 becomes U+FFFD (a record holds text).
- Without Separator or Format, a read left empty by the head clean-up (a lone LF after a CR
  that came in the read before) is no record; Fluent Bit emits ``{"msg": ""}``.

Reading: the device is opened non-blocking (as Fluent Bit does) and watched with the event
loop's ``add_reader``: a read never blocks, so a thread would only add a hand-off per read
(and a thread that cannot be interrupted while the device hangs); one wake-up reads
everything the kernel holds and emits it as one batch.
"""
import asyncio
import codecs
import os
import termios

from edgeship.codecs import untrusted
from edgeship.core import backoff
from edgeship.core import events as ev
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import Input

BUFFER = 8191                 # Fluent Bit's buffer (8192 with its NUL)
REOPEN_BASE, REOPEN_CAP = 1.0, 30.0


class DeviceGone(Exception):
    """The device stopped answering reads (unplugged, its pty closed)."""


class SerialInput(Input):
    name = "serial"
    description = "Serial input"
    options = (
        Option("File", required=True, help="the serial character device (/dev/ttyUSB0)"),
        Option("Bitrate", "int", required=True, min=1,
               help="bitrate (baud); any rate the device takes"),
        Option("Separator", help="record separator, taken as written (no escapes)"),
        Option("Format", choices=("json", "none"),
               help="json: each JSON value read becomes a record's msg"),
        Option("Min_Bytes", "int", "0", max=255,
               help="VMIN (0 means 1); reads are non-blocking, as in Fluent Bit, so it "
                    "never delays one"),
    )

    def configure(self):
        if self.conf["format"] and self.conf["separator"]:
            raise ConfigError("serial: specify 'format' or 'separator', not both",
                              key="separator")
        if self.conf["separator"] == "":
            raise ConfigError("serial: Separator cannot be empty", key="separator")
        self.json = self.conf["format"] == "json"
        self.separator = self.conf["separator"]
        self.text = ""
        self.invalid, self.example = 0, None     # invalid JSON values of the batch at hand
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.wake = None        # set while a read waits, so stop() is not left waiting

    def stop(self):
        Input.stop(self)
        if self.wake is not None:
            self.wake.set()

    async def run(self):
        import serial
        outage_since = None
        attempt = 0
        loop = asyncio.get_running_loop()
        while not self.stopping:
            try:
                port = self._open(serial)
            except (OSError, ValueError, termios.error, serial.SerialException) as exc:
                if outage_since is None:
                    outage_since = loop.time()
                    self.log.warn("cannot open %s (%s); retrying until it is there",
                                  self.conf["file"], exc)
                attempt += 1
                await asyncio.sleep(backoff.jittered(attempt, REOPEN_BASE, REOPEN_CAP))
                continue
            if outage_since is not None:
                self.log.info("%s opened after %.1f s", self.conf["file"],
                              loop.time() - outage_since)
            outage_since, attempt = None, 0
            try:
                await self._read(port.fileno())
            except DeviceGone as exc:
                outage_since = loop.time()
                self.log.warn("%s is gone (%s); reopening it with backoff", self.conf["file"],
                              exc)
            finally:
                port.close()
                self._flush()

    def _flush(self):
        """The device is gone or the input stops: what waits for a separator goes out."""
        events = self._take(b"", at_end=True)
        if events:
            self.context.emit(self.tag, events, 0)
        self._report()

    def _open(self, serial):
        port = serial.Serial(self.conf["file"], self.conf["bitrate"], timeout=0)
        try:
            attrs = termios.tcgetattr(port.fileno())
            attrs[6][termios.VMIN] = max(1, self.conf["min_bytes"])
            termios.tcsetattr(port.fileno(), termios.TCSANOW, attrs)
        except BaseException:
            port.close()
            raise
        return port

    async def _read(self, fd):
        loop = asyncio.get_running_loop()
        ready = self.wake = asyncio.Event()
        loop.add_reader(fd, ready.set)
        try:
            while not self.stopping:
                await ready.wait()
                ready.clear()
                self._drain(fd)
                await self.context.room()
        finally:
            loop.remove_reader(fd)

    def _drain(self, fd):
        """Reads what the kernel holds now (each read at most what Fluent Bit's buffer has
        room for) and emits it as one batch; DeviceGone once that batch is emitted."""
        events = []
        size = 0
        gone = None
        for _ in range(64):             # a bound, so a fast device cannot hold the loop
            try:
                data = os.read(fd, max(1, BUFFER - len(self.text)))
            except BlockingIOError:
                break
            except OSError as exc:
                gone = exc.strerror or str(exc)
                break
            if not data:
                gone = "end of file"
                break
            size += len(data)
            events.extend(self._take(data, at_end=False))
        if events:
            self.context.emit(self.tag, events, size)
        self._report()
        if gone is not None:
            raise DeviceGone(gone)

    def _take(self, data, at_end):
        """The records ``data`` (bytes from one read) completes; ``at_end``: the device is
        gone, flush what waits."""
        text = self.text + self.decoder.decode(data, at_end)
        if at_end:
            self.decoder.reset()
        # Fluent Bit's per-read clean-up of the buffer's head.
        if text[:1] == "\x00":
            text = text[1:]
        if text[:1] in ("\r", "\n") and text:
            text = text[1:]
        now = ev.now_ns()
        if self.json:
            pieces = self._json(text, at_end)
        elif self.separator:
            pieces = self._split(text, at_end)
        else:
            pieces = [text] if text else []
            self.text = ""
        return [(now, {"msg": piece}) for piece in pieces]

    def _split(self, text, at_end):
        pieces = text.split(self.separator)
        rest = pieces.pop()
        if at_end or len(rest) >= BUFFER:
            pieces.append(rest)     # kept, not discarded (see the module docstring)
            rest = ""
        self.text = rest
        return [piece for piece in pieces if piece]

    def _json(self, text, at_end):
        scan = untrusted.scan_values(text, at_end, BUFFER)
        self.text = text[scan.end:]
        self.invalid += scan.invalid + scan.too_deep
        if self.example is None:
            self.example = scan.example
        return scan.values

    def _report(self):
        """One line per batch for its invalid JSON values, not one per value."""
        if self.invalid:
            self.context.count("invalid", self.invalid)
            self.log.warn("invalid JSON message, skipping: %r (%d in this read)",
                          self.example if self.example is not None else "(nested deeper "
                          "than %d levels)" % untrusted.MAX_DEPTH, self.invalid)
        self.invalid, self.example = 0, None


PLUGIN = SerialInput
