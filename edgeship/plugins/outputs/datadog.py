"""datadog output: Datadog's log intake, ``/api/v2/logs`` (out_datadog).

Kept from Fluent Bit 5.1.1 (reference §7): host ``http-intake.logs.datadoghq.com``, port 443
with ``tls on`` and 80 without (``Host``/``Port``/``TLS`` point it anywhere); ``apikey``
required; headers User-Agent, DD-API-KEY, DD-EVP-ORIGIN ``Fluent-Bit`` and
DD-EVP-ORIGIN-VERSION ``5.1.1`` (what Datadog's intake knows), Content-Type,
Content-Encoding, each ``Header``; the body a JSON array, each object: ``json_date_key``
(default ``timestamp``) as milliseconds rounded half up, the tag under ``tag_key`` with
``include_tag_key``, ``ddsource``, ``service``, ``hostname``, the record (its
``dd_message_key`` key, default ``log``, renamed ``message`` in place), ``ddtags`` last.
``provider ecs``: the ECS attributes container_id, container_name (without its leading '/'),
container_image, ecs_cluster (``cluster_name``, after ``cluster/``), ecs_task_definition
(``task_family``/``task_version``) and ecs_task_arn (``task_arn``, ``region``, ``task_id``)
leave the record for ``ddtags``, ahead of dd_tags. 200-205 OK, any other status RETRY (4xx
included, as Fluent Bit).
"""
from edgeship.codecs import formats
from edgeship.core import FLUENT_BIT_VERSION
from edgeship.core.schema import Option
from edgeship.net.http_client import address_options
from edgeship.plugins.outputs._http import USER_AGENT, HttpOutput, retry_unless_success

DEFAULT_HOST = "http-intake.logs.datadoghq.com"
ORIGIN = (("DD-EVP-ORIGIN", "Fluent-Bit"), ("DD-EVP-ORIGIN-VERSION", FLUENT_BIT_VERSION))
_MS = 1000000




def _cluster(value):
    at = value.find("cluster/")
    return [("cluster_name", value[at + len("cluster/"):] if at >= 0 else value)]


def _task_definition(value):
    family, sep, version = value.partition(":")
    return [("task_family", family), ("task_version", version)] if sep \
        else [("ecs_task_definition", value)]


def _task_arn(value):
    tags = [("task_arn", value)]
    prefix = "arn:aws:ecs:"
    if len(value) > len(prefix) and value.startswith(prefix) \
            and ":" in value[len(prefix):]:
        tags.append(("region", value[len(prefix):].split(":", 1)[0]))
    at = value.find("task/")
    tags.append(("task_id", value[at + len("task/"):] if at >= 0 else value))
    return tags


# provider ecs: record attribute -> the ddtags it becomes (Fluent Bit's datadog_remap.c).
_ECS_TAGS = {
    "container_id": lambda v: [("container_id", v)],
    "container_name": lambda v: [("container_name", v[1:] if v.startswith("/") else v)],
    "container_image": lambda v: [("container_image", v)],
    "ecs_cluster": _cluster,
    "ecs_task_definition": _task_definition,
    "ecs_task_arn": _task_arn,
}


class DatadogOutput(HttpOutput):
    name = "datadog"
    description = "Datadog logs intake"
    options = address_options(0, DEFAULT_HOST)[:1] + (
        Option("Port", "int", help="TCP port (default 443 with TLS, else 80)", min=1,
               max=65535),
        Option("apikey", help="Datadog API key", required=True),
        Option("dd_service", help="service of the logs"),
        Option("dd_source", help="source (technology) of the logs"),
        Option("dd_tags", help="tags of the logs, 'k:v,k2:v2'"),
        Option("dd_hostname", help="host the logs come from"),
        Option("dd_message_key", default="log", help="record key sent as 'message'"),
        Option("include_tag_key", "bool", "off", help="add the tag under tag_key"),
        Option("tag_key", default="tagkey", help="key of the tag"),
        Option("json_date_key", default="timestamp", help="key of the time (milliseconds)"),
        Option("provider", help="ecs: ECS attributes become ddtags"),
    ) + HttpOutput.client_options

    def configure(self):
        conf = self.conf
        self.remap = (conf["provider"] or "") == "ecs"
        port = conf["port"] or (443 if conf["tls"] else 80)
        self.configure_client(port=port)
        self.headers = [USER_AGENT, ("DD-API-KEY", conf["apikey"])] + list(ORIGIN) + \
            [("Content-Type", "application/json")]
        self.date_key = formats.date_key_option(conf["json_date_key"])
        head = []
        if conf["include_tag_key"]:
            head.append((conf["tag_key"], None))
        for key, option in (("ddsource", "dd_source"), ("service", "dd_service"),
                            ("hostname", "dd_hostname")):
            if conf[option]:
                head.append((key, conf[option]))
        self.head = head

    def _object(self, tag, record):
        out = {}
        for key, value in self.head:
            out[key] = tag if value is None else value
        message_key = self.conf["dd_message_key"]
        remapped = []
        for key, value in record.items():
            if self.remap and key in _ECS_TAGS and isinstance(value, str) and value:
                remapped += _ECS_TAGS[key](value)
                continue
            out["message" if key == message_key else key] = value
        tags = ",".join("%s:%s" % pair for pair in remapped)
        if self.conf["dd_tags"]:
            tags = tags + "," + self.conf["dd_tags"] if tags else self.conf["dd_tags"]
        if tags:
            out["ddtags"] = tags
        return out

    def body(self, chunk):
        events = chunk.events()
        parts = formats.json_batch([self._object(chunk.tag, r) for _, r in events])
        if self.date_key is None:
            return b"[" + b",".join(parts) + b"]"
        opening = b"{" + formats.to_json(self.date_key) + b":"
        objects = []
        for (time_ns, _), part in zip(events, parts):
            ms, rest = divmod(time_ns, _MS)
            stamp = b"%d" % (ms + (rest >= _MS // 2))
            objects.append(opening + stamp + (b"}" if part == b"{}" else b"," + part[1:]))
        return b"[" + b",".join(objects) + b"]"

    judge = staticmethod(retry_unless_success)

    async def flush(self, chunk):
        headers = list(self.headers)
        body = self.encode_body(self.body(chunk), headers)
        headers.extend(self.config_headers)
        result, _ = await self.send("POST", "/api/v2/logs", headers, body)
        return result


PLUGIN = DatadogOutput
