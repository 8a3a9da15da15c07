"""slack output: each chunk as one message to a Slack incoming webhook (out_slack).

Kept from Fluent Bit 5.1.1 (checked on the real binary): ``Webhook`` (required) is the URL
(``https://hooks.slack.com/services/...``, port 443 unless given; another scheme stops
the output from starting, a warning only in ``--dry-run``); one
POST per chunk with ``Content-Type: application/json`` and ``User-Agent: Fluent-Bit``, the
body ``{"text": TEXT}``, TEXT holding a line per record: ``["timestamp": SEC.NSEC, RECORD]``
with the record as msgpack's debug print writes it (``{"k"=>"v"}``, stdout's default
format). A 200-205 answer is delivered (logged at info level with its body, as there),
anything else or no answer retried.
"""
from edgeship.codecs import formats
from edgeship.core.errors import ConfigError, StartError
from edgeship.core.schema import Option
from edgeship.net.http_client import HTTP_CLIENT_OPTIONS, HttpClient, split_url
from edgeship.plugins.outputs._http import USER_AGENT, HttpOutput, retry_unless_success

NS = 1000000000
# Fluent Bit's slack output takes only its webhook and the networking and TLS keys.
_NOT_SLACK = ("http_user", "http_passwd", "header", "compress", "proxy")


def message_text(events):
    """The message of a chunk's events."""
    return "".join(['["timestamp": %d.%09d, %s]\n'
                    % ((t // NS) & 0xFFFFFFFF, t % NS, formats.print_value(record))
                    for t, record in events])


class SlackOutput(HttpOutput):
    name = "slack"
    description = "Send events to a Slack channel"
    success_logged_at_info = True
    options = (
        Option("Webhook", help="the incoming webhook URL (required)"),
    ) + tuple(o for o in HTTP_CLIENT_OPTIONS if o.key not in _NOT_SLACK)

    def configure(self):
        webhook = self.conf["webhook"]
        if not webhook:
            raise ConfigError("slack: the 'webhook' property is required", key="webhook")
        try:
            https, host, port, self.uri = split_url(webhook, default_https=False)
        except ValueError as exc:
            raise ConfigError("slack: invalid webhook '%s': %s" % (webhook, exc),
                              key="webhook")
        if not https:
            raise StartError("slack: invalid protocol 'http', we expected 'https'",
                             key="webhook")
        self.client = HttpClient(dict(self.conf, tls=True), host, port)
        self.headers = [("Content-Type", "application/json"), USER_AGENT]

    judge = staticmethod(retry_unless_success)

    async def flush(self, chunk):
        body = formats.to_json({"text": message_text(chunk.events())})
        result, _ = await self.send("POST", self.uri, list(self.headers), body)
        return result


PLUGIN = SlackOutput
