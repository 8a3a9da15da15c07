"""The confirm contract between inputs, storage and the outputs.

The engine hands each routed batch to ``edgeship.storage.manager.Storage.put`` with the
batch's ``Ack``; storage releases it when its chunk is confirmed by the output (memory
storage) or durably written to the spool (filesystem storage), or dropped. A chunk leaves
storage only through ``confirm`` or ``drop``; a RETRY puts it back.

An ``Ack`` fires once every output the batch was routed to has released it: tail commits
its DB offset then, in_forward sends its ack, mqtt_client its PUBACK.

``Ack`` is part of the engine's plugin API: inputs make one per batch and the engine counts
its outputs on it. Storage only calls ``add()`` and ``release()`` on the object it is given
and imports nothing from here, so it stays out of core (the firmware has no use for it).
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
