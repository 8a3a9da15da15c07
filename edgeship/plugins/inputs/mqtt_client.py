"""mqtt_client input: subscribe to topics on an MQTT broker (edgeship's own; Fluent Bit's
``mqtt`` input is a server and cannot talk to a broker, see its issue #9636).

Each message becomes ``{"topic": <topic>, <payload map keys>...}`` (the record shape of the
``mqtt`` listener) with the arrival time. A payload holding several maps (a json_lines
batch, or the CBOR/msgpack array the mqtt output sends) gives one record per map. A
payload that does not decode, nests deeper than ``untrusted.MAX_DEPTH`` levels, or is not a
map, is kept, not dropped: its text or value goes under ``Key``. A message that raises
while being made into records is dropped, counted and acknowledged.

``Tag`` may hold ``$TOPIC``, the message topic with '/' turned into '.' (``dev.$TOPIC``:
``dev.sensors.t1``). The tag is a record-accessor template (edgeship.core.accessor) over
``{"TOPIC": ...}``, so ``$TOPIC`` ends where any accessor ends (at '.', ' ', ',' or '"';
``$TOPIC-raw`` names another key and adds nothing); an empty result is the instance name.

Delivery: QoS 1/2 messages are acknowledged (PUBACK / PUBCOMP) only when their batch's
``Ack`` fires, that is once every output queue they were routed to holds them durably (or
delivered them). With a persistent session (Clean_Session off, the default here) a message
not yet acknowledged when edgeship stops is sent again by the broker on the next start, and
messages published while edgeship was down wait for it in the broker.
"""
import asyncio

from edgeship.codecs import formats, payload
from edgeship.codecs import untrusted
from edgeship.core import events as ev
from edgeship.core.errors import ConfigError
from edgeship.core.schema import FALSE_WORDS, Option
from edgeship.engine.ack import Ack
from edgeship.engine.plugin import Input
from edgeship.net.mqtt_link import Link, check_connection_conf, connection_options


class MqttClientInput(Input):
    name = "mqtt_client"
    description = "Subscribe to topics on an MQTT broker"
    options = connection_options(clean_session="off", session_expiry="1d") + (
        Option("Topic", multiple=True, required=True,
               help="topic filter to subscribe to (wildcards + and # allowed)"),
        Option("QoS", "int", "1", choices=(0, 1, 2), help="subscription QoS: 0, 1 or 2"),
        Option("Format", default="json", choices=payload.DECODINGS,
               help="payload encoding: json, cbor, msgpack, or raw (the text under Key)"),
        Option("Key", default="log", help="key of raw payloads and of values that are not maps"),
        Option("Payload_Key", help="put the payload map under this key"),
        Option("Topic_Key", default="topic",
               help="key of the message topic in each record; 'false' leaves it out"),
    )

    def configure(self):
        conf = self.conf
        check_connection_conf(conf)
        if not all(conf["topic"]):
            raise ConfigError("mqtt_client: Topic cannot be empty", key="topic")
        topic_key = conf["topic_key"]
        self.topic_key = None if topic_key.strip().lower() in FALSE_WORDS + ("",) else topic_key
        self.tag_template = None
        if "$" in self.tag:
            try:
                self.tag_template = formats.record_template(self.tag)
            except ValueError as exc:
                raise ConfigError("mqtt_client: Tag: %s" % exc, key="tag")
        self.link = Link(self, conf, on_connected=self._subscribe, on_message=self._received,
                         manual_ack=True)
        self.inbox = []
        self.skipped = 0       # payloads not in Format, kept as text
        self.too_deep = 0      # payloads nested too deep, kept as text
        self.failed = 0        # messages that raised, dropped
        self._wake = None

    # ------------------------------------------------------------------ broker side
    def _subscribe(self, session_present):
        if session_present:
            self.log.info("resuming the broker's stored session")
        self.link.client.subscribe([(topic, self.conf["qos"]) for topic in self.conf["topic"]])

    def _received(self, message):
        self.inbox.append(message)
        self._wake.set()

    def _acknowledge(self, acks, generation):
        """Send the PUBACK/PUBCOMP of a batch, unless its connection is gone (the broker will
        send those messages again: at least once)."""
        link = self.link
        if link.generation != generation or not link.connected:
            return
        client = link.client
        for mid, qos in acks:
            client.ack(mid, qos)

    # ------------------------------------------------------------------ records
    def _tag(self, topic):
        if self.tag_template is None:
            return self.tag
        dotted = topic.replace("/", ".").strip(".")
        return self.tag_template.render({"TOPIC": dotted}) or self.instance

    def _records(self, topic, data):
        fmt = self.conf["format"]
        key = self.conf["key"]
        if fmt == "raw":
            found = [{key: payload.raw_text(data)}]
        else:
            try:
                values = payload.values(fmt, data)
            except untrusted.TooDeep:
                self.too_deep += 1
                values = None
            except ValueError:
                self.skipped += 1
                values = None
            if values is None:
                found = [{key: payload.raw_text(data)}]
            else:
                # An empty payload is still a message.
                found = payload.records(values, key) if values else [{key: ""}]
        out = []
        payload_key = self.conf["payload_key"]
        for body in found:
            if payload_key is not None and fmt != "raw":
                body = {payload_key: body}
            if self.topic_key is not None:
                body = payload.with_topic(self.topic_key, topic, body)
            out.append(body)
        return out

    def _drain(self):
        """Emit what arrived since the last call: one batch (and one Ack) per tag. Each
        message is made into records in a guard: one that raises is dropped, counted,
        logged once per batch and acknowledged with its batch, so a poison message the
        broker would send again after every restart cannot stop the input."""
        messages, self.inbox = self.inbox, []
        now = ev.now_ns()
        batches = {}
        skipped_before, too_deep_before = self.skipped, self.too_deep
        failed = 0
        error = None
        for message in messages:
            try:
                topic = message.topic
                tag = self._tag(topic)
                records = self._records(topic, message.payload)
            except Exception as exc:
                failed += 1
                error = exc
                tag, records = self.tag, ()
            batch = batches.get(tag)
            if batch is None:
                batch = batches[tag] = ([], [], [0])
            events, acks, size = batch
            for record in records:
                events.append((now, record))
            if message.qos:
                acks.append((message.mid, message.qos))
            size[0] += len(message.payload)
        if self.skipped > skipped_before:
            self.log.warn("%d payload(s) not in %s format kept as text under '%s'",
                          self.skipped - skipped_before, self.conf["format"], self.conf["key"])
        if self.too_deep > too_deep_before:
            self.log.warn("%d payload(s) nested deeper than %d levels kept as text under '%s'",
                          self.too_deep - too_deep_before, untrusted.MAX_DEPTH,
                          self.conf["key"])
        if failed:
            self.failed += failed
            self.log.error("%d message(s) could not be made into records, dropped and "
                           "acknowledged (%d so far): %r", failed, self.failed, error)
        generation = self.link.generation
        for tag, (events, acks, size) in batches.items():
            ack = None
            if acks:
                ack = Ack(lambda acks=acks: self._acknowledge(acks, generation))
            self.context.emit(tag, events, size[0], ack)

    async def run(self):
        self._wake = asyncio.Event()
        await self.link.start()
        try:
            while not self.stopping:
                await self._wake.wait()
                self._wake.clear()
                if self.inbox:
                    self._drain()
                    # Memory budget: stop reading the socket (the broker then holds the
                    # messages) until the outputs have made room.
                    self.link.pause_reading()
                    await self.context.room()
                    self.link.resume_reading()
        finally:
            await self.link.stop()

    def stop(self):
        Input.stop(self)
        if self._wake is not None:
            self._wake.set()


PLUGIN = MqttClientInput
