"""health input: is a TCP server up? A connect to ``Host``:``Port`` every interval
(in_health).

``{"alive": true}``; ``Add_Host on`` adds ``"hostname": "<Host>"``, ``Add_Port on`` adds
``"port": <Port>`` (an int). ``Alert on``: records only while the port is down.

Kept from Fluent Bit 5.1.1 (plugins/in_health): ``Host`` is required ("no input 'Host'
provided"), ``Port`` defaults to 0 (never alive); the connection is closed at once, nothing is
sent; a connect gives up after 10 seconds (Fluent Bit's net.connect_timeout), and ticks that
pass meanwhile are skipped; the first probe one interval after the start.

Difference: no TLS (Fluent Bit's ``tls on`` also completes a handshake); a TCP connect is
what tells a server is up.
"""
import asyncio

from edgeship.core import events as ev
from edgeship.core.schema import Option
from edgeship.net.stream import open_stream
from edgeship.plugins.inputs._interval import IntervalInput, interval_options

CONNECT_TIMEOUT = 10.0


class HealthInput(IntervalInput):
    name = "health"
    description = "Check TCP server health"
    options = (
        Option("Host", required=True, help="host name or address to connect to"),
        Option("Port", "int", "0", min=0, max=65535, help="TCP port to connect to"),
        Option("Alert", "bool", "false", help="only generate records when the port is down"),
        Option("Add_Host", "bool", "false", help="append the host to each record"),
        Option("Add_Port", "bool", "false", help="append the port to each record"),
    ) + interval_options()

    def configure(self):
        self.host, self.port = self.conf["host"], self.conf["port"]

    async def _alive(self):
        try:
            stream = await open_stream(self.host, self.port, connect_timeout=CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError, ValueError):
            return False
        stream.close()
        return True

    async def tick(self):
        alive = await self._alive()
        if alive and self.conf["alert"]:
            return
        record = {"alive": alive}
        if self.conf["add_host"]:
            record["hostname"] = self.host
        if self.conf["add_port"]:
            record["port"] = self.port
        self.context.emit(self.tag, [(ev.now_ns(), record)])


PLUGIN = HealthInput
