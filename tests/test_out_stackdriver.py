"""stackdriver output: a real edgeship process writes to a loopback Cloud Logging receiver
(checks the bearer token, answers as entries:write does), authenticated by a stand-in of the
GCE metadata server (token, project, zone, instance, only with ``Metadata-Flavor: Google``)
or of Google's token endpoint (tests/gcp_oauth.py, RS256 JWT checked with the test key's
public key): the requests Fluent Bit 5.1.1 sent for the same configs and records
(tests/data/stackdriver/), byte for byte; the realconf case's service account and
export_to_project_id; 4xx/5xx/401 handling; what Fluent Bit would drop kept; config
errors."""
import gzip
import json
import os
import shutil

import pytest

from conftest import Child, run_edgeship, wait_for
from gcp_oauth import PROJECT, TokenEndpoint
from http_receiver import Receiver, response
from http_vectors import without_length

DATA = os.path.join(os.path.dirname(__file__), "data", "stackdriver")
PARSERS = os.path.join(os.path.dirname(__file__), "data", "nrlogs", "parsers.conf")
SCOPE = "https://www.googleapis.com/auth/logging.write"
METADATA = {
    "/computeMetadata/v1/instance/service-accounts/default/token":
        json.dumps({"access_token": "ya29.meta", "expires_in": 3599, "token_type": "Bearer"}),
    "/computeMetadata/v1/project/project-id": "test-project",
    "/computeMetadata/v1/instance/zone": "projects/123/zones/europe-west1-b",
    "/computeMetadata/v1/instance/id": "4242",
}


def _read(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def metadata_server():
    """The GCE metadata server: 403 without Metadata-Flavor: Google, as the real one."""
    def answer(request, index):
        if request.header("Metadata-Flavor") != "Google":
            return response(403, b"Missing Metadata-Flavor:Google header.")
        if request.path not in METADATA:
            return response(404, b"Not Found", content_type="text/html")
        return response(200, METADATA[request.path], content_type="application/text")
    return Receiver(answer)


class CloudLogging:
    """entries:write: 401 unless the bearer token is one issued, then the test's answers in
    turn, then 200 {}."""

    def __init__(self, tokens, answers=()):
        self.tokens = tokens
        self.answers = list(answers)
        self.receiver = Receiver(self._answer)
        self.requests = self.receiver.requests
        self.port = self.receiver.port

    def _answer(self, request, index):
        if request.header("Authorization") not in ["Bearer " + t for t in self.tokens]:
            return response(401, b'{"error":{"code":401,"status":"UNAUTHENTICATED"}}')
        return self.answers.pop(0) if self.answers else response(200, b"{}")


@pytest.mark.parametrize("name", ["global", "generic_node", "gce_instance_gzip"])
def test_requests_are_the_ones_fluent_bit_sent(name, tmp_path):
    metadata = metadata_server()
    logging = CloudLogging(["ya29.meta"])
    shutil.copy(PARSERS, str(tmp_path / "parsers.conf"))
    for records in ("records.jsonl", "records_labels_key.jsonl"):
        shutil.copy(os.path.join(DATA, records), str(tmp_path / records))
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(_read(name + ".conf").decode().replace("LPORT", str(logging.port))
                    .replace("MPORT", str(metadata.port)))
    child = Child(["-c", str(conf)], cwd=str(tmp_path))
    try:
        wait_for(lambda: logging.requests, timeout=30)
        code, _, err = child.terminate()
    finally:
        child.kill()
        metadata.close()
        logging.receiver.close()
    assert code == 0, err
    assert len(logging.requests) == 1
    got = logging.requests[0]
    head = got.head_raw.replace(b"127.0.0.1:%d" % logging.port, b"127.0.0.1:LPORT")
    if name.endswith("gzip"):
        assert without_length(head) == without_length(_read(name + ".head"))
        assert gzip.decompress(got.body) == _read(name + ".body")
    else:
        assert head == _read(name + ".head")
        assert got.body == _read(name + ".body")
    asked = sorted(r.path for r in metadata.requests)
    assert asked == sorted(p for p in METADATA if name != "generic_node" or "instance/" not in p
                           or p.endswith("/token"))


def _metadata_run(tmp_path, conf_text, records, steps):
    metadata = metadata_server()
    logging = CloudLogging(["ya29.meta"])
    shutil.copy(PARSERS, str(tmp_path / "parsers.conf"))
    for name in records:
        shutil.copy(os.path.join(DATA, name), str(tmp_path / name))
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(conf_text.replace("LPORT", str(logging.port))
                    .replace("MPORT", str(metadata.port)))
    child = Child(["-c", str(conf)], cwd=str(tmp_path))
    try:
        steps(logging)
        code, _, err = child.terminate()
    finally:
        child.kill()
        metadata.close()
        logging.receiver.close()
    assert code == 0, err
    return logging


def test_k8s_resources_take_their_labels_from_the_tag_or_local_resource_id(tmp_path):
    # Fluent Bit's captures: k8s_container from a 'k8s_container.<ns>.<pod>.<container>' tag
    # and from a kubelet log file tag through custom_k8s_regex after tag_prefix; k8s_node
    # from a record's local_resource_id; k8s_pod; stdout/stderr as the log name.
    def steps(logging):
        wait_for(lambda: len(logging.requests) >= 4, timeout=30)

    logging = _metadata_run(tmp_path, _read("k8s.conf").decode(),
                            ("k8s_records.jsonl", "k8s_node_records.jsonl"), steps)
    bodies = sorted(r.body for r in logging.requests)
    assert b"\n".join(bodies) + b"\n" == _read("k8s.bodies")


def test_resource_labels_replace_the_resource_labels_as_fluent_bit_does(tmp_path):
    def steps(logging):
        wait_for(lambda: len(logging.requests) >= 2, timeout=30)

    logging = _metadata_run(tmp_path, _read("resource_labels.conf").decode(),
                            ("resource_labels_records.jsonl",), steps)
    bodies = sorted(r.body for r in logging.requests)
    assert b"\n".join(bodies) + b"\n" == _read("resource_labels.bodies")


def test_operation_source_location_and_http_request_become_entry_fields(tmp_path):
    def steps(logging):
        wait_for(lambda: logging.requests, timeout=30)

    logging = _metadata_run(tmp_path, _read("special_fields.conf").decode(),
                            ("special_fields_records.jsonl",), steps)
    # Fluent Bit writes cacheLookup's value as cacheHit; edgeship the record's cacheHit.
    # (first record: cacheHit true, no cacheLookup; second: cacheLookup true, no cacheHit)
    fluent_bit = _read("special_fields.body")
    expected = fluent_bit.replace(b'"cacheLookup":false,"cacheHit":false',
                                  b'"cacheLookup":false,"cacheHit":true', 1) \
        .replace(b'"cacheLookup":true,"cacheHit":true', b'"cacheLookup":true,"cacheHit":false', 1)
    assert fluent_bit.count(b'"cacheHit":') == 2 and expected.count(b'"cacheHit":true') == 1
    assert logging.requests[0].body == expected


def test_a_monitored_resource_map_gives_the_resource_labels(tmp_path):
    def steps(logging):
        wait_for(lambda: logging.requests, timeout=30)

    (tmp_path / "records.jsonl").write_text(
        '{"log":"a"}\n{"log":"b","logging.googleapis.com/monitored_resource":{"type":"x",'
        '"labels":{"instance_id":"i-1","zone":"z","n":1}}}\n')
    conf = ("[SERVICE]\n    Parsers_File parsers.conf\n[INPUT]\n    Name tail\n"
            "    Path records.jsonl\n    Tag t\n    Parser json_ts\n"
            "    Read_From_Head true\n[OUTPUT]\n    Name stackdriver\n    Match *\n"
            "    resource gce_instance\n    tls off\n"
            "    metadata_server http://127.0.0.1:MPORT\n"
            "    cloud_logging_base_url http://127.0.0.1:LPORT\n")
    logging = _metadata_run(tmp_path, conf, (), steps)
    sent = json.loads(logging.requests[0].body)
    assert sent["resource"] == {"type": "gce_instance",
                                "labels": {"instance_id": "i-1", "zone": "z"}}
    assert [e["jsonPayload"] for e in sent["entries"]] == [{"log": "a"}, {"log": "b"}]


def test_a_k8s_chunk_without_its_labels_is_dropped_and_logged(tmp_path):
    log = tmp_path / "edgeship.log"
    conf = ("[SERVICE]\n    Flush 0.2\n    Log_File %s\n    Parsers_File parsers.conf\n"
            "[INPUT]\n    Name tail\n    Path k8s_records.jsonl\n    Tag app.logs\n"
            "    Read_From_Head true\n[INPUT]\n    Name tail\n    Path k8s_records.jsonl\n"
            "    Tag k8s_pod.ns.pod\n    Read_From_Head true\n"
            "[OUTPUT]\n    Name stackdriver\n    Match *\n    resource k8s_pod\n"
            "    k8s_cluster_name c\n    k8s_cluster_location l\n    tls off\n"
            "    metadata_server http://127.0.0.1:MPORT\n"
            "    cloud_logging_base_url http://127.0.0.1:LPORT\n" % log)

    def steps(logging):
        wait_for(lambda: logging.requests and log.exists() and "dropped" in log.read_text(),
                 timeout=30)

    logging = _metadata_run(tmp_path, conf, ("k8s_records.jsonl",), steps)
    assert len(logging.requests) == 1
    assert b'"namespace_name":"ns","pod_name":"pod"' in logging.requests[0].body
    text = log.read_text()
    assert "cannot extract the k8s_pod resource labels from the tag 'app.logs'" in text
    assert "chunk of 3 records (tag app.logs) dropped" in text


def _conf(tmp_path, logging_port, credentials, extra=""):
    shutil.copy(PARSERS, str(tmp_path / "parsers.conf"))
    shutil.copy(os.path.join(DATA, "records.jsonl"), str(tmp_path / "records.jsonl"))
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(
        "[SERVICE]\n    Flush 0.2\n    Grace 5\n    Log_File %s\n    scheduler.base 1\n"
        "    scheduler.cap 1\n    Parsers_File parsers.conf\n"
        "[INPUT]\n    Name tail\n    Path records.jsonl\n    Tag kube.app\n    Parser json_ts\n"
        "    Read_From_Head true\n    Refresh_Interval 1\n"
        "[OUTPUT]\n    Name stackdriver\n    Match *\n    google_service_credentials %s\n"
        "    export_to_project_id cluster-health-scanner\n"
        "    cloud_logging_base_url http://127.0.0.1:%d\n%s"
        % (tmp_path / "edgeship.log", credentials, logging_port, extra))
    return str(conf)


def _log(tmp_path):
    path = tmp_path / "edgeship.log"
    return path.read_text() if path.exists() else ""


def _run(tmp_path, logging, steps, credentials, extra=""):
    child = Child(["-c", _conf(tmp_path, logging.port, credentials, extra)], cwd=str(tmp_path))
    try:
        steps()
        code, _, err = child.terminate()
    finally:
        child.kill()
        logging.receiver.close()
    assert code == 0, err


@pytest.fixture
def tokens():
    endpoint = TokenEndpoint(SCOPE)
    yield endpoint
    endpoint.close()


@pytest.mark.e2e
def test_the_realconf_service_account_writes_to_its_export_project(tmp_path, tokens):
    # gke-cluster-health-scanner: a key file and export_to_project_id; the resource is
    # global in the key's project, the log names are in the export project.
    logging = CloudLogging(tokens.issued)
    credentials = tokens.credentials(tmp_path / "key.json")

    def steps():
        wait_for(lambda: logging.requests, timeout=30)

    _run(tmp_path, logging, steps, credentials)
    sent = json.loads(logging.requests[0].body)
    assert sent["resource"] == {"type": "global", "labels": {"project_id": PROJECT}}
    names = [entry["logName"] for entry in sent["entries"]]
    assert names[0] == "projects/cluster-health-scanner/logs/kube.app"
    assert names[4] == "projects/other-proj/logs/kube.app"     # the record's projectId key
    assert len(sent["entries"]) == 9 and tokens.issued == ["ya29.test-token-0"]
    assert logging.requests[0].header("User-Agent") == "Fluent-Bit"


@pytest.mark.e2e
def test_a_401_asks_a_new_token_a_5xx_is_retried_and_a_400_is_dropped(tmp_path, tokens):
    logging = CloudLogging(tokens.issued, [
        response(503, b'{"error":{"code":503,"status":"UNAVAILABLE"}}'),
        response(400, b'{"error":{"code":400,"message":"Log entry with size 300K exceeds '
                      b'maximum size","status":"INVALID_ARGUMENT"}}')])
    credentials = tokens.credentials(tmp_path / "key.json")
    revoked = []

    def answer(request, index, inner=logging._answer):
        if not revoked:      # the first token is refused once issued
            revoked.append(request.header("Authorization"))
            return response(401, b'{"error":{"code":401,"status":"UNAUTHENTICATED"}}')
        return inner(request, index)
    logging.receiver.answer = answer

    def steps():
        wait_for(lambda: "dropped" in _log(tmp_path), timeout=40)
        with open(str(tmp_path / "records.jsonl"), "a") as f:
            f.write('{"ts":"2024-01-02T03:05:00.000000000Z","message":"after"}\n')
        wait_for(lambda: len(logging.requests) >= 4, timeout=30)

    _run(tmp_path, logging, steps, credentials, "    Retry_Limit 5\n")
    refused, busy, invalid, after = logging.requests[:4]
    assert revoked == ["Bearer ya29.test-token-0"] and len(tokens.issued) == 2
    assert busy.header("Authorization") == "Bearer ya29.test-token-1"
    assert refused.body == busy.body == invalid.body and b'"after"' in after.body
    log = _log(tmp_path)
    assert "HTTP status=503" in log and "HTTP status=400" in log
    assert "exceeds maximum size" in log and "chunk of 9 records (tag kube.app) dropped" in log


@pytest.mark.e2e
def test_what_fluent_bit_would_drop_is_kept(tmp_path, tokens):
    logging = CloudLogging(tokens.issued)
    credentials = tokens.credentials(tmp_path / "key.json")
    shutil.copy(PARSERS, str(tmp_path / "parsers.conf"))

    def steps():
        wait_for(lambda: logging.requests, timeout=30)

    conf = _conf(tmp_path, logging.port, credentials)
    with open(str(tmp_path / "records.jsonl"), "w") as f:
        f.write('{"ts":"2024-01-02T03:05:00.000000000Z","a":1,'
                '"logging.googleapis.com/insertId":""}\n'
                '{"ts":"2024-01-02T03:05:01.000000000Z","b":2,'
                '"logging.googleapis.com/labels":"not a map"}\n'
                '{"ts":"2024-01-02T03:05:02.000000000Z","c":3,'
                '"timestampSeconds":"99999999999999999","timestampNanos":0}\n')
    child = Child(["-c", conf], cwd=str(tmp_path))
    try:
        steps()
        code, _, err = child.terminate()
    finally:
        child.kill()
        logging.receiver.close()
    assert code == 0, err
    entries = json.loads(logging.requests[0].body)["entries"]
    assert entries[0]["jsonPayload"] == {"a": 1, "logging.googleapis.com/insertId": ""}
    assert "insertId" not in entries[0] and "labels" not in entries[1]
    assert entries[1]["jsonPayload"] == {"b": 2, "logging.googleapis.com/labels": "not a map"}
    # A time past the year 9999 keeps the record's own.
    assert entries[2]["jsonPayload"] == {"c": 3}
    assert entries[2]["timestamp"] == "2024-01-02T03:05:02.000000000Z"
    log = _log(tmp_path)
    assert "1 records have an insertId that is not a non-empty string" in log
    assert "1 records have a logging.googleapis.com/labels that is not a map" in log


def _dry_run(tmp_path, lines, env=None):
    conf = tmp_path / "sd.conf"
    conf.write_text("[INPUT]\n    Name dummy\n[OUTPUT]\n    Name stackdriver\n    Match *\n"
                    + "".join("    %s\n" % line for line in lines))
    clean = {k: v for k, v in os.environ.items() if k not in (
        "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_SERVICE_CREDENTIALS",
        "SERVICE_ACCOUNT_EMAIL", "SERVICE_ACCOUNT_SECRET", "METADATA_SERVER")}
    clean.update(env or {})
    return run_edgeship(["-c", str(conf), "--dry-run"], env=clean), str(conf)


def test_a_missing_key_file_warns_in_dry_run_as_fluent_bit_checks_it_at_start(tmp_path):
    proc, conf = _dry_run(tmp_path, ["google_service_credentials /var/secrets/google/key.json",
                                     "export_to_project_id cluster-health-scanner"])
    assert proc.returncode == 0, proc.stderr
    assert "cannot open credentials file: /var/secrets/google/key.json" in proc.stderr
    proc, conf = _dry_run(tmp_path, [], {"GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent.json",
                                         "GOOGLE_SERVICE_CREDENTIALS": "/other.json"})
    assert proc.returncode == 0 and "/nonexistent.json" in proc.stderr


def test_without_credentials_the_metadata_server_is_used(tmp_path):
    proc, _ = _dry_run(tmp_path, [])
    assert proc.returncode == 0 and proc.stderr == "configuration test is successful\n", \
        proc.stderr


@pytest.mark.parametrize("lines, key, message", [
    (["resource k8s_container", "k8s_cluster_name c"], "k8s_cluster_location",
     "needs 'k8s_cluster_location'"),
    (["resource k8s_pod", "k8s_cluster_name c", "k8s_cluster_location l",
      "custom_k8s_regex (?<pod_name>[a-z"], "custom_k8s_regex", "custom_k8s_regex"),
    (["resource_labels location=$a["], "resource_labels", "resource_labels"),
    (["resource_labels location"], "resource_labels", "invalid key value pair on 'location'"),
    (["resource cloud_run_revision"], "resource", "unsupported resource type"),
    (["resource generic_node", "location l", "namespace n"], "node_id", "needs 'node_id'"),
    (["resource k8s_cluster", "k8s_cluster_name c"], "k8s_cluster_location",
     "needs 'k8s_cluster_location'"),
    (["labels a=b,c"], "labels", "invalid key value pair on 'c'"),
    (["service_account_secret KEY"], "service_account_email", "client_email is not defined"),
    (["metadata_server https://x"], "metadata_server", "metadata_server must be http://"),
    (["cloud_logging_base_url ftp://x"], "cloud_logging_base_url", "must be http(s)://"),
])
def test_what_cannot_work_is_a_config_error(tmp_path, lines, key, message):
    proc, conf = _dry_run(tmp_path, lines)
    assert proc.returncode != 0
    assert message in proc.stderr and "key '%s'" % key in proc.stderr, proc.stderr
