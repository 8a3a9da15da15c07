"""Durable delivery: per-output queues of serialized chunks, a byte-budget ring in RAM, and
the spool (append-only segment files on disk) behind it.

    records   events <-> msgpack bytes (the form chunks have in RAM and on disk)
    segment   one segment file with its sidecar index and confirm files
    spool     the segments of one output: append, confirm, limit, replay
    queue     OutputQueue: what the engine puts batches in and flushes chunks from
    manager   Storage: the engine-wide side (input budgets, the RAM ring, fsync, metrics)
    tool      ``edgeship spool dump|check``
"""
