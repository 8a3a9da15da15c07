"""mqtt output: publish records to an MQTT broker (Fluent Bit has none: issue #674).

Format ``json`` sends one message per record (Fluent Bit's JSON with the json_date_key,
as stdout writes it); ``json_lines``, ``cbor`` and ``msgpack`` send one message per batch
(and per topic when the topic depends on the record). ``Payload_Key`` sends one field of
each record as the whole payload. Topic is a template: ``$TAG``, ``$TAG[n]`` and record
accessors (``$device_id``, ``$sensor['id']``), one per topic level.

Delivery: a flush is OK once every message of the chunk was acknowledged (QoS 1 PUBACK,
QoS 2 PUBCOMP) or, at QoS 0, written to the socket. With the broker unreachable the flush
answers RETRY at once and the chunk stays queued. Messages paho already sent stay in its
session and are resent after a reconnect; a retried chunk waits for those instead of
publishing them again, so a broker restart does not double the traffic.
"""
import asyncio

from edgeship.codecs import formats, payload
from edgeship.core.accessor import MISSING, accessor
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import OK, RETRY, Output
from edgeship.net.mqtt_link import Link, check_connection_conf, connection_options


def split_levels(text):
    """Topic levels: ``text`` split on '/' outside the quotes of ``$key['a/b']``."""
    levels = []
    current = []
    quoted = False
    for char in text:
        if char == "'":
            quoted = not quoted
        if char == "/" and not quoted:
            levels.append("".join(current))
            current = []
        else:
            current.append(char)
    levels.append("".join(current))
    return levels


class TopicTemplate:
    """A topic with $TAG, $TAG[n] and record accessors, rendered per level: '/' separates
    topic levels here (a record key name may hold '/', so ``$id/temp`` would otherwise
    read a key named ``id/temp``); each level is a record-accessor template."""

    def __init__(self, text):
        self.levels = [formats.record_template(level) for level in split_levels(text)]
        self.per_record = any(not level.is_static for level in self.levels)

    def render(self, record, tag):
        topic = "/".join([level.render(record, tag=tag) for level in self.levels])
        # A record value must not turn the topic into a filter (paho refuses those).
        if "+" in topic or "#" in topic or "\x00" in topic:
            topic = topic.replace("+", "_").replace("#", "_").replace("\x00", "_")
        return topic or "_"


class Delivery:
    """The messages of one chunk and how many of them the broker still owes an ack."""

    __slots__ = ("chunk_id", "messages", "sent", "unacked", "failed", "done", "mids", "started")

    def __init__(self, chunk_id, messages, loop):
        self.chunk_id = chunk_id
        self.messages = messages
        self.started = loop.time()
        self.sent = 0           # messages handed to paho so far
        self.unacked = 0        # handed to paho, not yet acknowledged
        self.failed = False     # MQTT 5: the broker refused one (reason code >= 0x80)
        self.done = loop.create_future()
        self.mids = []

    def check_done(self):
        if self.unacked == 0 and self.sent == len(self.messages) and not self.done.done():
            self.done.set_result(True)


class MqttOutput(Output):
    name = "mqtt"
    description = "Publish records to an MQTT broker"
    options = connection_options() + (
        Option("Topic", default="$TAG",
               help="topic template: text, $TAG, $TAG[n], record accessors ($key, $key['sub'])"),
        Option("QoS", "int", "1", choices=(0, 1, 2), help="0, 1 or 2"),
        Option("Retain", "bool", "off", help="ask the broker to retain the last message"),
        Option("Format", default="json", choices=payload.ENCODINGS,
               help="json: one message per record; json_lines, cbor, msgpack: one message "
                    "per chunk"),
        Option("Payload_Key", help="send only this field of each record, raw (Format json)"),
        Option("json_date_key", default="date", help="key of the record time; false: none"),
        Option("json_date_format", default="double", choices=formats.DATE_FORMATS,
               help="double, epoch, epoch_ms, iso8601 or java_sql_timestamp"),
        Option("Max_Inflight", "int", "0", min=0,
               help="unacknowledged messages allowed at once (0: no limit; MQTT 5: the "
                    "broker's Receive Maximum)"),
        Option("Ack_Timeout", "time", "30",
               help="seconds a flush waits for acknowledgements before it is retried"),
        Option("Will_Topic", help="Last Will topic"),
        Option("Will_Payload", default="", help="Last Will payload"),
        Option("Will_QoS", "int", "0", choices=(0, 1, 2), help="Last Will QoS"),
        Option("Will_Retain", "bool", "off", help="retain the Last Will"),
    )

    def configure(self):
        conf = self.conf
        check_connection_conf(conf)
        if "+" in conf["topic"] or "#" in conf["topic"] or not conf["topic"]:
            raise ConfigError("mqtt: Topic must be a topic name, not empty and without the "
                              "wildcards + and #", key="topic")
        try:
            self.topic = TopicTemplate(conf["topic"])
        except ValueError as exc:
            raise ConfigError("mqtt: Topic: %s" % exc, key="topic")
        self.field = None
        if conf["payload_key"] is not None:
            if conf["format"] != "json":
                raise ConfigError("mqtt: Payload_Key sends one field per message; it cannot "
                                  "be used with Format %s" % conf["format"], key="payload_key")
            try:
                self.field = accessor(conf["payload_key"])
            except ValueError as exc:
                raise ConfigError("mqtt: %s" % exc, key="payload_key")
            if self.field is None:
                raise ConfigError("mqtt: Payload_Key must name a record key", key="payload_key")
        self.date_key = formats.date_key_option(conf["json_date_key"])
        will = None
        if conf["will_topic"]:
            will = (conf["will_topic"], conf["will_payload"].encode("utf-8"), conf["will_qos"],
                    conf["will_retain"])
        self.link = Link(self, conf, on_publish=self._acked, will=will)
        self._pending = {}      # chunk id -> Delivery awaiting acks (QoS 1/2)
        self._by_mid = {}       # paho message id -> Delivery
        self._inflight = 0
        self._slot = None

    async def start(self):
        await self.link.start()
        self._slot = asyncio.Event()
        await self.link.wait_connected(self.conf["connect_timeout"])

    async def stop(self):
        await self.link.stop()

    # ------------------------------------------------------------------ payloads
    def _topics(self, tag, events):
        if not self.topic.per_record:
            topic = self.topic.render({}, tag)
            return [topic] * len(events)
        render = self.topic.render
        return [render(record, tag) for _, record in events]

    def _messages(self, tag, events):
        """[(topic, payload)] for a chunk."""
        fmt = self.conf["format"]
        date_format = self.conf["json_date_format"]
        if self.field is None and fmt != "json" and not self.topic.per_record:
            return [(self.topic.render({}, tag),
                     payload.encode_batch(fmt, events, self.date_key, date_format))]
        topics = self._topics(tag, events)
        if self.field is not None:
            out = []
            missing = 0
            for topic, (_, record) in zip(topics, events):
                value = self.field.lookup(record)
                if value is MISSING:
                    missing += 1
                else:
                    out.append((topic, payload.encode_value(value)))
            if missing:
                self.log.warn("%d record(s) without Payload_Key '%s' skipped", missing,
                              self.conf["payload_key"])
            return out
        if fmt == "json":
            return list(zip(topics, payload.encode_records(events, self.date_key, date_format)))
        groups = {}
        for topic, event in zip(topics, events):
            groups.setdefault(topic, []).append(event)
        return [(topic, payload.encode_batch(fmt, group, self.date_key, date_format))
                for topic, group in groups.items()]

    # ------------------------------------------------------------------ delivery
    def _acked(self, mid, failed):
        delivery = self._by_mid.pop(mid, None)
        if delivery is None:
            return
        self._inflight -= 1
        self._slot.set()
        if failed:
            delivery.failed = True
        delivery.unacked -= 1
        delivery.check_done()

    def _limit(self):
        limit = self.conf["max_inflight"]
        broker = self.link.receive_maximum
        if broker and (not limit or broker < limit):
            return broker
        return limit

    def _forget(self, delivery):
        self._pending.pop(delivery.chunk_id, None)
        for mid in delivery.mids:
            if self._by_mid.get(mid) is delivery:
                del self._by_mid[mid]
                self._inflight -= 1

    async def flush(self, chunk):
        # A retried chunk (the same id) resumes the delivery paho is still completing
        # instead of publishing its messages a second time.
        chunk_id = chunk.id
        delivery = self._pending.get(chunk_id)
        if delivery is not None and \
                self.link.loop.time() - delivery.started > self.conf["ack_timeout"]:
            # paho did not finish it within Ack_Timeout, reconnects included: publish the
            # chunk afresh (a duplicate at worst) rather than wait on it forever.
            self._forget(delivery)
            delivery = None
        if not self.link.connected:
            return RETRY
        if delivery is None:
            messages = self._messages(chunk.tag, chunk.events())
            if not messages:
                return OK
            delivery = Delivery(chunk_id, messages, self.link.loop)
            if self.conf["qos"]:
                self._pending[chunk_id] = delivery
        result = await self._publish(delivery)
        if result is not None:
            return result
        return await self._wait(delivery)

    async def _publish(self, delivery):
        """Hand the chunk's remaining messages to paho; a result when it must stop early."""
        client = self.link.client
        qos, retain = self.conf["qos"], self.conf["retain"]
        messages = delivery.messages
        by_mid = self._by_mid
        limit = self._limit()
        while delivery.sent < len(messages):
            if limit and self._inflight >= limit:
                if not await self._wait_for_slot(limit):
                    return self._interrupted(delivery)
                continue
            topic, body = messages[delivery.sent]
            info = client.publish(topic, body, qos, retain)
            if info.rc and not (qos and info.rc == self.link.paho.MQTT_ERR_NO_CONN):
                # QoS 0 without a connection is lost; QoS 1/2 is kept by paho and resent.
                self.log.warn("publish failed: %s", self.link.paho.error_string(info.rc))
                return self._interrupted(delivery)
            by_mid[info.mid] = delivery
            delivery.mids.append(info.mid)
            delivery.sent += 1
            delivery.unacked += 1
            self._inflight += 1
        return None

    async def _wait_for_slot(self, limit):
        """Wait until fewer than ``limit`` messages are unacknowledged; False when the
        connection is lost or the acks take longer than Ack_Timeout."""
        lost = self.link.lost
        while self._inflight >= limit:
            if not self.link.connected:
                return False
            self._slot.clear()
            waiters = [asyncio.ensure_future(self._slot.wait())]
            if lost is not None:
                waiters.append(lost)
            done, _ = await asyncio.wait(waiters, timeout=self.conf["ack_timeout"],
                                         return_when=asyncio.FIRST_COMPLETED)
            waiters[0].cancel()
            if not done:
                return False
        return True

    def _interrupted(self, delivery):
        if not self.conf["qos"]:
            self._forget(delivery)
        return RETRY

    async def _wait(self, delivery):
        if not delivery.done.done():
            waiters = [delivery.done]
            if self.link.lost is not None:
                waiters.append(self.link.lost)
            await asyncio.wait(waiters, timeout=self.conf["ack_timeout"],
                               return_when=asyncio.FIRST_COMPLETED)
        if delivery.done.done():
            self._pending.pop(delivery.chunk_id, None)
            if delivery.failed:
                self.log.warn("the broker refused some messages of the chunk")
                return RETRY
            return OK
        if self.link.connected:
            self.log.warn("%d of %d messages not acknowledged within %ss", delivery.unacked,
                          len(delivery.messages), self.conf["ack_timeout"])
        return self._interrupted(delivery)


PLUGIN = MqttOutput
