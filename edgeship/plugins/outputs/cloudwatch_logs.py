"""cloudwatch_logs output: records as Amazon CloudWatch Logs events (out_cloudwatch_logs).

Kept from Fluent Bit 5.1.1:
- ``region`` and ``log_group_name`` are required, and exactly one of ``log_stream_name`` and
  ``log_stream_prefix`` (the stream is then the prefix followed by the tag);
  ``log_group_template`` / ``log_stream_template`` (record accessors, ``$TAG``, ``$TAG[n]``)
  win when every key they name is in the record, else the fixed names are used.
- Each event's message is the record's JSON, or with ``log_key`` that key's value alone (a
  string as it is); empty messages (``{}``, ``""``) are skipped; a message over 1,000,000
  bytes is cut there, with a warning. Timestamps are the record's, in milliseconds.
- ``PutLogEvents`` (JSON 1.1, ``X-Amz-Target: Logs_20140328.*``, signed with SigV4 for
  ``logs``) per group/stream, events sorted by time, batches within AWS's limits: 10,000
  events, 1,048,576 bytes counting 26 bytes per event, 24 hours between the first and last
  event. ``log_format`` goes in the ``x-amzn-logs-format`` header (``json/emf``).
- A stream is created (``CreateLogStream``) the first time it is used and remembered four
  hours; ``ResourceAlreadyExistsException`` is fine; a missing group is created
  (``CreateLogGroup``, with ``log_group_class``) when ``auto_create_group`` is on, then
  ``log_retention_days`` is set (``PutRetentionPolicy``) when above 0.
- ``endpoint`` (default ``logs.<region>.amazonaws.com``, port 443, TLS on),
  ``sts_endpoint``, ``role_arn``, ``external_id``, ``profile`` (credentials:
  ``edgeship.net.aws``), ``auto_retry_requests`` (a failed request is sent again once at
  once), ``extra_user_agent``, net.* and tls.* options, Workers 1.

Differences (safer on purpose):
- Errors: throttling, 5xx, no answer, or no credentials RETRY; a refused signature or
  expired token (401/403) fetches credentials again and RETRYs; other 4xx (such as
  ``InvalidParameterException``) are ERROR, logged with the service's message. Fluent Bit
  retries every failure but drops the chunk when PutLogEvents answers
  ResourceNotFoundException (a deleted stream); here the stream is forgotten, created again
  on the retry, and nothing is lost.
- The batches of a chunk already accepted are not sent again when a later batch of the same
  chunk is retried (Fluent Bit sends the whole chunk again).
- ``log_key`` with a value that is not a string sends its JSON (Fluent Bit strips its first
  and last characters and writes it unescaped, which breaks the request for a map).
- Fluent Bit turns records of its cpu and mem inputs and metrics chunks into EMF with
  ``metric_namespace`` / ``metric_dimensions``: those options are accepted and not used
  (only logs are sent). ``add_entity`` (Kubernetes entity metadata) is accepted and not used.
- ``endpoint`` may name ``http://host:port`` (a local stand-in); Fluent Bit strips only
  ``https://``.
"""
import time

from edgeship.codecs import formats, untrusted
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import ERROR, OK, RETRY
from edgeship.net import aws
from edgeship.plugins.outputs._aws import AwsOutput, Failed, error_of

MAX_EVENTS = 10000
MAX_BATCH_BYTES = 1048576
EVENT_OVERHEAD = 26
MAX_SPAN_MS = 24 * 3600 * 1000
MAX_MESSAGE = 1000000
STREAM_MEMORY = 4 * 3600        # seconds a created stream is remembered unused
_REMEMBERED_CHUNKS = 256
_RETRY_CODES = ("ThrottlingException", "ServiceUnavailableException",
                "LimitExceededException", "OperationAbortedException")
_CREDENTIAL_CODES = ("ExpiredTokenException", "UnrecognizedClientException",
                     "InvalidSignatureException", "IncompleteSignatureException")
_ALREADY_EXISTS = "ResourceAlreadyExistsException"
_NOT_FOUND = "ResourceNotFoundException"
_MISSING = object()


def _truncate(message):
    data = message.encode("utf-8", "surrogateescape")
    if len(data) <= MAX_MESSAGE:
        return message, len(data)
    return data[:MAX_MESSAGE].decode("utf-8", "ignore"), MAX_MESSAGE


class CloudWatchLogs(AwsOutput):
    name = "cloudwatch_logs"
    description = "Amazon CloudWatch Logs"
    workers = 1
    options = (
        Option("region", help="AWS region (required)"),
        Option("log_group_name", help="log group (required)"),
        Option("log_group_template", help="record accessor template of the log group"),
        Option("log_stream_name", help="log stream"),
        Option("log_stream_prefix", help="log stream: this prefix followed by the tag"),
        Option("log_stream_template", help="record accessor template of the log stream"),
        Option("log_key", help="send only this key's value, not the whole record"),
        Option("log_format", help="x-amzn-logs-format header (json/emf)"),
        Option("log_group_class", default="", help="STANDARD or INFREQUENT_ACCESS for "
                                                   "groups it creates"),
        Option("log_retention_days", "int", "0", help="retention set on groups it creates"),
        Option("auto_create_group", "bool", "false", help="create a missing log group"),
        Option("endpoint", help="CloudWatch Logs endpoint (default logs.<region>."
                                "amazonaws.com)"),
        Option("Port", "int", "443", min=1, max=65535, help="port of the endpoint"),
        Option("extra_user_agent", help="appended to the User-Agent"),
        Option("metric_namespace", compat=True, help="EMF of cpu/mem records: not in "
                                                     "edgeship"),
        Option("metric_dimensions", compat=True),
        Option("add_entity", "bool", "false", compat=True),
    ) + AwsOutput.common_options

    def configure(self):
        conf = self.conf
        for key in ("region", "log_group_name"):
            if not conf[key]:
                raise ConfigError("cloudwatch_logs: '%s' is a required field" % key, key=key)
        if bool(conf["log_stream_name"]) == bool(conf["log_stream_prefix"]):
            raise ConfigError("cloudwatch_logs: either 'log_stream_name' or "
                              "'log_stream_prefix' is required", key="log_stream_name")
        group_class = conf["log_group_class"]
        if group_class not in ("", "STANDARD", "INFREQUENT_ACCESS"):
            raise ConfigError("cloudwatch_logs: the valid values for log_group_class are "
                              "{STANDARD, INFREQUENT_ACCESS}, got '%s'" % group_class,
                              key="log_group_class")
        self.group_template = self._template("log_group_template")
        self.stream_template = self._template("log_stream_template")
        region = conf["region"]
        endpoint = conf["endpoint"] or "logs.%s.amazonaws.com%s" % (
            region, ".cn" if region.startswith("cn-") else "")
        self.configure_aws(endpoint, conf["port"], region, "logs")
        self.user_agent = aws.USER_AGENT
        if conf["extra_user_agent"]:
            self.user_agent = ("User-Agent", "%s %s" % (aws.USER_AGENT[1],
                                                        conf["extra_user_agent"]))
        self.streams = {}     # (group, stream) -> time.monotonic() when last used
        self.sent = {}        # chunk.id -> batch keys already accepted

    def _template(self, key):
        if not self.conf[key]:
            return None
        try:
            return formats.record_template(self.conf[key])
        except ValueError as exc:
            raise ConfigError("cloudwatch_logs: could not parse `%s`: %s" % (key, exc),
                              key=key)

    def summary(self):
        return "region=%s log_group_name=%s" % (self.conf["region"],
                                                self.conf["log_group_name"])

    # ------------------------------------------------------------------ events
    def _names(self, tag, record):
        conf = self.conf
        group = stream = None
        if self.stream_template is not None:
            stream = self.stream_template.render_checked(record, tag)
        if self.group_template is not None:
            group = self.group_template.render_checked(record, tag)
        if not stream:
            stream = conf["log_stream_name"] or conf["log_stream_prefix"] + tag
        return group or conf["log_group_name"], stream

    def _messages(self, records):
        """The message of each record (None: nothing to send for it)."""
        key = self.conf["log_key"]
        if key is None:
            return [text.decode("utf-8", "surrogateescape")
                    for text in formats.json_batch(records)]
        values = [record.get(key, _MISSING) for record in records]
        missing = sum(1 for value in values if value is _MISSING)
        if missing:
            self.log.error("could not find log_key '%s' in %d record(s)", key, missing)
        others = [value for value in values if value is not _MISSING
                  and not isinstance(value, str)]
        rendered = iter(formats.json_batch(others)) if others else iter(())
        messages = []
        for value in values:
            if value is _MISSING:
                messages.append(None)
            elif isinstance(value, str):
                messages.append(value)
            else:
                messages.append(next(rendered).decode("utf-8", "surrogateescape"))
        return messages

    def _batches(self, chunk):
        """{(group, stream): [[(ms, message), ...], ...]} in the order first seen."""
        events = chunk.events()
        records = [record for _, record in events]
        streams = {}
        truncated = 0
        for (time_ns, record), message in zip(events, self._messages(records)):
            if message is None or message in ("{}", ""):
                continue
            message, size = _truncate(message)
            if size == MAX_MESSAGE:
                truncated += 1
            names = self._names(chunk.tag, record)
            streams.setdefault(names, []).append((time_ns // 1000000, size, message))
        if truncated:
            self.log.warn("%d event(s) larger than CloudWatch allows truncated to %d bytes",
                          truncated, MAX_MESSAGE)
        batches = {}
        for names, items in streams.items():
            items.sort(key=lambda item: item[0])
            runs, run, size = [], [], 0
            for item in items:
                cost = item[1] + EVENT_OVERHEAD
                if run and (len(run) == MAX_EVENTS or size + cost > MAX_BATCH_BYTES
                            or item[0] - run[0][0] >= MAX_SPAN_MS):
                    runs.append(run)
                    run, size = [], 0
                run.append(item)
                size += cost
            if run:
                runs.append(run)
            batches[names] = runs
        return batches

    # ------------------------------------------------------------------ requests
    async def _call(self, action, body):
        """The Response of one CloudWatch Logs action; Failed when none came back."""
        headers = [("Content-Type", "application/x-amz-json-1.1"),
                   ("X-Amz-Target", "Logs_20140328." + action)]
        if action == "PutLogEvents" and self.conf["log_format"]:
            headers.append(("x-amzn-logs-format", self.conf["log_format"]))
        headers.append(self.user_agent)
        return await self.call(action, "POST", "/", headers, body)

    def _judge(self, action, response):
        """Raise Failed for a response that is not a success."""
        self.check(action, response, _RETRY_CODES)

    async def _create_group(self, group):
        self.log.info("creating log group %s", group)
        body = {"logGroupName": group}
        if self.conf["log_group_class"]:
            body["logGroupClass"] = self.conf["log_group_class"]
        response = await self._call("CreateLogGroup", formats.to_json(body))
        if response.status != 200 and error_of(response)[0] == _ALREADY_EXISTS:
            self.log.info("log group %s already exists", group)
        else:
            self._judge("CreateLogGroup", response)
        days = self.conf["log_retention_days"]
        if days > 0:
            self.log.info("setting retention policy on log group %s to %dd", group, days)
            response = await self._call("PutRetentionPolicy", formats.to_json(
                {"logGroupName": group, "retentionInDays": days}))
            self._judge("PutRetentionPolicy", response)

    async def _ensure_stream(self, group, stream):
        now = time.monotonic()
        used = self.streams.get((group, stream))
        if used is not None and now - used < STREAM_MEMORY:
            self.streams[(group, stream)] = now
            return
        body = formats.to_json({"logGroupName": group, "logStreamName": stream})
        self.log.info("creating log stream %s in log group %s", stream, group)
        response = await self._call("CreateLogStream", body)
        code = error_of(response)[0] if response.status != 200 else None
        if code == _NOT_FOUND:
            if not self.conf["auto_create_group"]:
                raise Failed(RETRY, "log group %s not found and `auto_create_group` "
                                     "disabled" % group)
            await self._create_group(group)
            response = await self._call("CreateLogStream", body)
            code = error_of(response)[0] if response.status != 200 else None
        if code != _ALREADY_EXISTS:
            self._judge("CreateLogStream", response)
        self.streams[(group, stream)] = now

    async def _put(self, group, stream, run):
        head = formats.to_json({"logGroupName": group, "logStreamName": stream})[:-1]
        texts = formats.json_batch([message for _, _, message in run])
        body = b"".join((head, b',"logEvents":[', b",".join(
            b'{"timestamp":%d,"message":%s}' % (ms, text)
            for (ms, _, _), text in zip(run, texts)), b"]}"))
        response = await self._call("PutLogEvents", body)
        if response.status != 200 and error_of(response)[0] == _NOT_FOUND:
            self.streams.pop((group, stream), None)   # deleted: created again on the retry
            raise Failed(RETRY, "PutLogEvents: log stream %s not found in %s"
                          % (stream, group))
        self._judge("PutLogEvents", response)
        try:
            answer = untrusted.loads(response.body) if response.body else {}
        except ValueError:
            answer = {}
        rejected = answer.get("rejectedLogEventsInfo") if isinstance(answer, dict) else None
        if rejected:
            self.log.warn("PutLogEvents to %s/%s: events rejected by CloudWatch: %s",
                          group, stream, formats.to_json(rejected).decode("ascii"))

    async def flush(self, chunk):
        done = self.sent.get(chunk.id, set())
        try:
            for (group, stream), runs in self._batches(chunk).items():
                await self._ensure_stream(group, stream)
                for index, run in enumerate(runs):
                    if (group, stream, index) in done:
                        continue
                    await self._put(group, stream, run)
                    done.add((group, stream, index))
                    self.sent[chunk.id] = done
        except Failed as exc:
            if exc.result == ERROR:
                self.log.error("%s; the chunk will not be retried", exc)
                self.sent.pop(chunk.id, None)
            else:
                self.log.error("%s; the chunk will be retried", exc)
                while len(self.sent) > _REMEMBERED_CHUNKS:
                    self.sent.pop(next(iter(self.sent)))
            return exc.result
        self.sent.pop(chunk.id, None)
        return OK


PLUGIN = CloudWatchLogs
