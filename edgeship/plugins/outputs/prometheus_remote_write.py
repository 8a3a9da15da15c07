"""prometheus_remote_write output: metrics pushed to a Prometheus remote write endpoint
(out_prometheus_remote_write).

Kept from Fluent Bit 5.1.1: metrics only; each chunk one ``POST <URI>`` with a WriteRequest
(``codecs.remote_write``, every context of the chunk) compressed as raw snappy (the default)
or gzip (``compression gzip``); headers Content-Type ``application/x-protobuf``,
``X-Prometheus-Remote-Write-Version: 0.1.0``, Content-Encoding, User-Agent, Authorization,
each ``header``; ``add_label NAME VALUE`` (repeatable); 200-205 OK, 400 ERROR, anything else
or no answer RETRY.

``aws_auth on`` signs each request with SigV4 (``edgeship.net.aws``) for ``aws_service``
(default ``aps``, Amazon Managed Prometheus) in ``aws_region`` (required then), credentials
from Fluent Bit's chain, ``aws_profile``, ``aws_role_arn`` + ``aws_external_id`` assumed
through ``aws_sts_endpoint``.

Needs the ``remote_write`` extra (protobuf and cramjam); without it the config is refused at
start, naming the extra.
"""
import time

from edgeship.codecs import cmetrics
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import ERROR, METRICS, OK, RETRY
from edgeship.net.aws import AWS_AUTH_OPTIONS
from edgeship.net.http_client import address_options, gzip_body
from edgeship.plugins.outputs._http import USER_AGENT, HttpOutput


class PrometheusRemoteWrite(HttpOutput):
    name = "prometheus_remote_write"
    description = "Prometheus remote write"
    signals = (METRICS,)
    options = address_options(80) + (
        Option("URI", default="/", help="request path of the remote write endpoint"),
        Option("add_label", multiple=True, help="'NAME VALUE' label added to every series"),
        Option("compression", default="snappy", choices=("snappy", "gzip"),
               help="body compression"),
        Option("aws_service", default="aps", help="AWS service code signed with aws_auth"),
        Option("log_response_payload", "bool", "true", compat=True),
    ) + AWS_AUTH_OPTIONS + HttpOutput.client_options

    def configure(self):
        conf = self.conf
        try:    # imported here: a missing extra is a config error, not a traceback
            import cramjam
            import google.protobuf  # noqa: F401  (remote_write imports it when encoding)
            from edgeship.codecs import remote_write
        except ImportError as exc:
            raise ConfigError("prometheus_remote_write needs the remote_write extra "
                              "(pip install 'edgeship[remote_write]'): %s" % exc)
        self.encoder = remote_write
        self.snappy = cramjam.snappy
        self.configure_client()
        if conf["aws_auth"]:
            self.sign_with_aws(conf["aws_region"], conf["aws_service"], conf["aws_profile"],
                               conf["aws_role_arn"], conf["aws_external_id"],
                               conf["aws_sts_endpoint"])
        self.uri = conf["uri"] if conf["uri"].startswith("/") else "/" + conf["uri"]
        self.labels = []
        for text in conf["add_label"]:
            parts = text.split()
            if len(parts) != 2:
                raise ConfigError("'add_label' expects a name and a value", key="add_label")
            self.labels.append((parts[0], parts[1]))

    def judge(self, status):
        if 200 <= status <= 205:
            return OK
        return ERROR if status == 400 else RETRY

    async def flush(self, chunk):
        contexts = cmetrics.decode(chunk.payload)
        body = self.encoder.encode(contexts, self.labels, time.time_ns())
        headers = [("Content-Type", "application/x-protobuf"),
                   ("X-Prometheus-Remote-Write-Version", "0.1.0")]
        if self.conf["compression"] == "gzip":
            headers.append(("Content-Encoding", "gzip"))
            body = gzip_body(body)
        else:
            headers.append(("Content-Encoding", "snappy"))
            body = bytes(self.snappy.compress_raw(body))
        headers.append(USER_AGENT)
        if self.auth:
            headers.append(self.auth)
        headers.extend(self.config_headers)
        result, _ = await self.send("POST", self.uri, headers, body)
        return result


PLUGIN = PrometheusRemoteWrite
