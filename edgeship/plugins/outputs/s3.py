"""s3 output: records as objects in an Amazon S3 bucket (out_s3), one PutObject per chunk.

Kept from Fluent Bit 5.1.1:
- ``bucket`` is required; ``region`` (default us-east-1), ``endpoint`` (default
  ``s3.<region>.amazonaws.com``, path-style ``/<bucket>/<key>``, TLS on), ``sts_endpoint``,
  ``role_arn``, ``external_id``, ``profile`` (credentials: ``edgeship.net.aws``); requests
  signed with SigV4 for ``s3`` with ``X-Amz-Content-Sha256``.
- The object: the records as JSON lines, each with ``json_date_key`` (default ``date``,
  ``false`` drops it) in ``json_date_format`` (default iso8601), or with ``log_key`` that
  key's value alone (a string as it is, anything else as JSON), a line each.
- ``s3_key_format`` (default ``/fluent-bit-logs/$TAG/%Y/%m/%d/%H/%M/%S``): ``$TAG``,
  ``$TAG[n]`` (the tag split on ``s3_key_format_tag_delimiters``, default '.'), ``$UUID``
  (8 random characters), ``$INDEX`` (a sequence number kept in ``store_dir`` across
  restarts), then strftime at the time of the chunk's first record, UTC. Without $UUID or
  $INDEX and with ``static_file_path`` off, ``-object`` and 8 random characters are appended.
- ``compression gzip`` (Content-Encoding: gzip), ``content_type``, ``canned_acl``
  (x-amz-acl), ``storage_class`` (x-amz-storage-class), ``send_content_md5``,
  ``auto_retry_requests``. Any failure is retried, as in Fluent Bit (a refused signature
  fetches credentials again); only 200 is a success.

Differences: each chunk is uploaded at once with PutObject, as ``use_put_object on`` does:
edgeship's own spool already keeps records across restarts, so the local buffer files of
``store_dir`` and the multipart upload are not used; ``total_file_size``,
``upload_chunk_size``, ``upload_timeout``, ``store_dir_limit_size``, ``use_put_object``,
``preserve_data_ordering``, ``retry_exhausted_action`` and the blob/multipart options are
accepted and change nothing. ``compression`` arrow, parquet, zstd and snappy and ``format``
other than json_lines are config errors.
"""
import base64
import hashlib
import os
import re
import secrets
import string
import time
from urllib.parse import quote

from edgeship.codecs import formats
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import OK, RETRY
from edgeship.net import aws
from edgeship.net.http_client import gzip_body
from edgeship.plugins.outputs._aws import AwsOutput, Failed

MAX_KEY = 1024
_ALPHANUMERIC = string.ascii_letters + string.digits
_TAG_PART = re.compile(r"\$TAG\[(\d+)\]")
_MISSING = object()


def _random8():
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(8))


def _xml_value(body, name):
    found = re.search(r"<%s>([^<]*)</%s>" % (name, name), body)
    return found.group(1) if found else ""


class S3Output(AwsOutput):
    name = "s3"
    description = "Amazon S3 objects"
    workers = 1
    options = (
        Option("bucket", help="S3 bucket (required)"),
        Option("region", default="us-east-1", help="AWS region of the bucket"),
        Option("endpoint", help="S3 endpoint (default s3.<region>.amazonaws.com)"),
        Option("Port", "int", "443", min=1, max=65535, help="port of the endpoint"),
        Option("s3_key_format", default="/fluent-bit-logs/$TAG/%Y/%m/%d/%H/%M/%S",
               help="object key: $TAG, $TAG[n], $UUID, $INDEX and strftime"),
        Option("s3_key_format_tag_delimiters", default=".",
               help="characters that split the tag for $TAG[n]"),
        Option("static_file_path", "bool", "false",
               help="do not append -object<random> to keys without $UUID/$INDEX"),
        Option("format", default="json_lines", choices=("json_lines", "json"),
               help="object body format (json is read as json_lines, as in Fluent Bit)"),
        Option("json_date_key", default="date", help="key of the record time; false: none"),
        Option("json_date_format", default="iso8601", choices=formats.DATE_FORMATS,
               help="format of the record time"),
        Option("log_key", help="write only this key's value, not the whole record"),
        Option("compression", help="gzip (the body and Content-Encoding)"),
        Option("content_type", help="Content-Type of the objects"),
        Option("canned_acl", help="x-amz-acl of the objects"),
        Option("storage_class", help="x-amz-storage-class of the objects"),
        Option("send_content_md5", "bool", "false", help="send Content-MD5"),
        Option("store_dir", default="/tmp/fluent-bit/s3",
               help="where the $INDEX sequence number is kept"),
        Option("use_put_object", "bool", "false", compat=True,
               help="edgeship always uploads each chunk with PutObject"),
        Option("total_file_size", "size", "100000000", compat=True),
        Option("upload_chunk_size", "size", "5242880", compat=True),
        Option("upload_timeout", "time", "600", compat=True),
        Option("store_dir_limit_size", "size", "0", compat=True),
        Option("quarantine_dir_limit_size", "size", "0", compat=True),
        Option("preserve_data_ordering", "bool", "true", compat=True),
        Option("retry_exhausted_action", default="quarantine", compat=True),
        Option("blob_database_file", compat=True),
        Option("part_size", "size", "25M", compat=True),
        Option("file_delivery_attempt_limit", "int", "1", compat=True),
        Option("part_delivery_attempt_limit", "int", "1", compat=True),
        Option("upload_parts_timeout", "time", "600", compat=True),
        Option("upload_part_freshness_limit", default="6D", compat=True),
        Option("authorization_endpoint_url", compat=True),
        Option("authorization_endpoint_username", compat=True),
        Option("authorization_endpoint_password", compat=True),
        Option("authorization_endpoint_bearer_token", compat=True),
    ) + AwsOutput.common_options

    def configure(self):
        conf = self.conf
        if not conf["bucket"]:
            raise ConfigError("s3: 'bucket' is a required field", key="bucket")
        compression = (conf["compression"] or "").strip().lower()
        if compression not in ("", "none", "gzip"):
            raise ConfigError("s3: compression '%s' is not available in edgeship (gzip is)"
                              % compression, key="compression")
        self.gzip = compression == "gzip"
        region = conf["region"]
        endpoint = conf["endpoint"] or "s3.%s.amazonaws.com%s" % (
            region, ".cn" if region.startswith("cn-") else "")
        self.configure_aws(endpoint, conf["port"], region, "s3", s3=True)
        self.date_key = formats.date_key_option(conf["json_date_key"])
        key_format = conf["s3_key_format"]
        self.random_suffix = not (conf["static_file_path"] or "$UUID" in key_format
                                  or "$INDEX" in key_format)
        self.index_file = None
        self.index = 0
        if "$INDEX" in key_format:
            self._load_index()
        headers = []
        if conf["content_type"]:
            headers.append(("Content-Type", conf["content_type"]))
        if self.gzip:
            headers.append(("Content-Encoding", "gzip"))
        if conf["canned_acl"]:
            headers.append(("x-amz-acl", conf["canned_acl"]))
        self.headers = headers
        self.trailing_headers = []
        if conf["storage_class"]:
            self.trailing_headers.append(("x-amz-storage-class", conf["storage_class"]))
        self.trailing_headers.append(aws.USER_AGENT)

    def summary(self):
        return "bucket=%s region=%s" % (self.conf["bucket"], self.conf["region"])

    # ------------------------------------------------------------------ $INDEX
    def _load_index(self):
        folder = os.path.join(self.conf["store_dir"], "sequence", "index_metadata")
        number = self.instance.rsplit(".", 1)[-1]
        self.index_file = os.path.join(folder, "seq_index_%s" % number)
        try:
            os.makedirs(folder, 0o700, exist_ok=True)
            with open(self.index_file, "a+", encoding="ascii") as handle:
                handle.seek(0)
                text = handle.read(64).strip()
        except OSError as exc:
            raise ConfigError("s3: cannot keep the $INDEX sequence in %s: %s"
                              % (folder, exc.strerror or exc), key="store_dir")
        try:
            self.index = int(text) if text else 0
        except ValueError:
            raise ConfigError("s3: %s does not hold a number" % self.index_file,
                              key="store_dir")
        if self.index:
            self.log.info("recovered the sequence index, continuing at index=%d", self.index)

    def _save_index(self, value):
        temporary = self.index_file + ".tmp"
        with open(temporary, "w", encoding="ascii") as handle:
            handle.write("%d" % value)
        os.replace(temporary, self.index_file)

    # ------------------------------------------------------------------ object
    def object_key(self, tag, first_sec, index):
        """The object key (``/``-led, not encoded) of a chunk, as flb_get_s3_key makes it."""
        key = self.conf["s3_key_format"]
        delimiters = self.conf["s3_key_format_tag_delimiters"]
        if "$TAG[" in key:
            parts = re.split("[%s]" % re.escape(delimiters), tag) if delimiters else [tag]
            parts = [part for part in parts if part]

            def part(match):
                number = int(match.group(1))
                return parts[number] if number < len(parts) else match.group(0)
            key = _TAG_PART.sub(part, key)
        key = key.replace("$TAG", tag).replace("$INDEX", "%d" % index)
        key = key.replace("$UUID", _random8())
        key = time.strftime(key, time.gmtime(first_sec))[:MAX_KEY]
        if self.random_suffix and len(key) + 16 <= MAX_KEY:
            key += "-object" + _random8()
        return key

    def body(self, chunk):
        events = chunk.events()
        key = self.conf["log_key"]
        if key is None:
            lines = formats.json_events(events, self.date_key, self.conf["json_date_format"])
        else:
            values = [record.get(key, _MISSING) for _, record in events]
            missing = sum(1 for value in values if value is _MISSING)
            if missing:
                self.log.error("could not find log_key '%s' in %d record(s)", key, missing)
            found = [value for value in values if value is not _MISSING]
            others = iter(formats.json_batch([v for v in found if not isinstance(v, str)]))
            lines = [value.encode("utf-8", "surrogateescape") if isinstance(value, str)
                     else next(others) for value in found]
        if not lines:
            return b""
        return b"\n".join(lines) + b"\n"

    async def flush(self, chunk):
        data = self.body(chunk)
        if not data:
            return OK
        if self.gzip:
            data = gzip_body(data)
        first_sec = chunk.events()[0][0] // 1000000000
        index = self.index
        key = self.object_key(chunk.tag, first_sec, index)
        headers = list(self.headers)
        if self.conf["send_content_md5"]:
            headers.append(("Content-MD5", base64.b64encode(
                hashlib.md5(data).digest()).decode("ascii")))
        headers += self.trailing_headers
        if self.index_file is not None:   # the next chunk takes the next number
            try:
                self._save_index(index + 1)
            except OSError as exc:
                self.log.error("cannot update the sequence index %s: %s", self.index_file,
                               exc.strerror or exc)
                return RETRY
            self.index = index + 1
        uri = "/%s%s" % (self.conf["bucket"], quote(key, safe="/~"))
        try:
            response = await self.call("PutObject", "PUT", uri, headers, data)
            if response.status != 200:
                text = response.body.decode("utf-8", "replace")
                if response.status == 403:
                    self.credentials_refused()
                raise Failed(RETRY, "PutObject %s: HTTP %d %s %s" % (
                    key, response.status, _xml_value(text, "Code"),
                    _xml_value(text, "Message")))
        except Failed as exc:
            if self.index_file is not None and self.index == index + 1:
                self.index = index   # the retry uses the same number again
                try:
                    self._save_index(index)
                except OSError as error:
                    self.log.error("cannot update the sequence index %s: %s",
                                   self.index_file, error.strerror or error)
            self.log.error("%s; the chunk will %s", exc,
                           "be retried" if exc.result == RETRY else "not be retried")
            return exc.result
        self.log.info("successfully uploaded object %s", key)
        return OK


PLUGIN = S3Output
