"""What the AWS outputs (cloudwatch_logs, s3, kinesis_firehose, kinesis_streams) share: the
client of their endpoint, signing, Fluent Bit's ``auto_retry_requests`` (a request that got no
answer or a 5xx is sent again once at once), ``Failed``, the outcome of a request that did not
succeed, and how an AWS JSON API's error answer is judged.
"""
from edgeship.codecs import untrusted
from edgeship.core.schema import Option
from edgeship.engine.plugin import ERROR, RETRY
from edgeship.net import aws
from edgeship.net.http_client import HttpClient, HttpError, InvalidRequest
from edgeship.plugins.outputs._http import HttpOutput


# Error codes of a refused signature or expired token: credentials are fetched again.
CREDENTIAL_CODES = ("ExpiredTokenException", "UnrecognizedClientException",
                    "InvalidSignatureException", "IncompleteSignatureException")


def error_of(response):
    """(code, message) of an AWS JSON error answer."""
    try:
        doc = untrusted.loads(response.body)
    except ValueError:
        return None, response.first_line()
    if not isinstance(doc, dict):
        return None, response.first_line()
    code = doc.get("__type") or doc.get("code") or ""
    code = code.rsplit("#", 1)[-1] if isinstance(code, str) else ""
    message = doc.get("message") or doc.get("Message") or ""
    return code or None, message if isinstance(message, str) else str(message)


class Failed(Exception):
    """A request failed: ``result`` is RETRY or ERROR, the message is logged."""

    def __init__(self, result, text):
        Exception.__init__(self, text)
        self.result = result


class AwsOutput(HttpOutput):
    # The options every AWS output has (besides each one's own), declared once.
    common_options = (
        Option("sts_endpoint", help="STS endpoint for role_arn"),
        Option("role_arn", help="IAM role assumed with STS"),
        Option("external_id", help="external id for role_arn"),
        Option("profile", help="profile of the shared credentials file"),
        Option("auto_retry_requests", "bool", "true",
               help="send a failed request again once at once"),
    ) + aws.AWS_NET_OPTIONS

    def configure_aws(self, endpoint, port, region, service, s3=False):
        conf = self.conf
        self.client = HttpClient(aws.endpoint_conf(conf, endpoint, port))
        self.sign_with_aws(region, service, conf["profile"], conf["role_arn"],
                           conf["external_id"], conf["sts_endpoint"], region_key="region",
                           s3=s3)

    async def call(self, action, method, uri, headers, body):
        """The Response of one request (``action`` names it in messages); Failed when
        none came back or it cannot be signed."""
        client = self.client
        try:
            headers = await self.signer.sign(method, client.host_header, uri, headers, body)
        except aws.NoCredentials as exc:
            raise Failed(RETRY, "no AWS credentials: %s" % exc)
        attempts = 2 if self.conf["auto_retry_requests"] else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await client.request(method, uri, headers, body)
            except InvalidRequest as exc:
                raise Failed(ERROR, "%s: cannot send the request: %s" % (action, exc))
            except HttpError as exc:
                if last:
                    raise Failed(RETRY, "%s to %s: %s" % (action, client.label, exc))
                continue
            if response.status >= 500 and not last:
                continue
            return response

    def check(self, action, response, retry_codes):
        """Raise Failed for an answer of a JSON API that is not a success: 5xx, 429 or a
        code of ``retry_codes`` RETRY; a refused signature or token (401/403) fetches
        credentials again and RETRYs; anything else is ERROR."""
        if response.status == 200:
            return
        code, message = error_of(response)
        text = "%s: HTTP %d %s: %s" % (action, response.status, code or "", message)
        if response.status >= 500 or response.status == 429 or code in retry_codes:
            raise Failed(RETRY, text)
        if response.status in (401, 403) or code in CREDENTIAL_CODES:
            self.credentials_refused()
            raise Failed(RETRY, text)
        raise Failed(ERROR, text)

    def credentials_refused(self):
        """The service refused the signature or token: fetch credentials again."""
        self.signer.provider.invalidate()
