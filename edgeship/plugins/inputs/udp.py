"""udp input: records from UDP datagrams (in_udp), JSON values or separated text.

Fluent Bit behaviour kept (5.1.1): listens on 0.0.0.0:5170, with the tcp input's options and
records (``_sockets.SocketText``): each datagram is read as a TCP read is, ``Format json``
(several values per datagram allowed) or ``Format none`` split on ``Separator``.

Differences (README "Where edgeship differs"): a datagram is a whole message, so its last
piece without a separator is a record (Fluent Bit drops it) and a JSON value cut at the end of
a datagram is invalid rather than waiting for the next datagram, which may come from another
sender. ``Source_Address_Key`` adds ``"udp://IP:PORT"`` (Fluent Bit 5.1.1 accepts the option
and adds nothing). Datagrams are read a batch at a time (one emit per batch); while the
input waits for room (Mem_Buf_Limit) nothing is read, as Fluent Bit's paused collector.
"""
from edgeship.plugins.inputs._sockets import (NET_OPTIONS, ListeningInput, SocketText,
                                              socket_text_options, source_address)

DEFAULT_PORT = 5170


class UdpInput(SocketText, ListeningInput):
    name = "udp"
    description = "UDP"
    options = socket_text_options(DEFAULT_PORT) + NET_OPTIONS

    def configure(self):
        self.configure_text()

    async def run(self):
        await self.serve_datagrams(self._take, max(self.buffer_size, 65536))

    def _take(self, datagrams):
        events = []
        size = 0
        for data, peer in datagrams:
            size += len(data)
            found = self.records(self.new_state(), data, final=True)
            if found and self.source_key:
                self.add_source(found, source_address("udp", peer))
            events.extend(found)
        self.report()
        if events:
            self.context.emit(self.tag, events, size)


PLUGIN = UdpInput
