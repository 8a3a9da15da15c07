"""mqtt input: Fluent Bit's in_mqtt, a small MQTT server that turns PUBLISH into records.

Devices connect to it directly (it is not a broker and not a client of one; for that see
``mqtt_client``). Each PUBLISH whose payload is a JSON map becomes
``{"topic": <topic>, <payload keys>...}`` (or ``{"topic": .., <Payload_Key>: {payload}}``)
with the arrival time and the instance tag, exactly as Fluent Bit 5.1.1 makes it. The
protocol work is in ``edgeship.core.mqtt``; this module moves bytes and builds records.

edgeship additions, all off by default: ``Format cbor``/``auto`` for CBOR payloads,
``Username``/``Password`` checked on CONNECT, and TLS (``tls.*``).

A payload that does not decode, is not a map, or nests deeper than ``untrusted.MAX_DEPTH``
levels (Fluent Bit's msgpack stack drops it too, silently) is dropped, counted and logged
once per read; the PUBACK is sent all the same, as Fluent Bit does, and the connection stays.
"""
import asyncio

from edgeship.codecs import payload
from edgeship.codecs import untrusted
from edgeship.core import events as ev
from edgeship.core import mqtt
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import Input
from edgeship.net.tls import TLS_OPTIONS, tls_context

READ_SIZE = 65536
NOT_JSON = "MQTT Packet incomplete or is not JSON"   # Fluent Bit's warning, word for word


class MqttInput(Input):
    name = "mqtt"
    description = "MQTT, listen for Publish messages"
    options = (
        Option("Listen", default="0.0.0.0", help="address to listen on"),
        Option("Port", "int", "1883", min=0, max=65535, help="TCP port to listen on"),
        Option("Payload_Key", help="put the payload map under this key"),
        Option("Buffer_Size", "size", "2048", min=16,
               help="largest MQTT packet accepted, fixed header included; a larger one "
                    "closes the connection"),
        Option("Format", default="json", choices=("json", "cbor", "auto"),
               help="payload encoding (edgeship): json, cbor, or auto (JSON when it starts "
                    "with '{' or '[', else CBOR)"),
        Option("Username", help="(edgeship) user name every CONNECT must carry"),
        Option("Password", help="(edgeship) password every CONNECT must carry"),
    ) + TLS_OPTIONS

    def configure(self):
        user, password = self.conf["username"], self.conf["password"]
        if (user is None) != (password is None):
            raise ConfigError("mqtt: Username and Password go together",
                              key="password" if password is None else "username")
        self.credentials = None if user is None else (user, password.encode("utf-8"))
        self.ssl = tls_context(self.conf, server=True)
        self.payload_key = self.conf["payload_key"]
        self.format = self.conf["format"]
        self.dropped = 0
        self._server = None
        self._stopped = None
        self._writers = set()

    # ------------------------------------------------------------------ records
    def _decode(self, data):
        """The payload's value, or raise ValueError when it is not in the format."""
        if self.format == "cbor" or (self.format == "auto" and not payload.looks_like_json(data)):
            return payload.first_cbor(data)
        return payload.first_json(data)

    def _records(self, messages, time_ns):
        """Events for the (PUBLISH, topic, payload) messages of one read; bad payloads are
        counted and logged once per read. Nothing here may end the connection: the PUBACKs
        of the read are sent after it."""
        out = []
        not_decoded = not_map = too_deep = failed = 0
        error = None
        for _, topic, data in messages:
            if not data.strip():
                not_map += 1    # Fluent Bit drops an empty payload without a word
                continue
            try:
                value = self._decode(data)
            except untrusted.TooDeep:
                too_deep += 1
                continue
            except ValueError:
                not_decoded += 1
                continue
            except Exception as exc:  # a decoder bug must not cost the connection
                failed += 1
                error = exc
                continue
            if not isinstance(value, dict):
                not_map += 1
                continue
            if self.payload_key is not None:
                value = {self.payload_key: value}
            out.append((time_ns, payload.with_topic("topic", topic, value)))
        if not_decoded:
            self.dropped += not_decoded
            self.log.warn(NOT_JSON if self.format == "json" else
                          "MQTT Packet incomplete or is not %s" % self.format.upper())
        if not_map:
            # Fluent Bit drops these silently; a dropped message deserves a line.
            self.dropped += not_map
            self.log.warn("MQTT payload is not a map: %d message(s) dropped", not_map)
        if too_deep:
            self.dropped += too_deep
            self.log.warn("MQTT payload nested deeper than %d levels: %d message(s) dropped",
                          untrusted.MAX_DEPTH, too_deep)
        if failed:
            self.dropped += failed
            self.log.error("MQTT payload could not be decoded: %d message(s) dropped: %r",
                           failed, error)
        return out

    # ------------------------------------------------------------------ network
    async def _serve(self, reader, writer):
        peer = writer.get_extra_info("peername")
        self.log.debug("new TCP connection from %s", peer)
        self._writers.add(writer)
        conn = mqtt.ServerSession(self.conf["buffer_size"], self.credentials)
        try:
            while not self.stopping:
                await self.context.room()
                data = await reader.read(READ_SIZE)
                if not data:
                    break
                result = conn.receive(data)
                if result.events:
                    size = sum(len(p) for _, _, p in result.events)
                    batch = self._records(result.events, ev.now_ns())
                    if batch:
                        self.context.emit(self.tag, batch, size)
                if result.reply:
                    # PUBACK after the record is queued (Fluent Bit acks before parsing).
                    writer.write(result.reply)
                    await writer.drain()
                if result.close is not None:
                    if conn.connected and result.close == "client disconnected":
                        self.log.debug("connection closed by the client")
                    else:
                        self.log.warn("closing connection from %s: %s", peer, result.close)
                    break
        except (OSError, asyncio.IncompleteReadError) as exc:
            self.log.debug("connection from %s lost: %s", peer, exc)
        finally:
            self._writers.discard(writer)
            writer.close()

    async def run(self):
        self._stopped = asyncio.Event()
        try:
            self._server = await asyncio.start_server(
                self._serve, self.conf["listen"], self.conf["port"], ssl=self.ssl,
                reuse_address=True)
        except OSError as exc:
            self.log.error("cannot listen on %s:%d: %s", self.conf["listen"], self.conf["port"],
                           exc)
            return
        self.log.info("listening on %s:%d", self.conf["listen"], self.conf["port"])
        if self.stopping:
            self._stopped.set()
        await self._stopped.wait()
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    def stop(self):
        Input.stop(self)
        if self._stopped is not None:
            self._stopped.set()


PLUGIN = MqttInput
