"""docker_events input: Docker's event stream (``GET /events`` on the daemon's Unix socket),
one record per event (in_docker_events).

Kept from Fluent Bit 5.1.1: ``Unix_Path`` (``/var/run/docker.sock``), the request
``GET /events HTTP/1.0``; each event becomes ``{Key: text}`` (``Key`` ``message``; the text
is the event's JSON line with its newline, as Docker sends it), stamped when read, or with
``Parser`` the parsed line (its time when the parser finds one). When the daemon closes the
stream (a restart), the input connects again every ``reconnect.retry_interval`` seconds (1),
up to ``reconnect.retry_limits`` times (5; 0: never), then gives up with an error.
``Buffer_Size`` (8k) is the longest event read whole.

Differences (README "Where edgeship differs"): the stream is cut at newlines, so an event is
one record even when a read holds two events or half of one (Fluent Bit makes a record of
each read); the HTTP answer's head is read whole and a status other than 200 is an error
(Fluent Bit discards its first read, with whatever event came in it); a daemon that is not
up at start is retried like a restart (Fluent Bit refuses to start); an event longer than
Buffer_Size is handed on in pieces and one the parser does not match is kept under Key
(logged once per read; Fluent Bit drops it).
"""
import asyncio

from edgeship.core import events as ev
from edgeship.core.framing import SeparatorFrames
from edgeship.core.schema import Option
from edgeship.engine.plugin import Input
from edgeship.net.stream import open_stream
from edgeship.plugins.parsers import _stock

REQUEST = b"GET /events HTTP/1.0\r\n\r\n"
MIN_BUFFER = 2048


class DockerEventsError(Exception):
    pass


class _Stopped(Exception):
    """stop() cancelled what the input was waiting for."""


class DockerEvents(Input):
    name = "docker_events"
    description = "Docker events"
    options = (
        Option("Unix_Path", default="/var/run/docker.sock", help="Docker's unix socket"),
        Option("Buffer_Size", "size", "8k", help="the longest event read whole"),
        Option("Parser", help="parser of each event (else the text under Key)"),
        Option("Key", default="message", help="key of the event's text"),
        Option("reconnect.retry_limits", "int", "5",
               help="connection attempts after the stream closed (0: none)"),
        Option("reconnect.retry_interval", "int", "1", help="seconds between attempts"),
    )

    def configure(self):
        conf = self.conf
        self.buffer_size = max(conf["buffer_size"], MIN_BUFFER)
        self.parser = _stock.required(self.context, conf["parser"]) if conf["parser"] else None
        self._waiting = None

    async def _connect(self):
        stream = await open_stream(None, None, unix_path=self.conf["unix_path"])
        reader, writer = stream.reader, stream.writer
        writer.write(REQUEST)
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].split(b" ", 2)
        if len(status) < 2 or status[1] != b"200":
            writer.close()
            raise DockerEventsError("Docker answered %r" % head.split(b"\r\n", 1)[0])
        return reader, writer

    async def _wait(self, awaitable):
        """``awaitable``'s result; _Stopped when stop() cancels it."""
        self._waiting = asyncio.ensure_future(awaitable)
        try:
            return await self._waiting
        except asyncio.CancelledError:
            if self.stopping:
                raise _Stopped()
            raise
        finally:
            self._waiting = None

    async def run(self):
        try:
            await self._run()
        except _Stopped:
            pass

    async def _run(self):
        path = self.conf["unix_path"]
        limit = self.conf["reconnect.retry_limits"]
        failures = 0
        while not self.stopping:
            try:
                reader, writer = await self._wait(self._connect())
            except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    DockerEventsError) as exc:
                failures += 1
                if failures > limit:
                    self.log.error("cannot read events from unix://%s: %s; giving up after "
                                   "%d attempt(s)", path, exc, failures)
                    return
                self.log.info("cannot read events from unix://%s: %s; retry %d/%d in %d s",
                              path, exc, failures, limit, self.conf["reconnect.retry_interval"])
                await self._wait(asyncio.sleep(self.conf["reconnect.retry_interval"]))
                continue
            failures = 0
            self.log.info("listening for events on %s", path)
            try:
                await self._stream(reader)
            finally:
                writer.close()
            if not self.stopping:
                self.log.info("EOF detected. Re-initialize")
                if limit <= 0:
                    return

    async def _stream(self, reader):
        frames = SeparatorFrames(b"\n", self.buffer_size)
        while not self.stopping:
            await self.context.room()
            try:
                data = await self._wait(reader.read(self.buffer_size))
            except OSError as exc:
                self.log.error("read returned error: %s", exc)
                return
            pieces = frames.receive(data).events if data else frames.finish()
            if pieces:
                self._emit(pieces, frames)
            if not data:
                return

    def _emit(self, pieces, frames):
        now = ev.now_ns()
        if self.parser is None:
            key = self.conf["key"]
            events = [(now, {key: piece.decode("utf-8", "replace") + "\n"})
                      for piece in pieces]
        else:
            lines = [piece.decode("utf-8", "replace") for piece in pieces]
            events = self.parser.parse_lines(lines, now)
            unparsed = 0
            for index, event in enumerate(events):
                if event is None:
                    unparsed += 1
                    events[index] = (now, {self.conf["key"]: lines[index] + "\n"})
            if unparsed:
                self.log.warn("parser returned an error on %d event(s); kept under '%s'",
                              unparsed, self.conf["key"])
        if frames.split:
            self.log.warn("event longer than Buffer_Size (%d bytes) handed on in pieces",
                          self.buffer_size)
            frames.split = 0
        self.context.emit(self.tag, events, sum(len(piece) + 1 for piece in pieces))

    def stop(self):
        Input.stop(self)
        if self._waiting is not None:
            self._waiting.cancel()


PLUGIN = DockerEvents
