"""kubernetes filter: the record layout Fluent Bit 5.1.1 gives (the keys of ``kubernetes`` in
its order), Merge_Log and its options, annotations, the tag rules, metadata from the preload
cache dir, from an HTTPS API server and a kubelet (a real TLS server in the test answering the
API paths with pod JSON, recording each request), the cache TTL, Buffer_Size, and batches
waiting for their pod without holding up others."""
import asyncio
import hashlib
import http.server
import json
import threading

import pytest

from edgeship.core.errors import ConfigError
from edgeship.engine.ack import Ack
from filter_helpers import T0, capture, captured, emit, load, run_config, section
from mosquitto import Certs

NS = "shop"
POD = "web-7d4b9c8f6d-x2kqz"


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def log_tag(pod=POD, container="nginx", ns=NS, prefix="kube.var.log.containers."):
    return "%s%s_%s_%s-%s.log" % (prefix, pod, ns, container, sha(pod + container))


def pod_object(name=POD, ns=NS, containers=("sidecar", "nginx"), annotations=None,
               labels=None):
    """A Pod as GET /api/v1/namespaces/NS/pods/NAME returns it (fields edgeship reads and
    some it must ignore)."""
    statuses = [{"containerID": "containerd://" + sha(name + c),
                 "image": "docker.io/library/%s:1.25.3" % c,
                 "imageID": "docker.io/library/%s@sha256:%s" % (c, sha("img" + c)),
                 "name": c, "ready": True, "restartCount": 0} for c in containers]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "annotations": annotations if annotations is not None else {"team": "checkout"},
            "labels": labels if labels is not None else {"app": name.split("-")[0]},
            "name": name, "namespace": ns,
            "ownerReferences": [{"kind": "ReplicaSet", "name": name.rsplit("-", 1)[0]}],
            "uid": "uid-" + name},
        "spec": {"containers": [{"name": c} for c in containers], "nodeName": "edge-node-01"},
        "status": {"containerStatuses": statuses, "hostIP": "192.168.1.20",
                   "podIP": "10.42.0.17", "phase": "Running"},
    }


def namespace_object(ns=NS):
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"annotations": {"owner": "team-shop"},
                         "labels": {"env": "prod"}, "name": ns, "uid": "ns-uid"}}


def kubernetes_map(name=POD, container="nginx", labels=True, annotations=True):
    """The ``kubernetes`` map Fluent Bit builds from pod_object(), keys in its order."""
    out = {"pod_name": name, "namespace_name": NS, "pod_id": "uid-" + name}
    if labels:
        out["labels"] = {"app": name.split("-")[0]}
    if annotations:
        out["annotations"] = {"team": "checkout"}
    out.update({"host": "edge-node-01", "pod_ip": "10.42.0.17", "container_name": container,
                "docker_id": sha(name + container),
                "container_hash": "docker.io/library/%s@sha256:%s" % (container,
                                                                       sha("img" + container)),
                "container_image": "docker.io/library/%s:1.25.3" % container})
    return out


def docker_record(log, stream="stdout"):
    return {"log": log, "stream": stream, "time": "2024-05-01T10:00:00.100000000Z"}


def preload(tmp_path, *objects, kubelet=False):
    folder = tmp_path / "meta"
    folder.mkdir(exist_ok=True)
    for obj in objects:
        meta = obj["metadata"]
        if obj["kind"] == "Namespace":
            (folder / ("%s.namespace_meta" % meta["name"])).write_text(json.dumps(obj))
        elif kubelet:
            (folder / ("%s_%s.meta" % (meta["namespace"], meta["name"]))).write_text(
                json.dumps({"kind": "PodList", "items": list(objects)}))
        else:
            (folder / ("%s_%s.meta" % (meta["namespace"], meta["name"]))).write_text(
                json.dumps(obj))
    return str(folder)


def kube(*lines, match="kube.*"):
    return section("kubernetes", *lines, match=match)


def with_preload(tmp_path, *lines, match="kube.*"):
    # Nothing listens on port 1: a pod missing from the folder fails at once.
    return kube("Kube_Meta_Preload_Cache_Dir %s" % (tmp_path / "meta"),
                "Kube_URL http://127.0.0.1:1", *lines, match=match)


def run(engine, batches, count):
    """Emit ``batches`` ([(tag, records)]) on a running loop, wait until ``count`` records
    reached the end; returns the (tag, (time, record)) rows."""
    async def main():
        for tag, records in batches:
            emit(engine, tag, [(T0 + i, r) for i, r in enumerate(records)])
        rows = captured(engine)["*"]
        for _ in range(400):
            if len(rows) >= count:
                break
            await asyncio.sleep(0.025)
        return list(rows)
    return asyncio.run(main())


def records(rows):
    return [record for _, (_, record) in rows]


# ---------------------------------------------------------------------- preload dir, layout
def test_defaults_add_the_kubernetes_map_in_fluent_bits_order(tmp_path):
    preload(tmp_path, pod_object())
    engine = load(tmp_path, with_preload(tmp_path) + capture(tmp_path, "*"))
    got = records(run(engine, [(log_tag(), [docker_record("GET /healthz 200\n")])], 1))
    assert got == [dict(docker_record("GET /healthz 200\n"), kubernetes=kubernetes_map())]
    assert list(got[0]["kubernetes"]) == list(kubernetes_map())


@pytest.mark.parametrize("options,expected", [
    ([], docker_record('{"level":"info","n":42,"user":{"id":"u1"},"msg":"x\\r\\n"}\n')),
    (["Merge_Log On"], dict(docker_record('{"level":"info","n":42,"user":{"id":"u1"},'
                                          '"msg":"x\\r\\n"}\n'),
                            level="info", n=42, user={"id": "u1"}, msg="x\r")),
    (["Merge_Log On", "Merge_Log_Trim Off"],
     dict(docker_record('{"level":"info","n":42,"user":{"id":"u1"},"msg":"x\\r\\n"}\n'),
          level="info", n=42, user={"id": "u1"}, msg="x\r\n")),
    (["Merge_Log On", "Merge_Log_Key app"],
     dict(docker_record('{"level":"info","n":42,"user":{"id":"u1"},"msg":"x\\r\\n"}\n'),
          app={"level": "info", "n": 42, "user": {"id": "u1"}, "msg": "x\r"})),
    (["Merge_Log On", "Keep_Log Off"],
     {"stream": "stdout", "time": "2024-05-01T10:00:00.100000000Z", "level": "info", "n": 42,
      "user": {"id": "u1"}, "msg": "x\r"}),
    (["Keep_Log Off"], docker_record('{"level":"info","n":42,"user":{"id":"u1"},'
                                     '"msg":"x\\r\\n"}\n')),
])
def test_merge_log_options(tmp_path, options, expected):
    preload(tmp_path, pod_object())
    engine = load(tmp_path, with_preload(tmp_path, *options) + capture(tmp_path, "*"))
    line = '{"level":"info","n":42,"user":{"id":"u1"},"msg":"x\\r\\n"}\n'
    got = records(run(engine, [(log_tag(), [docker_record(line)])], 1))
    assert got == [dict(expected, kubernetes=kubernetes_map())]
    assert list(got[0]) == list(expected) + ["kubernetes"]


@pytest.mark.parametrize("text", ["plain text\n", "[1,2,3]\n", "\n", '{"a":1} {"b":2}\n'])
def test_merge_log_needs_exactly_one_json_object(tmp_path, text):
    preload(tmp_path, pod_object())
    engine = load(tmp_path, with_preload(tmp_path, "Merge_Log On", "Keep_Log Off")
                  + capture(tmp_path, "*"))
    got = records(run(engine, [(log_tag(), [docker_record(text)])], 1))
    assert got == [dict(docker_record(text), kubernetes=kubernetes_map())]


def test_merged_keys_the_record_has_take_the_later_place(tmp_path):
    preload(tmp_path, pod_object())
    engine = load(tmp_path, with_preload(tmp_path, "Merge_Log On") + capture(tmp_path, "*"))
    line = '{"time":"app-time","stream":"app","log":"inner"}\n'
    got = records(run(engine, [(log_tag(), [docker_record(line)])], 1))
    # Fluent Bit's record holds both copies; its JSON shows the later one, in its place.
    assert list(got[0].items()) == [("time", "app-time"), ("stream", "app"), ("log", "inner"),
                                    ("kubernetes", kubernetes_map())]


def test_merge_log_of_a_map_and_merge_parser_time(tmp_path):
    parsers = ("[PARSER]\n    Name app_kv\n    Format regex\n"
               "    Regex ^(?<ts>[^ ]+) (?<lvl>[A-Z]+) (?<text>.*)$\n"
               "    Time_Key ts\n    Time_Format %Y-%m-%dT%H:%M:%S%z\n")
    preload(tmp_path, pod_object())
    engine = load(tmp_path, with_preload(tmp_path, "Merge_Log On", "Merge_Parser app_kv")
                  + capture(tmp_path, "*"), parsers=parsers)
    rows = run(engine, [(log_tag(), [docker_record("2024-05-01T12:00:00+0000 INFO in\n"),
                                     docker_record("no match\n"),
                                     {"log": {"k": "v\n"}, "stream": "stdout"}])], 3)
    assert rows[0][1][0] == 1714564800 * 10 ** 9
    assert rows[0][1][1]["lvl"] == "INFO" and rows[0][1][1]["text"] == "in"
    assert rows[1][1] == (T0 + 1, dict(docker_record("no match\n"),
                                       kubernetes=kubernetes_map()))
    assert rows[2][1][1] == {"log": {"k": "v\n"}, "stream": "stdout", "k": "v\n",
                             "kubernetes": kubernetes_map()}


@pytest.mark.parametrize("options,labels,annotations,owners", [
    (["Labels Off"], False, True, False),
    (["Annotations Off"], True, False, False),
    (["Labels Off", "Annotations Off", "Owner_References On"], False, False, True),
])
def test_labels_annotations_owner_references(tmp_path, options, labels, annotations, owners):
    preload(tmp_path, pod_object())
    engine = load(tmp_path, with_preload(tmp_path, *options) + capture(tmp_path, "*"))
    got = records(run(engine, [(log_tag(), [docker_record("x\n")])], 1))[0]["kubernetes"]
    expected = kubernetes_map(labels=labels, annotations=annotations)
    if owners:
        items = list(expected.items())
        items.insert(3, ("ownerReferences", [{"kind": "ReplicaSet",
                                              "name": "web-7d4b9c8f6d"}]))
        expected = dict(items)
    assert list(got.items()) == list(expected.items())


def test_namespace_maps_and_namespace_metadata_only(tmp_path):
    preload(tmp_path, pod_object(), namespace_object())
    engine = load(tmp_path, with_preload(tmp_path, "Namespace_Labels On",
                                         "Namespace_Annotations On") + capture(tmp_path, "*"))
    got = records(run(engine, [(log_tag(), [docker_record("x\n")])], 1))[0]
    assert list(got)[-2:] == ["kubernetes", "kubernetes_namespace"]
    assert got["kubernetes_namespace"] == {"name": NS, "labels": {"env": "prod"},
                                           "annotations": {"owner": "team-shop"}}
    engine = load(tmp_path, with_preload(tmp_path, "Namespace_Labels On",
                                         "Namespace_Metadata_Only On") + capture(tmp_path, "*"))
    got = records(run(engine, [(log_tag(), [docker_record("x\n")])], 1))[0]
    assert got == dict(docker_record("x\n"),
                       kubernetes_namespace={"name": NS, "labels": {"env": "prod"}})


def test_container_missing_from_the_statuses_and_regex_parser_tag(tmp_path):
    preload(tmp_path, pod_object(containers=("nginx",)))
    engine = load(tmp_path, with_preload(tmp_path) + capture(tmp_path, "*"))
    got = records(run(engine, [(log_tag(container="ghost"), [docker_record("x\n")])], 1))
    assert got[0]["kubernetes"] == {
        "pod_name": POD, "namespace_name": NS, "pod_id": "uid-" + POD,
        "labels": {"app": "web"}, "annotations": {"team": "checkout"}, "host": "edge-node-01",
        "pod_ip": "10.42.0.17", "container_name": "ghost", "docker_id": sha(POD + "ghost")}
    # A tag without a docker id: the regex parser's groups, docker_id from the pod status.
    parsers = ("[PARSER]\n    Name app_tag\n    Format regex\n    Regex "
               "^(?<namespace_name>[^.]+)\\.(?<pod_name>[^.]+)\\.(?<container_name>[^.]+)$\n")
    engine = load(tmp_path, with_preload(tmp_path, "Kube_Tag_Prefix app.",
                                         "Regex_Parser app_tag", match="app.*")
                  + capture(tmp_path, "*"), parsers=parsers)
    got = records(run(engine, [("app.%s.%s.nginx" % (NS, POD), [docker_record("x\n")])], 1))
    assert got[0]["kubernetes"] == kubernetes_map(container="nginx")


def test_use_tag_for_meta_dummy_and_kubelet_pod_list(tmp_path):
    engine = load(tmp_path, kube("Use_Tag_For_Meta On") + capture(tmp_path, "*"))
    got = records(run(engine, [(log_tag(), [docker_record("x\n")])], 1))[0]["kubernetes"]
    assert got == {"pod_name": POD, "namespace_name": NS, "container_name": "nginx",
                   "docker_id": sha(POD + "nginx")}
    engine = load(tmp_path, kube("Dummy_Meta On") + capture(tmp_path, "*"))
    assert list(records(run(engine, [(log_tag(), [{"log": "x"}])], 1))[0]["kubernetes"]) == \
        ["dummy"]
    other = pod_object(name="loud-5f6d7c8b9-l0u9d")
    preload(tmp_path, other, pod_object(), kubelet=True)
    engine = load(tmp_path, with_preload(tmp_path, "Use_Kubelet On") + capture(tmp_path, "*"))
    got = records(run(engine, [(log_tag(), [docker_record("x\n")])], 1))[0]["kubernetes"]
    assert got == kubernetes_map()


def test_use_journal_reads_each_records_container_name(tmp_path):
    preload(tmp_path, pod_object(), pod_object(name="loud-5f6d7c8b9-l"))
    engine = load(tmp_path, with_preload(tmp_path, "Use_Journal On", match="journal")
                  + capture(tmp_path, "*"))
    rows = run(engine, [("journal", [
        {"CONTAINER_NAME": "k8s_nginx_%s_%s_uid_0" % (POD, NS), "MESSAGE": "a"},
        {"CONTAINER_NAME": "k8s_app.hash1_loud-5f6d7c8b9-l_%s_uid_0" % NS, "MESSAGE": "b"},
        {"MESSAGE": "no container name"}])], 3)
    got = records(rows)
    assert got[0]["kubernetes"]["pod_name"] == POD
    assert got[0]["kubernetes"]["container_name"] == "nginx"
    assert got[1]["kubernetes"]["pod_name"] == "loud-5f6d7c8b9-l"
    assert got[1]["kubernetes"]["container_hash"] == "hash1"
    assert got[2] == {"MESSAGE": "no container name"}


def test_tag_shorter_than_the_prefix_or_not_matching_leaves_the_batch_untouched(tmp_path):
    preload(tmp_path, pod_object())
    engine = load(tmp_path, with_preload(tmp_path, "Merge_Log On") + capture(tmp_path, "*"))
    batch = [docker_record('{"a":1}\n')]
    rows = run(engine, [("kube.short", batch), ("kube.var.log.containers.other.log", batch)], 2)
    assert records(rows) == [docker_record('{"a":1}\n')] * 2


def test_no_metadata_still_merges(tmp_path):
    preload(tmp_path, pod_object(name="other-5f6d7c8b9-o0o0o"))
    engine = load(tmp_path, with_preload(tmp_path, "Merge_Log On") + capture(tmp_path, "*"))
    got = records(run(engine, [(log_tag(), [docker_record('{"a":1}\n')])], 1))
    assert got == [dict(docker_record('{"a":1}\n'), a=1)]


def tail_prefix(log_dir):
    """tail's tag for LOG_DIR/FILE is kube.<LOG_DIR dotted>.FILE: the prefix of that length
    (only its length counts) leaves the file name to the regex."""
    return "kube.%s." % str(log_dir).strip("/").replace("/", ".")


def tail_config(log_dir, filters):
    return ("[SERVICE]\n    Flush 0.2\n    Grace 2\n    Parsers_File parsers.conf\n"
            "[INPUT]\n    Name tail\n    Path %s/*.log\n    Tag kube.*\n"
            "    Parser docker\n    Read_From_Head on\n    Exit_On_Eof on\n"
            "%s[OUTPUT]\n    Name stdout\n    Match *\n    Format json_lines\n"
            % (log_dir, filters))


# ---------------------------------------------------------------------- annotations
PARSERS = ("[PARSER]\n    Name app_kv\n    Format regex\n"
           "    Regex ^(?<lvl>[A-Z]+) (?<text>.*)$\n")
APP_LINES = [docker_record("INFO out line\n"), docker_record("WARN err line\n", "stderr"),
             docker_record('{"json":"yes"}\n')]


@pytest.mark.parametrize("annotations,options,expected", [
    # generic parser annotation, allowed: lines the parser does not take merge nothing
    ({"fluentbit.io/parser": "app_kv"}, ["K8S-Logging.Parser On"],
     [{"lvl": "INFO", "text": "out line"}, {"lvl": "WARN", "text": "err line"}, {}]),
    # not allowed: ignored, JSON merge as usual
    ({"fluentbit.io/parser": "app_kv"}, [], [{}, {}, {"json": "yes"}]),
    # stderr of container nginx only; stdout falls back to JSON
    ({"fluentbit.io/parser_stderr-nginx": "app_kv", "fluentbit.io/parser-other": "app_kv"},
     ["K8S-Logging.Parser On"], [{}, {"lvl": "WARN", "text": "err line"}, {"json": "yes"}]),
    # unknown parser: ignored
    ({"fluentbit.io/parser": "missing"}, ["K8S-Logging.Parser On"],
     [{}, {}, {"json": "yes"}]),
])
def test_parser_annotation(tmp_path, annotations, options, expected):
    preload(tmp_path, pod_object(annotations=annotations))
    engine = load(tmp_path, with_preload(tmp_path, "Merge_Log On", *options)
                  + capture(tmp_path, "*"), parsers=PARSERS)
    got = records(run(engine, [(log_tag(), APP_LINES)], 3))
    for record, line, merged in zip(got, APP_LINES, expected):
        assert {k: v for k, v in record.items() if k not in line and k != "kubernetes"} \
            == merged


@pytest.mark.parametrize("annotations,options,kept", [
    ({"fluentbit.io/exclude": "true"}, ["K8S-Logging.Exclude On"], []),
    ({"fluentbit.io/exclude": "true"}, [], [0, 1, 2]),
    ({"fluentbit.io/exclude_stderr": "on"}, ["K8S-Logging.Exclude On"], [0, 2]),
    ({"fluentbit.io/exclude": "true", "fluentbit.io/exclude-nginx": "false"},
     ["K8S-Logging.Exclude On"], [0, 1, 2]),
])
def test_exclude_annotation(tmp_path, annotations, options, kept):
    preload(tmp_path, pod_object(annotations=annotations), pod_object(name="loud-5f6d7c8b9-l"))
    engine = load(tmp_path, with_preload(tmp_path, *options) + capture(tmp_path, "*"))
    # A second pod's batch, never excluded, is the positive signal to wait for.
    rows = run(engine, [(log_tag(), APP_LINES),
                        (log_tag(pod="loud-5f6d7c8b9-l"), [docker_record("loud\n")])],
               len(kept) + 1)
    assert [r["log"] for r in records(rows)] == \
        [APP_LINES[i]["log"] for i in kept] + ["loud\n"]


def test_annotation_warnings_through_the_cli(tmp_path):
    preload(tmp_path, pod_object(annotations={"fluentbit.io/parser": "app_kv",
                                              "fluentbit.io/bogus": "x"}))
    log_dir = tmp_path / "var"
    log_dir.mkdir()
    name = log_tag()[len("kube.var.log.containers."):]
    (log_dir / name).write_text(json.dumps(docker_record('{"a":1}\n')) + "\n")
    (tmp_path / "parsers.conf").write_text(PARSERS + "[PARSER]\n    Name docker\n"
                                           "    Format json\n")
    proc = run_config(tmp_path, tail_config(log_dir, with_preload(
        tmp_path, "Merge_Log On", "Kube_Tag_Prefix %s" % tail_prefix(log_dir))))
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout.splitlines()[0])
    assert record["a"] == 1 and record["kubernetes"]["pod_name"] == POD
    assert ("annotation 'fluentbit.io/parser' not allowed (ns='shop' pod_name='%s')" % POD) \
        in proc.stderr
    assert "unknown annotation 'fluentbit.io/bogus'" in proc.stderr


# ---------------------------------------------------------------------- API server, kubelet
class ApiServer:
    """An HTTPS server answering the API paths (and the kubelet's /pods) with the pods and
    namespaces given, 404 otherwise, recording each request's path and headers in order.
    ``hold`` (a pod name) makes that pod's answer wait until ``release`` is set."""

    def __init__(self, folder, pods=(), namespaces=()):
        self.certs = Certs(str(folder))
        self.pods = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}
        self.namespaces = {n["metadata"]["name"]: n for n in namespaces}
        self.requests = []
        self.hold = None
        self.release = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append((self.path, list(self.headers.items())))
                self.send_json(*server.answer(self.path))

            def send_json(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = self.certs.server_context().wrap_socket(self.httpd.socket,
                                                                    server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, path):
        parts = path.strip("/").split("/")
        if parts == ["pods"]:
            return 200, {"kind": "PodList", "items": list(self.pods.values())}
        if len(parts) == 6 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "pods":
            if parts[5] == self.hold:
                self.release.wait(20)
            found = self.pods.get((parts[3], parts[5]))
        elif len(parts) == 4 and parts[:3] == ["api", "v1", "namespaces"]:
            found = self.namespaces.get(parts[3])
        else:
            found = None
        if found is None:
            return 404, {"kind": "Status", "code": 404}
        return 200, found

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def api(tmp_path):
    server = ApiServer(tmp_path / "certs", [pod_object(), pod_object(name="loud-5f6d7c8b9-l")],
                       [namespace_object()])
    (tmp_path / "token").write_text("test-token\n")
    yield server
    server.close()


def with_api(tmp_path, api, *lines):
    """The filter asking ``api``; ``lines`` may replace its CA or token file."""
    given = {line.split()[0].lower() for line in lines}
    base = ["Kube_URL https://127.0.0.1:%d" % api.port, "Kube_CA_File %s" % api.certs.ca,
            "Kube_Token_File %s" % (tmp_path / "token")]
    return kube(*[line for line in base if line.split()[0].lower() not in given] + list(lines))


def test_api_server_requests_and_headers(tmp_path, api):
    engine = load(tmp_path, with_api(tmp_path, api, "Merge_Log On", "Namespace_Labels On")
                  + capture(tmp_path, "*"))
    got = records(run(engine, [(log_tag(), [docker_record('{"a":1}\n')])], 1))
    assert got == [dict(docker_record('{"a":1}\n'), a=1, kubernetes=kubernetes_map(),
                        kubernetes_namespace={"name": NS, "labels": {"env": "prod"}})]
    assert sorted(path for path, _ in api.requests) == ["/api/v1/namespaces/shop",
                                                        "/api/v1/namespaces/shop/pods/" + POD]
    assert api.requests[0][1] == [("Host", "127.0.0.1:%d" % api.port),
                                  ("Content-Length", "0"), ("User-Agent", "Fluent-Bit"),
                                  ("Connection", "close"),
                                  ("Authorization", "Bearer test-token")]


def test_kubelet_pods(tmp_path, api):
    engine = load(tmp_path, with_api(tmp_path, api, "Use_Kubelet On", "Kubelet_Port %d"
                                     % api.port) + capture(tmp_path, "*"))
    got = records(run(engine, [(log_tag(), [docker_record("x\n")])], 1))
    assert got[0]["kubernetes"] == kubernetes_map()
    assert [path for path, _ in api.requests] == ["/pods"]


def test_token_command(tmp_path, api):
    engine = load(tmp_path, with_api(tmp_path, api, "Kube_Token_Command echo cmd-token")
                  + capture(tmp_path, "*"))
    got = records(run(engine, [(log_tag(), [docker_record("x\n")])], 1))
    assert got[0]["kubernetes"] == kubernetes_map()
    assert api.requests[0][1][-1] == ("Authorization", "Bearer cmd-token")


@pytest.mark.parametrize("options,seen", [
    (["Buffer_Size 0"], True),
    (["Buffer_Size 64k"], True),
    (["Buffer_Size 1k"], True),        # raised to the 4096 minimum: a small pod still fits
    ([], False),                       # 32K: the big pod does not fit
])
def test_buffer_size(tmp_path, api, options, seen):
    big = pod_object(annotations={"blob-%02d" % i: "x" * 1000 for i in range(40)})
    api.pods[(NS, POD)] = big
    small = "loud-5f6d7c8b9-l"
    engine = load(tmp_path, with_api(tmp_path, api, "Annotations Off", *options)
                  + capture(tmp_path, "*"))
    big_batch = [(log_tag(), [docker_record("big\n")])]
    if options == ["Buffer_Size 1k"]:
        big_batch = [(log_tag(pod=small), [docker_record("small\n")])]
    got = records(run(engine, big_batch, 1))
    assert ("kubernetes" in got[0]) == seen


def test_failures_give_records_without_metadata(tmp_path, api):
    # 404, a CA that did not sign the server, a missing token (no request at all).
    engine = load(tmp_path, with_api(tmp_path, api, "Merge_Log On") + capture(tmp_path, "*"))
    got = records(run(engine, [(log_tag(pod="gone-5f6d7c8b9-g"), [docker_record('{"a":1}\n')])],
                      1))
    assert got == [dict(docker_record('{"a":1}\n'), a=1)]
    other = Certs(str(tmp_path / "other-ca"))
    engine = load(tmp_path, with_api(tmp_path, api, "Kube_CA_File %s" % other.ca)
                  + capture(tmp_path, "*"))
    assert records(run(engine, [(log_tag(), [docker_record("x\n")])], 1)) == \
        [docker_record("x\n")]
    before = len(api.requests)
    engine = load(tmp_path, with_api(tmp_path, api, "Kube_Token_File %s" % (tmp_path / "none"))
                  + capture(tmp_path, "*"))
    assert records(run(engine, [(log_tag(), [docker_record("x\n")])], 1)) == \
        [docker_record("x\n")]
    assert len(api.requests) == before


def test_cache_ttl(tmp_path, api):
    engine = load(tmp_path, with_api(tmp_path, api) + capture(tmp_path, "*"))
    run(engine, [(log_tag(), [docker_record("1\n")]), (log_tag(), [docker_record("2\n")])], 2)
    run(engine, [(log_tag(), [docker_record("3\n")])], 3)
    assert len(api.requests) == 1       # TTL 0: fetched once
    engine = load(tmp_path, with_api(tmp_path, api, "Kube_Meta_Cache_TTL 0.05")
                  + capture(tmp_path, "*"))

    async def twice():
        emit(engine, log_tag(), [(T0, docker_record("1\n"))])
        rows = captured(engine)["*"]
        while not rows:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)        # longer than the TTL
        del api.pods[(NS, POD)]         # the refetch fails (404): the old entry is used
        emit(engine, log_tag(), [(T0, docker_record("2\n"))])
        while len(rows) < 2:
            await asyncio.sleep(0.02)
        return rows

    rows = asyncio.run(twice())
    assert [r["kubernetes"] for r in records(rows)] == [kubernetes_map()] * 2
    assert len(api.requests) == 3


def test_a_batch_waiting_for_its_pod_holds_neither_the_loop_nor_other_pods(tmp_path, api):
    api.hold = POD
    engine = load(tmp_path, with_api(tmp_path, api) + capture(tmp_path, "*"))

    async def main():
        source = engine.context("test.0")
        source.budget = engine.storage.add_input("test.0")
        rows = captured(engine)["*"]
        ack = Ack(lambda: None)
        source.emit(log_tag(), [(T0, docker_record("web 1\n"))], ack=ack)
        source.emit(log_tag(), [(T0, docker_record("web 2\n"))])
        source.emit(log_tag(pod="loud-5f6d7c8b9-l"), [(T0, docker_record("loud\n"))])
        while not rows:
            await asyncio.sleep(0.02)
        first = [r["log"] for _, (_, r) in rows]
        assert not ack.sealed           # the waiting batch keeps its input's ack open
        api.release.set()
        plugin = engine.filters[0].plugin
        while plugin.fetching:
            await asyncio.sleep(0)
        # Cached now, while the waiting batches may not have gone on yet: this one must still
        # come after them.
        source.emit(log_tag(), [(T0, docker_record("web 3\n"))])
        while len(rows) < 4:
            await asyncio.sleep(0.02)
        assert ack.sealed and ack.pending == 1   # stored, now waits for the output
        return first, [r["log"] for _, (_, r) in rows]

    first, everything = asyncio.run(main())
    assert first == ["loud\n"]
    # The pod's batches come out in their order, once, all from one request.
    assert everything == ["loud\n", "web 1\n", "web 2\n", "web 3\n"]
    assert sorted(p for p, _ in api.requests).count("/api/v1/namespaces/shop/pods/" + POD) == 1


# ---------------------------------------------------------------------- configuration
@pytest.mark.parametrize("lines,words", [
    (["Kube_URL ftp://x"], "Kube_URL must start with http:// or https://"),
    (["Regex_Parser nope"], "invalid parser 'nope'"),
    (["Regex_Parser js"], "invalid parser type 'js'"),
])
def test_config_errors(tmp_path, lines, words):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, kube(*lines), parsers="[PARSER]\n    Name js\n    Format json\n")
    assert words in str(err.value)


@pytest.mark.e2e
def test_cli_preload_records(tmp_path):
    preload(tmp_path, pod_object())
    log_dir = tmp_path / "var"
    log_dir.mkdir()
    (log_dir / log_tag()[len("kube.var.log.containers."):]).write_text(
        json.dumps(docker_record('{"level":"info"}\n')) + "\n")
    (tmp_path / "parsers.conf").write_text("[PARSER]\n    Name docker\n    Format json\n"
                                           "    Time_Key time\n"
                                           "    Time_Format %Y-%m-%dT%H:%M:%S.%L\n"
                                           "    Time_Keep On\n")
    proc = run_config(tmp_path, tail_config(log_dir, with_preload(
        tmp_path, "Merge_Log On", "Kube_Tag_Prefix %s" % tail_prefix(log_dir))))
    assert proc.returncode == 0, proc.stderr
    expected = dict(docker_record('{"level":"info"}\n'), level="info",
                    kubernetes=kubernetes_map())
    assert proc.stdout.splitlines() == [
        json.dumps(dict({"date": 1714557600.1}, **expected), separators=(",", ":"))]
    assert "https=0 host=127.0.0.1 port=1" in proc.stderr
