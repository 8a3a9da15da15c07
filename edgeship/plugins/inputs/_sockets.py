"""What the socket inputs (tcp, udp, syslog, forward, http) share: listening on TCP, UDP and
Unix sockets until stopped (``ListeningInput``),
the source address Fluent Bit writes under Source_Address_Key, the options and record making
of tcp and udp (``SocketText``), and a stream of JSON values turned into records (tcp and
udp ``Format json``).

JSON streams (in_tcp / in_udp ``Format json``, kept): values may be concatenated with or
without whitespace and cut anywhere by the reads; a map is a record, an array becomes
``{"msg": [...]}``. Differences, for safety: Fluent Bit drops the whole buffer at the first
invalid text and loses any scalar; edgeship skips only up to the end of the line the bad
text is on, and counts scalars as invalid too (both logged once per read).
"""
import asyncio
import codecs
import contextlib
import os
import socket

from edgeship.codecs import untrusted
from edgeship.core import events as ev
from edgeship.core.errors import ConfigError
from edgeship.core.framing import SeparatorFrames
from edgeship.core.schema import Option
from edgeship.engine.plugin import Input
from edgeship.plugins.parsers import _stock
from edgeship.plugins.parsers._base import unescape_simple

_SPACE = " \t\r\n"


# ------------------------------------------------------------------------ options
# Fluent Bit's networking keys of a listening input.
NET_OPTIONS = (
    Option("net.backlog", "int", "128", help="listen backlog"),
    Option("net.share_port", "bool", "off", help="SO_REUSEPORT on the listening socket"),
    Option("net.io_timeout", "time", "0", compat=True),
    Option("net.keepalive", "bool", "on", compat=True),
    Option("net.accept_timeout", "time", "10s", compat=True),
    Option("net.accept_timeout_log_error", "bool", "true", compat=True),
)


# ------------------------------------------------------------------------ tcp and udp
DEFAULT_CHUNK_KIB = 32


def socket_text_options(port):
    """The options tcp and udp share (Fluent Bit's in_tcp / in_udp config maps)."""
    return (
        Option("Listen", default="0.0.0.0", aliases=("host",), help="address to listen on"),
        Option("Port", "int", str(port), min=0, max=65535, help="port"),
        Option("Format", default="json", choices=("json", "none"),
               help="json: a stream of JSON values; none: text split on Separator"),
        Option("Separator", default="\\n",
               help="Format none: what ends a record (escapes such as \\n, \\t allowed)"),
        Option("Parser", help="parser applied to each piece (forces Format none)"),
        Option("Chunk_Size", "int", str(DEFAULT_CHUNK_KIB), min=1,
               help="KiB read at a time"),
        Option("Buffer_Size", "int", min=1,
               help="KiB: the longest record (default: Chunk_Size)"),
        Option("Source_Address_Key", help="key that receives the sender's address"),
        Option("Workers", "int", "1", compat=True, help="edgeship runs one loop"),
    )


class SocketText:
    """The record making tcp and udp share: configure() checks and binds the options;
    records(data, final, state) turns what a connection or a datagram brought into
    records."""

    def configure_text(self):
        conf = self.conf
        self.chunk_size = conf["chunk_size"] * 1024
        self.buffer_size = (conf["buffer_size"] or conf["chunk_size"]) * 1024
        self.source_key = conf["source_address_key"]
        self.parser = None
        self.json = conf["format"] == "json"
        if conf["parser"]:
            self.parser = _stock.required(self.context, conf["parser"])
            if self.json:
                self.log.warn("'parser' requires line-delimited payloads; switching format "
                              "from 'json' to 'none'")
                self.json = False
        separator = unescape_simple(conf["separator"])
        if not separator:
            raise ConfigError("invalid separator", key="separator")
        self.separator = separator.encode("utf-8")
        self.invalid = 0     # JSON texts skipped, in all
        self.bad_json = self.too_deep = self.split = self.unparsed = 0   # since report()
        self.bad_example = None

    def new_state(self):
        """The per-stream state: a JSON stream or a separator framer."""
        if self.json:
            return JsonStream(self.buffer_size)
        return SeparatorFrames(self.separator, self.buffer_size)

    def records(self, state, data, final):
        """The events of ``data`` (bytes; ``final``: nothing follows), stamped now. What
        was bad is counted for ``report()``, called once per read or batch."""
        if self.json:
            records = state.take(data, final)
            if state.invalid or state.too_deep:
                self.bad_json += state.invalid
                self.too_deep += state.too_deep
                if self.bad_example is None:
                    self.bad_example = state.example
            now = ev.now_ns()
            return [(now, record) for record in records]
        pieces = state.receive(data).events
        if final:
            pieces += state.finish()
        if state.split:
            self.split += state.split
            state.split = 0
        lines = [piece.decode("utf-8", "replace") for piece in pieces]
        now = ev.now_ns()
        if self.parser is None:
            return [(now, {"log": line}) for line in lines]
        events = self.parser.parse_lines(lines, now)
        for i, event in enumerate(events):
            if event is None:
                self.unparsed += 1
                events[i] = (now, {"log": lines[i]})
        return events

    def report(self):
        """One log line per kind of bad input since the last report."""
        if self.bad_json:
            self.log.warn("invalid JSON message, skipping: %r (%d in this read)",
                          self.bad_example, self.bad_json)
        if self.too_deep:
            self.log.warn("JSON message nested deeper than %d levels, skipping (%d in this "
                          "read)", untrusted.MAX_DEPTH, self.too_deep)
        if self.split:
            self.log.warn("record longer than Buffer_Size (%d bytes) handed on in pieces "
                          "(%d more pieces in this read)", self.buffer_size, self.split)
        if self.unparsed:
            self.log.debug("parser '%s' failed on %d pieces of this read, kept under 'log'",
                           self.conf["parser"], self.unparsed)
        self.invalid += self.bad_json + self.too_deep
        self.bad_json = self.too_deep = self.split = self.unparsed = 0
        self.bad_example = None

    def add_source(self, events, address):
        key = self.source_key
        for _, record in events:
            record[key] = address


# ------------------------------------------------------------------------ JSON streams
class JsonStream:
    """The records of a stream of JSON text. ``take(data, final)`` returns the records of
    the whole values in ``data`` (bytes, UTF-8; invalid bytes become U+FFFD, a character cut
    by a read is decoded whole) and keeps an unfinished value for the next call (``final``:
    the stream or datagram ends here). A value still unfinished after ``limit`` characters
    is invalid. ``invalid``, ``too_deep`` and ``example`` describe the last call."""

    def __init__(self, limit):
        self.limit = limit
        self.rest = ""
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.invalid = 0
        self.too_deep = 0
        self.example = None

    def take(self, data, final):
        records = []
        for value in self.values(data, final):
            if type(value) is dict:
                records.append(value)
            elif type(value) is list:
                records.append({"msg": value})
            else:
                self._bad(repr(value))
        return records

    def values(self, data, final):
        """The JSON values of the stream so far, whatever their type (the http input shapes
        its own records); what cannot be read is counted in ``invalid`` and ``too_deep``."""
        text = self.decoder.decode(data, final)
        text = self.rest + text if self.rest else text
        self.invalid = self.too_deep = 0
        self.example = None
        values = []
        pos, end = 0, len(text)
        loads = untrusted.loads
        while True:
            while pos < end and text[pos] in _SPACE:
                pos += 1
            if pos >= end:
                break
            newline = text.find("\n", pos)
            if newline >= 0:
                # One value per line is the common case: decoded whole, the fast way.
                try:
                    values.append(loads(text[pos:newline]))
                    pos = newline + 1
                    continue
                except untrusted.TooDeep:
                    self.too_deep += 1
                    pos = newline + 1
                    continue
                except ValueError:
                    pass            # several values on the line, or one over several lines
            try:
                value, pos = untrusted.raw_decode(text, pos)
            except ValueError as exc:
                deep = isinstance(exc, untrusted.TooDeep)
                if deep and exc.end is not None:
                    self.too_deep += 1
                    pos = exc.end
                    continue
                error_at = getattr(exc, "pos", pos)
                newline = text.find("\n", error_at)
                if newline < 0 and not final and end - pos < self.limit:
                    break           # the value continues in the next read
                skip_to = newline + 1 if newline >= 0 else end
                if deep:
                    self.too_deep += 1
                else:
                    self._bad(text[pos:skip_to])
                pos = skip_to
                continue
            values.append(value)
        self.rest = text[pos:] if not final else ""
        return values

    def _bad(self, text):
        self.invalid += 1
        if self.example is None:
            self.example = text[:80]


# ------------------------------------------------------------------------ addresses
def source_address(transport_name, peer, fallback=""):
    """Fluent Bit's text for a peer: ``tcp://1.2.3.4:5``, ``udp://...``, ``unix://path``."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = peer[0]
        return "%s://%s:%d" % (transport_name, host, peer[1])
    if isinstance(peer, bytes):
        peer = peer.decode("utf-8", "replace")
    return "unix://%s" % (peer or fallback)


def unix_permissions(text):
    """The Unix_Perm value (octal text) as a mode; ConfigError when it is not octal."""
    try:
        return int(text, 8) & 0o7777
    except ValueError:
        raise ConfigError("Unix_Perm must be octal (such as 0660), got '%s'" % text,
                          key="unix_perm")



# ------------------------------------------------------------------------ listeners
async def stream_server(serve, host=None, port=None, path=None, perm=None, ssl=None,
                        backlog=128, reuse_port=False):
    """A started asyncio server: TCP on host:port, or a Unix stream socket at ``path``
    (an old socket file there is replaced; ``perm`` applied). Raises OSError."""
    if path:
        sock = bind_unix(socket.SOCK_STREAM, path, perm)
        try:
            return await asyncio.start_unix_server(serve, sock=sock, ssl=ssl, backlog=backlog)
        except OSError:
            sock.close()
            raise
    return await asyncio.start_server(serve, host, port, ssl=ssl, backlog=backlog,
                                      reuse_port=reuse_port or None)


class ListeningInput(Input):
    """An input that listens until it is stopped: ``stop()`` ends ``until_stopped()``,
    ``serve_until_stopped()`` and ``read_datagrams()``. A stream input keeps the writers of
    its open connections in ``self.connections`` (closed when it stops)."""

    _stop = None        # the asyncio.Event stop() sets (made inside the running loop)
    _reading = None     # the datagram read in progress, cancelled by stop()

    def stop(self):
        Input.stop(self)
        if self._stop is not None:
            self._stop.set()
        if self._reading is not None:
            self._reading.cancel()

    async def until_stopped(self):
        self._stop = asyncio.Event()
        if not self.stopping:
            await self._stop.wait()

    async def serve_until_stopped(self, server, where):
        """Serve with the started ``server`` until stopped, then close it and the
        connections still open."""
        self.log.info("listening on %s", where)
        try:
            await self.until_stopped()
        finally:
            server.close()
            for writer in list(self.connections):
                writer.close()
            await server.wait_closed()

    @contextlib.contextmanager
    def serving(self, writer, address):
        """Around the reading of one connection: kept in ``self.connections`` meanwhile, an
        OSError ending it logged (debug: a peer that went away is normal), closed after."""
        self.connections.add(writer)
        try:
            yield
        except OSError as exc:
            self.log.debug("connection from %s ended: %s", address, exc)
        finally:
            self.connections.discard(writer)
            writer.close()

    async def serve_datagrams(self, take, size=65536):
        """Listen on UDP ``Listen:Port`` (``net.share_port``) and hand each batch of
        datagrams (each read whole up to ``size`` bytes) to ``take`` until stopped; a socket
        that cannot be bound is logged and ends the input."""
        conf = self.conf
        where = "%s:%s" % (conf["listen"], conf["port"])
        try:
            sock = datagram_socket(conf["listen"], conf["port"], size=size,
                                   reuse_port=conf["net.share_port"])
        except OSError as exc:
            self.log.error("could not listen on %s: %s", where, exc)
            return
        self.log.info("listening on %s", where)
        await self.read_datagrams(sock, take)

    async def read_datagrams(self, sock, take):
        """Hand each batch of ``sock``'s datagrams to ``take`` once there is room (nothing is
        read while there is none), until stopped; then close ``sock``."""
        try:
            while not self.stopping:
                await self.context.room()
                self._reading = asyncio.ensure_future(sock.receive())
                try:
                    datagrams = await self._reading
                except asyncio.CancelledError:
                    if self.stopping:
                        return
                    raise
                finally:
                    self._reading = None
                take(datagrams)
        finally:
            sock.close()


class DatagramSocket:
    """A bound datagram socket read on the loop a batch at a time: ``await receive()``
    waits until it is readable, then returns every datagram waiting (up to ``batch``) as
    ``(data, address)`` pairs. Between calls nothing is read, so an input that waits for
    room leaves datagrams in the kernel's buffer, as Fluent Bit's paused collector does."""

    def __init__(self, sock, size, batch=1024):
        self.sock = sock
        self.size = size
        self.batch = batch

    async def receive(self):
        loop = asyncio.get_running_loop()
        received = []
        while not received:
            ready = loop.create_future()
            fd = self.sock.fileno()
            loop.add_reader(fd, ready.set_result, None)
            try:
                await ready
            finally:
                loop.remove_reader(fd)
            recvfrom = self.sock.recvfrom
            size = self.size
            for _ in range(self.batch):
                try:
                    received.append(recvfrom(size))
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break       # an ICMP error for an earlier send: nothing to read
        return received

    def close(self):
        self.sock.close()


def datagram_socket(host=None, port=None, path=None, perm=None, receive_buffer=None,
                    size=65536, reuse_port=False):
    """A ``DatagramSocket``: UDP on host:port, or a Unix datagram socket at ``path`` (an old
    socket file there is replaced; ``perm`` applied). ``receive_buffer``: SO_RCVBUF;
    ``size``: the largest datagram read whole. Raises OSError."""
    if path:
        sock = bind_unix(socket.SOCK_DGRAM, path, perm)
        try:
            if receive_buffer:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return DatagramSocket(sock, size)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if receive_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return DatagramSocket(sock, size)


def bind_unix(kind, path, perm):
    """A Unix socket of ``kind`` bound at ``path`` (an old socket file there replaced) that
    appears there with ``perm`` already set: bound under a temporary name, chmod, renamed, so
    a client never finds it open wider than configured."""
    temporary = path + ".~"
    sock = socket.socket(socket.AF_UNIX, kind)
    try:
        remove_socket_file(temporary)
        sock.bind(temporary)
        if perm is not None:
            os.chmod(temporary, perm)
        os.replace(temporary, path)
    except OSError:
        sock.close()
        remove_socket_file(temporary)
        raise
    return sock


def remove_socket_file(path):
    """Remove a Unix socket file (an old one before listening, ours when stopping)."""
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass
