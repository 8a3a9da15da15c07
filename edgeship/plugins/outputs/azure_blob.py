"""azure_blob output: records as JSON lines in Azure Blob Storage (out_azure_blob), an append
blob per tag or a block blob per chunk.

Kept from Fluent Bit 5.1.1 (checked on the binary against Azurite, tests/data/azure_blob):
- ``account_name`` and ``container_name`` are required; ``auth_type`` key (``shared_key``,
  base64, decoded as Fluent Bit's decoder reads it) or sas (``sas_token``, a leading '?'
  dropped, appended to every URI's query instead of an Authorization header).
- The server: ``endpoint`` (``http(s)://host[:port]``, TLS when it is https), else
  ``<account_name>.blob.core.windows.net`` on 443 with ``tls on``, on 80 without (Fluent
  Bit's default is ``tls off``). ``emulator_mode on`` (Azurite) puts ``/<account_name>``
  before every path.
- Every request: Host, Content-Length, User-Agent ``Fluent-Bit``, Content-Type and
  Content-Encoding when compressed, x-ms-blob-type when creating a blob, x-ms-date (now),
  x-ms-version ``2019-12-12`` and, with a key, ``Authorization: SharedKey
  <account>:<signature>`` over Fluent Bit's string to sign (``edgeship.net.azure``).
- Each flush, with ``auto_create_container`` (default on): ``GET
  /<container>?restype=container`` (Host without the port, as Fluent Bit sends it); on 404
  ``PUT`` the same URI creates the container; any other answer but 200 retries the chunk.
- The body: the chunk's records as JSON lines, each with ``date_key`` (default
  ``@timestamp``) first in ISO 8601 (microseconds); a record with a key of that name keeps
  its own. ``date_key`` names the key whatever it says (Fluent Bit adds no check for false).
- ``blob_type appendblob`` (default): ``PUT /<container>/[<path>/]<tag>?comp=appendblock``;
  on 404 (or Azure's "must be 0 for Create Append") the blob is created with ``PUT`` and
  ``x-ms-blob-type: AppendBlob``, then the block appended again. 201 is success.
- ``blob_type blockblob``: one blob per chunk, ``<tag>.<blob_uri_length random
  alphanumerics>.<milliseconds now>`` (``.gz``/``.zst`` with ``compress_blob``): ``PUT
  ?blockid=<base64 of flb-<seconds, 4 decimals>.id>&comp=block``, then ``PUT
  ?comp=blocklist`` with ``<BlockList>  <Latest>id</Latest></BlockList>``; both 201.
- ``path``: one trailing '/' dropped; ``$UUID`` (8 random alphanumerics, the same for each
  occurrence), then the first ``%3N`` (milliseconds), ``%9N`` and ``%L`` (nanoseconds), then
  strftime, all at the time of the flush (UTC), then ``$TAG`` and ``$TAG[n]``; leading and
  trailing '/' removed; empty: no folder.
- ``compress gzip|zstd``: the body compressed, Content-Encoding and Content-Type
  ``application/json``; ``compress_blob on`` (blockblob only): the stored blob compressed
  (``compress``'s codec, gzip by default), Content-Type ``application/gzip|zstd``.
- Fluent Bit's config errors: no account_name, container_name, shared_key (key) or
  sas_token (sas); an unknown auth_type, blob_type or compress; ``compress_blob`` or
  ``buffering_enabled`` with appendblob.

Differences:
- At least once: a chunk is done only when its last request got a 201. Fluent Bit counts a
  block list refused with a body (403, 500...) as delivered and drops the chunk; here it is
  retried (a new blob: the block is sent again under a new name).
- With a SAS token, Fluent Bit cuts ``&sig=`` from the append URI when it logs a missing
  blob, and sends the append that follows the blob's creation unsigned (403, retried); the
  token is kept here.
- A block whose ``PUT`` answers 404 (no container: ``auto_create_container off``) is retried;
  Fluent Bit first creates an empty block blob named after the tag.
- Names are percent-encoded outside ``A-Z a-z 0-9 - _ . ~ /`` (Fluent Bit sends them raw, a
  space breaking the request) and signed as sent.
- edgeship's own storage keeps chunks across restarts and failures: ``buffering_enabled``,
  ``buffer_dir``, ``upload_timeout``, ``upload_file_size``, ``store_dir_limit_size``,
  ``azure_blob_buffer_key``, ``buffer_file_delete_early``, ``unify_tag``,
  ``scheduler_max_retries``, ``delete_on_max_upload_error``, ``io_timeout`` are accepted
  and change nothing; nor do the blob-file options (``database_file``, ``part_size``,
  ``*_delivery_attempt_limit``, ``upload_parts_timeout``, ``upload_part_freshness_limit``:
  edgeship has no blob input), nor ``host``/``port`` (Fluent Bit does not use them either).
  ``configuration_endpoint_url`` (remote settings) is a config error. zstd needs cramjam.
- A ``path`` naming a record key (``$kubernetes['x']``) is a config error: Fluent Bit
  resolves the path without a record, fails and retries the chunk forever.
"""
import base64
import re
import secrets
import string
import time
from urllib.parse import quote

from edgeship.codecs import formats
from edgeship.core.errors import ConfigError, StartError
from edgeship.core.schema import Option
from edgeship.engine.plugin import ERROR, OK, RETRY
from edgeship.net import azure
from edgeship.net.http_client import (HTTP_CLIENT_OPTIONS, HttpClient, HttpError,
                                      InvalidRequest, gzip_body, split_url)
from edgeship.plugins.outputs._http import USER_AGENT, HttpOutput

DOMAIN = ".blob.core.windows.net"
VERSION = ("x-ms-version", "2019-12-12")
_ALPHANUMERIC = string.ascii_letters + string.digits
_XML_CODE = re.compile(r"<Code>([^<]*)</Code>")
_NET_OPTIONS = tuple(o for o in HTTP_CLIENT_OPTIONS if o.key.startswith(("net.", "tls")))


def _random(length):
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


class Failed(Exception):
    """A request of the chunk failed: the chunk is retried (or dropped: ``result``)."""

    def __init__(self, message, result=RETRY):
        Exception.__init__(self, message)
        self.result = result


def _answer(response):
    """What an error answer says, for a log line: status and Azure's error code."""
    text = response.body.decode("utf-8", "replace")
    code = _XML_CODE.search(text)
    return "HTTP %d%s" % (response.status, " " + code.group(1) if code else
                          (" " + response.first_line() if text.strip() else ""))


def resolve_path(template, tag, now_ns):
    """The folder of the blobs as Fluent Bit resolves ``path`` (azb_resolve_path) at
    ``now_ns``: '' for none."""
    path = template
    if "$UUID" in path:
        path = path.replace("$UUID", _random(8))
    sec, nsec = divmod(now_ns, 1000000000)
    for token, value in (("%3N", "%03d" % (nsec // 1000000)), ("%9N", "%09d" % nsec),
                         ("%L", "%09d" % nsec)):
        path = path.replace(token, value, 1)
    path = time.strftime(path, time.gmtime(sec))
    path = formats.record_template(path).render({}, tag)
    return path.strip("/")


class AzureBlobOutput(HttpOutput):
    name = "azure_blob"
    description = "Azure Blob Storage"
    workers = 1
    options = (
        Option("account_name", help="Azure storage account name (required)"),
        Option("container_name", help="container name (required)"),
        Option("auto_create_container", "bool", "true",
               help="check the container on each flush, create it when missing"),
        Option("blob_type", default="appendblob", help="appendblob or blockblob"),
        Option("compress", help="gzip or zstd: compress the body in transfer"),
        Option("compress_blob", "bool", "false",
               help="store block blobs compressed (gzip, or compress's codec)"),
        Option("emulator_mode", "bool", "false",
               help="path-style URIs /<account_name>/... (Azurite)"),
        Option("shared_key", help="the account's shared key, base64 (auth_type key)"),
        Option("endpoint", help="http(s)://host[:port] of the service or the emulator"),
        Option("path", help="folder of the blobs: $TAG, $TAG[n], $UUID, %3N, %9N, %L, "
                            "strftime"),
        Option("date_key", default="@timestamp", help="key of the record time"),
        Option("auth_type", default="key", help="key or sas"),
        Option("sas_token", help="SAS token (auth_type sas)"),
        Option("blob_uri_length", "int", "64", min=1, max=1024,
               help="random characters in a block blob's name"),
        Option("configuration_endpoint_url", help="not available in edgeship"),
        Option("configuration_endpoint_username", compat=True),
        Option("configuration_endpoint_password", compat=True),
        Option("configuration_endpoint_bearer_token", compat=True),
        Option("buffering_enabled", "bool", "false", compat=True,
               help="edgeship's storage keeps the chunks"),
        Option("buffer_dir", default="/tmp/fluent-bit/azure-blob/", compat=True),
        Option("upload_timeout", "time", "30m", compat=True),
        Option("upload_file_size", "size", "200M", compat=True),
        Option("azure_blob_buffer_key", default="key", compat=True),
        Option("store_dir_limit_size", "size", "8G", compat=True),
        Option("buffer_file_delete_early", "bool", "false", compat=True),
        Option("unify_tag", "bool", "false", compat=True),
        Option("scheduler_max_retries", "int", "3", compat=True),
        Option("delete_on_max_upload_error", "bool", "false", compat=True),
        Option("io_timeout", "time", "60s", compat=True),
        Option("database_file", compat=True),
        Option("part_size", "size", "25M", compat=True),
        Option("file_delivery_attempt_limit", "int", "1", compat=True),
        Option("part_delivery_attempt_limit", "int", "1", compat=True),
        Option("upload_parts_timeout", "time", "10M", compat=True),
        Option("upload_part_freshness_limit", "time", "6D", compat=True),
        Option("host", compat=True, help="not used (endpoint or account_name)"),
        Option("port", "int", "0", compat=True, help="not used (endpoint or tls)"),
    ) + _NET_OPTIONS

    def configure(self):
        conf = self.conf
        self.account = conf["account_name"]
        if not self.account:
            raise ConfigError("azure_blob: 'account_name' has not been set",
                              key="account_name")
        if conf["configuration_endpoint_url"]:
            raise ConfigError("azure_blob: configuration_endpoint_url is not available in "
                              "edgeship: set endpoint, the key or token, container_name and "
                              "path in the config", key="configuration_endpoint_url")
        path = conf["path"] or ""
        if path.endswith("/"):
            path = path[:-1]
        self.path = path
        self.container = conf["container_name"]
        if not self.container:
            raise ConfigError("azure_blob: 'container_name' has not been set",
                              key="container_name")
        auth = conf["auth_type"].strip().lower()
        if auth not in ("key", "sas"):
            raise ConfigError("azure_blob: invalid auth_type value '%s'" % conf["auth_type"],
                              key="auth_type")
        self.key = self.sas = None
        if auth == "key":
            if conf["shared_key"] is None:
                raise ConfigError("azure_blob: 'shared_key' has not been set",
                                  key="shared_key")
            try:
                self.key = azure.decode_shared_key(conf["shared_key"])
            except ValueError as exc:
                raise StartError("azure_blob: cannot decode shared_key: %s" % exc,
                                 key="shared_key")
        else:
            if conf["sas_token"] is None:
                raise ConfigError("azure_blob: 'sas_token' has not been set",
                                  key="sas_token")
            self.sas = conf["sas_token"][1:] if conf["sas_token"].startswith("?") \
                else conf["sas_token"]
        blob_type = conf["blob_type"].strip().lower()
        if blob_type not in ("appendblob", "blockblob"):
            raise ConfigError("azure_blob: invalid blob_type value '%s'" % conf["blob_type"],
                              key="blob_type")
        self.block = blob_type == "blockblob"
        if conf["buffering_enabled"] and not self.block:
            raise ConfigError("azure_blob: buffering is not supported with 'appendblob' "
                              "blob_type", key="buffering_enabled")
        self._configure_compression()
        self._configure_client()
        if self.path:   # an invalid template is found now, not at the first flush
            try:
                static = formats.record_template(self.path.replace("$UUID", "")).is_static
                resolve_path(self.path, "tag", time.time_ns())
            except ValueError as exc:
                raise ConfigError("azure_blob: invalid path '%s': %s" % (self.path, exc),
                                  key="path")
            if not static:
                raise ConfigError("azure_blob: path '%s' names a record key: a path takes "
                                  "$TAG, $TAG[n], $UUID and time only" % self.path, key="path")
        self.base = "/%s/%s" % (self.account, self.container) if conf["emulator_mode"] \
            else "/" + self.container
        self.date_key = conf["date_key"]

    def _configure_compression(self):
        conf = self.conf
        codec = (conf["compress"] or "").strip().lower()
        if codec not in ("", "gzip", "zstd"):
            raise ConfigError("azure_blob: invalid compress value '%s' (supported: gzip, "
                              "zstd)" % conf["compress"], key="compress")
        if conf["compress_blob"] and not self.block:
            raise ConfigError("azure_blob: the option 'compress_blob' is not compatible "
                              "with 'appendblob' blob_type", key="compress_blob")
        if conf["compress_blob"]:
            codec = codec or "gzip"
        self.codec = codec or None
        self.compress = None
        if codec == "gzip":
            self.compress = gzip_body
        elif codec == "zstd":
            try:
                import cramjam
            except ImportError as exc:
                raise ConfigError("azure_blob: compress zstd needs cramjam (pip install "
                                  "cramjam, or edgeship[all]): %s" % exc, key="compress")
            self.compress = lambda data: bytes(cramjam.zstd.compress(data))
        self.extension = ""
        self.content_type = self.content_encoding = ""
        if conf["compress_blob"]:
            self.extension = ".zst" if codec == "zstd" else ".gz"
            self.content_type = "application/" + codec
        elif self.codec:
            self.content_encoding = codec
            self.content_type = "application/json"

    def _configure_client(self):
        conf = self.conf
        endpoint = conf["endpoint"]
        if endpoint:
            try:
                if "://" not in endpoint:
                    raise ValueError("no http:// or https://")
                https, host, port, _ = split_url(endpoint, default_https=False)
            except ValueError as exc:
                raise ConfigError("azure_blob: invalid endpoint '%s': %s" % (endpoint, exc),
                                  key="endpoint")
            self.endpoint = endpoint
        else:
            https = conf["tls"]
            host, port = self.account + DOMAIN, 443 if https else 80
            self.endpoint = host
        client_conf = conf
        if https != conf["tls"]:
            client_conf = dict(conf)
            client_conf["tls"] = https
        self.client = HttpClient(client_conf, host, port)

    def summary(self):
        return "account_name=%s container_name=%s blob_type=%s endpoint=%s auth_type=%s" % (
            self.account, self.container, "blockblob" if self.block else "appendblob",
            self.endpoint, "key" if self.key is not None else "sas")

    # ------------------------------------------------------------------ requests
    def _uri(self, path, query=None):
        """The request URI of ``path`` (under the container) and ``query``, the SAS token
        added to the query."""
        uri = self.base + ("/" + quote(path, safe="/~") if path else "")
        if self.sas is not None:
            query = "%s&%s" % (query, self.sas) if query else self.sas
        return uri + "?" + query if query else uri

    async def _request(self, method, uri, body=b"", headers=(), signed_length=True,
                       content_type="", content_encoding="", host=None):
        """Send one request as Fluent Bit's azb_http_client_setup prepares it; the
        Response, Failed when none came."""
        wire = [USER_AGENT]
        if host is not None:
            wire.insert(0, ("Host", host))
        if content_type:
            wire.append(("Content-Type", content_type))
        if content_encoding:
            wire.append(("Content-Encoding", content_encoding))
        wire.extend(headers)
        wire += [("x-ms-date", azure.ms_date()), VERSION]
        if self.key is not None:
            text = azure.blob_string_to_sign(
                method, self.account, uri, wire, len(body) if signed_length else None,
                content_type, content_encoding)
            wire.append(("Authorization", "SharedKey %s:%s" % (
                self.account, azure.signature(self.key, text))))
        try:
            return await self.client.request(method, uri, wire, body)
        except InvalidRequest as exc:
            raise Failed("cannot send %s %s: %s" % (method, uri.split("?")[0], exc), ERROR)
        except HttpError as exc:
            raise Failed("could not reach %s: %s" % (self.client.label, exc))

    async def _ensure_container(self):
        if not self.conf["auto_create_container"]:
            return
        uri = self._uri("", "restype=container")
        response = await self._request("GET", uri, signed_length=False,
                                       host=self.client.host)
        if response.status == 200:
            return
        if response.status == 403:
            raise Failed("failed getting container '%s', access denied: %s"
                         % (self.container, _answer(response)))
        if response.status != 404:
            raise Failed("get container '%s' failed: %s" % (self.container,
                                                            _answer(response)))
        response = await self._request("PUT", uri, signed_length=False)
        if response.status != 201:
            raise Failed("cannot create container '%s': %s" % (self.container,
                                                               _answer(response)))
        self.log.info("container '%s' created", self.container)

    async def _append(self, folder, name, data):
        blob = "%s/%s" % (folder, name) if folder else name
        uri = self._uri(blob, "comp=appendblock")
        encoding = dict(content_type=self.content_type,
                        content_encoding=self.content_encoding)
        response = await self._request("PUT", uri, data, **encoding)
        if response.status == 201:
            return
        if response.status != 404 and b"must be 0 for Create Append" not in response.body:
            raise Failed("cannot append to blob %s: %s" % (blob, _answer(response)))
        created = await self._request("PUT", self._uri(blob), signed_length=False,
                                      headers=[("x-ms-blob-type", "AppendBlob")])
        if created.status != 201:
            raise Failed("cannot create append blob %s: %s" % (blob, _answer(created)))
        self.log.info("append blob %s created", blob)
        response = await self._request("PUT", uri, data, **encoding)
        if response.status != 201:
            raise Failed("cannot append to blob %s: %s" % (blob, _answer(response)))

    async def _put_block(self, folder, tag, data, now_ns):
        sec, nsec = divmod(now_ns, 1000000000)
        ms = sec * 1000 + nsec // 1000000
        block_id = base64.b64encode(
            ("flb-%.4f.id" % (sec + nsec / 1e9)).encode("ascii")).decode("ascii")
        name = "%s.%s.%d%s" % (tag, _random(self.conf["blob_uri_length"]), ms,
                               self.extension)
        blob = "%s/%s" % (folder, name) if folder else name
        response = await self._request(
            "PUT", self._uri(blob, "blockid=%s&comp=block" % quote(block_id, safe="")), data,
            content_type=self.content_type, content_encoding=self.content_encoding)
        if response.status != 201:
            raise Failed("cannot put a block of blob %s: %s" % (blob, _answer(response)))
        body = ('<?xml version="1.0" encoding="utf-8"?><BlockList>  <Latest>%s</Latest>'
                '</BlockList>' % block_id).encode("ascii")
        response = await self._request("PUT", self._uri(blob, "comp=blocklist"), body)
        if response.status != 201:
            raise Failed("cannot commit blob %s: %s" % (blob, _answer(response)))
        self.log.debug("blob %s committed", blob)

    async def flush(self, chunk):
        now_ns = time.time_ns()
        data = formats.render_json(chunk.events(), "json_lines", self.date_key, "iso8601")
        if self.compress is not None:
            data = self.compress(data)
        folder = resolve_path(self.path, chunk.tag, now_ns) if self.path else ""
        try:
            await self._ensure_container()
            if self.block:
                await self._put_block(folder, chunk.tag, data, now_ns)
            else:
                await self._append(folder, chunk.tag, data)
        except Failed as exc:
            self.log.error("%s; the chunk of %d records (tag %s) will %s", exc, chunk.count,
                           chunk.tag, "be retried" if exc.result == RETRY else
                           "not be retried")
            return exc.result
        return OK


PLUGIN = AzureBlobOutput
