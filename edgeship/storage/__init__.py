"""Durable delivery: per-output queues of chunks (Fluent Bit's entries, ``codecs.entries``),
a byte-budget ring in RAM, and the spool (append-only segment files on disk) behind it.

    legacy    spool format 1 (chunks as one msgpack array), read back after an upgrade
    segment   one segment file with its sidecar index and confirm files
    spool     the segments of one output: append, confirm, limit, replay
    queue     OutputQueue: the chunks of one output (called only by the manager)
    manager   Storage: what the engine uses: chunk life cycle, input budgets, the RAM ring,
              fsync, metrics; it reports back by callbacks
    tool      ``edgeship spool dump|check``
"""
