"""es output: Elasticsearch ``_bulk`` (out_es); the bulk code is shared with opensearch
(``_bulk``, whose docstring lists what is kept and what differs).

es only: ``HTTP_API_Key`` (``Authorization: ApiKey <key>``), ``Cloud_ID`` (the host from
``<name>:<base64 region$es_host[:port]$kibana>``, port 443 unless it names one) and
``Cloud_Auth`` (``user:password``). ``AWS_Auth on`` signs each request with SigV4 for
``AWS_Service_Name`` (default ``es``) in ``AWS_Region`` (required then; see
``edgeship.net.aws`` for the credentials and ``AWS_Role_ARN``). Generate_ID hashes
with MurmurHash3 (the optional ``mmh3`` package, extra ``es``). Workers 2 by default, as in Fluent Bit.
"""
import base64
import binascii
import struct

from edgeship.core.errors import ConfigError, StartError
from edgeship.core.schema import Option
from edgeship.net.aws import AWS_AUTH_OPTIONS
from edgeship.plugins.outputs._bulk import BULK_OPTIONS, BulkOutput
from edgeship.net.http_client import basic_auth
from edgeship.plugins.outputs._http import HttpOutput


class EsOutput(BulkOutput):
    name = "es"
    description = "Elasticsearch (_bulk)"
    workers = 2
    options = BULK_OPTIONS + (
        Option("HTTP_API_Key", help="API key: Authorization: ApiKey <key>"),
        Option("Cloud_ID", help="Elastic Cloud deployment id (sets Host and Port)"),
        Option("Cloud_Auth", help="Elastic Cloud user:password"),
        Option("AWS_Service_Name", default="es", help="AWS service code signed with AWS_Auth"),
    ) + AWS_AUTH_OPTIONS + HttpOutput.client_options

    def configure(self):
        conf = self.conf
        BulkOutput.configure(self)
        if conf["aws_auth"]:
            self.sign_with_aws(conf["aws_region"], conf["aws_service_name"],
                               conf["aws_profile"], conf["aws_role_arn"],
                               conf["aws_external_id"], conf["aws_sts_endpoint"])
        if conf["generate_id"]:
            try:
                import mmh3  # noqa: F401
            except ImportError as exc:
                raise ConfigError("es: Generate_ID needs mmh3 (%s): pip install "
                                  "'edgeship[es]'" % exc, key="generate_id")
        if conf["cloud_auth"]:
            user, _, password = conf["cloud_auth"].partition(":")
            self.auth = ("Authorization", basic_auth(user, password))
        if conf["http_api_key"]:
            self.auth = ("Authorization", "ApiKey " + conf["http_api_key"])
        if self.auth is not None:
            self.headers = [h for h in self.headers if h[0] != "Authorization"]
            self.headers.insert(1, self.auth)

    def generated_id(self, packed):
        """MurmurHash3 x64-128 (seed 42), printed as 8 little-endian 16-bit words."""
        import mmh3
        digest = mmh3.hash_bytes(packed, 42, True)
        return "%04x%04x-%04x-%04x-%04x-%04x%04x%04x" % struct.unpack("<8H", digest)

    def cloud_address(self):
        cloud_id = self.conf["cloud_id"]
        if not cloud_id:
            return None, None
        try:
            encoded = cloud_id.split(":", 1)[1]
            region, es_host = base64.b64decode(encoded).decode("utf-8").split("$")[:2]
        except (IndexError, ValueError, binascii.Error):
            raise StartError("es: cannot decode Cloud_ID", key="cloud_id")
        host, _, port = es_host.partition(":")
        try:
            return "%s.%s" % (host, region), int(port) if port else 443
        except ValueError:
            raise StartError("es: bad port in Cloud_ID", key="cloud_id")


PLUGIN = EsOutput
