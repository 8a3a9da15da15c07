"""Per-output queue of chunks (memory only).

This is the contract the durable ring buffer + spool implements too:

    put(tag, events, size, ack)  append a routed batch; chunks group batches of one tag
    take()                       the chunks ready to flush (open chunks are closed first)
    confirm(chunk)               the output said OK: forget it, tell its acks
    drop(chunk, reason)          given up (ERROR or out of retries): forget it, tell its acks
    bytes, chunks                what is queued, for budgets and metrics

A chunk leaves the queue only through confirm() or drop(); a RETRY keeps it queued.
"""


class Ack:
    """Counts the deliveries a batch still waits for, then calls ``done()`` once.

    The engine adds one per output a batch is routed to; each confirm/drop removes one.
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


class Chunk:
    __slots__ = ("tag", "events", "size", "acks", "attempts", "retry_at", "closed")

    def __init__(self, tag):
        self.tag = tag
        self.events = []
        self.size = 0
        self.acks = []
        self.attempts = 0
        self.retry_at = 0.0
        self.closed = False


class MemoryQueue:
    # Fluent Bit closes a chunk around 2 MB; a smaller chunk keeps Python objects (several
    # times larger than the raw bytes) within a Pi's memory.
    CHUNK_BYTES = 512 * 1024

    def __init__(self, on_full=None):
        self.open = {}          # tag -> Chunk still accepting batches
        self.ready = []         # closed chunks waiting for a flush, oldest first
        self.bytes = 0
        self.chunks = 0
        self.on_full = on_full  # called when a chunk closes because it is full

    def put(self, tag, events, size, ack):
        chunk = self.open.get(tag)
        if chunk is None:
            chunk = self.open[tag] = Chunk(tag)
            self.chunks += 1
        chunk.events.extend(events)
        chunk.size += size
        self.bytes += size
        if ack is not None:
            ack.add()
            chunk.acks.append(ack)
        if chunk.size >= self.CHUNK_BYTES:
            self._close(chunk)
            if self.on_full is not None:
                self.on_full()

    def _close(self, chunk):
        chunk.closed = True
        del self.open[chunk.tag]
        self.ready.append(chunk)

    def take(self):
        for chunk in list(self.open.values()):
            self._close(chunk)
        chunks, self.ready = self.ready, []
        return chunks

    def requeue(self, chunk):
        """A RETRY: keep the chunk for a later flush."""
        self.ready.append(chunk)

    def _forget(self, chunk):
        self.bytes -= chunk.size
        self.chunks -= 1
        for ack in chunk.acks:
            ack.release()

    def confirm(self, chunk):
        self._forget(chunk)

    def drop(self, chunk, reason=""):
        self._forget(chunk)

    def empty(self):
        return self.chunks == 0
