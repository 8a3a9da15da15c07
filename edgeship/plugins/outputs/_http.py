"""What the HTTP outputs (http, es, opensearch, loki, splunk, datadog) share: the client
built from their options, Fluent Bit's common headers, and the status rules.

Each plugin composes its body and its own header list, then calls ``self.send()``; the
response's status is judged by the plugin's ``judge()`` (Fluent Bit's per-plugin rules,
table 1.3 of the reference): by default 200-205 OK, 408/429/5xx RETRY, other 4xx ERROR
logged with the first line of the body, no response at all RETRY. An output that calls
``sign_with_aws()`` has every request signed with SigV4 (``edgeship.net.aws``) just before
it is sent; without credentials the flush is retried.
"""
from edgeship.core.errors import ConfigError
from edgeship.engine.plugin import ERROR, OK, RETRY, Output
from edgeship.net import aws
from edgeship.net.http_client import (HTTP_CLIENT_OPTIONS, HttpClient, HttpError,
                                      InvalidRequest, basic_auth, gzip_body, gzip_option,
                                      parse_headers)

USER_AGENT = ("User-Agent", "Fluent-Bit")


def default_judge(status):
    """Fluent Bit's out_http rule: 200-205 OK, 4xx but 408/429 ERROR, anything else RETRY."""
    if 200 <= status <= 205:
        return OK
    if 400 <= status < 500 and status not in (408, 429):
        return ERROR
    return RETRY


def retry_unless_success(status):
    """The rule of the outputs that retry every failure (datadog, nrlogs, slack, logdna):
    200-205 OK, any other status RETRY."""
    return OK if 200 <= status <= 205 else RETRY


class HttpOutput(Output):
    """An output that sends each chunk as HTTP requests through one HttpClient."""

    client_options = HTTP_CLIENT_OPTIONS
    signer = None
    # Fluent Bit's slack and logdna log every success at info level, with the answer.
    success_logged_at_info = False

    def configure_client(self, host=None, port=None):
        conf = self.conf
        self.client = HttpClient(conf, host, port)
        self.config_headers = parse_headers(conf["header"])
        self.gzip = self.gzip_wanted(conf["compress"])
        self.auth = None
        if conf["http_user"]:
            self.auth = ("Authorization", basic_auth(conf["http_user"], conf["http_passwd"]))

    def sign_with_aws(self, region, service, profile=None, role_arn=None, external_id=None,
                      sts_endpoint=None, region_key="aws_region", s3=False):
        """Sign every request with SigV4 for ``service`` in ``region`` (a config error
        naming ``region_key`` when it is missing), credentials from Fluent Bit's chain."""
        if not region:
            raise ConfigError("%s: AWS signing needs %s" % (self.name, region_key),
                              key=region_key)
        chain = aws.credentials_chain(region, sts_endpoint, profile, role_arn, external_id)
        self.signer = aws.Signer(chain, region, service, s3)

    def gzip_wanted(self, compress):
        """True for ``compress gzip`` (ConfigError for what the plugin cannot send)."""
        return gzip_option(compress)

    def encode_body(self, body, headers):
        """``body`` gzipped when ``compress gzip`` is set (adding the header)."""
        if self.gzip:
            headers.append(("Content-Encoding", "gzip"))
            return gzip_body(body)
        return body

    def judge(self, status):
        return default_judge(status)

    async def send(self, method, uri, headers, body):
        """``(result, response)``: OK/RETRY/ERROR, and the Response or None."""
        client = self.client
        if self.signer is not None:
            try:
                headers = await self.signer.sign(method, client.host_header, uri, headers, body)
            except aws.NoCredentials as exc:
                self.log.error("no AWS credentials, the chunk will be retried: %s", exc)
                return RETRY, None
        try:
            response = await client.request(method, uri, headers, body)
        except InvalidRequest as exc:
            self.log.error("cannot send a request to %s, dropped: %s", client.label, exc)
            return ERROR, None
        except HttpError as exc:
            self.log.error("could not flush records to %s: %s", client.label, exc)
            return RETRY, None
        result = self.judge(response.status)
        self.report(result, response)
        return result, response

    def report(self, result, response):
        """Log the answer judged ``result`` (a plugin may log it as its Fluent Bit does)."""
        label = self.client.label
        if result == OK and self.success_logged_at_info:
            self.log.info("%s, HTTP status=%d %s", label, response.status,
                          response.first_line())
        elif result == OK:
            self.log.debug("%s, HTTP status=%d", label, response.status)
        elif result == ERROR:
            self.log.error("%s, HTTP status=%d %s; the chunk will not be retried", label,
                           response.status, response.first_line())
        else:
            self.log.error("%s, HTTP status=%d %s", label, response.status,
                           response.first_line())

    async def stop(self):
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
