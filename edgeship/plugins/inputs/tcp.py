"""tcp input: records from TCP connections (in_tcp), JSON values or separated text.

Fluent Bit behaviour kept (5.1.1): listens on 0.0.0.0:5170; ``Format json`` (the default) reads
a stream of JSON values, a map per record, an array as ``{"msg": [...]}`` (see
``_sockets.JsonStream``); ``Format none`` splits on ``Separator`` (default ``\\n``, escapes
such as ``\\t`` unescaped) and makes ``{"log": piece}`` of each piece, a ``\\r`` before the
separator kept; ``Parser`` forces ``none`` (with a warning) and parses each piece, a piece it
does not match becoming ``{"log": piece}``; ``Source_Address_Key`` appends
``"tcp://IP:PORT"``; ``Chunk_Size`` and ``Buffer_Size`` are in KiB (default 32, the buffer
size defaulting to the chunk size); nothing is ever sent back; the record time is the
arrival time.

Differences, for safety (README "Where edgeship differs"): Fluent Bit stops splitting a read
at an empty piece (with a separator other than ``\\n`` the connection then never emits
again), and closes the connection when a piece outgrows Buffer_Size; edgeship skips empty
pieces and hands a longer piece on in Buffer_Size pieces (logged once per read). A bad JSON
text skips to the end of its line instead of dropping the whole buffer. Source_Address_Key
also applies to ``Format none`` without a Parser (Fluent Bit ignores it there).
"""
from edgeship.net.tls import TLS_OPTIONS, tls_context
from edgeship.plugins.inputs._sockets import (NET_OPTIONS, ListeningInput, SocketText,
                                              socket_text_options, source_address,
                                              stream_server)

DEFAULT_PORT = 5170


class TcpInput(SocketText, ListeningInput):
    name = "tcp"
    description = "TCP"
    options = socket_text_options(DEFAULT_PORT) + NET_OPTIONS + TLS_OPTIONS

    def configure(self):
        self.configure_text()
        self.ssl_ctx = tls_context(self.conf, server=True)
        self.connections = set()

    async def run(self):
        conf = self.conf
        where = "%s:%s" % (conf["listen"], conf["port"])
        try:
            server = await stream_server(self._serve, conf["listen"], conf["port"],
                                         ssl=self.ssl_ctx, backlog=conf["net.backlog"],
                                         reuse_port=conf["net.share_port"])
        except OSError as exc:
            self.log.error("could not listen on %s: %s", where, exc)
            return
        await self.serve_until_stopped(server, where)

    async def _serve(self, reader, writer):
        address = source_address("tcp", writer.get_extra_info("peername"))
        state = self.new_state()
        with self.serving(writer, address):
            while not self.stopping:
                await self.context.room()
                data = await reader.read(self.chunk_size)
                events = self.records(state, data, final=not data)
                self.report()
                if events:
                    if self.source_key:
                        self.add_source(events, address)
                    self.context.emit(self.tag, events, len(data))
                if not data:
                    break


PLUGIN = TcpInput
