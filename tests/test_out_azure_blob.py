"""azure_blob output: a real edgeship process sends to Azurite, Microsoft's Azure Storage
emulator (tests/azurite.py), through a recording forwarder. The requests are those Fluent
Bit 5.1.1 sent for the same config and records to the same Azurite (tests/data/azure_blob/),
byte for byte but for the date, the signature that depends on it and the random or
clock-made parts of names; the signatures edgeship computes for Fluent Bit's recorded
requests (their date, their names) are Fluent Bit's, byte for byte; Azurite, which checks
Shared Key signatures and SAS tokens, stores what was sent, read back over its REST API.
Azurite down then up: nothing lost. Config errors."""
import base64
import gzip
import os
import re
import shutil
import time
from urllib.parse import unquote

import cramjam
import pytest

from azurite import KEY, Azurite, Recorder
from conftest import Child, run_edgeship, wait_for

from edgeship.net import azure
from edgeship.plugins.outputs.azure_blob import resolve_path

DATA = os.path.join(os.path.dirname(__file__), "data", "azure_blob")
RECORDS = os.path.join(os.path.dirname(__file__), "data", "nrlogs")


def _read(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def _requests(data):
    """[(head, body)] of requests written one after another."""
    out = []
    while data:
        head, data = data.split(b"\r\n\r\n", 1)
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        out.append((head + b"\r\n\r\n", data[:length]))
        data = data[length:]
    return out


def _headers(head):
    lines = head.decode("latin-1").split("\r\n")
    method, uri, _ = lines[0].split(" ")
    return method, uri, [tuple(line.split(": ", 1)) for line in lines[1:] if line]


# ------------------------------------------------------------------ signatures

@pytest.mark.parametrize("name", ["append", "block", "gzip", "blockgz", "blockzstd"])
def test_the_signatures_of_fluent_bits_requests_are_reproduced(name):
    # Each recorded request, signed again here with its own date: edgeship's string to sign
    # is Fluent Bit's, so the Authorization is the same bytes.
    key = azure.decode_shared_key(KEY)
    for head, body in _requests(_read(name + ".http")):
        method, uri, headers = _headers(head)
        sent = dict(headers)
        length = len(body) if method == "PUT" and body else None
        text = azure.blob_string_to_sign(method, "devstoreaccount1", uri, headers, length,
                                         sent.get("Content-Type", ""),
                                         sent.get("Content-Encoding", ""))
        assert sent["Authorization"] == "SharedKey devstoreaccount1:" + azure.signature(
            key, text), (uri, text)


def test_blob_string_to_sign_is_azures():
    headers = [("User-Agent", "Fluent-Bit"), ("x-ms-blob-type", "AppendBlob"),
               ("x-ms-date", "Tue, 24 Nov 2026 19:43:13 GMT"), ("x-ms-version", "2019-12-12")]
    assert azure.blob_string_to_sign(
        "PUT", "acct", "/c/a.b?blockid=Zm9v%3D&comp=block", headers, 10, "application/json",
        "gzip") == ("PUT\ngzip\n\n10\n\napplication/json\n\n\n\n\n\n\n"
                    "x-ms-blob-type:AppendBlob\nx-ms-date:Tue, 24 Nov 2026 19:43:13 GMT\n"
                    "x-ms-version:2019-12-12\n/acct/c/a.b\nblockid:Zm9v=\ncomp:block")


# ------------------------------------------------------------------ the requests, on Azurite

_MASKS = [
    (rb"x-ms-date: [^\r]*", b"x-ms-date: DATE"),
    (rb"(SharedKey devstoreaccount1:)[A-Za-z0-9+/=]{44}", rb"\1SIGNATURE"),
    (rb"\.[A-Za-z0-9]{64}\.\d{13}", b".RANDOM.MS"),
    (rb"blockid=[A-Za-z0-9%]+", b"blockid=ID"),
    (rb"/\d{4}/[A-Za-z0-9]{8}/\d{3}-\d{9}/", b"/YEAR/UUID/MS-NS/"),
    (rb"<Latest>[^<]*</Latest>", b"<Latest>ID</Latest>"),
]


def _masked(data, port, compressed):
    data = data.replace(b"127.0.0.1:%d" % port, b"127.0.0.1:PORT")
    for pattern, replacement in _MASKS:
        data = re.sub(pattern, replacement, data)
    if compressed:
        data = re.sub(rb"Content-Length: \d+", b"Content-Length: N", data)
    return data


def _plain(request_body, head):
    """A body as text: gzip and zstd (Fluent Bit's compressed bytes are other than
    edgeship's) decompressed."""
    if b"Content-Encoding: gzip" in head or b"Content-Type: application/gzip" in head:
        return gzip.decompress(request_body)
    if b"Content-Type: application/zstd" in head:
        return bytes(cramjam.zstd.decompress(request_body))
    return request_body


class Setup:
    """Azurite, the recorder in front of it and a work dir with the records."""

    def __init__(self, tmp_path, azurite_port=None):
        self.tmp_path = tmp_path
        self.azurite = Azurite(tmp_path / "azurite", azurite_port)
        self.recorder = None
        for name in ("parsers.conf", "records.jsonl"):
            shutil.copy(os.path.join(RECORDS, name), str(tmp_path / name))

    def conf(self, text, port):
        text = text.replace("PORT", str(port)).replace(
            "Log_Level    debug", "Log_Level    info\n    Log_File     %s"
            % (self.tmp_path / "edgeship.log"))
        path = self.tmp_path / "fluent-bit.conf"
        path.write_text(text)
        return str(path)

    def log(self):
        path = self.tmp_path / "edgeship.log"
        return path.read_text() if path.exists() else ""

    def close(self):
        if self.recorder is not None:
            self.recorder.close()
        self.azurite.kill()


@pytest.fixture
def setup(tmp_path):
    made = Setup(tmp_path)
    yield made
    made.close()


# (recorded name, Azurite's answers to Fluent Bit, to edgeship)
CASES = [
    ("append", [404, 201, 404, 201, 201], None),
    ("block", [404, 201, 201, 201], None),
    ("gzip", [404, 201, 404, 201, 201], None),
    ("blockgz", [404, 201, 201, 201], None),
    ("blockzstd", [404, 201, 201, 201], None),
    # Fluent Bit's append after creating the blob goes out with &sig= cut off (403), the
    # chunk retried; edgeship's keeps the token.
    ("sas", [404, 201, 404, 201, 403, 200, 201], [404, 201, 404, 201, 201]),
]


@pytest.mark.e2e
@pytest.mark.parametrize("name, fluent_bit, ours", CASES)
def test_requests_are_the_ones_fluent_bit_sent_and_azurite_stores_them(setup, name,
                                                                        fluent_bit, ours):
    ours = ours or fluent_bit
    setup.azurite.start()
    setup.recorder = recorder = Recorder(setup.azurite.port)
    child = Child(["-c", setup.conf(_read(name + ".conf").decode(), recorder.port)],
                  cwd=str(setup.tmp_path))
    try:
        wait_for(lambda: len(recorder.statuses) >= len(ours), timeout=30)
        code, _, err = child.terminate()
    finally:
        child.kill()
    assert code == 0, err
    assert recorder.statuses == ours, setup.log()
    recorded = _requests(_read(name + ".http"))
    if ours != fluent_bit:   # the requests Fluent Bit got right
        recorded = recorded[:4] + recorded[-1:]
    sent = [(r.head_raw, r.body) for r in recorder.requests]
    compressed = name in ("gzip", "blockgz", "blockzstd")
    assert [_masked(h, recorder.port, compressed) for h, _ in sent] == \
        [_masked(h, recorder.port, compressed) for h, _ in recorded]
    assert [_masked(_plain(b, h), 0, False) for h, b in sent] == \
        [_masked(_plain(b, h), 0, False) for h, b in recorded]
    # What Azurite stores is the body Fluent Bit sent (gzip: its text, ours compressed).
    stored = setup.azurite.blobs("logs")
    assert len(stored) == 1
    body = setup.azurite.blob("logs", stored[0])
    head, expected = [(h, b) for h, b in recorded if b"comp=appendblock" in h
                      or b"comp=block " in h][-1]
    assert _plain(body, head) == _plain(expected, head)
    assert "error" not in setup.log() or ours != fluent_bit


@pytest.mark.e2e
def test_block_names_and_ids_follow_the_clock_of_the_flush(setup):
    setup.azurite.start()
    setup.recorder = recorder = Recorder(setup.azurite.port)
    child = Child(["-c", setup.conf(_read("block.conf").decode(), recorder.port)],
                  cwd=str(setup.tmp_path))
    try:
        wait_for(lambda: len(recorder.statuses) >= 4, timeout=30)
    finally:
        child.kill()
    put = recorder.requests[2].path
    found = re.match(r"/devstoreaccount1/logs/logs/logs/(\d{4})/[A-Za-z0-9]{8}/(\d{3})-(\d{9})"
                     r"/app\.logs/app\.logs\.[A-Za-z0-9]{64}\.(\d{13})\?blockid=([^&]+)"
                     r"&comp=block$", put)
    assert found, put
    year, ms, ns, stamp, block_id = found.groups()
    text = base64.b64decode(unquote(block_id)).decode()
    seconds = re.fullmatch(r"flb-(\d+\.\d{4})\.id", text)
    # The same instant: seconds rounded to 4 decimals, the stamp cut to milliseconds.
    assert seconds and -0.00005 <= float(seconds.group(1)) - int(stamp) / 1000.0 < 0.00105
    assert ns[:3] == ms == stamp[10:13]
    assert int(year) == time.gmtime(int(stamp) // 1000).tm_year


@pytest.mark.e2e
def test_auto_create_container_off_sends_no_container_requests(setup):
    setup.azurite.start()
    assert setup.azurite.create_container("logs") == 201
    setup.recorder = recorder = Recorder(setup.azurite.port)
    conf = _read("append.conf").decode() + "    auto_create_container off\n"
    child = Child(["-c", setup.conf(conf, recorder.port)], cwd=str(setup.tmp_path))
    try:
        wait_for(lambda: len(recorder.statuses) >= 3, timeout=30)
    finally:
        child.kill()
    assert [r.path for r in recorder.requests] == [
        "/devstoreaccount1/logs/app.logs?comp=appendblock", "/devstoreaccount1/logs/app.logs",
        "/devstoreaccount1/logs/app.logs?comp=appendblock"]
    assert recorder.statuses == [404, 201, 201]


@pytest.mark.e2e
def test_azurite_down_then_up_loses_nothing(setup):
    # Pointed straight at Azurite's port while nothing listens there: every flush fails and
    # is retried; once Azurite is up the container and the blob are made and every record
    # lands once.
    port = setup.azurite.port
    conf = (_read("append.conf").decode()
            .replace("Flush        1", "Flush        0.2\n    scheduler.base 1\n"
                                         "    scheduler.cap 1")
            + "    Retry_Limit no_limits\n")
    child = Child(["-c", setup.conf(conf, port)], cwd=str(setup.tmp_path))
    try:
        wait_for(lambda: setup.log().count("could not reach") >= 2, timeout=30)
        setup.azurite.start()
        wait_for(lambda: (setup.azurite.blob("logs", "app.logs") or b"").count(b"\n") >= 6,
                 timeout=30)
        with open(str(setup.tmp_path / "records.jsonl"), "a") as f:
            f.write('{"ts":"2024-01-02T03:05:00.000000000Z","log":"later"}\n')
        wait_for(lambda: b"later" in (setup.azurite.blob("logs", "app.logs") or b""),
                 timeout=30)
        code, _, err = child.terminate()
    finally:
        child.kill()
    assert code == 0, err
    lines = setup.azurite.blob("logs", "app.logs").splitlines()
    expected = _requests(_read("append.http"))[-1][1].splitlines()
    assert lines[:6] == expected and len(lines) == 7 and b'"log":"later"' in lines[6]
    log = setup.log()
    assert "will be retried" in log and "dropped" not in log


@pytest.mark.e2e
def test_a_wrong_key_is_refused_retried_then_dropped(setup):
    setup.azurite.start()
    setup.recorder = recorder = Recorder(setup.azurite.port)
    conf = _read("append.conf").decode().replace(
        KEY, "c2VjcmV0LWtleS1mb3ItdGVzdHM=") + "    Retry_Limit 1\n"
    child = Child(["-c", setup.conf(conf, recorder.port)], cwd=str(setup.tmp_path))
    try:
        wait_for(lambda: "dropped" in setup.log(), timeout=30)
        code, _, err = child.terminate()
    finally:
        child.kill()
    assert code == 0, err
    assert recorder.statuses == [403, 403]
    log = setup.log()
    assert log.count("access denied: HTTP 403 AuthorizationFailure") == 2, log


@pytest.mark.e2e
def test_a_sas_block_blob_compressed_round_trips(setup):
    setup.azurite.start()
    token = setup.azurite.sas("logs")
    conf = (_read("sas.conf").decode().split("    auth_type")[0]
            + "    auth_type sas\n    sas_token %s\n    blob_type blockblob\n"
              "    compress_blob on\n    path $TAG[0]/x\n" % token)
    child = Child(["-c", setup.conf(conf, setup.azurite.port)], cwd=str(setup.tmp_path))
    try:
        stored = wait_for(lambda: setup.azurite.blobs("logs"), timeout=30)
        code, _, err = child.terminate()
    finally:
        child.kill()
    assert code == 0, err
    assert re.fullmatch(r"app/x/app\.logs\.[A-Za-z0-9]{64}\.\d{13}\.gz", stored[0])
    text = gzip.decompress(setup.azurite.blob("logs", stored[0]))
    assert text == _requests(_read("append.http"))[-1][1]


# ------------------------------------------------------------------ path and config

@pytest.mark.parametrize("template, expected", [
    ("logs/$TAG[1]/%Y/%m/$TAG/", "logs/logs/2024/01/app.logs"),
    ("/a//$TAG[5]/", "a"),
    ("%3N-%3N.%9N.%L", "123-%3N.123456789.123456789"),
    ("$TAG[0]", "app"),
])
def test_path_is_resolved_as_fluent_bit_resolves_it(template, expected):
    now_ns = 1704164645 * 1000000000 + 123456789      # 2024-01-02T03:04:05.123456789Z
    assert resolve_path(template, "app.logs", now_ns) == expected


def test_uuid_is_the_same_random_word_each_time_it_appears():
    path = resolve_path("$UUID/$UUID", "t", 0)
    first, second = path.split("/")
    assert first == second and re.fullmatch(r"[A-Za-z0-9]{8}", first)


def _conf(tmp_path, lines):
    conf = tmp_path / "az.conf"
    conf.write_text("[INPUT]\n    Name dummy\n\n[OUTPUT]\n    Name azure_blob\n    Match *\n"
                    + "".join("    %s\n" % line for line in lines))
    return str(conf)


BASE = ["account_name a", "container_name c"]


@pytest.mark.parametrize("lines, key, message", [
    (["container_name c", "shared_key " + KEY], "account_name", "'account_name' has not"),
    (["account_name a", "shared_key " + KEY], "container_name", "'container_name' has not"),
    (BASE, "shared_key", "'shared_key' has not been set"),
    (BASE + ["auth_type sas"], "sas_token", "'sas_token' has not been set"),
    (BASE + ["auth_type oauth", "shared_key " + KEY], "auth_type", "invalid auth_type"),
    (BASE + ["shared_key " + KEY, "blob_type pageblob"], "blob_type", "invalid blob_type"),
    (BASE + ["shared_key " + KEY, "compress lz4"], "compress", "invalid compress value"),
    (BASE + ["shared_key " + KEY, "compress_blob on"], "compress_blob", "not compatible"),
    (BASE + ["shared_key " + KEY, "buffering_enabled on"], "buffering_enabled",
     "not supported with 'appendblob'"),
    (BASE + ["shared_key " + KEY, "endpoint 127.0.0.1:10000"], "endpoint",
     "invalid endpoint"),
    (BASE + ["shared_key " + KEY, "path $TAG/$kubernetes['ns']"], "path",
     "names a record key"),
    (BASE + ["shared_key " + KEY, "configuration_endpoint_url http://x/y"],
     "configuration_endpoint_url", "not available in edgeship"),
])
def test_what_fluent_bit_refuses_is_a_config_error(tmp_path, lines, key, message):
    conf = _conf(tmp_path, lines)
    proc = run_edgeship(["-c", conf, "--dry-run"])
    assert proc.returncode != 0
    assert message in proc.stderr and "key '%s'" % key in proc.stderr, proc.stderr


def test_a_buffered_block_blob_config_is_accepted(tmp_path):
    conf = _conf(tmp_path, BASE + ["shared_key " + KEY, "blob_type BlockBlob",
                                   "buffering_enabled on", "buffer_dir /tmp/x",
                                   "upload_timeout 10m", "upload_file_size 50M"])
    proc = run_edgeship(["-c", conf, "--dry-run"])
    assert proc.returncode == 0, proc.stderr
