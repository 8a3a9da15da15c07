"""aws filter: a real edgeship process adds an EC2 instance's metadata, read from a loopback
stand-in of the instance metadata service (IMDSv2 with required tokens, or IMDSv1) moved
there with AWS_EC2_METADATA_SERVICE_ENDPOINT: the keys Fluent Bit 5.1.1 adds, in its order,
the options that turn them on and off, tags, the entity keys, and records passing unchanged
while the service is down, then getting the metadata once it is up."""
import json

from aws_oracle import Endpoints, aws_env, imds_routes
from conftest import free_port, run_edgeship, wait_for

INSTANCE = {
    "/latest/meta-data/instance-id": b"i-0fedcba9876543210",
    "/latest/meta-data/instance-type": b"t4g.small",
    "/latest/meta-data/local-ipv4": b"10.0.1.23",
    "/latest/meta-data/mac": b"0a:1b:2c:3d:4e:5f",
    "/latest/meta-data/network/interfaces/macs/0a:1b:2c:3d:4e:5f/vpc-id": b"vpc-0a1b2c3d",
    "/latest/meta-data/ami-id": b"ami-0123456789abcdef0",
    "/latest/meta-data/hostname": b"ip-10-0-1-23.eu-west-1.compute.internal",
    "/latest/meta-data/placement/availability-zone": b"eu-west-1b",
    # As AWS documents the instance identity document (trimmed).
    "/latest/dynamic/instance-identity/document": json.dumps({
        "accountId": "123456789012", "architecture": "arm64",
        "availabilityZone": "eu-west-1b", "imageId": "ami-0123456789abcdef0",
        "instanceId": "i-0fedcba9876543210", "instanceType": "t4g.small",
        "privateIp": "10.0.1.23", "region": "eu-west-1"}).encode(),
}
TAGS = {
    "/latest/meta-data/tags/instance": b"Name\nteam\nenv",
    "/latest/meta-data/tags/instance/Name": b"edge-gw-7",
    "/latest/meta-data/tags/instance/team": b"platform",
    "/latest/meta-data/tags/instance/env": b"prod",
}


def config(tmp_path, *filter_lines, rate=None):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    lines = "".join("    %s\n" % line for line in filter_lines)
    (tmp_path / "fluent-bit.conf").write_text(
        "[SERVICE]\n    Flush 0.2\n    Log_File %s\n"
        "[INPUT]\n    Name dummy\n    Tag app\n    Dummy {\"log\":\"up\",\"az\":\"mine\"}\n"
        "%s"
        "[FILTER]\n    Name aws\n    Match *\n%s"
        "[OUTPUT]\n    Name file\n    Match *\n    Path %s\n    File app\n    Format plain\n"
        % (tmp_path / "edgeship.log", "    Rate %d\n" % rate if rate else "", lines, out))
    return out / "app"


def pairs(items):
    return [list(item) for item in items]


def records(path):
    """The records written, each as [[key, value], ...] in its order."""
    if not path.exists():
        return []
    return [json.loads(line, object_pairs_hook=pairs) for line in
            path.read_text().splitlines() if line.strip()]


def start(spawn, tmp_path, port):
    return spawn(["-c", str(tmp_path / "fluent-bit.conf")],
                 env=aws_env(tmp_path,
                             AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:%d" % port))


def log(tmp_path):
    path = tmp_path / "edgeship.log"
    return path.read_text() if path.exists() else ""


def test_every_key_in_fluent_bit_order_over_imdsv2(spawn, tmp_path):
    imds = Endpoints(imds_routes(dict(INSTANCE, **TAGS)))
    try:
        out = config(tmp_path, "ec2_instance_type true", "private_ip true", "vpc_id true",
                     "ami_id true", "account_id true", "hostname true", "tags_enabled true",
                     "tags_exclude team", "enable_entity true")
        start(spawn, tmp_path, imds.port)
        first = wait_for(lambda: records(out))[0]
    finally:
        imds.close()
    # The record's own az is replaced by the instance's (Fluent Bit appends a second one).
    assert first == [
        ["log", "up"], ["az", "eu-west-1b"], ["ec2_instance_id", "i-0fedcba9876543210"],
        ["ec2_instance_type", "t4g.small"], ["private_ip", "10.0.1.23"],
        ["vpc_id", "vpc-0a1b2c3d"], ["ami_id", "ami-0123456789abcdef0"],
        ["account_id", "123456789012"],
        ["hostname", "ip-10-0-1-23.eu-west-1.compute.internal"],
        ["Name", "edge-gw-7"], ["env", "prod"],
        ["aws_entity_ec2_instance_id", "i-0fedcba9876543210"],
        ["aws_entity_account_id", "123456789012"]]
    requests = [(method, path) for method, path, _ in imds.requests]
    # One token, then Fluent Bit's paths in its order, each asked for once.
    assert requests[0] == ("PUT", "/latest/api/token")
    assert [p for m, p in requests if m == "PUT"] == ["/latest/api/token"]
    assert [p for m, p in requests[1:]][:9] == [
        "/latest/meta-data/instance-id/", "/latest/dynamic/instance-identity/document/",
        "/latest/meta-data/instance-type/", "/latest/meta-data/local-ipv4/",
        "/latest/meta-data/mac/",
        "/latest/meta-data/network/interfaces/macs/0a:1b:2c:3d:4e:5f/vpc-id/",
        "/latest/meta-data/ami-id/", "/latest/meta-data/hostname/",
        "/latest/meta-data/placement/availability-zone/"]
    assert len(set(requests)) == len(requests)
    assert all(headers.get("X-aws-ec2-metadata-token") == "imds-token"
               for method, _, headers in imds.requests if method == "GET")


def test_defaults_over_imdsv1_with_tags_include(spawn, tmp_path):
    imds = Endpoints(imds_routes(dict(INSTANCE, **TAGS), token=None))
    try:
        out = config(tmp_path, "imds_version V1", "tags_enabled on", "tags_include env,Name")
        start(spawn, tmp_path, imds.port)
        first = wait_for(lambda: records(out))[0]
    finally:
        imds.close()
    assert first == [["log", "up"], ["az", "eu-west-1b"],
                     ["ec2_instance_id", "i-0fedcba9876543210"],
                     ["Name", "edge-gw-7"], ["env", "prod"]]
    assert all(method == "GET" and "X-aws-ec2-metadata-token" not in headers
               for method, _, headers in imds.requests)


def test_options_turn_keys_off(spawn, tmp_path):
    imds = Endpoints(imds_routes(INSTANCE))
    try:
        out = config(tmp_path, "az false", "ec2_instance_id off", "ami_id on")
        start(spawn, tmp_path, imds.port)
        first = wait_for(lambda: records(out))[0]
    finally:
        imds.close()
    assert first == [["log", "up"], ["az", "mine"], ["ami_id", "ami-0123456789abcdef0"]]
    assert [p for m, p, _ in imds.requests if m == "GET"] == ["/latest/meta-data/ami-id/"]


def test_records_pass_unchanged_while_imds_is_down_then_get_it(spawn, tmp_path):
    port = free_port()
    out = config(tmp_path, "retry_interval_s 1", "tags_enabled true", rate=5)
    start(spawn, tmp_path, port)
    wait_for(lambda: len(records(out)) >= 3)
    assert "EC2 metadata not fetched" in log(tmp_path)
    assert records(out)[0] == [["log", "up"], ["az", "mine"]]
    imds = Endpoints(imds_routes(INSTANCE), port=port)        # no tags: 404
    try:
        wait_for(lambda: any(["ec2_instance_id", "i-0fedcba9876543210"] in r
                             for r in records(out)))
    finally:
        imds.close()
    got = records(out)
    done = [r for r in got if ["ec2_instance_id", "i-0fedcba9876543210"] in r]
    assert done[0] == [["log", "up"], ["az", "eu-west-1b"],
                       ["ec2_instance_id", "i-0fedcba9876543210"]]
    # Before: unchanged records, none with part of the metadata.
    assert all(r == [["log", "up"], ["az", "mine"]] for r in got[:got.index(done[0])])
    assert "tag request returned 404" in log(tmp_path)
    # Each failed round is one line, not one per record or per value.
    assert log(tmp_path).count("EC2 metadata not fetched") < len(got)


def test_bad_options_are_refused(tmp_path):
    for lines, word in ((("tags_enabled on", "tags_include a", "tags_exclude b"),
                         "tags_exclude"),
                        (("imds_version v3",), "imds_version")):
        config(tmp_path, *lines)
        proc = run_edgeship(["-c", str(tmp_path / "fluent-bit.conf")], env=aws_env(tmp_path))
        assert proc.returncode != 0
        assert word in proc.stderr + log(tmp_path)
