"""What the outputs that write bytes to a socket (tcp, syslog, gelf) share: a flush turns the
chunk into payloads (``payloads(chunk)``, the plugin's) and hands them to one
``net.stream.Sender`` (``self.sender``, made by the plugin's configure); no acknowledgement
exists, so "sent" means in the kernel (see net/stream.py). A send that failed is logged with
the chunk's record count and retried; the sender closes when the output stops.
"""
from edgeship.engine.plugin import OK, RETRY, Output


class SenderOutput(Output):
    sender = None

    def payloads(self, chunk):
        """The bytes objects to send for ``chunk``, in order."""
        raise NotImplementedError

    async def flush(self, chunk):
        payloads = self.payloads(chunk)
        if not payloads:
            return OK
        problem = await self.sender.send(payloads)
        if problem is not None:
            self.log.error("could not deliver %d records to %s: %s", chunk.count,
                           self.sender.label, problem)
            return RETRY
        return OK

    async def stop(self):
        self.sender.close()
