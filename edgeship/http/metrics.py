"""The pipeline's own metrics under Fluent Bit's names, in the shapes its monitoring API
gives them (research: Fluent Bit 5.1.1 src/http_server/api/v1, flb_metrics_exporter.c); the
``/api/v2/metrics`` context is ``edgeship.codecs.engine_metrics``'s, the fluentbit_metrics
input's too:

- ``v1(engine)``: the ``/api/v1/metrics`` JSON (input records/bytes, filter and output
  counters, keys in Fluent Bit's order) and ``v1_prometheus`` its old-style text;
- ``storage(engine)``: the ``/api/v1/storage`` JSON.

Instances are named as in Fluent Bit: Alias, else plugin.N. Differences: edgeship's chunks
belong to outputs, so an input's chunk counts are those of the chunks it made that are still
queued, and /api/v1/storage adds ``output_chunks`` (per output: chunks and bytes in memory and
in its spool) and an input's ``paused``; no ``storage_backlog.N`` pseudo-input; filter bytes
are not counted.
"""
import time

from edgeship.codecs import cmetrics, engine_metrics
from edgeship.core import FLUENT_BIT_VERSION  # the API level answered ("/", build_info)

_OUTPUT_HELP = dict(engine_metrics.OUTPUT_COUNTERS)
_OUTPUT_KEYS = tuple(_OUTPUT_HELP)
_STORAGE_GAUGES = (("chunks", "total_chunks", "Total number of chunks in the storage layer."),
                   ("mem_chunks", "mem_chunks", "Total number of memory chunks."),
                   ("fs_chunks", "fs_chunks", "Total number of filesystem chunks."),
                   ("fs_chunks_up", "fs_chunks_up",
                    "Total number of filesystem chunks up in memory."),
                   ("fs_chunks_down", "fs_chunks_down",
                    "Total number of filesystem chunks down."))


def output_counters(out):
    """One output's v1 counters, in Fluent Bit's key order."""
    metrics = out.metrics()
    return dict((key, metrics[key]) for key in _OUTPUT_KEYS)


def v1(engine):
    inputs = {}
    for plugin in engine.inputs:
        counters = plugin.context.counters
        entry = {"records": counters.get("records", 0), "bytes": counters.get("bytes", 0)}
        for key, value in counters.items():
            entry.setdefault(key, value)
        inputs[plugin.display] = entry
    filters = {}
    for state in engine.filters:
        filters[state.plugin.display] = {"drop_records": state.drop_records,
                                         "add_records": state.add_records,
                                         "records": state.records}
    outputs = {out.plugin.display: output_counters(out) for out in engine.outputs}
    return {"input": inputs, "filter": filters, "output": outputs}


def _v1_help(family):
    for key, text in (("input_bytes", "Number of input bytes."),
                      ("input_records", "Number of input records.")):
        if key in family:
            return text
    if family.startswith("fluentbit_output_"):
        # retries_failed before retries: the longer name first.
        for key in sorted(_OUTPUT_HELP, key=len, reverse=True):
            if "output_" + key in family:
                return _OUTPUT_HELP[key]
    return "Fluentbit metrics."


def v1_prometheus(metrics, uptime, started_at, now_ms=None):
    """``/api/v1/metrics/prometheus``: one line per section, instance and key, sorted, each
    with a millisecond timestamp, then uptime, start time and build info."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    lines = []
    for section in ("input", "filter", "output"):
        for name, values in metrics[section].items():
            for key, value in values.items():
                lines.append('fluentbit_%s_%s_total{name="%s"} %d %d' % (
                    section, key, cmetrics._escape_label(name), value, now_ms))
    lines.sort()
    out = []
    family = None
    for line in lines:
        name = line[:line.index("{")]
        if name != family:
            family = name
            out.append("# HELP %s %s\n# TYPE %s counter\n" % (name, _v1_help(name), name))
        out.append(line + "\n")
    out.append("# HELP fluentbit_uptime Number of seconds that Fluent Bit has been running.\n"
               "# TYPE fluentbit_uptime counter\nfluentbit_uptime %d\n" % uptime)
    out.append("# HELP process_start_time_seconds Start time of the process since unix epoch "
               "in seconds.\n# TYPE process_start_time_seconds gauge\n"
               "process_start_time_seconds %d\n" % started_at)
    out.append("# HELP fluentbit_build_info Build version information.\n"
               "# TYPE fluentbit_build_info gauge\n"
               'fluentbit_build_info{version="%s",edition="Community"} 1\n'
               % FLUENT_BIT_VERSION)
    return "".join(out)


def human_size(size):
    """Fluent Bit's human-readable size: ``240b``, ``1.5K``, ``2.0M``."""
    if size < 1024:
        return "%db" % size
    for unit in ("K", "M", "G", "T"):
        size /= 1024.0
        if size < 1024 or unit == "T":
            return "%.1f%s" % (size, unit)


def storage(engine):
    """``/api/v1/storage``: the chunks of every output queue, and per input its memory
    state and its chunks still queued."""
    totals = dict((key, 0) for _name, key, _help in _STORAGE_GAUGES)
    for out in engine.outputs:
        metrics = out.queue.metrics()
        for key in totals:
            totals[key] += metrics[key]
    per_input = {}
    for out in engine.outputs:
        for chunk in out.queue.all():
            if chunk.source is None:
                continue
            counts = per_input.setdefault(chunk.source, [0, 0, 0, 0])
            counts[0] += 1
            if chunk.payload is not None or chunk.bodies is not None:
                counts[1] += 1
            if chunk.busy:
                counts[2] += 1
                counts[3] += chunk.size
    inputs = {}
    for plugin in engine.inputs:
        budget = plugin.context.budget
        if budget is None:
            continue
        total, up, busy, busy_size = per_input.get(budget, (0, 0, 0, 0))
        inputs[plugin.display] = {
            "status": {"overlimit": budget.over(), "mem_size": human_size(budget.bytes),
                       "mem_limit": human_size(budget.limit if budget.configured else 0),
                       "paused": budget.paused},
            "chunks": {"total": total, "up": up, "down": total - up, "busy": busy,
                       "busy_size": human_size(busy_size)}}
    # edgeship's own: its chunks are queued per output (edgeship top shows them).
    outputs = {}
    for out in engine.outputs:
        metrics = out.queue.metrics()
        outputs[out.plugin.display] = {key: metrics[key] for key in (
            "total_chunks", "mem_chunks", "mem_bytes", "fs_chunks", "fs_bytes")}
    return {"storage_layer": {"chunks": totals}, "input_chunks": inputs,
            "output_chunks": outputs}
