"""kinesis_firehose: records sent by edgeship (a real process, or the plugin built by the real
loader) to moto's Firehose server, read back from the S3 bucket moto delivers them to (one
object per PutRecordBatch); a loopback receiver checks each signature with botocore and
answers a partial failure as Firehose documents it."""
import asyncio
import base64
import gzip
import io
import json
import os

from conftest import run_edgeship, wait_for
from filter_helpers import load
from moto_aws import CREDENTIALS, REGION, moto  # noqa: F401  (the fixture)
from aws_oracle import aws_env, expected_authorization
from http_receiver import Receiver, response
from edgeship.codecs import entries
from edgeship.engine.log import Log
from edgeship.engine.plugin import ERROR, OK, RETRY

DATA = os.path.join(os.path.dirname(__file__), "data", "kinesis")
BUCKET = "firehose-destination"
T0 = 1700000000 * 10 ** 9 + 123456789      # 2023-11-14T22:13:20.123456789Z


def _delivery_stream(moto, name="ds"):
    s3 = moto.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    moto.client("firehose").create_delivery_stream(
        DeliveryStreamName=name, ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": "arn:aws:s3:::" + BUCKET})
    return s3


def _objects(s3):
    """The body of each object Firehose delivered (one per PutRecordBatch)."""
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    return [s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys]


def _plugin(tmp_path, monkeypatch, endpoint, options=""):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    engine = load(tmp_path, "", outputs="[OUTPUT]\n    Name kinesis_firehose\n    Match *\n"
                  "    region %s\n    endpoint %s\n    delivery_stream ds\n%s"
                  % (REGION, endpoint, options))
    plugin = engine.outputs[0].plugin
    plugin.log = Log("info", io.StringIO(), "kinesis_firehose.0")
    return plugin


def _chunk(records, chunk_id=1, time_ns=T0):
    payload, _ = entries.pack_entries([(time_ns, record) for record in records])
    return entries.Chunk("app.web", payload, len(records), chunk_id)


def _flushes(plugin, *chunks):
    """The result of flushing each chunk in turn, in one event loop (as the engine does)."""
    async def run():
        return [await plugin.flush(chunk) for chunk in chunks]
    return asyncio.run(run())


def _log(tmp_path):
    path = tmp_path / "edgeship.log"
    return path.read_text() if path.exists() else ""


def test_records_reach_the_delivery_stream(spawn, tmp_path, moto):
    s3 = _delivery_stream(moto)
    lines = [{"log": "line one", "n": 1}, {}, {"log": "quote \" and \u00e9", "f": 2.5}]
    (tmp_path / "in.log").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (tmp_path / "parsers.conf").write_text("[PARSER]\n    Name json\n    Format json\n")
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(
        "[SERVICE]\n    Flush 0.2\n    Log_File %s\n    Parsers_File parsers.conf\n"
        "[INPUT]\n    Name tail\n    Path %s\n    Tag app.web\n    Read_From_Head on\n"
        "    Parser json\n"
        "[OUTPUT]\n    Name kinesis_firehose\n    Match *\n    region %s\n    endpoint %s\n"
        "    delivery_stream ds\n"
        % (tmp_path / "edgeship.log", tmp_path / "in.log", REGION, moto.url))
    spawn(["-c", str(conf)], env=aws_env(tmp_path, **CREDENTIALS))
    got = wait_for(lambda: _objects(s3), timeout=30)
    # the empty record is skipped; each record ends with a newline
    assert got == [b'{"log":"line one","n":1}\n'
                   b'{"log":"quote \\" and \\u00e9","f":2.5}\n']


def test_time_key_is_the_last_member_in_its_format(tmp_path, monkeypatch, moto):
    s3 = _delivery_stream(moto)
    plugin = _plugin(tmp_path, monkeypatch, moto.url,
                     "    time_key at\n    time_key_format %Y-%m-%dT%H:%M:%S.%3N|%9N|%L\n")
    assert asyncio.run(plugin.flush(_chunk([{"a": 1, "b": {"c": "d"}}]))) == OK
    assert _objects(s3) == [b'{"a":1,"b":{"c":"d"},"at":"2023-11-14T22:13:20.123|123456789|'
                            b'123456789"}\n']
    plain = _plugin(tmp_path, monkeypatch, moto.url, "    time_key time\n")
    assert asyncio.run(plain.flush(_chunk([{"a": 2}], chunk_id=2))) == OK
    assert b'{"a":2,"time":"2023-11-14T22:13:20"}\n' in _objects(s3)


def test_log_key_sends_the_value_alone(tmp_path, monkeypatch, moto):
    s3 = _delivery_stream(moto)
    plugin = _plugin(tmp_path, monkeypatch, moto.url, "    log_key log\n")
    records = [{"log": "plain \"q\" \u00e9", "k": 1}, {"log": {"inner": True}}, {"other": 1},
               {"log": ""}]
    assert asyncio.run(plugin.flush(_chunk(records))) == OK
    # a string as its JSON text without the quotes, as Fluent Bit writes it
    assert _objects(s3) == [b'plain \\"q\\" \\u00e9\n{"inner":true}\n']
    assert "could not find log_key 'log' in 1 record(s)" in plugin.log.stream.getvalue()


def test_batches_keep_within_the_put_record_batch_limits(tmp_path, monkeypatch, moto):
    s3 = _delivery_stream(moto)
    plugin = _plugin(tmp_path, monkeypatch, moto.url)
    records = [{"n": n} for n in range(1203)]
    records.insert(600, {"n": -1, "pad": "x" * 1100000})          # over 1,000 KiB: dropped
    records += [{"n": 2000 + n, "pad": "y" * 900000} for n in range(4)]
    assert asyncio.run(plugin.flush(_chunk(records))) == OK
    log = plugin.log.stream.getvalue()
    assert "1 record(s) of 1024000 bytes or more dropped" in log
    objects = _objects(s3)
    # 500 records a request; three 1.2 MB (base64) records fill 4 MiB, the fourth goes alone
    assert sorted(body.count(b"\n") for body in objects) == [1, 206, 500, 500]
    got = sorted(json.loads(line)["n"] for body in objects for line in body.splitlines())
    assert got == list(range(1203)) + [2000, 2001, 2002, 2003]


def test_simple_aggregation_and_gzip(tmp_path, monkeypatch, moto):
    s3 = _delivery_stream(moto)
    plugin = _plugin(tmp_path, monkeypatch, moto.url, "    simple_aggregation on\n")
    assert asyncio.run(plugin.flush(_chunk([{"n": 0}, {"n": 1}, {"n": 2}]))) == OK
    # one record holding the three lines, and the newline Fluent Bit ends it with
    assert _objects(s3) == [b'{"n":0}\n{"n":1}\n{"n":2}\n\n']
    zipped = _plugin(tmp_path, monkeypatch, moto.url, "    compression gzip\n")
    assert asyncio.run(zipped.flush(_chunk([{"z": 0}, {"z": 1}], chunk_id=2))) == OK
    body = [b for b in _objects(s3) if not b.startswith(b'{"n"')][0]
    assert body.startswith(b"\x1f\x8b") and body.count(b"\x1f\x8b\x08") == 2   # one each
    assert gzip.decompress(body) == b'{"z":0}\n{"z":1}\n'


def _firehose_answers(failed_first):
    """A receiver answer: 403 for a signature botocore does not find the same; the first
    request has the records at ``failed_first`` refused as Firehose refuses them, the next
    ones all accepted; a request for stream 'bad' is refused with a 400."""
    def answer(request, index):
        expected = expected_authorization(request.method, request.header("Host"),
                                          request.path, request.headers, request.body,
                                          "AKIDMOTO", "moto-secret", REGION, "firehose")
        request.signature_ok = request.header("Authorization") == expected
        if not request.signature_ok:
            return response(403, b'{"__type":"InvalidSignatureException","message":"no"}')
        body = json.loads(request.body)
        if body["DeliveryStreamName"] == "bad":
            return response(400, b'{"__type":"InvalidArgumentException",'
                                 b'"message":"Records size exceeds 4 MB limit"}')
        count = len(body["Records"])
        failing = failed_first if index == 0 else ()
        answers = [{"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."}
                   if n in failing else {"RecordId": "id-%d" % n} for n in range(count)]
        return response(200, json.dumps({"FailedPutCount": len(failing), "Encrypted": False,
                                         "RequestResponses": answers}))
    return answer


def test_a_partial_failure_resends_only_the_refused_records(tmp_path, monkeypatch):
    receiver = Receiver(_firehose_answers(failed_first=(1, 3)))
    try:
        plugin = _plugin(tmp_path, monkeypatch, "http://127.0.0.1:%d" % receiver.port)
        chunk = _chunk([{"n": n} for n in range(5)])
        assert _flushes(plugin, chunk, chunk) == [RETRY, OK]
        assert "2 out of 5 records failed to be delivered to ds (ServiceUnavailableException)" \
            in plugin.log.stream.getvalue()
        bad = _plugin(tmp_path, monkeypatch, "http://127.0.0.1:%d" % receiver.port)
        bad.stream = "bad"
        bad.head = bad.head.replace(b'"ds"', b'"bad"')
        assert asyncio.run(bad.flush(_chunk([{"n": 9}], chunk_id=2))) == ERROR
        assert "InvalidArgumentException: Records size exceeds 4 MB limit; the chunk will " \
               "not be retried" in bad.log.stream.getvalue()
    finally:
        receiver.close()
    first, second = receiver.requests[:2]
    assert all(r.signature_ok for r in receiver.requests)
    assert first.header("X-Amz-Target") == "Firehose_20150804.PutRecordBatch"
    assert first.header("Content-Type") == "application/x-amz-json-1.1"
    assert "/%s/firehose/aws4_request" % REGION in first.header("Authorization")
    sent = [[base64.b64decode(r["Data"]) for r in json.loads(req.body)["Records"]]
            for req in (first, second)]
    assert sent[0] == [b'{"n":%d}\n' % n for n in range(5)]
    assert sent[1] == [b'{"n":1}\n', b'{"n":3}\n']        # nothing lost, nothing twice


def test_a_refused_signature_fetches_credentials_again(tmp_path, monkeypatch):
    """403 for keys the service no longer takes: the chunk is retried with the keys read
    again from the credentials file, which now holds the ones it takes."""
    def answer(request, index):
        expected = expected_authorization(request.method, request.header("Host"),
                                          request.path, request.headers, request.body,
                                          "AKIDNEW", "new-secret", REGION, "firehose")
        if request.header("Authorization") != expected:
            return response(403, b'{"__type":"UnrecognizedClientException",'
                                 b'"message":"The security token included in the request '
                                 b'is invalid."}')
        return response(200, b'{"FailedPutCount":0,"RequestResponses":[{"RecordId":"r"}]}')
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\naws_access_key_id = AKIDOLD\n"
                           "aws_secret_access_key = old-secret\n")
    for name, value in aws_env(tmp_path, AWS_SHARED_CREDENTIALS_FILE=str(credentials)).items():
        monkeypatch.setenv(name, value)
    receiver = Receiver(answer)
    try:
        engine = load(tmp_path, "", outputs="[OUTPUT]\n    Name kinesis_firehose\n"
                      "    Match *\n    region %s\n    endpoint http://127.0.0.1:%d\n"
                      "    delivery_stream ds\n" % (REGION, receiver.port))
        plugin = engine.outputs[0].plugin
        plugin.log = Log("info", io.StringIO(), "kinesis_firehose.0")
        chunk = _chunk([{"n": 1}])

        async def run():
            first = await plugin.flush(chunk)
            credentials.write_text("[default]\naws_access_key_id = AKIDNEW\n"
                                   "aws_secret_access_key = new-secret\n")
            return [first, await plugin.flush(chunk)]
        assert asyncio.run(run()) == [RETRY, OK]
    finally:
        receiver.close()
    assert "UnrecognizedClientException" in plugin.log.stream.getvalue()
    assert [r.header("Authorization").split("Credential=")[1][:7]
            for r in receiver.requests] == ["AKIDOLD", "AKIDNEW"]


def test_a_missing_delivery_stream_is_retried_until_it_exists(spawn, tmp_path, moto):
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(
        "[SERVICE]\n    Flush 0.2\n    Log_File %s\n    scheduler.base 1\n"
        "    scheduler.cap 1\n"
        "[INPUT]\n    Name dummy\n    Dummy {\"seq\":1}\n    Samples 1\n"
        "[OUTPUT]\n    Name kinesis_firehose\n    Match *\n    region %s\n    endpoint %s\n"
        "    delivery_stream later\n    Retry_Limit no_limits\n"
        % (tmp_path / "edgeship.log", REGION, moto.url))
    spawn(["-c", str(conf)], env=aws_env(tmp_path, **CREDENTIALS))
    wait_for(lambda: "ResourceNotFoundException" in _log(tmp_path), timeout=30)
    s3 = _delivery_stream(moto, "later")
    assert wait_for(lambda: _objects(s3), timeout=30) == [b'{"seq":1}\n']


def test_options_fluent_bit_refuses_are_config_errors(tmp_path):
    for output, key in (("    delivery_stream ds\n", "region"),
                        ("    region r\n", "delivery_stream"),
                        ("    region r\n    delivery_stream ds\n    time_key t\n"
                         "    log_key log\n", "time_key"),
                        ("    region r\n    delivery_stream ds\n    compression arrow\n",
                         "compression")):
        conf = tmp_path / "fluent-bit.conf"
        conf.write_text("[INPUT]\n    Name dummy\n[OUTPUT]\n    Name kinesis_firehose\n"
                        "    Match *\n" + output)
        done = run_edgeship(["-c", str(conf), "--dry-run"])
        assert done.returncode != 0 and "key '%s'" % key in done.stderr, done.stderr


def test_a_firelens_config_with_both_outputs_is_accepted(tmp_path):
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(
        "[SERVICE]\n    Flush 1\n    Grace 30\n"
        "[INPUT]\n    Name forward\n    unix_path %s\n"
        "[OUTPUT]\n    Name kinesis_firehose\n    Match app-firelens*\n    region us-west-2\n"
        "    delivery_stream my-stream\n    time_key time\n"
        "    time_key_format %%Y-%%m-%%dT%%H:%%M:%%S.%%3N\n    compression gzip\n"
        "[OUTPUT]\n    Name kinesis_streams\n    Match *\n    region us-west-2\n"
        "    stream my-kinesis-stream\n    log_key log\n    simple_aggregation true\n"
        "    auto_retry_requests false\n    role_arn arn:aws:iam::123456789012:role/x\n"
        "    Workers 1\n" % (tmp_path / "fluent.sock"))
    done = run_edgeship(["-c", str(conf), "--dry-run"])
    assert done.returncode == 0, done.stderr


def _answer_any(request, index):
    """Every record accepted, as Firehose and Kinesis answer."""
    count = len(json.loads(request.body)["Records"])
    return response(200, json.dumps({"FailedPutCount": 0, "FailedRecordCount": 0,
                                     "RequestResponses": [{"RecordId": "r"}] * count,
                                     "Records": [{"SequenceNumber": "1",
                                                  "ShardId": "shardId-0"}] * count}))


def test_requests_hold_the_records_fluent_bit_sent(spawn, tmp_path):
    """Both outputs, five configurations: the Data of every record equals what Fluent Bit
    5.1.1 sent for the same config and input (tests/data/kinesis/README.md)."""
    receiver = Receiver(_answer_any)
    try:
        with open(os.path.join(DATA, "kinesis.conf")) as conf:
            text = conf.read().replace("ENDPOINT", "http://127.0.0.1")
        conf = tmp_path / "fluent-bit.conf"
        conf.write_text(text.replace("PORT", str(receiver.port)).replace(
            "Path records.jsonl", "Path " + os.path.join(DATA, "records.jsonl")).replace(
            "Parsers_File parsers.conf", "Parsers_File " + os.path.join(DATA, "parsers.conf")
            + "\n    Log_File " + str(tmp_path / "edgeship.log")).replace(
            "Read_From_Head on", "Read_From_Head on\n    DB " + str(tmp_path / "tail.db")))
        spawn(["-c", str(conf)], env=aws_env(tmp_path, **CREDENTIALS))
        wait_for(lambda: len(receiver.requests) >= 5, timeout=30)
    finally:
        receiver.close()
    got = sorted(json.dumps({"target": r.header("X-Amz-Target"),
                             "stream": json.loads(r.body).get("StreamName")
                             or json.loads(r.body)["DeliveryStreamName"],
                             "data": [base64.b64decode(d["Data"]).decode()
                                      for d in json.loads(r.body)["Records"]]},
                            ensure_ascii=False) for r in receiver.requests)
    with open(os.path.join(DATA, "fluent-bit.jsonl"), encoding="utf-8") as vector:
        expected = [json.loads(line) for line in vector]
    # the one difference: log_key naming a map sends its JSON (Fluent Bit cuts the braces)
    for request in expected:
        request["data"] = ['{"inner":true}\n' if d == '"inner":true\n' else d
                           for d in request["data"]]
    assert [json.loads(line) for line in got] == expected
