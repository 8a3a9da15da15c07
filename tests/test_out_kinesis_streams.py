"""kinesis_streams: records sent by edgeship (a real process, or the plugin built by the real
loader) to moto's Kinesis server, read back with GetRecords; a loopback receiver checks each
signature with botocore and answers a partial failure as Kinesis documents it."""
import asyncio
import base64
import io
import json
import re

from conftest import run_edgeship, wait_for
from filter_helpers import load
from moto_aws import CREDENTIALS, REGION, moto  # noqa: F401  (the fixture)
from aws_oracle import aws_env, expected_authorization
from http_receiver import Receiver, response
from edgeship.codecs import entries
from edgeship.engine.log import Log
from edgeship.engine.plugin import OK, RETRY
from edgeship.plugins.outputs import kinesis_streams

T0 = 1700000000 * 10 ** 9 + 123456789      # 2023-11-14T22:13:20.123456789Z


def _create(moto, name="ks", shards=1):
    kinesis = moto.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    return kinesis


def _read(kinesis, name="ks"):
    """(PartitionKey, Data) of every record of the stream, shard by shard, in order."""
    got = []
    for shard in kinesis.list_shards(StreamName=name)["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=name, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            answer = kinesis.get_records(ShardIterator=iterator, Limit=10000)
            got += [(r["PartitionKey"], r["Data"]) for r in answer["Records"]]
            if not answer["Records"]:
                break
            iterator = answer["NextShardIterator"]
    return got


def _plugin(tmp_path, monkeypatch, endpoint, options=""):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    engine = load(tmp_path, "", outputs="[OUTPUT]\n    Name kinesis_streams\n    Match *\n"
                  "    region %s\n    endpoint %s\n    stream ks\n%s"
                  % (REGION, endpoint, options))
    plugin = engine.outputs[0].plugin
    plugin.log = Log("info", io.StringIO(), "kinesis_streams.0")
    return plugin


def _chunk(records, chunk_id=1):
    payload, _ = entries.pack_entries([(T0, record) for record in records])
    return entries.Chunk("app.web", payload, len(records), chunk_id)


def _flushes(plugin, *chunks):
    """The result of flushing each chunk in turn, in one event loop (as the engine does)."""
    async def run():
        return [await plugin.flush(chunk) for chunk in chunks]
    return asyncio.run(run())


def _log(tmp_path):
    path = tmp_path / "edgeship.log"
    return path.read_text() if path.exists() else ""


def _partition_key_pattern(tag):
    return re.compile(r"^[0-9a-f]{10}%d\d{1,4}$" % (kinesis_streams._djb2(tag) % 7919))


def test_records_reach_the_stream_with_fluent_bits_partition_keys(spawn, tmp_path, moto):
    kinesis = _create(moto, shards=4)
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(
        "[SERVICE]\n    Flush 0.2\n    Log_File %s\n"
        "[INPUT]\n    Name dummy\n    Tag app.web\n    Dummy {\"log\":\"hi \\u00e9\",\"n\":1}\n"
        "    Samples 20\n    Rate 100\n"
        "[OUTPUT]\n    Name kinesis_streams\n    Match *\n    region %s\n    endpoint %s\n"
        "    stream ks\n" % (tmp_path / "edgeship.log", REGION, moto.url))
    spawn(["-c", str(conf)], env=aws_env(tmp_path, **CREDENTIALS))
    got = wait_for(lambda: len(_read(kinesis)) == 20 and _read(kinesis), timeout=30)
    assert {data for _, data in got} == {b'{"log":"hi \\u00e9","n":1}\n'}
    keys = [key for key, _ in got]
    pattern = _partition_key_pattern("app.web")
    assert all(pattern.match(key) for key in keys), keys
    assert len({key[:10] for key in keys}) == 1        # one prefix per output instance
    assert len(set(keys)) > 1                          # the last number changes per record


def test_time_key_and_log_key(tmp_path, monkeypatch, moto):
    kinesis = _create(moto)
    timed = _plugin(tmp_path, monkeypatch, moto.url,
                    "    time_key ts\n    time_key_format %Y-%m-%dT%H:%M:%S.%3NZ\n")
    keyed = _plugin(tmp_path, monkeypatch, moto.url, "    log_key log\n")
    assert _flushes(timed, _chunk([{"log": "a"}, {}])) == [OK]
    assert _flushes(keyed, _chunk([{"log": "tab\there"}, {"log": [1, 2]}, {"x": 1}],
                                  chunk_id=2)) == [OK]
    assert [data for _, data in _read(kinesis)] == [
        b'{"log":"a","ts":"2023-11-14T22:13:20.123Z"}\n', b'tab\\there\n', b'[1,2]\n']
    assert "could not find log_key 'log' in 1 record(s)" in keyed.log.stream.getvalue()


def test_batches_keep_within_the_put_records_limits(tmp_path, monkeypatch, moto):
    kinesis = _create(moto)
    plugin = _plugin(tmp_path, monkeypatch, moto.url)
    records = [{"n": n} for n in range(1203)]
    records.insert(10, {"n": -1, "pad": "x" * 1048556})          # 1 MiB - 20: dropped
    records += [{"n": 2000 + n, "pad": "y" * 1000000} for n in range(4)]
    chunk = _chunk(records)
    data = plugin._records(chunk)
    batches = plugin._batches(data, range(len(data)))
    # 500 records a request; three 1.3 MB (base64) records fill 5 MiB, the fourth goes alone
    assert [len(batch) for batch in batches] == [500, 500, 206, 1]
    assert _flushes(plugin, chunk) == [OK]
    assert "1 record(s) of 1048556 bytes or more dropped" in plugin.log.stream.getvalue()
    got = [json.loads(data)["n"] for _, data in _read(kinesis)]
    assert got == list(range(1203)) + [2000, 2001, 2002, 2003]


def test_simple_aggregation_and_zstd(tmp_path, monkeypatch, moto):
    import cramjam
    kinesis = _create(moto)
    plugin = _plugin(tmp_path, monkeypatch, moto.url,
                     "    simple_aggregation on\n    compression zstd\n")
    assert _flushes(plugin, _chunk([{"n": 0}, {"n": 1}, {"n": 2}])) == [OK]
    (_, data), = _read(kinesis)
    # one record of the three lines (no extra newline for Kinesis), compressed
    assert bytes(cramjam.zstd.decompress(data)) == b'{"n":0}\n{"n":1}\n{"n":2}\n'


def _kinesis_answers(failed_first):
    """A receiver answer: 403 for a signature botocore does not find the same; the first
    request has the records at ``failed_first`` refused as Kinesis refuses them, the next
    ones all accepted."""
    def answer(request, index):
        expected = expected_authorization(request.method, request.header("Host"),
                                          request.path, request.headers, request.body,
                                          "AKIDMOTO", "moto-secret", REGION, "kinesis")
        request.signature_ok = request.header("Authorization") == expected
        if not request.signature_ok:
            return response(403, b'{"__type":"InvalidSignatureException","message":"no"}')
        count = len(json.loads(request.body)["Records"])
        failing = failed_first if index == 0 else ()
        answers = [{"ErrorCode": "ProvisionedThroughputExceededException",
                    "ErrorMessage": "Rate exceeded for shard shardId-000000000001"}
                   if n in failing else {"SequenceNumber": str(n), "ShardId": "shardId-0"}
                   for n in range(count)]
        return response(200, json.dumps({"FailedRecordCount": len(failing),
                                         "Records": answers}))
    return answer


def test_a_partial_failure_resends_only_the_refused_records(tmp_path, monkeypatch):
    receiver = Receiver(_kinesis_answers(failed_first=(0, 4)))
    try:
        plugin = _plugin(tmp_path, monkeypatch, "http://127.0.0.1:%d" % receiver.port)
        chunk = _chunk([{"n": n} for n in range(5)])
        assert _flushes(plugin, chunk, chunk) == [RETRY, OK]
    finally:
        receiver.close()
    assert "2 out of 5 records failed to be delivered to ks " \
           "(ProvisionedThroughputExceededException)" in plugin.log.stream.getvalue()
    first, second = receiver.requests
    assert all(r.signature_ok for r in receiver.requests)
    assert first.header("X-Amz-Target") == "Kinesis_20131202.PutRecords"
    assert "/%s/kinesis/aws4_request" % REGION in first.header("Authorization")
    bodies = [json.loads(req.body) for req in (first, second)]
    assert bodies[0]["StreamName"] == "ks"
    assert [list(r) for r in bodies[0]["Records"]] == [["Data", "PartitionKey"]] * 5
    sent = [[base64.b64decode(r["Data"]) for r in body["Records"]] for body in bodies]
    assert sent[0] == [b'{"n":%d}\n' % n for n in range(5)]
    assert sent[1] == [b'{"n":0}\n', b'{"n":4}\n']        # nothing lost, nothing twice


def test_a_missing_stream_is_retried_until_it_exists(spawn, tmp_path, moto):
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(
        "[SERVICE]\n    Flush 0.2\n    Log_File %s\n    scheduler.base 1\n"
        "    scheduler.cap 1\n"
        "[INPUT]\n    Name dummy\n    Dummy {\"seq\":1}\n    Samples 1\n"
        "[OUTPUT]\n    Name kinesis_streams\n    Match *\n    region %s\n    endpoint %s\n"
        "    stream later\n    Retry_Limit no_limits\n"
        % (tmp_path / "edgeship.log", REGION, moto.url))
    spawn(["-c", str(conf)], env=aws_env(tmp_path, **CREDENTIALS))
    wait_for(lambda: "ResourceNotFoundException" in _log(tmp_path), timeout=30)
    kinesis = _create(moto, "later")
    got = wait_for(lambda: _read(kinesis, "later"), timeout=30)
    assert [data for _, data in got] == [b'{"seq":1}\n']


def test_options_fluent_bit_refuses_are_config_errors(tmp_path):
    for output, key in (("    stream ks\n", "region"),
                        ("    region r\n", "stream"),
                        ("    region r\n    stream ks\n    time_key t\n    log_key log\n",
                         "time_key"),
                        ("    region r\n    stream ks\n    compression lz4\n", "compression")):
        conf = tmp_path / "fluent-bit.conf"
        conf.write_text("[INPUT]\n    Name dummy\n[OUTPUT]\n    Name kinesis_streams\n"
                        "    Match *\n" + output)
        done = run_edgeship(["-c", str(conf), "--dry-run"])
        assert done.returncode != 0 and "key '%s'" % key in done.stderr, done.stderr
