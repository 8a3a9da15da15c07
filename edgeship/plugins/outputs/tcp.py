"""tcp output: records over a plain TCP (or TLS) connection (out_tcp).

Fluent Bit 5.1.1's behaviour kept: ``Format msgpack`` (the default) sends the chunk's bytes
as they are (``[[EventTime, {}], {record}]`` per record); ``json`` one array per flush,
``json_lines`` one object per line, ``json_stream`` the objects back to back, with the time
under ``json_date_key`` (default ``date``; false/off/no leaves it out) in
``json_date_format``; ``Raw_Message_Key`` a record-accessor template rendered per record,
each followed by a newline (without ``$`` the text is sent literally). One write per flush,
the connection kept alive between flushes, two Workers.

Confirmation: TCP has no acknowledgement from the receiving application, nor does Fluent
Bit's out_tcp: a flush is OK once every byte is in the kernel on a live connection
(edgeship/net/stream.py); a refused connection, a write error or a write that does not
finish within net.io_timeout is a RETRY, and the chunk stays queued.
"""
from edgeship.codecs import formats
from edgeship.core.schema import Option
from edgeship.net.stream import NET_OPTIONS, Sender
from edgeship.net.tls import TLS_OPTIONS, tls_context
from edgeship.plugins.outputs._stream import SenderOutput, record_format_options


class TcpOutput(SenderOutput):
    name = "tcp"
    description = "TCP Output"
    workers = 2
    options = (
        Option("Host", default="127.0.0.1", help="host of the receiver"),
        Option("Port", "int", "5170", min=1, max=65535, help="TCP port of the receiver"),
    ) + record_format_options("msgpack", "msgpack (the chunk as it is), json (one array per "
                                         "chunk), json_lines or json_stream") \
        + NET_OPTIONS + TLS_OPTIONS

    def configure(self):
        self.configure_record_format()
        self.sender = Sender(self.conf, "tcp", tls_context(self.conf, server=False))

    def render(self, chunk):
        if self.raw_template is not None:
            render = self.raw_template.render
            return "".join([render(record, chunk.tag) + "\n"
                            for _, record in chunk.events()]).encode("utf-8", "surrogateescape")
        if self.format == "msgpack":
            return bytes(chunk.payload)
        return formats.render_json(chunk.events(), self.format, self.date_key,
                                   self.date_format)

    def payloads(self, chunk):
        return [self.render(chunk)]


PLUGIN = TcpOutput
