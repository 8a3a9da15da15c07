"""nats output: each chunk published to a NATS server under its tag (out_nats).

Kept from Fluent Bit 5.1.1 (checked against Debian's nats-server): ``Host`` 127.0.0.1,
``Port`` 4222, plain TCP; ``CONNECT`` with verbose and pedantic off, named ``fluent-bit``;
the subject is the tag and the message the JSON array of the chunk's records, each
``[time as a double, {"tag": TAG, ...record}]``.

Differences, for delivery (README "Where edgeship differs"): a flush ends with ``PING`` and
counts as delivered only when the server's ``PONG`` came back on that connection (NATS
handles a connection's commands in order, so every ``PUB`` before it was taken); Fluent Bit
writes and reports success, and a server that refused the message (``-ERR``) or a dropped
connection loses it. A chunk whose JSON is over the server's ``max_payload`` (its INFO)
goes as several messages, each an array of some of its records, instead of a message the
server refuses; a single record over it, or a tag that is no NATS subject, cannot be sent
and is dropped with an error.
"""
import asyncio
import functools

from edgeship.codecs import formats, untrusted
from edgeship.core import FLUENT_BIT_VERSION
from edgeship.core.nats import ClientSession, is_subject
from edgeship.core.schema import Option
from edgeship.engine.plugin import ERROR, OK, RETRY, Output
from edgeship.net.stream import (NET_OPTIONS, Pool, failure_text, io_timeout, open_stream)

CONNECT = formats.to_json({"verbose": False, "pedantic": False, "ssl_required": False,
                           "name": "fluent-bit", "lang": "c", "version": FLUENT_BIT_VERSION})
DEFAULT_MAX_PAYLOAD = 1048576     # nats-server's default, when INFO does not say
_READ = 65536


class NatsFailed(Exception):
    pass


def messages(entries, limit):
    """The JSON arrays (bytes) that carry ``entries`` (the JSON text of each), each at most
    ``limit`` bytes; an entry too big for any is left out and counted."""
    out, run, size, too_big = [], [], 2, 0
    for entry in entries:
        if len(entry) + 2 > limit:
            too_big += 1
            continue
        if run and size + 1 + len(entry) > limit:
            out.append(b"[" + b",".join(run) + b"]")
            run, size = [], 2
        size += len(entry) + (1 if run else 0)
        run.append(entry)
    if run:
        out.append(b"[" + b",".join(run) + b"]")
    return out, too_big


class NatsOutput(Output):
    name = "nats"
    description = "NATS Server"
    options = (
        Option("Host", default="127.0.0.1", help="host of the NATS server"),
        Option("Port", "int", "4222", min=1, max=65535, help="port of the NATS server"),
    ) + NET_OPTIONS

    def configure(self):
        conf = self.conf
        self.label = "%s:%d" % (conf["host"], conf["port"])
        self.timeout = io_timeout(conf)
        self.pool = Pool(functools.partial(self._open, functools.partial(
            open_stream, conf["host"], conf["port"], connect_timeout=conf["net.connect_timeout"],
            tcp_keepalive=conf["net.tcp_keepalive"])), conf)

    async def _open(self, opener):
        """A connection that read the server's INFO and sent CONNECT."""
        stream = await opener()
        stream.session = session = ClientSession()
        session.server_max_payload = DEFAULT_MAX_PAYLOAD
        try:
            info = await asyncio.wait_for(self._until(stream, "INFO"), self.timeout)
            try:
                found = untrusted.loads(info[1])
                limit = found.get("max_payload") if isinstance(found, dict) else None
                if isinstance(limit, int) and limit > 0:
                    session.server_max_payload = limit
            except ValueError:
                pass
            await stream.send(session.send(("CONNECT", CONNECT)), self.timeout)
        except BaseException:
            stream.abort()
            raise
        return stream

    async def _until(self, stream, wanted):
        """Read until the event ``wanted`` comes; NatsFailed when the connection ends."""
        session = stream.session
        while True:
            data = await stream.reader.read(_READ)
            if not data:
                raise NatsFailed("the server closed the connection")
            result = session.receive(data)
            if result.reply:
                stream.writer.write(result.reply)
            for event in result.events:
                if event[0] == wanted:
                    return event
            if result.close is not None:
                raise NatsFailed(result.close)

    async def flush(self, chunk):
        tag = chunk.tag
        head = {"tag": tag}
        entries = formats.json_batch([[formats.time_double(t), dict(head, **record)]
                                      for t, record in chunk.events()])
        subject = tag.encode("utf-8", "surrogateescape")
        if not is_subject(subject):
            self.log.error("tag '%s' is no NATS subject: %d record(s) dropped", tag,
                           chunk.count)
            return ERROR
        try:
            stream = await self.pool.acquire()
        except (OSError, asyncio.TimeoutError, NatsFailed) as exc:
            self.log.error("could not connect to %s: %s", self.label,
                           failure_text(exc, self.timeout))
            return RETRY
        bodies, too_big = messages(entries, stream.session.server_max_payload)
        if too_big:
            self.log.error("%d record(s) of %s over the server's max_payload (%d bytes) "
                           "dropped", too_big, tag, stream.session.server_max_payload)
        data = b"".join(stream.session.send(("PUB", subject, body)) for body in bodies)
        try:
            await stream.send(data + stream.session.send(("PING",)), self.timeout)
            await asyncio.wait_for(self._until(stream, "PONG"), self.timeout)
        except (OSError, asyncio.TimeoutError, NatsFailed) as exc:
            stream.abort()
            self.log.error("could not deliver %d record(s) to %s: %s", chunk.count,
                           self.label, failure_text(exc, self.timeout))
            return RETRY
        self.pool.release(stream)
        return OK

    async def stop(self):
        self.pool.close()


PLUGIN = NatsOutput
