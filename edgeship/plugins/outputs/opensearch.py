"""opensearch output: OpenSearch ``_bulk`` (out_opensearch); the bulk code is shared with es
(``_bulk``, whose docstring lists what is kept and what differs).

OpenSearch only, as in Fluent Bit: ``Index`` may be a record-accessor template rendered per
record (``logs-$app``; a rendered name with '"', '\\' or control characters falls back to
the Index text); ``Pipeline`` goes after ``/_bulk/?``; Generate_ID is XXH3-128.
``AWS_Auth on`` signs each request with SigV4 for ``AWS_Service_Name`` (default ``es``;
``aoss`` for OpenSearch Serverless) in ``AWS_Region``, as es does.
"""
import xxhash

from edgeship.core.schema import Option
from edgeship.net.aws import AWS_AUTH_OPTIONS
from edgeship.plugins.outputs._bulk import BULK_OPTIONS, BulkOutput
from edgeship.plugins.outputs._http import HttpOutput


class OpenSearchOutput(BulkOutput):
    name = "opensearch"
    description = "OpenSearch (_bulk)"
    pipeline_sep = "/?"
    index_is_template = True
    options = BULK_OPTIONS + (
        Option("AWS_Service_Name", default="es", help="AWS service code signed with AWS_Auth"),
    ) + AWS_AUTH_OPTIONS + HttpOutput.client_options

    def configure(self):
        conf = self.conf
        BulkOutput.configure(self)
        if conf["aws_auth"]:
            self.sign_with_aws(conf["aws_region"], conf["aws_service_name"],
                               conf["aws_profile"], conf["aws_role_arn"],
                               conf["aws_external_id"], conf["aws_sts_endpoint"])

    def generated_id(self, packed):
        """XXH3-128, its two 64-bit halves (low first) printed byte by byte in memory order,
        upper case."""
        value = xxhash.xxh3_128_intdigest(packed)
        raw = ((value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")
               + (value >> 64).to_bytes(8, "little"))
        hexed = raw.hex().upper()
        return "-".join((hexed[:8], hexed[8:12], hexed[12:16], hexed[16:20], hexed[20:]))


PLUGIN = OpenSearchOutput
