"""ecs filter: add Amazon ECS metadata to records, read from the ECS agent's introspection
endpoint (filter_ecs).

Behaviour of Fluent Bit 5.1.1 kept:
- ``add KEY TEMPLATE`` (repeatable, no default: without one records pass unchanged) appends
  KEY after the record's own keys, its value TEMPLATE rendered as a record accessor template
  against the metadata of the record's container: ``$ClusterName``,
  ``$ContainerInstanceArn``, ``$ContainerInstanceID``, ``$ECSAgentVersion`` (cluster), and
  ``$TaskARN``, ``$TaskID``, ``$TaskDefinitionFamily``, ``$TaskDefinitionVersion``,
  ``$ContainerID`` (the full docker id), ``$DockerContainerName``, ``$ECSContainerName``
  (task). Text around them is kept (``$ClusterName.$TaskID``); a name without metadata adds
  nothing. ``add KEY`` alone renders KEY as its own template; more than two words, or a
  template that does not parse, is a config error.
- The cluster metadata is ``GET /v1/metadata`` (``Cluster``, ``ContainerInstanceArn``,
  ``Version``; the instance id is what follows the ARN's last '/'), asked for once; until it
  is known records pass unchanged ("Could not retrieve cluster metadata from ECS Agent").
- The container is the 12 characters after ``ecs_tag_prefix`` in the tag (FireLens and
  ``Tag ecs.*`` tail setups put the docker id there); its task is
  ``GET /v1/tasks?dockerid=ID`` (``Arn``, ``Family``, ``Version``, ``Containers`` with
  ``DockerId``, ``DockerName``, ``Name``), and every container of the task is cached by its
  short id for ``ecs_meta_cache_ttl`` seconds from the fetch. Requests carry
  ``User-Agent: Fluent-Bit``.
- A tag whose container gets no task metadata (tag too short or not prefixed, agent error,
  unknown container) gets the cluster metadata only, and counts a failure; once a tag has
  ``agent_endpoint_retries`` failures it is not asked for again (cluster metadata only)
  until ``ecs_meta_cache_ttl`` has passed. ``cluster_metadata_only`` never asks for tasks.
- Log lines are Fluent Bit's (warnings on agent answers, info on the fallback).

Differences (README "Where edgeship differs"):
- Fluent Bit makes every request blocking, bounded only by its network timeouts. Here none
  blocks the loop and each is bounded (5 s): the first batches wait for the first cluster
  request as Fluent Bit's start-up does, later cluster requests run while records pass
  unchanged (counted as records_without_metadata); a batch whose container is not cached
  waits for its task request, and batches of a container wait for the same one request.
- A record key with the name of an added key is replaced (Fluent Bit appends a second key of
  the same name).
- ``$TAG`` in a template adds nothing (Fluent Bit passes the whole batch without metadata).
- The ``${aws.ecs.*}`` environment entries Fluent Bit sets from the cluster metadata are not
  set.
"""
import asyncio
import time

from edgeship.codecs import formats, untrusted
from edgeship.core import events as ev
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option, Schema
from edgeship.engine.plugin import Filter
from edgeship.net.http_client import (HTTP_CLIENT_OPTIONS, HttpClient, HttpError,
                                      address_options)

CLUSTER_PATH = "/v1/metadata"
TASK_PATH = "/v1/tasks?dockerid=%s"
SHORT_ID = 12
# The agent is local: an answer that takes longer is not coming, and batches wait for it.
AGENT_TIMEOUT = 5.0
HEADERS = [("User-Agent", "Fluent-Bit")]


class _Failed(Exception):
    """A request or its answer failed; the message is logged at ``level``."""

    def __init__(self, message, level="warn"):
        Exception.__init__(self, message)
        self.level = level


def _strings(document, names, where):
    """The string values of ``names`` in ``document``, in that order."""
    values = []
    for name in names:
        value = document.get(name)
        if value is None:
            raise _Failed("Could not parse '%s' from %s response" % (name, where), "error")
        if not isinstance(value, str):
            raise _Failed("metadata parsing: unexpected '%s' value type=%s"
                          % (name, type(value).__name__), "error")
        values.append(value)
    return values


def _id_from_arn(arn):
    """What follows the ARN's last '/' (at least 2 characters), as Fluent Bit takes it."""
    slash = arn.rfind("/")
    if slash <= 0 or slash >= len(arn) - 2:
        raise _Failed("metadata parsing: failed to get ID from %s" % arn, "error")
    return arn[slash + 1:]


class EcsFilter(Filter):
    name = "ecs"
    description = "Add AWS ECS Metadata"
    options = (
        Option("add", multiple=True,
               help="'KEY TEMPLATE': add KEY, TEMPLATE rendered from the ECS metadata "
                    "($ClusterName, $TaskID, $TaskDefinitionFamily...)"),
        Option("ecs_tag_prefix", default="",
               help="tag text before the 12-character container short id"),
        Option("cluster_metadata_only", "bool", "false",
               help="add the cluster metadata only, never ask for tasks"),
        Option("ecs_meta_cache_ttl", "time", "3600",
               help="seconds a task's metadata (and a tag's failures) are kept"),
        Option("ecs_meta_host", default="127.0.0.1",
               help="host of the ECS agent introspection endpoint"),
        Option("ecs_meta_port", "int", "51678", min=1, max=65535,
               help="port of the ECS agent introspection endpoint"),
        Option("agent_endpoint_retries", "int", "2",
               help="failed task requests for a tag before it gets cluster metadata only"),
    )

    def configure(self):
        conf = self.conf
        self.templates = []                 # [(record key, Template)] in config order
        for key, value, entry in conf.ordered:
            if key == "add":
                self.templates.append(self._add(value, entry))
        self.prefix = conf["ecs_tag_prefix"]
        self.cluster_only = conf["cluster_metadata_only"]
        self.ttl = conf["ecs_meta_cache_ttl"]
        self.retries = conf["agent_endpoint_retries"]
        client_conf = Schema("ecs", address_options(conf["ecs_meta_port"])
                             + HTTP_CLIENT_OPTIONS).build([])
        client_conf.update({"host": conf["ecs_meta_host"], "port": conf["ecs_meta_port"],
                            "net.connect_timeout": AGENT_TIMEOUT,
                            "net.io_timeout": AGENT_TIMEOUT})
        self.client = HttpClient(client_conf)
        self.cluster = None         # cluster metadata {name: value} once fetched
        self.cluster_added = None   # [(record key, value)] from the cluster metadata alone
        self.cluster_task = None    # the cluster request in flight
        self.cluster_tries = 0
        self.containers = {}        # short id -> (monotonic fetch time, [(key, value)])
        self.lookups = {}           # short id -> its task request in flight
        self.failed_tags = {}       # tag -> [failures, monotonic time of the last]

    def _add(self, value, entry):
        words = [word for word in value.split(" ") if word]
        if not words or len(words) > 2:
            raise ConfigError("ecs: Invalid config for add: 'KEY TEMPLATE' expected, got "
                              "'%s'" % value, entry.file, entry.line, entry.key)
        try:
            return words[0], formats.record_template(words[-1])
        except ValueError as exc:
            raise ConfigError("ecs: Could not parse template for `%s`: %s" % (words[0], exc),
                              entry.file, entry.line, entry.key)

    # ------------------------------------------------------------------ the batch
    def filter(self, tag, events):
        if self.cluster is None:
            if self.cluster_task is None:
                self.cluster_task = asyncio.ensure_future(self._fetch_cluster())
            if self.cluster_tries == 0:
                # The first request: Fluent Bit has it done before any record comes.
                return asyncio.ensure_future(self._after_cluster(tag, events))
            self.context.count("records_without_metadata", len(events))
            return events
        return self._with_container(tag, events)

    async def _after_cluster(self, tag, events):
        await asyncio.wait([self.cluster_task])
        if self.cluster is None:
            self.context.count("records_without_metadata", len(events))
            return events
        result = self._with_container(tag, events)
        if isinstance(result, asyncio.Future):
            result = await result
        return result

    def _with_container(self, tag, events):
        if self.cluster_only or self._given_up(tag):
            return ev.append_keys(events, self.cluster_added)
        short_id = self._short_id(tag)
        if short_id is None:
            self._fall_back(tag)
            return ev.append_keys(events, self.cluster_added)
        added = self._cached(short_id)
        if added is not None:
            return ev.append_keys(events, added)
        lookup = self.lookups.get(short_id)
        if lookup is None:
            lookup = asyncio.ensure_future(self._fetch_task(tag, short_id))
            self.lookups[short_id] = lookup
        return asyncio.ensure_future(self._after_lookup(short_id, lookup, events))

    async def _after_lookup(self, short_id, lookup, events):
        await asyncio.wait([lookup])
        added = None if lookup.cancelled() else lookup.result()
        return ev.append_keys(events, self.cluster_added if added is None else added)

    def _short_id(self, tag):
        if len(self.prefix) + SHORT_ID > len(tag):
            self.log.warn("Tag '%s' length check failed: tag is expected to be or be "
                          "prefixed with '{ecs_tag_prefix}{12 character container short "
                          "ID}'", tag)
            return None
        if not tag.startswith(self.prefix):
            self.log.warn("Tag '%s' is not prefixed with ecs_tag_prefix '%s'",
                          tag, self.prefix)
            return None
        return tag[len(self.prefix):len(self.prefix) + SHORT_ID]

    def _cached(self, short_id):
        entry = self.containers.get(short_id)
        if entry is None:
            return None
        if time.monotonic() - entry[0] > self.ttl:
            del self.containers[short_id]
            return None
        return entry[1]

    def _given_up(self, tag):
        failed = self.failed_tags.get(tag)
        if failed is None:
            return False
        if time.monotonic() - failed[1] > self.ttl:
            del self.failed_tags[tag]
            return False
        return failed[0] >= self.retries

    def _fall_back(self, tag):
        self.log.info("Failed to get ECS Task metadata for %s, falling back to process "
                      "cluster metadata only. If this is intentional, set "
                      "`Cluster_Metadata_Only On`", tag)
        now = time.monotonic()
        for old in [t for t, (_, at) in self.failed_tags.items() if now - at > self.ttl]:
            del self.failed_tags[old]
        failed = self.failed_tags.setdefault(tag, [0, now])
        failed[0] += 1
        failed[1] = now
        if failed[0] > 1:
            self.log.info("Failed to get ECS Metadata for tag %s %d times. This might be "
                          "because the logs for this tag do not come from an ECS Task "
                          "Container. This plugin will retry metadata requests at most %d "
                          "times total for this tag.", tag, failed[0], self.retries)

    def stop(self):
        for task in [self.cluster_task] + list(self.lookups.values()):
            if task is not None:
                task.cancel()
        self.client.close()

    # ------------------------------------------------------------------ the agent
    async def _get(self, path):
        try:
            response = await self.client.request("GET", path, HEADERS, b"")
        except HttpError as exc:
            raise _Failed("ECS agent introspection endpoint connection error (%s): %s"
                          % (self.client.label, exc), "error")
        if response.status != 200:
            if response.body:
                raise _Failed("Failed to get metadata from %s, will retry" % path)
            raise _Failed("%s response status was %d with no payload, will retry"
                          % (path, response.status))
        document = untrusted.loads_object(response.body)
        if document is None:
            raise _Failed("Could not parse response from %s; response=\n%s"
                          % (path, response.body[:1024].decode("utf-8", "replace")))
        return document

    def _log_failure(self, exc):
        getattr(self.log, exc.level)("%s", exc)

    async def _fetch_cluster(self):
        try:
            document = await self._get(CLUSTER_PATH)
            name, arn, version = _strings(
                document, ("Cluster", "ContainerInstanceArn", "Version"), CLUSTER_PATH)
            self.cluster = {"ClusterName": name, "ContainerInstanceArn": arn,
                            "ContainerInstanceID": _id_from_arn(arn),
                            "ECSAgentVersion": version}
            self.cluster_added = self._render(self.cluster)
            if self.cluster_tries:
                self.log.info("ECS cluster metadata fetched")
        except _Failed as exc:
            self._log_failure(exc)
            self.log.warn("Could not retrieve cluster metadata from ECS Agent")
        except Exception as exc:  # a bug must not leave the first batches waiting
            self.log.error("ECS cluster metadata request failed: %r", exc)
        finally:
            self.cluster_tries += 1
            self.cluster_task = None

    async def _fetch_task(self, tag, short_id):
        """The added pairs of the container, None when its task gave none."""
        path = TASK_PATH % short_id
        added = None
        try:
            document = await self._get(path)
            arn, family, version = _strings(document, ("Arn", "Family", "Version"), path)
            containers = document.get("Containers")
            if not isinstance(containers, list):
                raise _Failed("Could not parse 'Containers' from %s response" % path, "error")
            task = {"TaskDefinitionFamily": family, "TaskARN": arn,
                    "TaskID": _id_from_arn(arn), "TaskDefinitionVersion": version}
            added = self._store(containers, task).get(short_id)
        except _Failed as exc:
            self._log_failure(exc)
        except Exception as exc:  # a bug must not leave the batches waiting
            self.log.error("ECS task metadata request failed: %r", exc)
        finally:
            self.lookups.pop(short_id, None)
        if added is None:
            self.log.info("Requesting metadata from ECS Agent introspection endpoint failed "
                          "for tag %s", tag)
            self._fall_back(tag)
        return added

    def _store(self, containers, task):
        """Cache every container of the task (as Fluent Bit, those before a bad one);
        {short id: added pairs} of the ones stored."""
        stored = {}
        now = time.monotonic()
        for old in [c for c, (at, _) in self.containers.items() if now - at > self.ttl]:
            del self.containers[old]
        for index, container in enumerate(containers):
            if not isinstance(container, dict):
                raise _Failed("metadata parsing: unexpected 'Containers[%d]' inner value "
                              "type=%s" % (index, type(container).__name__), "error")
            docker_id, docker_name, name = _strings(
                container, ("DockerId", "DockerName", "Name"), "container")
            metadata = {"ContainerID": docker_id, "DockerContainerName": docker_name,
                        "ECSContainerName": name}
            metadata.update(task)
            metadata.update(self.cluster)
            stored[docker_id[:SHORT_ID]] = added = self._render(metadata)
            self.containers[docker_id[:SHORT_ID]] = (now, added)
        return stored

    def _render(self, metadata):
        return [(key, template.render(metadata)) for key, template in self.templates]


PLUGIN = EcsFilter
