"""null output: discards every record and reports OK."""
from edgeship.engine.plugin import LOGS, METRICS, OK, Output


class NullOutput(Output):
    name = "null"
    description = "Throws away events"
    reads_records = False
    signals = (LOGS, METRICS)

    async def flush(self, chunk):
        return OK


PLUGIN = NullOutput
