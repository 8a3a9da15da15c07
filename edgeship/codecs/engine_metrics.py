"""edgeship's own counters as Fluent Bit 5.1.1's internal metrics (flb_me_get_cmetrics): the
context the fluentbit_metrics input emits and the monitoring API's /api/v2/metrics serves.

``context_of(snapshot)`` takes the engine's snapshot (``Engine.metrics_snapshot``: uptime,
process start, hostname, reload count, storage totals, and per input, filter and output
instance its counters) and builds a ``cmetrics.Context`` with Fluent Bit's family names, help
texts and labels (``name`` is the instance's Alias or ``plugin.N``).

Kept from Fluent Bit: fluentbit_uptime, fluentbit_hot_reloaded_times,
fluentbit_process_start_time_seconds, fluentbit_build_info (whose value is the start time),
the storage gauges, fluentbit_input_{records,bytes}_total and the tail/fluentbit_metrics
counters an input keeps, fluentbit_input_ingestion_paused and the input storage gauges,
fluentbit_filter_{add,drop}_records_total and records_total,
fluentbit_output_{proc_records, proc_bytes, errors, retries, retries_failed, dropped_records,
retried_records}_total.
Differences: ``build_info``'s ``version`` label is edgeship's version; what edgeship does not
count (logger and router counters, ring buffers, processors, filter bytes, upstream
connections, latency histograms) is not there rather than there as zero.
"""
from edgeship.codecs import cmetrics as cm

# Counters an input may keep beside records and bytes (context.count(name)), with
# Fluent Bit's help texts.
INPUT_COUNTERS = {
    "metrics_scrapes": "Number of total metrics scrapes",
    "files_opened": "Total number of opened files",
    "files_closed": "Total number of closed files",
    "files_rotated": "Total number of rotated files",
    "multiline_truncated": "Total number of truncated occurences for multilines",
    "long_line_truncated": "Total number of truncated occurences for long lines",
    "long_line_skipped": "Total number of skipped occurences for long lines",
}
OUTPUT_COUNTERS = (
    ("proc_records", "Number of processed output records."),
    ("proc_bytes", "Number of processed output bytes."),
    ("errors", "Number of output errors."),
    ("retries", "Number of output retries."),
    ("retries_failed",
     "Number of abandoned batches because the maximum number of re-tries was reached."),
    ("dropped_records", "Number of dropped records."),
    ("retried_records", "Number of retried records."),
)
FILTER_COUNTERS = (
    ("drop_records", "Total number of dropped records."),
    ("add_records", "Total number of new added records."),
    ("records", "Total number of new records processed."),
)
STORAGE_GAUGES = (
    ("chunks", "Total number of chunks in the storage layer."),
    ("mem_chunks", "Total number of memory chunks."),
    ("fs_chunks", "Total number of filesystem chunks."),
    ("fs_chunks_up", "Total number of filesystem chunks up in memory."),
    ("fs_chunks_down", "Total number of filesystem chunks down."),
)


def context_of(snapshot, now_ns):
    """The internal metrics of ``snapshot`` (``Engine.metrics_snapshot`` plus ``version``) at
    ``now_ns`` as a cmetrics Context, families in Fluent Bit's order."""
    ctx = cm.Context()
    host = [snapshot["hostname"]]
    ctx.counter("fluentbit", "", "uptime", "Number of seconds that Fluent Bit has been running.",
                ["hostname"]).set(snapshot["uptime"], host, now_ns)
    ctx.gauge("fluentbit", "process", "start_time_seconds",
              "Start time of the process since unix epoch in seconds.",
              ["hostname"]).set(snapshot["process_start"], host, now_ns)
    ctx.gauge("fluentbit", "", "build_info", "Build version information.",
              ["hostname", "version", "os"]).set(
                  snapshot["process_start"], host + [snapshot["version"], "linux"], now_ns)
    ctx.counter("fluentbit", "", "hot_reloaded_times", "Collect the count of hot reloaded times.",
                ["hostname"]).set(snapshot["reloads"], host, now_ns)
    storage = snapshot.get("storage")
    if storage is not None:
        for key, desc in STORAGE_GAUGES:
            ctx.gauge("fluentbit", "storage", key, desc).set(storage[key], (), now_ns)

    inputs = snapshot["inputs"]
    bytes_total = ctx.counter("fluentbit", "input", "bytes_total", "Number of input bytes.",
                              ["name"])
    records_total = ctx.counter("fluentbit", "input", "records_total",
                                "Number of input records.", ["name"])
    extra = {}
    for name, counters in inputs.items():
        bytes_total.set(counters.get("bytes", 0), [name], now_ns)
        records_total.set(counters.get("records", 0), [name], now_ns)
        for key, desc in INPUT_COUNTERS.items():
            if key in counters:
                family = extra.get(key)
                if family is None:
                    family = extra[key] = ctx.counter("fluentbit", "input", key + "_total",
                                                      desc, ["name"])
                family.set(counters[key], [name], now_ns)
    paused = ctx.gauge("fluentbit", "input", "ingestion_paused", "Is the input paused or not?",
                       ["name"])
    overlimit = ctx.gauge("fluentbit", "input", "storage_overlimit",
                          "Is the input memory usage overlimit ?.", ["name"])
    memory = ctx.gauge("fluentbit", "input", "storage_memory_bytes",
                       "Memory bytes used by the chunks.", ["name"])
    for name, counters in inputs.items():
        paused.set(1 if counters.get("paused") else 0, [name], now_ns)
        if "overlimit" in counters:
            overlimit.set(1 if counters["overlimit"] else 0, [name], now_ns)
            memory.set(counters["mem_bytes"], [name], now_ns)

    filter_families = [(key, ctx.counter("fluentbit", "filter", key + "_total", desc, ["name"]))
                       for key, desc in FILTER_COUNTERS]
    for name, counters in snapshot["filters"].items():
        for key, family in filter_families:
            family.set(counters.get(key, 0), [name], now_ns)

    for key, desc in OUTPUT_COUNTERS:
        family = ctx.counter("fluentbit", "output", key + "_total", desc, ["name"])
        for name, counters in snapshot["outputs"].items():
            family.set(counters.get(key, 0), [name], now_ns)
    return ctx
