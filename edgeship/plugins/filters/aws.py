"""aws filter: add the EC2 instance's metadata to every record (filter_aws).

Behaviour of Fluent Bit 5.1.1 kept:
- Keys appended after the record's own, in this order, each when its option is on:
  ``az`` (on by default), ``ec2_instance_id`` (on), ``ec2_instance_type``, ``private_ip``,
  ``vpc_id``, ``ami_id``, ``account_id``, ``hostname``, then the instance's tags
  (``tags_enabled``, in the order IMDS lists them; ``tags_include`` or ``tags_exclude``,
  comma-separated exact keys, picks them), then with ``enable_entity``
  ``aws_entity_ec2_instance_id`` and ``aws_entity_account_id``.
- Read from the instance metadata service (``edgeship.net.aws.Imds``): IMDSv2 by default
  (a token, asked for again on 401), ``imds_version v1`` sends none; the values are the
  answers' bodies as they come, ``account_id`` the ``accountId`` of the instance identity
  document ("NULL" when it has none), ``vpc_id`` that of the interface of
  ``meta-data/mac``. A tag list answered 404 (no tags, or tags not exposed) is a warning
  and no tags.
- Each value is asked for once; the ones that failed are asked for again on a batch at
  least ``retry_interval_s`` seconds (0: every batch) after the last try, and until then
  records get the values already known (none at first).

Differences (README "Where edgeship differs"):
- Fluent Bit asks at start-up, blocking, and in 5.1.1 never tries again when that first
  round failed (the filter marks the metadata retrieved anyway): the records then never get
  it. Here the requests never block the loop (every one bounded by 1 s, a round stops at the
  first one that gets no answer): batches that come during the first round wait for it, as
  Fluent Bit's start-up does, later rounds run while records pass, and a failed round is
  tried again after retry_interval_s as the option says. A failed round is logged in one
  line; records passed without all their metadata are counted (records_without_metadata).
- A record key with the name of an added key is replaced (Fluent Bit appends a second key of
  the same name).
- tags_include and tags_exclude together are refused at start-up (Fluent Bit refuses them
  once the instance's tags are fetched, so only on an instance with tags).
- The ``${aws.*}`` environment entries Fluent Bit sets from the values are not set.
"""
import asyncio
import time

from edgeship.codecs import untrusted
from edgeship.core import events as ev
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import Filter
from edgeship.net.aws import Imds, ImdsError

# Option and record key -> IMDS path (Fluent Bit's flb_aws_imds.h), in the order Fluent Bit
# asks for them; ``vpc_id`` and ``account_id`` are read by their own functions.
PATHS = (
    ("ec2_instance_id", "/latest/meta-data/instance-id/"),
    ("account_id", "/latest/dynamic/instance-identity/document/"),
    ("ec2_instance_type", "/latest/meta-data/instance-type/"),
    ("private_ip", "/latest/meta-data/local-ipv4/"),
    ("vpc_id", "/latest/meta-data/mac/"),
    ("ami_id", "/latest/meta-data/ami-id/"),
    ("hostname", "/latest/meta-data/hostname/"),
    ("az", "/latest/meta-data/placement/availability-zone/"),
)
# The order Fluent Bit appends them to a record.
RECORD_ORDER = ("az", "ec2_instance_id", "ec2_instance_type", "private_ip", "vpc_id",
                "ami_id", "account_id", "hostname")
TAGS_PATH = "/latest/meta-data/tags/instance"
ENTITY_KEYS = (("aws_entity_ec2_instance_id", "ec2_instance_id"),
               ("aws_entity_account_id", "account_id"))


class _NoAnswer(Exception):
    """IMDS did not answer: the rest of the round would not get one either."""


def _split(text):
    return [item for item in text.split(",") if item]


class AwsFilter(Filter):
    name = "aws"
    description = "Add AWS Metadata"
    options = (
        Option("imds_version", default="v2", choices=("v1", "v2"),
               help="instance metadata service version: v1 or v2"),
        Option("az", "bool", "true", help="add the availability zone"),
        Option("ec2_instance_id", "bool", "true", help="add the instance id"),
        Option("ec2_instance_type", "bool", "false", help="add the instance type"),
        Option("private_ip", "bool", "false", help="add the private IPv4 address"),
        Option("vpc_id", "bool", "false", help="add the VPC id"),
        Option("ami_id", "bool", "false", help="add the image id"),
        Option("account_id", "bool", "false", help="add the account id"),
        Option("hostname", "bool", "false", help="add the instance's host name"),
        Option("tags_enabled", "bool", "false", help="add the instance's tags"),
        Option("tags_include", default="",
               help="only these tag keys (comma-separated)"),
        Option("tags_exclude", default="",
               help="every tag key but these (comma-separated)"),
        Option("retry_interval_s", "int", "300",
               help="seconds before values that failed are asked for again (0: every batch)"),
        Option("enable_entity", "bool", "false",
               help="also add aws_entity_ec2_instance_id and aws_entity_account_id"),
    )

    def configure(self):
        conf = self.conf
        self.include = _split(conf["tags_include"])
        self.exclude = _split(conf["tags_exclude"])
        self.tags_enabled = conf["tags_enabled"]
        if self.tags_enabled and self.include and self.exclude:
            raise ConfigError("tags_include and tags_exclude cannot be set together",
                              key="tags_exclude")
        self.imds = Imds(v2=conf["imds_version"].lower() == "v2")
        self.retry_interval = conf["retry_interval_s"]
        self.entity = conf["enable_entity"]
        self.wanted = [key for key in RECORD_ORDER if conf[key]]
        self.values = {}            # key -> value fetched
        self.tags = None            # [(tag key, value)] once fetched
        self.added = []             # [(record key, value)] appended to each record
        self.task = None            # the round in flight
        self.last_round = None      # monotonic time the last round started
        self.rounds = 0

    def _complete(self):
        if any(key not in self.values for key in self.wanted):
            return False
        if self.tags_enabled and self.tags is None:
            return False
        return not self.entity or all(key in self.values for _, key in ENTITY_KEYS)

    # ------------------------------------------------------------------ the batch
    def filter(self, tag, events):
        if self.task is None and not self._complete() and self._due():
            self.task = asyncio.ensure_future(self._round())
        if self.task is not None and self.rounds == 0:
            # The first round: Fluent Bit has it done before any record comes.
            return asyncio.ensure_future(self._after_first(events))
        return self._apply(events)

    def _due(self):
        return (self.last_round is None or self.retry_interval <= 0
                or time.monotonic() - self.last_round >= self.retry_interval)

    async def _after_first(self, events):
        await asyncio.wait([self.task])
        return self._apply(events)

    def _apply(self, events):
        if not self._complete():
            self.context.count("records_without_metadata", len(events))
        return ev.append_keys(events, self.added)

    def stop(self):
        if self.task is not None:
            self.task.cancel()

    # ------------------------------------------------------------------ IMDS
    async def _round(self):
        self.last_round = time.monotonic()
        failed = []
        try:
            try:
                for key, path in PATHS:
                    wanted = key in self.wanted or (
                        self.entity and key in ("ec2_instance_id", "account_id"))
                    if wanted and key not in self.values:
                        await self._fetch(key, path, failed)
                if self.tags_enabled and self.tags is None:
                    await self._fetch_tags(failed)
            except _NoAnswer:
                pass
            self._prepare()
            if failed:
                self.log.warn("EC2 metadata not fetched (%s): records go on without it%s",
                              "; ".join(failed), "" if self.retry_interval <= 0 else
                              ", next try in %d s" % self.retry_interval)
            elif self.rounds:
                self.log.info("EC2 metadata fetched")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not leave the first batches waiting
            self.log.error("EC2 metadata round failed: %r", exc)
        finally:
            self.rounds += 1
            self.task = None

    async def _get(self, path, failed, what):
        try:
            return (await self.imds.get(path)).decode("utf-8", "replace")
        except ImdsError as exc:
            failed.append("%s: %s" % (what, exc))
            if exc.status is None:
                raise _NoAnswer()
            return None

    async def _fetch(self, key, path, failed):
        value = await self._get(path, failed, key)
        if value is None:
            return
        if key == "vpc_id":
            value = await self._get("/latest/meta-data/network/interfaces/macs/%s/vpc-id/"
                                    % value, failed, key)
            if value is None:
                return
        elif key == "account_id":
            value = self._account_id(value)
        self.values[key] = value

    def _account_id(self, text):
        document = untrusted.loads_object(text)
        value = document.get("accountId") if document is not None else None
        if value is None:
            self.log.error("accountId is undefined in EC2 instance")
            return "NULL"
        return value if isinstance(value, str) else str(value)

    async def _fetch_tags(self, failed):
        try:
            listing = await self.imds.get(TAGS_PATH)
        except ImdsError as exc:
            if exc.status == 404:
                self.log.warn("EC2 instance metadata tag request returned 404. This likely "
                              "indicates your instance has no tags or the EC2 tagging "
                              "metadata API is not enabled")
                self.tags = []
                return
            failed.append("tags: %s" % exc)
            if exc.status is None:
                raise _NoAnswer()
            return
        keys = [key for key in listing.decode("utf-8", "replace").split("\n") if key]
        if not keys:
            failed.append("tags: empty tag list")
            return
        tags = []
        for key in keys:
            value = await self._get("%s/%s" % (TAGS_PATH, key), failed, "tag %s" % key)
            if value is None:
                return
            tags.append((key, value))
        self.tags = tags

    def _prepare(self):
        """The keys each record gets, from what is known now."""
        added = [(key, self.values[key]) for key in self.wanted if key in self.values]
        for key, value in self.tags or ():
            if (key in self.include) if self.include else (key not in self.exclude):
                added.append((key, value))
        if self.entity and all(key in self.values for _, key in ENTITY_KEYS):
            added += [(name, self.values[key]) for name, key in ENTITY_KEYS]
        self.added = added


PLUGIN = AwsFilter
