"""Client connections of the stream outputs (forward, tcp, syslog, gelf): TCP, TLS or a Unix
socket to one server, kept alive between flushes in a pool, and UDP datagrams. Every client
connection is opened here (``open_stream``: the HTTP client's and the health input's too).

Fluent Bit's upstream rules kept: ``net.connect_timeout`` (10 s), ``net.keepalive`` (on),
``net.keepalive_idle_timeout`` (30 s), ``net.keepalive_max_recycle`` (2000 flushes), one
connection per flush in flight (Workers), ``net.tcp_keepalive`` probes.

What "sent" means: TCP has no application-level acknowledgement (Fluent Bit's tcp, syslog
and gelf outputs have none either), so ``Stream.send`` returns once every byte is in the
kernel's socket buffer of a live connection (the write buffer limit is 0, so ``drain()``
waits for that), not once the peer read them. A connection the peer closed is found before
the send (``alive``) or by the send's error, and the flush is retried on a new one. UDP:
``Datagrams.send`` returns once ``send`` accepted every datagram; a receiver that is not
there shows up as ECONNREFUSED on a later send (the socket is connected, so the kernel
reports the ICMP error), which retries too.

Difference from Fluent Bit: a write that cannot finish (a receiver that stopped reading)
gives up after ``net.io_timeout`` or, when that is 0 (Fluent Bit: wait forever), after
DEFAULT_IO_TIMEOUT seconds, so a stuck peer cannot stall the output; the connection is then
dropped with what it still buffered (the peer may hold the first part of that flush).
"""
import asyncio
import functools
import socket
import time

from edgeship.core.schema import Option

DEFAULT_IO_TIMEOUT = 30.0

NET_OPTIONS = (
    Option("net.connect_timeout", "time", "10", help="seconds to connect"),
    Option("net.connect_timeout_log_error", "bool", "on", compat=True),
    Option("net.io_timeout", "time", "0",
           help="seconds to write a chunk or wait for an answer (0: %ds)" % DEFAULT_IO_TIMEOUT),
    Option("net.keepalive", "bool", "on", help="keep the connection between flushes"),
    Option("net.keepalive_idle_timeout", "time", "30",
           help="close a kept connection idle this long"),
    Option("net.keepalive_max_recycle", "int", "2000",
           help="reconnect after this many flushes on one connection"),
    Option("net.source_address", compat=True),
    Option("net.dns.mode", compat=True),
    Option("net.tcp_keepalive", "bool", "off", help="TCP keepalive probes"),
)


def failure_text(exc, timeout):
    """What a failed connect or send tells the log (an exception's text may be empty)."""
    if isinstance(exc, asyncio.TimeoutError):
        return "no progress within %ss" % timeout
    return str(exc) or type(exc).__name__


def io_timeout(conf):
    """The seconds a write (or an awaited answer) may take, from ``net.io_timeout``."""
    return conf["net.io_timeout"] or DEFAULT_IO_TIMEOUT


class Stream:
    """One open connection. ``session`` is free for a protocol's state (forward's)."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.session = None
        self.used = 0
        self.last_use = time.monotonic()

    def alive(self):
        return not (self.reader.at_eof() or self.writer.is_closing()
                    or self.reader.exception() is not None)

    async def send(self, data, timeout):
        """Hand ``data`` to the kernel; OSError or asyncio.TimeoutError when it cannot."""
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), timeout)

    def close(self):
        try:
            self.writer.close()
        except Exception:
            pass

    def abort(self):
        """Drop the connection and what is still buffered for it (after a failed send: a
        peer that resumes reading must not get the rest of a flush that was retried)."""
        self.writer.transport.abort()


async def open_stream(host, port, ssl_ctx=None, server_hostname=None, unix_path=None,
                      connect_timeout=None, tcp_keepalive=False, sock=None):
    """A new Stream to ``host:port`` (or ``unix_path``, or over the connected socket
    ``sock``: a proxy's tunnel), TLS when ``ssl_ctx`` is given."""
    if sock is not None:
        opening = asyncio.open_connection(
            sock=sock, ssl=ssl_ctx, server_hostname=server_hostname if ssl_ctx else None)
    elif unix_path:
        opening = asyncio.open_unix_connection(
            unix_path, ssl=ssl_ctx,
            server_hostname=(server_hostname or "localhost") if ssl_ctx else None)
    else:
        opening = asyncio.open_connection(
            host, port, ssl=ssl_ctx,
            server_hostname=(server_hostname or host) if ssl_ctx else None)
    reader, writer = await asyncio.wait_for(opening, connect_timeout or None)
    # drain() then waits until every byte is in the kernel, not just under a watermark.
    writer.transport.set_write_buffer_limits(0)
    if tcp_keepalive:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return Stream(reader, writer)


class Pool:
    """Kept-alive connections to one server, one per flush in flight.

    ``opener()`` makes a new Stream (and does any handshake). ``acquire`` hands out an idle
    connection that is still usable or a new one; ``release`` takes it back after a flush
    that worked; a connection that failed is closed by its user, never released."""

    def __init__(self, opener, conf):
        self.opener = opener
        self.keepalive = conf["net.keepalive"]
        self.idle_timeout = conf["net.keepalive_idle_timeout"]
        self.max_recycle = conf["net.keepalive_max_recycle"]
        self.idle = []

    async def acquire(self):
        while self.idle:
            stream = self.idle.pop()
            if (self.keepalive and stream.alive()
                    and time.monotonic() - stream.last_use <= self.idle_timeout
                    and stream.used < self.max_recycle):
                return stream
            stream.close()
        return await self.opener()

    def release(self, stream):
        stream.used += 1
        stream.last_use = time.monotonic()
        if self.keepalive:
            self.idle.append(stream)
        else:
            stream.close()

    def close(self):
        for stream in self.idle:
            stream.close()
        self.idle = []


def stream_pool(conf, ssl_ctx):
    """The Pool of an output with Host, Port, the net.* options and TLS context ``ssl_ctx``."""
    return Pool(functools.partial(open_stream, conf["host"], conf["port"], ssl_ctx,
                                  conf.get("tls.vhost"),
                                  connect_timeout=conf["net.connect_timeout"],
                                  tcp_keepalive=conf["net.tcp_keepalive"]), conf)


class Datagrams:
    """A connected UDP socket to one server: ``send`` one datagram per item."""

    def __init__(self, host, port):
        self.host = host
        self.port = port
        self.sock = None

    async def _open(self):
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.connect(address)
        except OSError:
            sock.close()
            raise
        self.sock = sock

    async def send(self, datagrams):
        """Send every datagram; OSError when one is refused (the socket is then reopened
        by the next call)."""
        if self.sock is None:
            await self._open()
        sock = self.sock
        loop = asyncio.get_running_loop()
        try:
            for datagram in datagrams:
                try:
                    sock.send(datagram)
                except BlockingIOError:  # the send buffer is full: wait until it is not
                    await loop.sock_sendall(sock, datagram)
        except OSError:
            self.close()
            raise

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class Sender:
    """Where a tcp, syslog or gelf output's bytes go: ``transport`` "tcp" (a Pool of TCP or
    TLS connections, TLS when ``ssl_ctx`` is given) or "udp" (one datagram per payload).

    ``send(payloads)`` writes the payloads of one flush, one after another on one connection
    or each as a datagram, and returns None once they are in the kernel, or the text of
    what failed (the output retries the chunk)."""

    def __init__(self, conf, transport, ssl_ctx=None):
        self.transport = transport
        self.label = "%s:%s" % (conf["host"], conf["port"])
        self.timeout = io_timeout(conf)
        if transport == "udp":
            self.datagrams = Datagrams(conf["host"], conf["port"])
        else:
            self.pool = stream_pool(conf, ssl_ctx)

    async def send(self, payloads):
        try:
            if self.transport == "udp":
                await self.datagrams.send(payloads)
                return None
            stream = await self.pool.acquire()
        except (OSError, asyncio.TimeoutError) as exc:
            return failure_text(exc, self.timeout)
        try:
            await stream.send(b"".join(payloads), self.timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            stream.abort()
            return failure_text(exc, self.timeout)
        except BaseException:    # cancelled: the flush did not happen
            stream.abort()
            raise
        self.pool.release(stream)
        return None

    def close(self):
        if self.transport == "udp":
            self.datagrams.close()
        else:
            self.pool.close()
