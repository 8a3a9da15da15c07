"""kafka output: records to Apache Kafka topics through librdkafka (out_kafka).

Kept from Fluent Bit 5.1.1: its options and defaults. ``Brokers`` is librdkafka's
``bootstrap.servers``, ``client_id`` its ``client.id`` (default ``fluent-bit``), and every
``rdkafka.<property>`` is handed to librdkafka as it is, in config order; a property librdkafka
refuses is logged, naming the config line, and left out (Fluent Bit logs it and goes on; with
``--strict`` it is an error). ``Topics`` is a comma list, the first one the default
(``fluent-bit``). One Kafka message per record, no partition chosen (librdkafka's partitioner):

* ``Format json`` (default): the record's JSON with ``Timestamp_Key`` (``@timestamp``) put
  first, its value per ``Timestamp_Format``: ``double`` (seconds, as Fluent Bit writes a
  double), ``iso8601`` (``2024-03-25T10:00:01.500000Z``) or ``iso8601_ns`` (nine digits).
  As in Fluent Bit the key is added even when the record has one of its own (the message
  then holds the key twice, the record's value last). ``Format msgpack``: the same map in
  msgpack. ``Format gelf``: the record's GELF message (``Gelf_Short_Message_Key``,
  ``Gelf_Full_Message_Key``, ``Gelf_Level_Key``; Fluent Bit's kafka output reads no
  ``Gelf_Timestamp_Key`` or ``Gelf_Host_Key``: accepted, no effect, as there). ``Format raw``:
  the string value of ``Raw_Log_Key``, as it is.
* Message key: the string value of ``Message_Key_Field`` in the record, else ``Message_Key``,
  else none. Topic: the string value of ``Topic_Key`` when it names one of ``Topics``, else
  the default; with ``Dynamic_Topic on`` any other value is the topic (not one with a comma
  or longer than 249 bytes: a warning, the default topic).
* An unknown ``Format`` or ``Timestamp_Format`` falls back to json / double (a warning here).
* ``queue_full_retries`` (10; 0: no limit): librdkafka's queue is full, wait up to a second
  for it and try again; that many times, then the chunk is retried later.

Needs the ``kafka`` extra (confluent-kafka, librdkafka's Python binding), imported only when a
kafka output is configured: without it the config is refused at --dry-run, naming the extra.

Differences: a chunk is confirmed only when librdkafka's delivery reports say the broker took
every message of it (with librdkafka's ``acks``); a failed delivery retries the chunk (its
messages are sent again: at-least-once). Fluent Bit confirms a chunk as soon as its messages
are queued in librdkafka (``rd_kafka_produce``), and its delivery report callback only logs
a failure: what librdkafka cannot deliver (broker down longer than ``message.timeout.ms``,
a refused topic, the process stopped with messages queued past Grace) is lost there.
``rdkafka.delivery.report.only.error true`` is overridden (a warning), as delivery reports are
how a chunk is confirmed. A record that cannot be encoded (gelf without short_message, raw
without a string ``Raw_Log_Key``) or that librdkafka refuses (larger than
``message.max.bytes``) is left out and logged once per chunk; Fluent Bit stops the chunk
there and drops it, records already queued included. ``Format avro``, ``otlp_json`` and
``otlp_proto`` are config errors (not built), as is ``aws_msk_iam on``.
"""
import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import msgpack

from edgeship.codecs import formats
from edgeship.codecs.gelf import GELF_KEY_OPTIONS, GelfEncoder, GelfError
from edgeship.codecs.msgpack import packb
from edgeship.core.errors import ConfigError, StartError
from edgeship.core.schema import Option
from edgeship.engine.plugin import OK, RETRY, Output

DEFAULT_TOPIC = "fluent-bit"
FORMATS = ("json", "msgpack", "gelf", "raw")
_NOT_BUILT = ("avro", "otlp_json", "otlp_proto")
TIMESTAMP_FORMATS = ("double", "iso8601", "iso8601_ns")
MAX_TOPIC_LENGTH = 249
_RDKAFKA = "rdkafka."
# Set on every check producer: no log line from a producer made only to check the config.
_QUIET = {"log_level": 0}
# How confluent-kafka starts what rd_kafka_new refused (not one property: their whole).
_CREATE_FAILED = "Failed to create producer"
# Declared by Fluent Bit's kafka output and never read by it.
_GELF_UNREAD = ("gelf_timestamp_key", "gelf_host_key")
_KEY_ENCODING = ("utf-8", "surrogateescape")     # strings carrying raw bytes keep them


def _bytes(text):
    return text.encode(*_KEY_ENCODING)


class _Delivery:
    """The delivery reports of one chunk's messages, counted as librdkafka's thread serves
    them; ``done`` (a future of the chunk's loop) is set when the last one came."""

    def __init__(self, loop):
        self.loop = loop
        self.done = loop.create_future()
        self.pending = 0    # set before the first message is produced
        self.failed = 0
        self.first_error = None
        self.lock = threading.Lock()

    def report(self, error, message):
        with self.lock:
            self.pending -= 1
            if error is not None:
                self.failed += 1
                if self.first_error is None:
                    self.first_error = error
            last = self.pending == 0
        if last:
            self.loop.call_soon_threadsafe(self._finish)

    def skip(self):
        """A message librdkafka refused outright: no report will come for it."""
        self.report(None, None)

    def _finish(self):
        if not self.done.done():
            self.done.set_result(None)


class _LibraryLog:
    """librdkafka's log lines (confluent-kafka hands them as ``logging`` levels) into the
    instance's log, as Fluent Bit's cb_kafka_logger does."""

    def __init__(self, log):
        self.target = log

    def log(self, level, fmt, *args):
        # confluent-kafka passes (facility, client name, line): Fluent Bit shows "name: line".
        text = "%s: %s" % args[1:] if len(args) == 3 else fmt % args
        if level >= 40:
            self.target.error("%s", text)
        elif level >= 30:
            self.target.warn("%s", text)
        elif level >= 20:
            self.target.info("%s", text)
        else:
            self.target.debug("%s", text)


class Kafka(Output):
    name = "kafka"
    description = "Apache Kafka (librdkafka producer)"
    options = (
        Option("Brokers", help="librdkafka bootstrap.servers: host:port list, comma-separated"),
        Option("Topics", help="topics, comma-separated; the first is the default (default "
                              "%s)" % DEFAULT_TOPIC),
        Option("Topic_Key", help="record key whose value picks the topic"),
        Option("Dynamic_Topic", "bool", "false",
               help="a Topic_Key value that is not in Topics is the topic all the same"),
        Option("Format", default="json",
               help="message body: json, msgpack, gelf or raw (Raw_Log_Key's value)"),
        Option("Message_Key", help="message key of every record"),
        Option("Message_Key_Field", help="record key whose string value is the message key"),
        Option("Timestamp_Key", default="@timestamp",
               help="key of the event time added to json and msgpack messages"),
        Option("Timestamp_Format", default="double",
               help="event time as double, iso8601 or iso8601_ns"),
        Option("Raw_Log_Key", help="record key whose string value is the message (Format raw)"),
        Option("queue_full_retries", "int", "10",
               help="waits of a second for room in librdkafka's queue before the chunk is "
                    "retried later (0: no limit)"),
        Option("client_id", help="librdkafka client.id (default fluent-bit)"),
        Option("group_id", compat=True),
        Option("otlp_logs_partition_by_resource", "bool", "false", compat=True),
        Option("aws_msk_iam", "bool", "false", help="AWS MSK IAM authentication (not available)"),
        Option("aws_msk_iam_cluster_arn", compat=True),
        Option("rdkafka.", prefix=True,
               help="rdkafka.<property>: any librdkafka configuration property"),
    ) + tuple(o for o in GELF_KEY_OPTIONS if o.key not in _GELF_UNREAD) \
        + tuple(Option(key, compat=True) for key in _GELF_UNREAD)

    def configure(self):
        conf = self.conf
        try:    # imported here: configs without kafka never load librdkafka
            import confluent_kafka
        except ImportError as exc:
            raise ConfigError("kafka needs the kafka extra (pip install 'edgeship[kafka]'): %s"
                              % exc)
        self.library = confluent_kafka
        self.format = self._word("format", FORMATS, "json")
        self.timestamp_format = self._word("timestamp_format", TIMESTAMP_FORMATS, "double")
        if conf["aws_msk_iam"]:
            raise ConfigError("kafka: aws_msk_iam is not available in edgeship; use "
                              "rdkafka.sasl.* properties", key="aws_msk_iam")
        if not conf["brokers"] or not conf["brokers"].strip():
            raise StartError("kafka: no brokers defined", key="brokers")
        if self.format == "raw" and not conf["raw_log_key"]:
            self.context.tolerate(ConfigError(
                "kafka: Format raw needs Raw_Log_Key: every record will be left out",
                key="format"))
        self.topics = [name.strip() for name in (conf["topics"] or DEFAULT_TOPIC).split(",")
                       if name.strip()] or [DEFAULT_TOPIC]
        self.known_topics = set(self.topics)
        self.retries = max(conf["queue_full_retries"], 0)
        self.gelf = GelfEncoder(conf["gelf_short_message_key"], None, None,
                                conf["gelf_full_message_key"], conf["gelf_level_key"])
        self.time_key = conf["timestamp_key"]
        self.map_header = msgpack.Packer().pack_map_header
        self.message_key = _bytes(conf["message_key"]) if conf["message_key"] else None
        self.settings = self._settings()
        self.producer = None
        self.sender = None
        self.poller = None
        self.closing = False

    def _word(self, key, words, fallback):
        value = self.conf[key].strip().lower()
        if key == "format" and value in _NOT_BUILT:
            raise ConfigError("kafka: Format %s is not available in edgeship (json, msgpack, "
                              "gelf or raw)" % value, key=key)
        if value not in words:
            # Fluent Bit takes an unknown value as its default, without a word.
            self.context.tolerate(ConfigError("kafka: unknown %s '%s', %s is used (one of %s)"
                                              % (key, self.conf[key], fallback,
                                                 ", ".join(words)), key=key))
            return fallback
        return value

    def _settings(self):
        """librdkafka's configuration: client.id, bootstrap.servers, then every rdkafka.*
        property librdkafka accepts, each refused one logged at its line and left out."""
        conf = self.conf
        base = {"client.id": conf["client_id"] or DEFAULT_TOPIC}
        properties = [(entry.key[len(_RDKAFKA):], value, entry)
                      for key, value, entry in conf.ordered if key == _RDKAFKA]
        accepted = dict((name, value) for name, value, _ in properties)
        if self._refusal(dict(base, **accepted)):
            accepted = {}   # which ones: each checked on top of those accepted before it
            for name, value, entry in properties:
                refusal = self._refusal(dict(base, **dict(accepted, **{name: value})))
                if refusal is None or refusal.startswith(_CREATE_FAILED):
                    accepted[name] = value      # a property librdkafka takes
                    continue
                error = ConfigError("kafka: librdkafka refuses '%s': %s; left out, as Fluent "
                                    "Bit does" % (name, refusal), entry.file, entry.line,
                                    entry.key)
                self.context.tolerate(error)
            # Properties it takes one by one that do not go together (SSL with a CA file
            # that is not there): Fluent Bit's init fails.
            refusal = self._refusal(dict(base, **accepted))
            if refusal is not None:
                raise StartError("kafka: librdkafka cannot make the producer: %s" % refusal)
        if str(accepted.get("delivery.report.only.error", "")).lower() in ("true", "1"):
            self.log.warn("rdkafka.delivery.report.only.error true is overridden: every "
                          "delivery report confirms a chunk")
            accepted["delivery.report.only.error"] = "false"
        base.update(accepted)
        return base

    def _refusal(self, settings):
        """librdkafka's reason to refuse ``settings``, or None. The producer it makes has no
        brokers (no connection, no thread to speak of) and is dropped at once."""
        try:
            self.library.Producer(dict(settings, **_QUIET))
        except self.library.KafkaException as exc:
            error = exc.args[0] if exc.args else exc
            return error.str() if hasattr(error, "str") else str(error)
        except (TypeError, ValueError) as exc:
            return str(exc)
        return None

    def summary(self):
        return "brokers=%s topics=%s format=%s" % (self.conf["brokers"], ",".join(self.topics),
                                                   self.format)

    async def start(self):
        # rdkafka.* comes after Brokers, as in Fluent Bit: rdkafka.bootstrap.servers wins.
        settings = {"bootstrap.servers": self.conf["brokers"]}
        settings.update(self.settings)
        settings["logger"] = _LibraryLog(self.log)
        self.producer = self.library.Producer(settings)
        self.closing = False
        self.poller = threading.Thread(target=self._serve, name=self.display + ".poll",
                                       daemon=True)
        self.poller.start()
        self.sender = ThreadPoolExecutor(1, thread_name_prefix=self.display)

    def _serve(self):
        """librdkafka's delivery reports and log lines, served in this thread."""
        while not self.closing:
            self.producer.poll(0.2)

    # --- records to messages ------------------------------------------------------------

    def _values(self, events):
        """The message body (bytes) of each event, None for one that cannot be encoded, and
        why the first of those could not."""
        fmt = self.format
        if fmt == "json":
            return self._json_values(events), None
        if fmt == "msgpack":
            return self._msgpack_values(events), None
        values = []
        problem = None
        if fmt == "gelf":
            warnings = []
            for time_ns, record in events:
                try:
                    values.append(self.gelf.message(time_ns, record, None, warnings)
                                  .encode("ascii"))
                except GelfError as exc:
                    values.append(None)
                    problem = problem or str(exc)
            if warnings:
                self.log.warn("%d records: %s", len(warnings), warnings[0])
            return values, problem
        key = self.conf["raw_log_key"]
        if not key:
            return [None] * len(events), "no Raw_Log_Key set"
        for _, record in events:
            value = record.get(key)
            if type(value) is str:
                values.append(_bytes(value))
            else:
                values.append(None)
                problem = problem or "no string '%s' in the record" % key
        return values, problem

    def _json_values(self, events):
        opening = b"{" + formats.to_json(self.time_key) + b":"
        out = []
        last_ns = date = None
        for (time_ns, _), part in zip(events, formats.json_batch([r for _, r in events])):
            if time_ns != last_ns:      # events of a batch often share a time
                last_ns, date = time_ns, opening + formats.date_json(time_ns,
                                                                     self.timestamp_format)
            out.append(date + b"}" if len(part) == 2 else date + b"," + part[1:])
        return out

    def _msgpack_values(self, events):
        header = self.map_header
        key = packb(self.time_key)
        out = []
        for time_ns, record in events:
            if self.timestamp_format == "double":
                date = packb(time_ns / 1e9)
            else:
                date = packb(formats.date_json(time_ns, self.timestamp_format)[1:-1].decode())
            body = packb(record)
            # The record's own header makes way for one counting the timestamp too.
            out.append(header(len(record) + 1) + key + date + body[len(header(len(record))):])
        return out

    def _topic(self, record, warnings):
        value = record.get(self.conf["topic_key"])
        if type(value) is not str or not value:
            return self.topics[0]
        if value in self.known_topics:
            return value
        if not self.conf["dynamic_topic"]:
            return self.topics[0]
        if "," in value:
            warnings.append("',' not allowed in dynamic_kafka topic names")
            return self.topics[0]
        if len(_bytes(value)) > MAX_TOPIC_LENGTH:
            warnings.append("dynamic kafka topic length > %d not allowed" % MAX_TOPIC_LENGTH)
            return self.topics[0]
        self.known_topics.add(value)
        return value

    def _messages(self, events):
        """(topic, key, value) of each event that has a message, and what was left out."""
        values, problem = self._values(events)
        key_field = self.conf["message_key_field"]
        topic_key = self.conf["topic_key"]
        default_topic = self.topics[0]
        warnings = []
        messages = []
        for (_, record), value in zip(events, values):
            if value is None:
                continue
            key = self.message_key
            if key_field:
                own = record.get(key_field)
                if type(own) is str:
                    key = _bytes(own)
            topic = self._topic(record, warnings) if topic_key else default_topic
            messages.append((topic, key, value))
        if warnings:
            self.log.warn("%d records: %s; sent to topic '%s'", len(warnings), warnings[0],
                          default_topic)
        if problem:
            self.log.error("%d of %d records cannot be sent as %s and are left out (%s)",
                           len(events) - len(messages), len(events), self.format, problem)
        return messages

    # --- delivery ------------------------------------------------------------------------

    def _produce(self, chunk, delivery):
        """In the sender thread: queue the chunk's messages in librdkafka, their reports
        going to ``delivery``. Returns OK, or None when nothing is to be sent, RETRY when
        librdkafka's queue stayed full."""
        messages = self._messages(chunk.events())
        if not messages:
            return None
        delivery.pending = len(messages)
        produce = self.producer.produce
        report = delivery.report
        refused = []
        for topic, key, value in messages:
            waits = 0
            while True:
                try:
                    produce(topic, value, key, on_delivery=report)
                    break
                except BufferError:
                    waits += 1
                    if self.retries and waits > self.retries:
                        self.log.warn("librdkafka's queue is still full after %d waits; the "
                                      "chunk will be retried", self.retries)
                        return RETRY
                    if waits == 1:
                        self.log.warn("internal queue is full, retrying in one second")
                    self.producer.poll(1.0)
                except self.library.KafkaException as exc:
                    # Never sendable (larger than message.max.bytes...): left out.
                    refused.append(exc)
                    delivery.skip()
                    break
        if refused:
            self.log.error("%d records refused by librdkafka are left out (%s)", len(refused),
                           refused[0])
        return OK

    async def flush(self, chunk):
        loop = asyncio.get_running_loop()
        delivery = _Delivery(loop)
        queued = await loop.run_in_executor(self.sender, self._produce, chunk, delivery)
        if queued is None:
            return OK
        if queued == RETRY:
            return RETRY
        await delivery.done
        if delivery.failed:
            self.log.warn("%d of %d messages were not delivered (%s); the chunk will be "
                          "retried", delivery.failed, chunk.count, delivery.first_error)
            return RETRY
        return OK

    async def stop(self):
        if self.producer is None:
            return
        self.closing = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._close)
        self.sender.shutdown(wait=False)
        self.producer = self.sender = self.poller = None

    def _close(self):
        # Chunks not confirmed stay queued in edgeship: what librdkafka still holds can go.
        self.poller.join()
        self.producer.purge()
        self.producer.poll(0)
        deadline = time.monotonic() + 1
        while self.producer.flush(0.1) and time.monotonic() < deadline:
            pass


PLUGIN = Kafka
