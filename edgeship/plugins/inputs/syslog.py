"""syslog input: syslog messages over Unix sockets, TCP or UDP (in_syslog).

Fluent Bit behaviour kept (5.1.1):
- ``Mode`` unix_udp (default), unix_tcp (``Path`` required, ``Unix_Perm`` default 0644), tcp
  or udp (``Listen`` 0.0.0.0, ``Port`` 5140).
- Stream modes frame messages by newline (a NUL ends one too) or, with ``Format
  octet_counting``, by RFC 6587 octet counting (``LEN SP MSG``); an unknown Format is warned
  about and newline used. Datagram modes: one message per datagram.
- ``Parser`` defaults to ``syslog-rfc5424`` for tcp/udp and ``syslog-rfc3164-local`` for the
  unix modes; the record is the parser's (the stock parsers keep ``time`` and take the record
  time from it; RFC 3164 times get the current year). ``Raw_Message_Key`` adds the message as
  received, then ``Source_Address_Key`` the sender (``tcp://IP:PORT``, ``udp://IP:PORT``,
  ``unix://...``).
- ``Buffer_Chunk_Size`` (32768) bytes are read at a time; ``Buffer_Max_Size`` (default: the
  chunk size) bounds a message. ``Receive_Buffer_Size`` sets SO_RCVBUF. TLS for tcp.

Differences (README "Where edgeship differs"):
- The stock syslog parsers are built in (``plugins/parsers/_stock.py``): Fluent Bit refuses
  to start ("parser not set") unless parsers.conf is loaded.
- A message the parser does not match is kept as ``{"log": message}`` (plus the source
  address), counted and logged once per read; Fluent Bit drops it with a warning.
- A newline-framed message longer than Buffer_Max_Size is handed on in pieces; an
  octet-counted frame declaring more closes that connection, logged. Fluent Bit closes the
  connection in both cases, logging at debug level only.
- ``Raw_Message_Key`` holds a string (Fluent Bit: msgpack bin, which its JSON outputs print as
  the same string).
"""
import socket

from edgeship.core import events as ev
from edgeship.core.errors import ConfigError, StartError
from edgeship.core.framing import OctetCountingFrames, SeparatorFrames
from edgeship.core.schema import Option
from edgeship.net.tls import TLS_OPTIONS, tls_context
from edgeship.plugins.inputs._sockets import (NET_OPTIONS, ListeningInput, datagram_socket,
                                              remove_socket_file, source_address,
                                              stream_server, unix_permissions)
from edgeship.plugins.parsers import _stock

DEFAULT_PORT = 5140
MODES = ("unix_udp", "unix_tcp", "tcp", "udp")
DEFAULT_PARSER = {"tcp": "syslog-rfc5424", "udp": "syslog-rfc5424",
                  "unix_tcp": "syslog-rfc3164-local", "unix_udp": "syslog-rfc3164-local"}


class SyslogInput(ListeningInput):
    name = "syslog"
    description = "Syslog"
    options = (
        Option("Mode", default="unix_udp", choices=MODES,
               help="socket: unix_udp, unix_tcp, tcp or udp"),
        Option("Listen", default="0.0.0.0", aliases=("host",),
               help="tcp/udp: address to listen on"),
        Option("Port", "int", str(DEFAULT_PORT), min=0, max=65535, help="tcp/udp: port"),
        Option("Path", help="unix modes: path of the socket"),
        Option("Unix_Perm", default="0644", help="unix modes: permissions of the socket"),
        Option("Buffer_Chunk_Size", "size", "32768", above=0, help="bytes read at a time"),
        Option("Buffer_Max_Size", "size",
               help="longest message in bytes (default: Buffer_Chunk_Size)"),
        Option("Parser", help="parser of each message (default: syslog-rfc5424 for tcp/udp, "
               "syslog-rfc3164-local for the unix modes)"),
        Option("Receive_Buffer_Size", "size", help="SO_RCVBUF of the socket"),
        Option("Raw_Message_Key", help="key that receives the message as received"),
        Option("Source_Address_Key", help="key that receives the sender's address"),
        Option("Format", default="newline",
               help="stream framing: newline or octet_counting (RFC 6587)"),
    ) + NET_OPTIONS + TLS_OPTIONS

    def configure(self):
        conf = self.conf
        self.mode = conf["mode"].lower()
        self.unix = self.mode.startswith("unix")
        self.stream = self.mode.endswith("tcp")
        self.path = conf["path"]
        if self.unix and not self.path:
            raise StartError("Mode %s needs Path, the socket's path" % self.mode, key="path")
        self.perm = unix_permissions(conf["unix_perm"]) if self.unix else None
        self.chunk_size = conf["buffer_chunk_size"]
        self.max_size = conf["buffer_max_size"] or self.chunk_size
        framing = conf["format"].lower()
        self.octet_counting = framing in ("octet_counting", "octet")
        if not self.octet_counting and framing != "newline":
            self.log.warn("unknown frame '%s', using 'newline'", conf["format"])
        parser_name = conf["parser"] or DEFAULT_PARSER[self.mode]
        try:
            self.parser = _stock.parser(self.context, parser_name)
        except KeyError:
            raise ConfigError("parser '%s' not found" % parser_name, key="parser")
        self.parser_name = parser_name
        self.raw_key = conf["raw_message_key"]
        self.source_key = conf["source_address_key"]
        self.ssl_ctx = tls_context(conf, server=True) if self.mode == "tcp" else None
        self.unparsed = 0        # messages kept raw because the parser did not match them
        self.closed_on_error = 0
        self.connections = set()

    # ------------------------------------------------------------------ records
    def _events(self, messages, addresses):
        """The events of ``messages`` (bytes) from ``addresses`` (one for all, or one per
        message), logging what did not parse once."""
        lines = [message.decode("utf-8", "replace") for message in messages]
        now = ev.now_ns()
        events = self.parser.parse_lines(lines, now)
        raw_key, source_key = self.raw_key, self.source_key
        if not raw_key and not source_key and None not in events:
            return events       # every message parsed, nothing to add
        same_source = not isinstance(addresses, list)
        unparsed = 0
        example = None
        for i, event in enumerate(events):
            if event is None:
                unparsed += 1
                if example is None:
                    example = lines[i]
                record = {"log": lines[i]}
                events[i] = (now, record)
            else:
                record = event[1]
                if raw_key:
                    record[raw_key] = lines[i]
            if source_key:
                record[source_key] = addresses if same_source else addresses[i]
        if unparsed:
            self.unparsed += unparsed
            self.log.warn("error parsing log message with parser '%s', kept under 'log': "
                          "%r (%d in this read)", self.parser_name, example[:80], unparsed)
        return events

    # ------------------------------------------------------------------ listening
    def _where(self):
        if self.unix:
            return self.path
        return "%s:%s" % (self.conf["listen"], self.conf["port"])

    async def run(self):
        try:
            if self.stream:
                await self._run_stream()
            else:
                await self._run_datagrams()
        except OSError as exc:
            self.log.error("could not listen on %s: %s", self._where(), exc)
        finally:
            if self.unix:
                remove_socket_file(self.path)

    async def _run_stream(self):
        conf = self.conf
        if self.unix:
            server = await stream_server(self._serve, path=self.path, perm=self.perm,
                                         backlog=conf["net.backlog"])
        else:
            server = await stream_server(self._serve, conf["listen"], conf["port"],
                                         ssl=self.ssl_ctx, backlog=conf["net.backlog"],
                                         reuse_port=conf["net.share_port"])
        await self.serve_until_stopped(server, self._where())

    async def _serve(self, reader, writer):
        if self.unix:
            address = source_address("unix", writer.get_extra_info("peername"), self.path)
        else:
            address = source_address("tcp", writer.get_extra_info("peername"))
        with self.serving(writer, address):
            if self.conf["receive_buffer_size"]:
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                                    self.conf["receive_buffer_size"])
            if self.octet_counting:
                framer = OctetCountingFrames(self.max_size)
            else:
                framer = SeparatorFrames(b"\n", self.max_size, alternatives=(b"\x00",))
            while not self.stopping:
                await self.context.room()
                data = await reader.read(self.chunk_size)
                if not data:
                    messages = framer.finish()
                    close = None
                else:
                    result = framer.receive(data)
                    messages, close = result.events, result.close
                if getattr(framer, "split", 0):
                    self.log.warn("message longer than Buffer_Max_Size (%d bytes) handed on "
                                  "in pieces (%d more pieces)", self.max_size, framer.split)
                    framer.split = 0
                if messages:
                    self.context.emit(self.tag, self._events(messages, address), len(data))
                if close is not None:
                    self.closed_on_error += 1
                    self.log.warn("closing connection from %s: %s (%d so far)", address, close,
                                  self.closed_on_error)
                    break
                if not data:
                    break

    async def _run_datagrams(self):
        conf = self.conf
        sock = datagram_socket(conf["listen"], conf["port"], self.path, self.perm,
                               conf["receive_buffer_size"], max(self.max_size, 65536),
                               conf["net.share_port"])
        self.log.info("listening on %s", self._where())
        await self.read_datagrams(sock, self._take_datagrams)

    def _take_datagrams(self, datagrams):
        transport = "unix" if self.unix else "udp"
        datagrams = [(data, peer) for data, peer in datagrams if data]
        addresses = None
        if self.source_key:
            fallback = self.path if self.unix else ""
            addresses = [source_address(transport, peer, fallback) for _, peer in datagrams]
        events = self._events([data for data, _ in datagrams], addresses)
        if events:
            self.context.emit(self.tag, events, sum(len(data) for data, _ in datagrams))


PLUGIN = SyslogInput
