"""forward output: Fluentd forward protocol to Fluentd / Fluent Bit / edgeship (out_forward).

One frame per chunk: the chunk's bytes sent as they are (Forward mode: an array header, then
the entries; CompressedPackedForward with gzip), as Fluent Bit's forward_format.c does; only
Retain_Metadata_In_Forward_Mode off, Time_as_Integer or a per-record Tag re-encode records.
A flush is OK only once the frame is fully handed to the kernel, or, with
Require_Ack_Response, once the server acked its chunk id; anything else is a RETRY (the
connection is closed, so a failed handshake is never reused as Fluent Bit does).

Workers (default 2, as Fluent Bit): each flush in flight has a connection of its own, kept
alive between flushes in a pool per node, so acks are awaited in parallel.

``Tag`` is a record-accessor template (edgeship.core.accessor): with ``$TAG``/``$TAG[n]``
only it is one tag per chunk; with a record key (``app.$svc``) every record goes in its
own Message-mode frame, as Fluent Bit sends it. A tag that renders empty is replaced by the
record's own tag (Fluent Bit sends the empty tag, which its in_forward drops silently).

``compress.thread`` (edgeship only, off by default): gzip frames are made in a thread of the
output's own (zlib works without the GIL), so the loop reads and packs the next records
meanwhile; see the README's Performance table for what it gives.
"""
import asyncio
import functools
import os
from concurrent.futures import ThreadPoolExecutor

from edgeship.codecs import formats
from edgeship.codecs.msgpack import MsgpackCodec
from edgeship.core import forward
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import LOGS, METRICS, OK, RETRY, Output
from edgeship.net.stream import NET_OPTIONS, Pool, failure_text, io_timeout, open_stream
from edgeship.net.tls import TLS_OPTIONS, tls_context
from edgeship.net.upstream import read_upstream


class Node:
    """One server and its kept-alive connections (one per flush in flight)."""

    def __init__(self, name, host, port, unix_path, ssl_ctx, vhost, shared_key, hostname,
                 username, password):
        self.name = name
        self.host = host
        self.port = port
        self.unix_path = unix_path
        self.ssl_ctx = ssl_ctx
        self.vhost = vhost
        self.shared_key = shared_key
        self.hostname = hostname
        self.username = username
        self.password = password
        self.pool = None    # set by the output: its opener knows the handshake

    def label(self):
        where = self.unix_path or "%s:%s" % (self.host, self.port)
        return "node %s (%s)" % (self.name, where) if self.name else where


class ForwardOutput(Output):
    name = "forward"
    description = "Forward (Fluentd protocol)"
    workers = 2
    signals = (LOGS, METRICS)
    options = (
        Option("Host", default="127.0.0.1", help="host of the forward server"),
        Option("Port", "int", str(forward.DEFAULT_PORT), help="TCP port of the server"),
        Option("Unix_Path", help="Unix socket of the server, instead of Host/Port"),
        Option("Upstream", help="upstream file: [UPSTREAM] and [NODE] sections, round-robin"),
        Option("Tag", help="tag sent instead of the record's; $key makes it per record "
                           "(Message mode)"),
        Option("Time_as_Integer", "bool", "off", help="send times as integer seconds"),
        Option("Send_options", "bool", "off", help="always send the options element"),
        Option("Require_ack_response", "bool", "off",
               help="ask for an ack of every chunk: at-least-once delivery"),
        Option("Compress", choices=("gzip", "none"), help="gzip: CompressedPackedForward"),
        Option("compress.thread", "bool", "off",
               help="gzip: compress in a thread beside the loop (edgeship)"),
        Option("Shared_Key", help="secure forward shared key"),
        Option("Empty_Shared_Key", "bool", "off", help="secure forward with an empty key"),
        Option("Self_Hostname", default="localhost", help="host name sent in PING"),
        Option("Username", help="secure forward user name"),
        Option("Password", help="secure forward password"),
        Option("Retain_metadata_in_forward_mode", "bool", "true",
               help="entries as [[time, metadata], record]; off for Fluentd"),
        Option("fluentd_compat", "bool", "off",
               compat=True, help="only changes metrics/traces in Fluent Bit"),
        Option("Add_Option", multiple=True, help="'key value' added to the options map"),
    ) + NET_OPTIONS + TLS_OPTIONS

    def configure(self):
        conf = self.conf
        self.codec = MsgpackCodec()
        if conf["time_as_integer"] and conf["compress"] == "gzip":
            raise ConfigError("forward: Time_as_Integer cannot be used with Compress gzip",
                              key="compress")
        extra = []
        for item in conf["add_option"]:
            key, _, value = item.strip().partition(" ")
            if not value.strip():
                raise ConfigError("forward: Add_Option needs 'key value', got '%s'" % item,
                                  key="add_option")
            extra.append((key, value.strip()))
        self.encoder = forward.Encoder(
            self.codec.packb, retain_metadata=conf["retain_metadata_in_forward_mode"],
            time_as_integer=conf["time_as_integer"], compress=conf["compress"] == "gzip",
            send_options=conf["send_options"], require_ack=conf["require_ack_response"],
            extra_options=extra, pack_entries=self.codec.pack_entries)
        self.tag_template = None
        if conf["tag"]:
            try:
                self.tag_template = formats.record_template(conf["tag"])
            except ValueError as exc:
                raise ConfigError("forward: Tag: %s" % exc, key="tag")
        # Only a per-record Tag or re-encoded entries read the records.
        self.reads_records = (not conf["retain_metadata_in_forward_mode"]
                              or conf["time_as_integer"]
                              or (self.tag_template is not None
                                  and not self.tag_template.is_static))
        # Fluent Bit waits for an ack forever when net.io_timeout is 0; edgeship gives up
        # (net/stream.py) and retries, so a silent server cannot stall the output.
        self.io_timeout = io_timeout(conf)
        self.compressor = None      # the thread of compress.thread, made at the first flush
        # One salt per instance, as Fluent Bit: the same on every connection.
        self.salt = os.urandom(16)
        self.nodes = self._nodes()
        for node in self.nodes:
            node.pool = Pool(functools.partial(self._open, node), conf)
        self.next_node = 0

    def _secure(self, conf, where_key):
        key = conf.get("shared_key")
        if key is None and conf.get("empty_shared_key"):
            key = ""
        if key is None and (conf.get("username") or conf.get("password")):
            raise ConfigError("forward: Username/Password need Shared_Key or Empty_Shared_Key",
                              key=where_key)
        return key

    def _nodes(self):
        conf = self.conf
        if not conf["upstream"]:
            return [Node(None, conf["host"], conf["port"], conf["unix_path"],
                         tls_context(conf, server=False), conf["tls.vhost"],
                         self._secure(conf, "username"), conf["self_hostname"],
                         conf["username"] or "", conf["password"] or "")]
        _name, sections = read_upstream(conf["upstream"], self.context.config_files)
        nodes = []
        for node in sections:
            merged = dict(conf)
            merged.update({k: v for k, v in node.items() if v not in (None, False)})
            try:
                key = self._secure(merged, "username")
                ctx = tls_context(node if node["tls"] else conf, server=False)
            except ConfigError as exc:
                raise exc.located(*node["where"])
            nodes.append(Node(node["name"] or "%s:%s" % (node["host"], node["port"]),
                              node["host"], node["port"], None, ctx,
                              node["tls.vhost"] or conf["tls.vhost"], key,
                              merged["self_hostname"], merged["username"] or "",
                              merged["password"] or ""))
        return nodes

    # ------------------------------------------------------------------ connections
    async def _open(self, node):
        conn = await open_stream(node.host, node.port, node.ssl_ctx, node.vhost,
                                 node.unix_path, self.conf["net.connect_timeout"],
                                 self.conf["net.tcp_keepalive"])
        session = conn.session = forward.ClientSession(
            self.codec, node.shared_key, node.hostname, self.salt, node.username,
            node.password)
        reader, writer = conn.reader, conn.writer
        try:
            while not session.ready:
                data = await asyncio.wait_for(reader.read(65536), self.io_timeout)
                if not data:
                    raise ConnectionError("server closed the connection during the handshake")
                result = session.receive(data)
                if result.reply:
                    writer.write(result.reply)
                    await asyncio.wait_for(writer.drain(), self.io_timeout)
                if result.close is not None:
                    raise forward.ProtocolError(result.close)
        except BaseException:
            conn.close()
            raise
        return conn

    async def _send(self, conn, frame, chunk):
        await conn.send(conn.session.send((forward.FRAME, frame, chunk)), self.io_timeout)
        if chunk is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.io_timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise asyncio.TimeoutError()
            data = await asyncio.wait_for(conn.reader.read(4096), left)
            if not data:
                raise ConnectionError("server closed the connection before the ack")
            result = conn.session.receive(data)
            if result.close is not None:
                raise forward.ProtocolError(result.close)
            if (forward.ACK, chunk) in result.events:
                return

    # ------------------------------------------------------------------ flush
    def _frames(self, chunk):
        # An empty tag would be dropped by the server: the record's own tag is sent instead.
        template = self.tag_template
        if chunk.signal == METRICS:     # always one [tag, bin, options] frame, as Fluent Bit
            tag = chunk.tag
            if template is not None and template.is_static:
                tag = template.render({}, chunk.tag) or chunk.tag
            return [self.encoder.metrics_frame(tag, chunk.payload)]
        if template is None or template.is_static:
            tag = chunk.tag if template is None else (template.render({}, chunk.tag)
                                                      or chunk.tag)
            if self.encoder.retain_metadata and not self.encoder.time_as_integer:
                return [self.encoder.packed_frame(tag, chunk.payload, chunk.count)]
            return [self.encoder.frame(tag, chunk.events())]
        render = template.render
        return [self.encoder.message(render(record, chunk.tag) or chunk.tag, (t, record))
                for t, record in chunk.events()]

    async def flush(self, chunk):
        if self.encoder.compress and self.conf["compress.thread"]:
            if self.compressor is None:
                self.compressor = ThreadPoolExecutor(1, thread_name_prefix=self.display)
            frames = await asyncio.get_running_loop().run_in_executor(
                self.compressor, self._frames, chunk)
        else:
            frames = self._frames(chunk)
        count = len(self.nodes)
        start = self.next_node
        self.next_node = (start + 1) % count
        for step in range(count):
            node = self.nodes[(start + step) % count]
            conn = None
            try:
                conn = await node.pool.acquire()
                for frame, chunk_id in frames:
                    await self._send(conn, frame, chunk_id)
                node.pool.release(conn)
                conn = None
                return OK
            except asyncio.TimeoutError:
                self.log.error("%s: no answer within %ss%s", node.label(), self.io_timeout,
                               ", cannot get ack" if frames[0][1] is not None else "")
            except forward.ProtocolError as exc:
                self.log.error("%s: %s", node.label(), exc)
            except (OSError, EOFError) as exc:
                self.log.error("could not deliver to %s: %s", node.label(),
                               failure_text(exc, self.io_timeout))
            finally:
                if conn is not None:    # failed or cancelled
                    conn.close()
        return RETRY

    async def stop(self):
        for node in self.nodes:
            node.pool.close()
        if self.compressor is not None:
            self.compressor.shutdown(wait=False)
            self.compressor = None


PLUGIN = ForwardOutput
