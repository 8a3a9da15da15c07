"""forward input: a Fluentd forward protocol server (in_forward).

Every connection has its own ``ServerSession`` (edgeship.core.forward). A request's ack is
sent only when the pipeline confirms its records (``Ack``): with memory storage once the
outputs delivered them, with filesystem storage once the spool holds them. A protocol error
or a frame over Buffer_Max_Size closes that connection only, and is counted.

Entries in the form edgeship's own forward output sends (``codecs.entries.checked``: Fluent
Bit's entries with the smallest headers, records nested within ``untrusted.MAX_DEPTH``) are
handed on as bytes: the engine decodes them only for a filter or an output that renders
records, so a relay forwards or writes them without building a record.

Entries that cannot make a record (a bad PackedForward entry, a record nested deeper than
``untrusted.MAX_DEPTH`` levels, in any mode) are dropped, counted and logged once per read;
their frame is still acked. Fluent Bit closes the connection on a Forward-mode frame nested
past its msgpack stack (64 levels, frame included) and passes deeper PackedForward entries
on to outputs that cannot read them.
"""
import asyncio
import os

from edgeship.codecs import cmetrics, untrusted
from edgeship.codecs.msgpack import MsgpackCodec, packb
from edgeship.core import forward
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.ack import Ack
from edgeship.net.tls import TLS_OPTIONS, tls_context
from edgeship.plugins.inputs._sockets import (ListeningInput, remove_socket_file,
                                              stream_server)


class ForwardInput(ListeningInput):
    name = "forward"
    description = "Fluentd forward protocol server"
    options = (
        Option("Listen", default="0.0.0.0", aliases=("host",), help="address to listen on"),
        Option("Port", "int", str(forward.DEFAULT_PORT), help="TCP port"),
        Option("Unix_Path", help="listen on this Unix socket instead of TCP"),
        Option("Unix_Perm", help="permissions of the Unix socket, octal (e.g. 0660)"),
        Option("Tag_Prefix", help="prepended to the tag of every frame"),
        Option("Shared_Key", help="require the secure-forward handshake with this key"),
        Option("Empty_Shared_Key", "bool", "off", help="secure forward with an empty key"),
        Option("Self_Hostname", default="localhost", help="host name sent in PONG"),
        Option("Security.Users", multiple=True, help="'user password' allowed to connect"),
        Option("Buffer_Chunk_Size", "size", "1024000", help="bytes read at a time"),
        Option("Buffer_Max_Size", "size", "6144000",
               help="largest frame; a larger one closes its connection"),
        Option("net.backlog", "int", "128", help="listen backlog"),
        Option("Workers", "int", "1", compat=True,
               help="one event loop serves every connection"),
        Option("net.io_timeout", "time", "0", compat=True),
        Option("net.keepalive", "bool", "on", compat=True),
        Option("net.share_port", "bool", "off", help="SO_REUSEPORT on the listening socket"),
    ) + TLS_OPTIONS

    def configure(self):
        conf = self.conf
        self.codec = MsgpackCodec()
        self.shared_key = conf["shared_key"]
        if self.shared_key is None and conf["empty_shared_key"]:
            self.shared_key = ""
        self.users = {}
        for item in conf["security.users"]:
            user, _, password = item.strip().partition(" ")
            if not password.strip():
                raise ConfigError("forward: Security.Users needs 'user password', got '%s'"
                                  % item, key="security.users")
            self.users[user] = password.strip()
        if self.users and self.shared_key is None:
            raise ConfigError("forward: Security.Users needs Shared_Key or Empty_Shared_Key",
                              key="security.users")
        self.unix_perm = None
        if conf["unix_perm"]:
            try:
                self.unix_perm = int(conf["unix_perm"], 8)
            except ValueError:
                raise ConfigError("forward: Unix_Perm must be octal, got '%s'" % conf["unix_perm"],
                                  key="unix_perm")
        self.ssl_ctx = tls_context(conf, server=True)
        self.fixed_tag = conf["tag"]
        self.connections = set()
        self.closed_on_error = 0      # connections closed for a protocol error or size limit
        self.dropped_entries = 0

    def _tag(self, frame_tag):
        if self.conf["tag_prefix"]:
            return self.conf["tag_prefix"] + frame_tag
        return self.fixed_tag or frame_tag

    async def run(self):
        conf = self.conf
        where = conf["unix_path"] or "%s:%s" % (conf["listen"], conf["port"])
        try:
            server = await stream_server(self._serve, conf["listen"], conf["port"],
                                         conf["unix_path"], self.unix_perm, self.ssl_ctx,
                                         conf["net.backlog"], conf["net.share_port"])
        except OSError as exc:
            self.log.error("could not listen on %s: %s", where, exc)
            return
        try:
            await self.serve_until_stopped(server, where)
        finally:
            remove_socket_file(conf["unix_path"])

    async def _serve(self, reader, writer):
        self.connections.add(writer)
        peer = writer.get_extra_info("peername") or self.conf["unix_path"]
        session = forward.ServerSession(
            self.codec, self.conf["buffer_max_size"], self.shared_key,
            self.conf["self_hostname"], self.users, os.urandom(16), os.urandom(16))
        chunk_size = self.conf["buffer_chunk_size"]
        closing = None
        try:
            greeting = session.send((forward.HELO,))
            if greeting:
                writer.write(greeting)
            while not self.stopping:
                await self.context.room()
                data = await reader.read(chunk_size)
                if not data:
                    if session.pending():
                        self._closed(peer, "connection closed in the middle of a frame")
                    break
                result = session.receive(data)
                refused = None
                for _, request in result.events:
                    refused = self._accept(request, session, writer)
                    if refused is not None:
                        result.close = refused   # no ack, as Fluent Bit
                        break
                if result.reply and refused is None:
                    writer.write(result.reply)
                if session.dropped:
                    self.dropped_entries += session.dropped
                    self.log.warn("%s: dropped %d entries: invalid, or nested deeper than %d "
                                  "levels (%d so far)", peer, session.dropped,
                                  untrusted.MAX_DEPTH, self.dropped_entries)
                    session.dropped = 0
                if result.close is not None:
                    closing = result.close
                    self._closed(peer, closing)
                    break
        except OSError as exc:
            self.log.debug("connection from %s ended: %s", peer, exc)
        finally:
            self.connections.discard(writer)
            try:
                if closing is not None:
                    await asyncio.wait_for(writer.drain(), 1.0)
            except Exception:
                pass
            writer.close()

    def _closed(self, peer, reason):
        self.closed_on_error += 1
        self.log.warn("closing connection from %s: %s (%d so far)", peer, reason,
                      self.closed_on_error)

    def _accept(self, request, session, writer):
        """Queue a request's records (acked once stored); a reason to close the
        connection when they are metrics cmetrics would not decode."""
        metrics = None
        if isinstance(request.events, forward.MetricsPayload):
            try:
                # Fluent Bit's in_forward ingests the first context of a payload only.
                (context,) = cmetrics.decode(request.events.payload, first_only=True)
            except cmetrics.MetricsError as exc:
                return "cmt_decode_msgpack_create failed: %s" % exc
            if not cmetrics.is_empty(context):
                metrics = packb(context)
        ack = None
        if request.chunk is not None:
            reply = session.send((forward.ACK, request.chunk))

            def confirmed():
                if not writer.is_closing():
                    writer.write(reply)
            ack = Ack(confirmed)
        if metrics is not None:
            self.context.emit_metrics(self._tag(request.tag), metrics, ack)
        elif request.events and not isinstance(request.events, forward.MetricsPayload):
            self.context.emit(self._tag(request.tag), request.events, request.size, ack)
        elif ack is not None:
            ack.seal()
        return None


PLUGIN = ForwardInput
