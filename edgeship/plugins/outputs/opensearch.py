"""opensearch output: OpenSearch ``_bulk`` (out_opensearch); the bulk code is shared with es
(``_bulk``, whose docstring lists what is kept and what differs).

OpenSearch only, as in Fluent Bit: ``Index`` may be a record-accessor template rendered per
record (``logs-$app``; a rendered name with '"', '\\' or control characters falls back to
the Index text); ``Pipeline`` goes after ``/_bulk/?``; Generate_ID is XXH3-128. AWS SigV4
options are accepted and not supported (a config error when AWS_Auth is on).
"""
import xxhash

from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.plugins.outputs._bulk import BULK_OPTIONS, BulkOutput
from edgeship.plugins.outputs._http import HttpOutput


class OpenSearchOutput(BulkOutput):
    name = "opensearch"
    description = "OpenSearch (_bulk)"
    pipeline_sep = "/?"
    index_is_template = True
    options = BULK_OPTIONS + (
        Option("AWS_Auth", "bool", "off", help="AWS SigV4 (not supported)"),
        Option("AWS_Region", compat=True),
        Option("AWS_Service_Name", compat=True),
        Option("AWS_Role_ARN", compat=True),
        Option("AWS_STS_Endpoint", compat=True),
        Option("AWS_External_ID", compat=True),
        Option("AWS_Profile", compat=True),
    ) + HttpOutput.client_options

    def configure(self):
        if self.conf["aws_auth"]:
            raise ConfigError("opensearch: AWS_Auth (SigV4) is not supported", key="aws_auth")
        BulkOutput.configure(self)

    def generated_id(self, packed):
        """XXH3-128, its two 64-bit halves (low first) printed byte by byte in memory order,
        upper case."""
        value = xxhash.xxh3_128_intdigest(packed)
        raw = ((value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")
               + (value >> 64).to_bytes(8, "little"))
        hexed = raw.hex().upper()
        return "-".join((hexed[:8], hexed[8:12], hexed[12:16], hexed[16:20], hexed[20:]))


PLUGIN = OpenSearchOutput
