"""udp output: each record as one UDP datagram (out_udp).

Kept from Fluent Bit 5.1.1 (datagrams checked on the real binary): ``Host`` 127.0.0.1,
``Port`` 5170; ``Format msgpack`` sends the record's entry bytes as they are in the chunk
(the default in effect: Fluent Bit's help says json_lines, but without a Format it sends
msgpack); ``json_lines`` ``{..}\\n``, ``json`` ``[{..}]\\n``, ``json_stream`` ``{..}\\n``, with
the time under ``json_date_key`` (``date``) in ``json_date_format``; ``Raw_Message_Key`` a
record-accessor template rendered per record, followed by a newline.

Confirmation: UDP has none; a flush is OK once every datagram was accepted by the kernel, a
refused send (ECONNREFUSED from an earlier ICMP error) retries the chunk (``net.stream``).
Difference: a record whose datagram would be over 65,507 bytes (what UDP over IPv4 carries)
is left out and logged; Fluent Bit tries to send it, the send fails, and the chunk is
retried for ever.
"""
from edgeship.codecs import entries, formats
from edgeship.core.schema import Option
from edgeship.net.stream import NET_OPTIONS, Sender
from edgeship.plugins.outputs._stream import SenderOutput, record_format_options

MAX_DATAGRAM = 65507


class UdpOutput(SenderOutput):
    name = "udp"
    description = "UDP Output"
    options = (
        Option("Host", default="127.0.0.1", help="host of the receiver"),
        Option("Port", "int", "5170", min=1, max=65535, help="UDP port of the receiver"),
    ) + record_format_options("msgpack", "a record per datagram: msgpack, json_lines, json or "
                                         "json_stream") + NET_OPTIONS

    def configure(self):
        self.configure_record_format()
        self.sender = Sender(self.conf, "udp")

    def _datagrams(self, chunk):
        if self.raw_template is not None:
            render = self.raw_template.render
            return [(render(record, chunk.tag) + "\n").encode("utf-8", "surrogateescape")
                    for _, record in chunk.events()]
        if self.format == "msgpack":
            payload = bytes(chunk.payload)
            ends = entries.offsets(payload)
            return [payload[start:end] for start, end in zip(ends, ends[1:])]
        lines = formats.render_json(chunk.events(), "json_lines", self.date_key,
                                    self.date_format).split(b"\n")[:-1]
        if self.format == "json":
            return [b"[" + line + b"]\n" for line in lines]
        return [line + b"\n" for line in lines]

    def payloads(self, chunk):
        datagrams = self._datagrams(chunk)
        fitting = [d for d in datagrams if len(d) <= MAX_DATAGRAM]
        if len(fitting) < len(datagrams):
            self.log.error("%d record(s) of %s over the largest UDP datagram (%d bytes) "
                           "left out", len(datagrams) - len(fitting), chunk.tag, MAX_DATAGRAM)
        return fitting


PLUGIN = UdpOutput
