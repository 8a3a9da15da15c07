"""bigquery output: BigQuery streaming inserts, ``tabledata.insertAll`` (out_bigquery).

Kept from Fluent Bit 5.1.1: ``dataset_id`` and ``table_id`` are required, ``project_id``
defaults to the credentials' one (a config error without either); the service account and
its OAuth2 token are ``edgeship.net.gcp``'s (scope ``bigquery.insertdata``). Each chunk is one
``POST /bigquery/v2/projects/<project>/datasets/<dataset>/tables/<table>/insertAll`` to
``www.googleapis.com:443`` over TLS, headers User-Agent ``Fluent-Bit``, Content-Type
``application/json``, Authorization ``Bearer <token>``; the body
``{"kind":"bigquery#tableDataInsertAllRequest","skipInvalidRows":<skip_invalid_rows>,
"ignoreUnknownValues":<ignore_unknown_values>,"rows":[{"json":<record>},...]}`` (no
insertId, no time: the record only). 200 OK; any other status, no answer or no token RETRY.

Differences:
- ``Host`` and ``Port`` (accepted and ignored by Fluent Bit) point the inserts elsewhere (a
  local stand-in, a private endpoint); ``tls off`` sends them in plain HTTP.
- A 200 answer that lists ``insertErrors`` (rows BigQuery refused: a type that does not
  fit the schema...) is logged with the count and the first reason; with
  ``skip_invalid_rows`` the other rows were inserted and the chunk is done, without it no
  row was and the chunk is dropped (ERROR: counted, not retried, as sending it again would
  fail again). Fluent Bit counts both as delivered, silently. A 401 forgets the token so
  the retry asks a new one.
- Workload identity federation (``enable_identity_federation`` and its AWS options) is
  accepted and refused at start: not in edgeship.
"""
from edgeship.codecs import formats, untrusted
from edgeship.core.errors import ConfigError, StartError
from edgeship.core.schema import Option
from edgeship.engine.plugin import ERROR, OK, RETRY
from edgeship.net import gcp
from edgeship.net.http_client import TLS_ON_NET_OPTIONS, HttpClient
from edgeship.plugins.outputs._http import USER_AGENT, HttpOutput

SCOPE = "https://www.googleapis.com/auth/bigquery.insertdata"
DEFAULT_HOST = "www.googleapis.com"
RESOURCE = "/bigquery/v2/projects/%s/datasets/%s/tables/%s/insertAll"
_FEDERATION = ("aws_region", "project_number", "pool_id", "provider_id",
               "google_service_account")


def _flag(value):
    return b"true" if value else b"false"


class BigQueryOutput(HttpOutput):
    name = "bigquery"
    description = "BigQuery streaming inserts"
    options = gcp.CREDENTIAL_OPTIONS + (
        Option("project_id", help="project of the table (default: the credentials')"),
        Option("dataset_id", help="dataset of the table (required)"),
        Option("table_id", help="table (required)"),
        Option("skip_invalid_rows", "bool", "false",
               help="insert the valid rows of a request that has invalid ones"),
        Option("ignore_unknown_values", "bool", "false",
               help="accept rows with values the schema does not have (they are dropped)"),
        Option("enable_identity_federation", "bool", "false",
               help="workload identity federation from AWS: not in edgeship"),
    ) + tuple(Option(key, compat=True) for key in _FEDERATION) + (
        Option("Host", default=DEFAULT_HOST, help="host of the BigQuery API"),
        Option("Port", "int", "443", min=1, max=65535, help="port of the BigQuery API"),
    ) + TLS_ON_NET_OPTIONS

    def configure(self):
        conf = self.conf
        for key in ("dataset_id", "table_id"):
            if not conf[key]:
                raise ConfigError("bigquery: property '%s' is not defined" % key, key=key)
        if conf["enable_identity_federation"]:
            raise StartError("bigquery: enable_identity_federation is not supported by "
                             "edgeship; use a service account", key="enable_identity_federation")
        account = gcp.service_account(conf)
        if not account.get("client_email"):
            raise ConfigError("bigquery: service_account_email/client_email is not defined",
                              key="google_service_credentials")
        if not account.get("private_key"):
            raise ConfigError("bigquery: service_account_secret/private_key is not defined",
                              key="service_account_secret")
        project = conf["project_id"] or account.get("project_id")
        if not project:
            raise ConfigError("bigquery: no 'project_id' configured or present in "
                              "credentials", key="project_id")
        self.uri = RESOURCE % (project, conf["dataset_id"], conf["table_id"])
        self.token = gcp.AccessToken(conf, account, SCOPE)
        self.client = HttpClient(conf, conf["host"], conf["port"])
        self.head = (b'{"kind":"bigquery#tableDataInsertAllRequest","skipInvalidRows":'
                     + _flag(conf["skip_invalid_rows"]) + b',"ignoreUnknownValues":'
                     + _flag(conf["ignore_unknown_values"]) + b',"rows":[')

    def summary(self):
        return "%s%s" % (self.client.label, self.uri)

    def body(self, chunk):
        parts = formats.json_batch([record for _, record in chunk.events()])
        return self.head + b",".join([b'{"json":' + part + b"}" for part in parts]) + b"]}"

    def judge(self, status):
        return OK if status == 200 else RETRY

    def _insert_errors(self, response, count):
        """OK or ERROR for a 200 answer, by its insertErrors (logged)."""
        if b"insertErrors" not in response.body:
            return OK
        try:
            errors = untrusted.loads(response.body).get("insertErrors") or []
        except (ValueError, AttributeError):
            return OK
        if not errors:
            return OK
        reason = ""
        for row in errors:
            found = [e for e in (row.get("errors") or []) if isinstance(e, dict)
                     and e.get("reason") != "stopped"] if isinstance(row, dict) else []
            if found:
                reason = "%s: %s" % (found[0].get("reason"), found[0].get("message"))
                break
        if self.conf["skip_invalid_rows"]:
            self.log.error("BigQuery refused %d of %d rows, the others were inserted (%s)",
                           len(errors), count, reason)
            return OK
        self.log.error("BigQuery refused the request's rows (%d with errors, %s): none of "
                       "the %d rows was inserted", len(errors), reason, count)
        return ERROR

    async def flush(self, chunk):
        try:
            authorization = await self.token.header()
        except gcp.TokenError as exc:
            self.log.error("cannot retrieve oauth2 token: %s", exc)
            return RETRY
        headers = [USER_AGENT, ("Content-Type", "application/json"),
                   ("Authorization", authorization)]
        result, response = await self.send("POST", self.uri, headers, self.body(chunk))
        if response is not None and response.status == 401:
            self.token.forget()
        if result == OK:
            result = self._insert_errors(response, chunk.count)
        return result

    async def stop(self):
        await HttpOutput.stop(self)
        self.token.close()


PLUGIN = BigQueryOutput
