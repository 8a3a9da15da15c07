"""s3: chunks uploaded by edgeship (a real process) to moto's S3 server, read back with
GetObject: keys from s3_key_format, the JSON lines body, gzip, headers, $INDEX kept across
restarts."""
import gzip
import json
import re

import pytest

from conftest import run_edgeship, wait_for
from moto_aws import CREDENTIALS, REGION, Moto
from aws_oracle import aws_env


@pytest.fixture
def moto():
    server = Moto()
    s3 = server.client("s3")
    s3.create_bucket(Bucket="logs", CreateBucketConfiguration={"LocationConstraint": REGION})
    server.s3 = s3
    yield server
    server.stop()


def _config(tmp_path, moto, output, records=({"log": "one", "n": 1}, {"log": "two", "n": 2}),
            tag="kube.var.app", bucket="logs"):
    (tmp_path / "in.log").write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "parsers.conf").write_text("[PARSER]\n    Name json\n    Format json\n"
                                           "    Time_Key t\n    Time_Format %s\n")
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(
        "[SERVICE]\n    Flush 0.5\n    Log_File %s\n    Parsers_File parsers.conf\n"
        "[INPUT]\n    Name tail\n    Path %s\n    Tag %s\n    Read_From_Head on\n"
        "    Parser json\n    DB %s\n"
        "[OUTPUT]\n    Name s3\n    Match *\n    bucket %s\n    region %s\n    endpoint %s\n"
        "    store_dir %s\n%s"
        % (tmp_path / "edgeship.log", tmp_path / "in.log", tag, tmp_path / "tail.db", bucket,
           REGION, moto.url, tmp_path / "store", output))
    return str(conf)


def _objects(moto):
    return [o["Key"] for o in moto.s3.list_objects_v2(Bucket="logs").get("Contents", [])]


def test_json_lines_object_under_fluent_bits_key(spawn, tmp_path, moto):
    records = ({"t": "1700000000", "log": "one", "n": 1},
               {"t": "1700000001", "log": "quote \" \u00e9", "n": 2})
    spawn(["-c", _config(tmp_path, moto, "    use_put_object on\n", records)],
          env=aws_env(tmp_path, **CREDENTIALS))
    key = wait_for(lambda: _objects(moto), timeout=30)[0]
    # /fluent-bit-logs/$TAG/%Y/%m/%d/%H/%M/%S at the first record's time, then -object<8>
    assert re.fullmatch(r"fluent-bit-logs/kube\.var\.app/2023/11/14/22/13/20-object"
                        r"[A-Za-z0-9]{8}", key), key
    body = moto.s3.get_object(Bucket="logs", Key=key)["Body"].read().decode()
    assert body == ('{"date":"2023-11-14T22:13:20.000000Z","log":"one","n":1}\n'
                    '{"date":"2023-11-14T22:13:21.000000Z","log":"quote \\" \\u00e9","n":2}\n')


def test_tag_parts_uuid_gzip_and_headers(spawn, tmp_path, moto):
    spawn(["-c", _config(tmp_path, moto,
                         "    s3_key_format /$TAG[1]/$TAG[2]/%Y/$UUID.gz\n"
                         "    compression gzip\n    content_type application/json\n"
                         "    storage_class STANDARD_IA\n    send_content_md5 on\n"
                         "    json_date_key false\n")],
          env=aws_env(tmp_path, **CREDENTIALS))
    key = wait_for(lambda: _objects(moto), timeout=30)[0]
    assert re.fullmatch(r"var/app/\d{4}/[A-Za-z0-9]{8}\.gz", key), key
    answer = moto.s3.get_object(Bucket="logs", Key=key)
    assert answer["ContentType"] == "application/json"
    assert answer["ContentEncoding"] == "gzip"
    assert answer["StorageClass"] == "STANDARD_IA"
    lines = gzip.decompress(answer["Body"].read()).decode().splitlines()
    assert [json.loads(line) for line in lines] == [{"log": "one", "n": 1},
                                                    {"log": "two", "n": 2}]


def test_index_counts_objects_across_restarts(spawn, tmp_path, moto):
    def config(word):
        conf = tmp_path / "fluent-bit.conf"
        conf.write_text(
            "[SERVICE]\n    Flush 0.2\n    Log_File %s\n"
            "[INPUT]\n    Name dummy\n    Dummy {\"log\":\"%s\"}\n    Samples 1\n"
            "[OUTPUT]\n    Name s3\n    Match *\n    bucket logs\n    region %s\n"
            "    endpoint %s\n    store_dir %s\n    s3_key_format /idx/$INDEX.log\n"
            "    log_key log\n"
            % (tmp_path / "edgeship.log", word, REGION, moto.url, tmp_path / "store"))
        return str(conf)
    child = spawn(["-c", config("one")], env=aws_env(tmp_path, **CREDENTIALS))
    wait_for(lambda: _objects(moto), timeout=30)
    child.terminate()
    spawn(["-c", config("two")], env=aws_env(tmp_path, **CREDENTIALS))
    keys = wait_for(lambda: len(_objects(moto)) == 2 and _objects(moto), timeout=30)
    assert sorted(keys) == ["idx/0.log", "idx/1.log"]
    bodies = [moto.s3.get_object(Bucket="logs", Key=k)["Body"].read() for k in sorted(keys)]
    assert bodies == [b"one\n", b"two\n"]


def test_a_missing_bucket_is_retried_until_it_exists(spawn, tmp_path, moto):
    spawn(["-c", _config(tmp_path, moto, "    Retry_Limit no_limits\n    static_file_path on\n"
                                         "    s3_key_format /fixed.log\n", bucket="later")],
          env=aws_env(tmp_path, **CREDENTIALS))
    log = tmp_path / "edgeship.log"
    wait_for(lambda: log.exists() and "NoSuchBucket" in log.read_text(), timeout=30)
    moto.s3.create_bucket(Bucket="later",
                          CreateBucketConfiguration={"LocationConstraint": REGION})
    wait_for(lambda: moto.s3.list_objects_v2(Bucket="later").get("Contents"), timeout=60)
    body = moto.s3.get_object(Bucket="later", Key="fixed.log")["Body"].read().decode()
    assert [json.loads(line)["n"] for line in body.splitlines()] == [1, 2]


def test_options_fluent_bit_accepts_and_the_ones_it_needs(tmp_path):
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[INPUT]\n    Name dummy\n[OUTPUT]\n    Name s3\n    Match *\n"
                    "    bucket b\n    total_file_size 50M\n    upload_timeout 1m\n"
                    "    use_put_object On\n    store_dir %s\n" % tmp_path)
    done = run_edgeship(["-c", str(conf), "--dry-run"])
    assert done.returncode == 0, done.stderr
    conf.write_text("[INPUT]\n    Name dummy\n[OUTPUT]\n    Name s3\n    Match *\n"
                    "    region eu-west-1\n")
    done = run_edgeship(["-c", str(conf), "--dry-run"])
    assert done.returncode != 0 and "key 'bucket'" in done.stderr
    conf.write_text("[INPUT]\n    Name dummy\n[OUTPUT]\n    Name s3\n    Match *\n"
                    "    bucket b\n    compression parquet\n")
    done = run_edgeship(["-c", str(conf), "--dry-run"])
    assert done.returncode != 0 and "key 'compression'" in done.stderr
