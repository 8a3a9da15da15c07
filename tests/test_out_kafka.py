"""kafka output: a real edgeship process produces through librdkafka (confluent-kafka) to a
stand-in broker speaking the Kafka wire protocol (tests/kafka_standin.py: no Kafka broker can
be installed here), which checks every record batch's CRC32C and decodes its records.

The messages are the bytes Fluent Bit 5.1.1's out_kafka builds (produce_message): the
timestamp key put first, then the record (json, msgpack), the GELF message, or the raw
value; the topic from Topic_Key / Dynamic_Topic, the key from Message_Key_Field /
Message_Key. A broker that refuses or drops the connection loses no record: the chunk is
confirmed only by librdkafka's delivery reports. Config checks: a property librdkafka refuses,
the formats not built, the missing extra."""
import json
import os
import subprocess
import sys

import msgpack
import pytest

from conftest import ROOT, Child, run_edgeship, wait_for
from kafka_standin import KafkaStandin

PARSERS = ("[PARSER]\n    Name json_ts\n    Format json\n    Time_Key ts\n"
           "    Time_Format %Y-%m-%dT%H:%M:%S.%LZ\n    Time_Keep Off\n")
# 2024-01-02T03:04:05Z
SEC = 1704164645


@pytest.fixture
def broker():
    standin = KafkaStandin()
    yield standin
    standin.close()


def _run(tmp_path, broker, output, lines, expect, extra_service=""):
    """Run edgeship tail -> kafka over ``lines`` until ``expect(broker)`` holds; returns the
    log text."""
    (tmp_path / "parsers.conf").write_text(PARSERS)
    (tmp_path / "records.jsonl").write_text("".join(line + "\n" for line in lines))
    log = tmp_path / "edgeship.log"
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(
        "[SERVICE]\n    Flush 0.2\n    Grace 3\n    Log_File %s\n    Parsers_File parsers.conf\n"
        "    scheduler.base 1\n    scheduler.cap 1\n%s"
        "[INPUT]\n    Name tail\n    Path records.jsonl\n    Tag app.logs\n    Parser json_ts\n"
        "    Read_From_Head true\n"
        "[OUTPUT]\n    Name kafka\n    Match *\n    Brokers %s\n%s"
        % (log, extra_service, broker.address,
           "".join("    %s\n" % line for line in output)))
    child = Child(["-c", str(conf)], cwd=str(tmp_path))
    try:
        wait_for(lambda: expect(broker), timeout=40)
        code, _, err = child.terminate()
    finally:
        child.kill()
    assert code == 0, err
    return log.read_text() if log.exists() else ""


def _count(n):
    return lambda standin: len(standin.records) >= n


@pytest.mark.e2e
def test_json_messages_topic_and_key_as_fluent_bit_builds_them(tmp_path, broker):
    lines = [
        '{"ts":"2024-01-02T03:04:05.250000000Z","log":"one","t":"other","k":"key1"}',
        '{"ts":"2024-01-02T03:04:05.000000000Z","log":"two \\"q\\" \\u00e9","t":"nowhere",'
        '"k":7,"n":1.5}',
        '{"ts":"2024-01-02T03:04:06.500000000Z","@timestamp":"own","log":"three"}',
        '{"ts":"2024-01-02T03:04:07.000000000Z"}',
    ]
    _run(tmp_path, broker, ["Topics main, other", "Topic_Key t", "Message_Key fixed",
                            "Message_Key_Field k"], lines, _count(4))
    # Each topic's messages in order; two topics are two partitions, not ordered together.
    got = [(r.topic, r.key, r.value) for r in broker.records]
    assert sorted(got, key=lambda m: m[0] != "other") == [
        ("other", b"key1",
         b'{"@timestamp":1704164645.25,"log":"one","t":"other","k":"key1"}'),
        # A key that is not a string: Message_Key; a topic not in Topics: the default.
        ("main", b"fixed",
         b'{"@timestamp":1704164645.0,"log":"two \\"q\\" \\u00e9","t":"nowhere","k":7,'
         b'"n":1.5}'),
        # Fluent Bit adds the key even when the record has one: the record's comes last.
        ("main", b"fixed", b'{"@timestamp":1704164646.5,"@timestamp":"own","log":"three"}'),
        ("main", b"fixed", b'{"@timestamp":1704164647.0}'),
    ]


@pytest.mark.parametrize("fmt,time_format,expected", [
    ("json", "iso8601", b'{"when":"2024-01-02T03:04:05.123456Z","log":"a"}'),
    ("json", "iso8601_ns", b'{"when":"2024-01-02T03:04:05.123456789Z","log":"a"}'),
    ("msgpack", "iso8601_ns", b"\x82\xa4when\xbe2024-01-02T03:04:05.123456789Z\xa3log\xa1a"),
    ("msgpack", "double", b"\x82\xa4when\xcb" + msgpack.packb(SEC + 0.123456789)[1:]
     + b"\xa3log\xa1a"),
])
def test_timestamp_formats(tmp_path, broker, fmt, time_format, expected):
    _run(tmp_path, broker, ["Format " + fmt, "Timestamp_Key when",
                            "Timestamp_Format " + time_format],
         ['{"ts":"2024-01-02T03:04:05.123456789Z","log":"a"}'], _count(1))
    assert broker.values() == [expected]
    assert broker.records[0].topic == "fluent-bit" and broker.records[0].key is None


def test_raw_and_gelf_messages(tmp_path, broker):
    lines = ['{"ts":"2024-01-02T03:04:05.500000000Z","log":"plain text","level":"err",'
             '"host":"pi"}',
             '{"ts":"2024-01-02T03:04:06.000000000Z","other":1}',
             '{"ts":"2024-01-02T03:04:07.000000000Z","log":"last"}']
    log = _run(tmp_path, broker, ["Format raw", "Raw_Log_Key log", "Topics raw"], lines,
               _count(2))
    assert broker.values("raw") == [b"plain text", b"last"]
    assert "1 of 3 records cannot be sent as raw" in log

    broker.records.clear()
    gelf_dir = tmp_path / "gelf"
    gelf_dir.mkdir()
    log = _run(gelf_dir, broker, ["Format gelf", "Gelf_Short_Message_Key log",
                                  "Gelf_Host_Key other", "Topics gelf"], lines, _count(2))
    assert broker.values("gelf") == [
        b'{"version":"1.1", "short_message":"plain text", "level":3, "host":"pi", '
        b'"timestamp":1704164645.500}',
        b'{"version":"1.1", "short_message":"last", "timestamp":1704164647.000}']
    assert "missing short_message key" in log


def test_dynamic_topic(tmp_path, broker):
    lines = ['{"ts":"2024-01-02T03:04:05.000000000Z","t":"%s"}' % topic
             for topic in ("made-here", "a,b", "x" * 250, "made-here", "")]
    log = _run(tmp_path, broker, ["Topics first", "Topic_Key t", "Dynamic_Topic on",
                                  "Format raw", "Raw_Log_Key t"], lines, _count(5))
    assert sorted((r.value, r.topic) for r in broker.records) == sorted([
        (b"made-here", "made-here"), (b"a,b", "first"), (b"x" * 250, "first"),
        (b"made-here", "made-here"), (b"", "first")])
    assert "not allowed in dynamic_kafka topic names" in log


@pytest.mark.e2e
def test_a_refused_then_dropped_produce_loses_nothing(tmp_path, broker):
    # INVALID_RECORD is final for librdkafka: the delivery report fails, the chunk is
    # retried (Fluent Bit had confirmed it when queued and lost it). Then dropped
    # connections and a message timeout shorter than the outage: retried again.
    broker.refuse(2, 87)
    broker.drop(3)
    lines = ['{"ts":"2024-01-02T03:04:05.000000000Z","n":%d}' % i for i in range(50)]
    wanted = set(range(50))

    def complete(standin):
        return {json.loads(v)["n"] for v in standin.values()} >= wanted

    log = _run(tmp_path, broker, ["Format json", "Retry_Limit no_limits",
                                  "rdkafka.message.timeout.ms 1000"], lines, complete)
    assert "were not delivered" in log and "the chunk will be retried" in log
    assert broker.produce_requests > 3
    assert broker.corrupt_batches == 0


def test_a_property_librdkafka_refuses_is_named_with_its_line(tmp_path):
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[INPUT]\n    Name dummy\n[OUTPUT]\n    Name kafka\n    Match *\n"
                    "    Brokers 127.0.0.1:9\n    rdkafka.request.required.acks 1\n"
                    "    rdkafka.ssl.sa.location /etc/ssl\n    rdkafka.acks many\n")
    done = run_edgeship(["--dry-run", "-c", str(conf)])
    assert done.returncode == 0, done.stderr
    assert "fluent-bit.conf:8: key 'rdkafka.ssl.sa.location': kafka: librdkafka refuses " \
           "'ssl.sa.location': No such configuration property" in done.stderr
    assert "fluent-bit.conf:9: key 'rdkafka.acks'" in done.stderr
    assert "rdkafka.request.required.acks" not in done.stderr
    strict = run_edgeship(["--dry-run", "--strict", "-c", str(conf)])
    assert strict.returncode == 1
    assert "fluent-bit.conf:8: key 'rdkafka.ssl.sa.location'" in strict.stderr


@pytest.mark.parametrize("setting,message", [
    ("Format avro", "Format avro is not available"),
    ("Format otlp_json", "Format otlp_json is not available"),
    ("aws_msk_iam on", "aws_msk_iam is not available"),
    ("queue_full_retries x", "invalid value"),
])
def test_what_is_not_built_is_a_config_error(tmp_path, setting, message):
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[INPUT]\n    Name dummy\n[OUTPUT]\n    Name kafka\n    Match *\n"
                    "    Brokers 127.0.0.1:9\n    %s\n" % setting)
    done = run_edgeship(["--dry-run", "-c", str(conf)])
    assert done.returncode == 1
    assert "fluent-bit.conf:7: key '%s'" % setting.split()[0].lower() in done.stderr
    assert message in done.stderr


def test_without_the_library_the_error_names_the_extra(tmp_path):
    blocker = tmp_path / "blocked"
    blocker.mkdir()
    (blocker / "confluent_kafka.py").write_text("raise ImportError('no librdkafka here')\n")
    done = run_edgeship(["--dry-run", "-i", "dummy", "-o", "kafka", "-p", "brokers=x:1"],
                        env={"PYTHONPATH": "%s%s%s" % (blocker, os.pathsep, ROOT)})
    assert done.returncode == 1
    assert "pip install 'edgeship[kafka]'" in done.stderr
    # And a config without kafka never loads it.
    check = subprocess.run(
        [sys.executable, "-c",
         "import sys; from edgeship.cli import main\n"
         "try:\n    main(['--dry-run', '-i', 'dummy', '-o', 'null'])\n"
         "except SystemExit:\n    pass\n"
         "assert 'confluent_kafka' not in sys.modules, 'loaded'\n"],
        capture_output=True, text=True, cwd=ROOT)
    assert check.returncode == 0, check.stderr



def test_a_full_librdkafka_queue_waits_and_loses_nothing(tmp_path, broker):
    lines = ['{"ts":"2024-01-02T03:04:05.000000000Z","n":%d}' % i for i in range(300)]
    log = _run(tmp_path, broker, ["rdkafka.queue.buffering.max.messages 20",
                                  "rdkafka.linger.ms 200"], lines, _count(300))
    assert sorted(json.loads(v)["n"] for v in broker.values()) == list(range(300))
    assert "internal queue is full, retrying in one second" in log


def test_stops_within_grace_while_the_broker_never_answers(tmp_path, broker):
    broker.drop(10 ** 6)
    (tmp_path / "records.jsonl").write_text('{"log":"x"}\n')
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[SERVICE]\n    Flush 0.2\n    Grace 1\n[INPUT]\n    Name tail\n"
                    "    Path records.jsonl\n    Read_From_Head true\n[OUTPUT]\n"
                    "    Name kafka\n    Match *\n    Brokers %s\n" % broker.address)
    child = Child(["-c", str(conf)], cwd=str(tmp_path))
    try:
        wait_for(lambda: broker.produce_requests >= 2, timeout=30)
        code, _, err = child.terminate(timeout=20)
    finally:
        child.kill()
    assert code == 0, err
    assert broker.records == []


def test_what_librdkafka_refuses_at_start_passes_dry_run_and_stops_a_run(tmp_path):
    # Each property is one librdkafka takes; together they make no producer (the CA file is
    # not on this machine): Fluent Bit's init fails, its --dry-run passes.
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[INPUT]\n    Name dummy\n[OUTPUT]\n    Name kafka\n    Match *\n"
                    "    Brokers 127.0.0.1:9\n    rdkafka.security.protocol ssl\n"
                    "    rdkafka.ssl.ca.location %s\n" % (tmp_path / "absent.pem"))
    dry = run_edgeship(["--dry-run", "-c", str(conf)])
    assert dry.returncode == 0, dry.stderr
    assert "librdkafka cannot make the producer" in dry.stderr
    run = run_edgeship(["-c", str(conf)])
    assert run.returncode == 1
    assert "fluent-bit.conf:3: kafka: librdkafka cannot make the producer: Failed to create " \
           "producer: ssl.ca.location failed" in run.stderr
    no_brokers = run_edgeship(["-i", "dummy", "-o", "kafka"])
    assert no_brokers.returncode == 1
    assert "key 'brokers': kafka: no brokers defined" in no_brokers.stderr
