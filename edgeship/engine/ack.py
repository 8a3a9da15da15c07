"""The confirm contract between inputs, the per-output queues and the outputs.

The queues themselves are ``edgeship.storage.queue.OutputQueue`` (RAM ring + spool); the
engine uses them through:

    put(budget, tag, body, count, first_ns, last_ns, ack)   a routed, packed batch; chunks
                                  group the batches of one input and tag
    close_open()                  the flush tick: open chunks close (and are spooled)
    pending()                     the closed chunks, oldest first
    await load(chunk)             its events, for a flush (read back from disk if needed)
    confirm(chunk)                the output said OK: forget it, tell its acks
    drop(chunk, reason)           given up (ERROR, out of retries, limits): forget it, count it
    chunks, empty()               what is queued

A chunk leaves the queue only through confirm() or drop(); a RETRY keeps it queued.

An ``Ack`` is released by a queue when its batch is confirmed by the output (memory storage)
or durably written to the spool (filesystem storage); it fires once every output the batch
was routed to has released it. tail commits its DB offset then, in_forward sends its ack.

``Ack`` is part of the engine's plugin API: inputs make one per batch and the engine counts
its outputs on it. Storage only calls ``release()`` on the object it is given and imports
nothing from here, so it stays out of core (the firmware has no use for it).
"""


class Ack:
    """Counts the deliveries a batch still waits for, then calls ``done()`` once.

    The engine adds one per output a batch is routed to; each release (confirm, drop or
    durable spool write) removes one.
    """

    __slots__ = ("pending", "done", "sealed")

    def __init__(self, done):
        self.pending = 0
        self.done = done
        self.sealed = False

    def add(self):
        self.pending += 1

    def release(self):
        self.pending -= 1
        if self.pending == 0 and self.sealed:
            self.done()

    def seal(self):
        """No more outputs will be added: fire now if nothing is pending."""
        self.sealed = True
        if self.pending == 0:
            self.done()
