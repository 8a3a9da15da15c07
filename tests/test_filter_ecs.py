"""ecs filter: a real edgeship process adds Amazon ECS metadata to records tagged with a
container's docker id, read from a loopback stand-in of the ECS agent's introspection
endpoint (``/v1/metadata``, ``/v1/tasks?dockerid=``) answering as AWS documents it: the
keys of every template variable Fluent Bit 5.1.1 knows, cluster_metadata_only, one task
request per container within ecs_meta_cache_ttl and again after it, the retry limit for a
container the agent does not know, records passing unchanged while the agent is down then
getting the metadata, and config errors for a bad ``add``."""
import json
from urllib.parse import parse_qs, urlsplit

from aws_oracle import Endpoints
from conftest import free_port, run_edgeship, wait_for

NGINX_ID = "79c796ed2a7f864f485c76f83f3165488097279d296a7c05bd5201a1c69b2920"
SIDECAR_ID = "3f2a9b1c0d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8"
UNKNOWN_ID = "aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999"
PREFIX = "ecs.var.lib.docker.containers."
TASK_ARN = "arn:aws:ecs:us-west-2:012345678910:task/default/e01d58a8-151b-40e8-bc01-22647b9ecfec"
INSTANCE_ARN = ("arn:aws:ecs:us-west-2:012345678910:container-instance/default/"
                "1f73d099-b914-411c-a9ff-81633b7741dd")
AGENT_VERSION = "Amazon ECS Agent - v1.30.0 (02ff320c)"
# As AWS documents GET /v1/metadata and GET /v1/tasks?dockerid= of the introspection API.
CLUSTER = {"Cluster": "default", "ContainerInstanceArn": INSTANCE_ARN,
           "Version": AGENT_VERSION}
TASK = {
    "Arn": TASK_ARN,
    "Containers": [
        {"DockerId": NGINX_ID, "DockerName": "ecs-nginx-efs-2-nginx-9ac0808dd0afa495f001",
         "Name": "nginx", "CreatedAt": "2019-11-09T13:34:41.123Z", "Type": "NORMAL",
         "Networks": [{"NetworkMode": "bridge", "IPv4Addresses": ["172.17.0.2"]}],
         "Volumes": [{"Source": "/mnt/efs", "Destination": "/usr/share/nginx/html"}]},
        {"DockerId": SIDECAR_ID, "DockerName": "ecs-nginx-efs-2-log-router-c8a9b8d6e5f4",
         "Name": "log-router", "Type": "NORMAL"}],
    "DesiredStatus": "RUNNING", "Family": "nginx-efs", "KnownStatus": "RUNNING",
    "Version": "2"}
# Every template variable Fluent Bit knows, and text around them.
ADD = ("add cluster $ClusterName", "add instance_arn $ContainerInstanceArn",
       "add instance_id $ContainerInstanceID", "add agent $ECSAgentVersion",
       "add task_arn $TaskARN", "add task_id $TaskID", "add family $TaskDefinitionFamily",
       "add revision $TaskDefinitionVersion", "add container_id $ContainerID",
       "add docker_name $DockerContainerName", "add container $ECSContainerName",
       "add resource $ClusterName.$TaskID.$ECSContainerName")


def agent_routes():
    def task(handler):
        short_id = parse_qs(urlsplit(handler.path).query).get("dockerid", [""])[0]
        if len(short_id) >= 12 and any(c["DockerId"].startswith(short_id)
                                       for c in TASK["Containers"]):
            return 200, json.dumps(TASK).encode()
        return 404, b'{"error":"unable to find task for container"}'
    return {("GET", "/v1/metadata"): (200, json.dumps(CLUSTER).encode()),
            ("GET", "/v1/tasks"): task}


def tag_of(docker_id):
    """The tag a ``Tag ecs.*`` tail of /var/lib/docker/containers/*/*.log gives."""
    return "%s%s.%s-json.log" % (PREFIX, docker_id, docker_id)


def config(tmp_path, port, sources, *filter_lines, rate=5):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    inputs = "".join(
        "[INPUT]\n    Name dummy\n    Tag %s\n    Rate %d\n    Dummy {\"log\":\"up\",\"src\":\"%s\"}\n"
        % (tag, rate, src) for src, tag in sources)
    lines = "".join("    %s\n" % line for line in filter_lines)
    (tmp_path / "fluent-bit.conf").write_text(
        "[SERVICE]\n    Flush 0.2\n    Log_File %s\n    Log_Level debug\n%s"
        "[FILTER]\n    Name ecs\n    Match *\n    ecs_meta_port %d\n%s"
        "[OUTPUT]\n    Name file\n    Match *\n    Path %s\n    File app\n    Format plain\n"
        % (tmp_path / "edgeship.log", inputs, port, lines, out))
    return out / "app"


def pairs(items):
    return [list(item) for item in items]


def records(path, src=None):
    """The records written (of one source), each as [[key, value], ...] in its order."""
    if not path.exists():
        return []
    got = [json.loads(line, object_pairs_hook=pairs) for line in
           path.read_text().splitlines() if line.strip()]
    return [r for r in got if src is None or ["src", src] in r]


def log(tmp_path):
    path = tmp_path / "edgeship.log"
    return path.read_text() if path.exists() else ""


def task_requests(agent, docker_id):
    return [path for method, path, _ in agent.requests
            if path == "/v1/tasks?dockerid=%s" % docker_id[:12]]


def start(spawn, tmp_path):
    return spawn(["-c", str(tmp_path / "fluent-bit.conf")])


CLUSTER_VALUES = [["cluster", "default"], ["instance_arn", INSTANCE_ARN],
                  ["instance_id", "1f73d099-b914-411c-a9ff-81633b7741dd"],
                  ["agent", AGENT_VERSION]]


def task_values(docker_id, docker_name, name):
    return CLUSTER_VALUES + [
        ["task_arn", TASK_ARN], ["task_id", "e01d58a8-151b-40e8-bc01-22647b9ecfec"],
        ["family", "nginx-efs"], ["revision", "2"], ["container_id", docker_id],
        ["docker_name", docker_name], ["container", name],
        ["resource", "default.e01d58a8-151b-40e8-bc01-22647b9ecfec.%s" % name]]


def test_every_template_variable_for_tagged_records(spawn, tmp_path):
    agent = Endpoints(agent_routes())
    try:
        out = config(tmp_path, agent.port,
                     (("nginx", tag_of(NGINX_ID)), ("router", tag_of(SIDECAR_ID)),
                      ("daemon", "docker.daemon.events.log")),
                     "ecs_tag_prefix %s" % PREFIX, *ADD)
        start(spawn, tmp_path)
        wait_for(lambda: len(records(out, "nginx")) >= 5 and len(records(out, "router")) >= 5
                 and records(out, "daemon"))
    finally:
        agent.close()
    assert records(out, "nginx")[0] == [["log", "up"], ["src", "nginx"]] + task_values(
        NGINX_ID, "ecs-nginx-efs-2-nginx-9ac0808dd0afa495f001", "nginx")
    assert records(out, "router")[0] == [["log", "up"], ["src", "router"]] + task_values(
        SIDECAR_ID, "ecs-nginx-efs-2-log-router-c8a9b8d6e5f4", "log-router")
    # A tag without the prefix: the cluster metadata, task variables empty, as Fluent Bit.
    assert records(out, "daemon")[0] == [["log", "up"], ["src", "daemon"]] + CLUSTER_VALUES + [
        ["task_arn", ""], ["task_id", ""], ["family", ""], ["revision", ""],
        ["container_id", ""], ["docker_name", ""], ["container", ""],
        ["resource", "default.."]]
    assert "Tag 'docker.daemon.events.log' length check failed" in log(tmp_path)
    # The cluster once; the task once per container at most (one answer caches both), and
    # every later batch from the cache.
    assert [p for _, p, _ in agent.requests].count("/v1/metadata") == 1
    assert len(task_requests(agent, NGINX_ID)) == 1 or len(task_requests(agent, SIDECAR_ID)) == 1
    assert len(task_requests(agent, NGINX_ID)) <= 1 and len(task_requests(agent, SIDECAR_ID)) <= 1
    assert all(headers.get("User-Agent") == "Fluent-Bit" for _, _, headers in agent.requests)


def test_cluster_metadata_only(spawn, tmp_path):
    agent = Endpoints(agent_routes())
    try:
        out = config(tmp_path, agent.port, (("nginx", tag_of(NGINX_ID)),),
                     "cluster_metadata_only on", "add cluster $ClusterName",
                     "add resource $ClusterName.$TaskID.$ECSContainerName", "add tag $TAG")
        start(spawn, tmp_path)
        wait_for(lambda: len(records(out)) >= 3)
    finally:
        agent.close()
    # $TAG adds nothing (Fluent Bit passes the batch without metadata: README).
    assert records(out)[0] == [["log", "up"], ["src", "nginx"], ["cluster", "default"],
                               ["resource", "default.."], ["tag", ""]]
    assert [p for _, p, _ in agent.requests] == ["/v1/metadata"]


def test_task_asked_again_after_the_cache_ttl(spawn, tmp_path):
    agent = Endpoints(agent_routes())
    try:
        out = config(tmp_path, agent.port, (("nginx", tag_of(NGINX_ID)),),
                     "ecs_tag_prefix %s" % PREFIX, "ecs_meta_cache_ttl 1s",
                     "add family $TaskDefinitionFamily")
        start(spawn, tmp_path)
        wait_for(lambda: len(task_requests(agent, NGINX_ID)) >= 2)
        wait_for(lambda: len(records(out)) >= 3)
    finally:
        agent.close()
    assert all(r == [["log", "up"], ["src", "nginx"], ["family", "nginx-efs"]]
               for r in records(out))
    # Requests follow the TTL, not the batches (5 per second).
    assert len(task_requests(agent, NGINX_ID)) < len(records(out))


def test_unknown_container_is_asked_for_agent_endpoint_retries_times(spawn, tmp_path):
    agent = Endpoints(agent_routes())
    unknown = tag_of(UNKNOWN_ID)
    try:
        out = config(tmp_path, agent.port, (("stray", unknown),),
                     "ecs_tag_prefix %s" % PREFIX, "add cluster $ClusterName",
                     "add family $TaskDefinitionFamily", rate=10)
        start(spawn, tmp_path)
        wait_for(lambda: "Failed to get ECS Metadata for tag %s 2 times" % unknown
                 in log(tmp_path))
        seen = len(records(out))
        wait_for(lambda: len(records(out)) >= seen + 5)
    finally:
        agent.close()
    assert all(r == [["log", "up"], ["src", "stray"], ["cluster", "default"],
                     ["family", ""]] for r in records(out))
    assert len(task_requests(agent, UNKNOWN_ID)) == 2
    text = log(tmp_path)
    assert "Failed to get metadata from /v1/tasks?dockerid=aaaabbbbcccc, will retry" in text
    assert "falling back to process cluster metadata only" in text


def test_records_pass_unchanged_while_the_agent_is_down_then_get_it(spawn, tmp_path):
    port = free_port()
    out = config(tmp_path, port, (("nginx", tag_of(NGINX_ID)),),
                 "ecs_tag_prefix %s" % PREFIX, "add family $TaskDefinitionFamily",
                 "add container $ECSContainerName")
    start(spawn, tmp_path)
    wait_for(lambda: len(records(out)) >= 3)
    assert "Could not retrieve cluster metadata from ECS Agent" in log(tmp_path)
    assert records(out)[0] == [["log", "up"], ["src", "nginx"]]
    agent = Endpoints(agent_routes(), port=port)
    try:
        wait_for(lambda: any(["family", "nginx-efs"] in r for r in records(out)))
    finally:
        agent.close()
    got = records(out)
    done = [r for r in got if ["family", "nginx-efs"] in r]
    assert done[0] == [["log", "up"], ["src", "nginx"], ["family", "nginx-efs"],
                       ["container", "nginx"]]
    # Before: every record unchanged, none lost or with part of the metadata.
    assert all(r == [["log", "up"], ["src", "nginx"]] for r in got[:got.index(done[0])])


def test_bad_add_is_refused(tmp_path):
    for line, word in (("add key $ClusterName extra", "Invalid config for add"),
                       ("add key $k[", "Could not parse template for `key`")):
        config(tmp_path, free_port(), (("nginx", tag_of(NGINX_ID)),), line)
        proc = run_edgeship(["-c", str(tmp_path / "fluent-bit.conf")])
        assert proc.returncode != 0
        text = proc.stderr + log(tmp_path)
        assert word in text and "add" in text


def test_malformed_agent_answers_drop_no_record(spawn, tmp_path):
    # A cluster answer without Version: records unchanged; a task answer that is no JSON
    # object: the cluster metadata only.
    routes = agent_routes()
    routes[("GET", "/v1/metadata")] = (200, json.dumps({"Cluster": "default"}).encode())
    agent = Endpoints(routes)
    try:
        out = config(tmp_path, agent.port, (("nginx", tag_of(NGINX_ID)),),
                     "ecs_tag_prefix %s" % PREFIX, "add cluster $ClusterName",
                     "add family $TaskDefinitionFamily")
        start(spawn, tmp_path)
        wait_for(lambda: len(records(out)) >= 3)
        assert all(r == [["log", "up"], ["src", "nginx"]] for r in records(out))
        assert "Could not parse 'ContainerInstanceArn' from /v1/metadata response" \
            in log(tmp_path)
        routes[("GET", "/v1/tasks")] = (200, b'["not", "a task"]')
        routes[("GET", "/v1/metadata")] = (200, json.dumps(CLUSTER).encode())
        wait_for(lambda: any(["cluster", "default"] in r for r in records(out)))
        seen = len(records(out))
        wait_for(lambda: len(records(out)) >= seen + 3)
    finally:
        agent.close()
    got = records(out)
    done = [r for r in got if ["cluster", "default"] in r]
    assert all(r == [["log", "up"], ["src", "nginx"], ["cluster", "default"], ["family", ""]]
               for r in done)
    assert all(r == [["log", "up"], ["src", "nginx"]] for r in got[:got.index(done[0])])
    assert "Could not parse response from /v1/tasks?dockerid=79c796ed2a7f" in log(tmp_path)
