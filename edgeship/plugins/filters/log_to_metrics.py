"""log_to_metrics filter: counts, gauges or histograms of the records that pass its rules,
emitted as a metrics signal under its own ``Tag`` (filter_log_to_metrics).

Kept from Fluent Bit 5.1.1 (checked on the real binary):
- ``Regex`` / ``Exclude`` rules as grep's legacy order (``_rules.legacy_decision``); a record
  they keep updates the one metric family: ``metric_mode counter`` adds 1, ``gauge`` sets the
  ``value_field`` value, ``histogram`` observes it (``bucket`` bounds, sorted; without any,
  Prometheus' defaults 0.005 ... 10 with a warning). The family is named
  ``metric_namespace`` (``log_metric``) _ ``metric_subsystem`` (default: the mode) _
  ``metric_name`` (``a``), described by ``metric_description`` (required).
- Labels, in this order: with ``kubernetes_mode``, namespace_name, pod_name,
  container_name, docker_id and pod_id from ``$kubernetes[...]``; then each ``label_field
  KEY`` (the label is named by KEY as written, ``$`` included) and ``add_label NAME KEY`` in
  config order, at most 128. A string value is the label (up to 251 bytes), a float is
  printed as ``%f``, an integer as ``%d``; a missing key or another type is ``""``.
- A value read from a string takes its leading number (``"7.25x"`` is 7.25); a missing value
  field is a warning, a map, array or bool an error, and the record then updates nothing.
- The records pass on unchanged, or none with ``discard_logs on`` (every record of the batch,
  kept by the rules or not). ``Tag`` is required; the metrics go to the outputs matching it
  (filters do not see them). The whole family, every series so far, is emitted each time:
  with ``flush_interval_sec`` / ``flush_interval_nsec`` at that interval when something
  changed, else after every update.

Differences: without an interval the family is emitted once per batch of records that
updated it, not once per record (the last state is the same, and a batch is one update for a
metrics output); with an interval, what changed since the last emit is emitted at shutdown
too (Fluent Bit stops its timer and loses it). A value that holds no number is 0 (Fluent Bit
reuses the previous record's value). ``emitter_name`` and ``emitter_mem_buf_limit`` are
accepted: the metrics join the output queues under the engine's budget.
"""
import asyncio

from edgeship.codecs import cmetrics
from edgeship.codecs.cnumbers import strtod
from edgeship.core import events as ev
from edgeship.core.accessor import accessor
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import Filter
from edgeship.plugins.filters._rules import (KEEP, grep_rule, legacy_decision, rule_accessor,
                                             rule_error)
from edgeship.plugins.filters._tokens import split_fields

MODES = {"counter": cmetrics.COUNTER, "gauge": cmetrics.GAUGE,
         "histogram": cmetrics.HISTOGRAM}
KUBERNETES_LABELS = ("namespace_name", "pod_name", "container_name", "docker_id", "pod_id")
MAX_LABELS = 128
MAX_LABEL_BYTES = 251       # Fluent Bit prints a label into 253 bytes, the last one unused
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_MISSING = object()


def label_text(value):
    """A label value as Fluent Bit prints it."""
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogateescape")
        if len(data) <= MAX_LABEL_BYTES:
            return value
        return data[:MAX_LABEL_BYTES].decode("utf-8", "ignore")
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return "%d" % value
    if isinstance(value, float):
        return "%f" % value
    return ""


class LogToMetricsFilter(Filter):
    name = "log_to_metrics"
    description = "generate log derived metrics"
    options = (
        Option("Regex", multiple=True, help="KEY REGEX: count only records whose KEY matches"),
        Option("Exclude", multiple=True, help="KEY REGEX: leave out records whose KEY matches"),
        Option("Metric_Mode", default="counter", help="counter, gauge or histogram"),
        Option("Value_Field", help="key of the value (gauge and histogram)"),
        Option("Metric_Name", default="a", help="name of the metric"),
        Option("Metric_Namespace", default="log_metric", help="namespace of the metric"),
        Option("Metric_Subsystem", help="subsystem of the metric (default: the mode)"),
        Option("Metric_Description", help="description of the metric (required)"),
        Option("Kubernetes_Mode", "bool", "false",
               help="add the kubernetes namespace, pod, container, docker and pod id labels"),
        Option("Add_Label", multiple=True, help="NAME KEY: a label NAME with KEY's value"),
        Option("Label_Field", multiple=True, help="KEY: a label named KEY with its value"),
        Option("Bucket", multiple=True, help="a histogram bound (repeat for each)"),
        Option("Tag", help="tag of the emitted metrics (required)"),
        Option("Emitter_Name", compat=True, help="metrics join the output queues directly"),
        Option("Emitter_Mem_Buf_Limit", "size", "10M", compat=True,
               help="the engine's memory budget applies"),
        Option("Flush_Interval_Sec", "int", "0", help="emit at this interval (0: at once)"),
        Option("Flush_Interval_Nsec", "int", "0", help="nanoseconds added to the interval"),
        Option("Discard_Logs", "bool", "false", help="drop the records once counted"),
    )

    def configure(self):
        conf = self.conf
        mode = conf["metric_mode"]
        self.mode = MODES.get(mode.lower())
        if self.mode is None:
            raise ConfigError("log_to_metrics: invalid 'mode' value. Only 'counter', 'gauge' "
                              "or 'histogram' types are allowed", key="metric_mode")
        if not conf["tag"]:
            raise ConfigError("log_to_metrics: Metric tag is not set", key="tag")
        if not conf["metric_description"]:
            raise ConfigError("log_to_metrics: metric_description is not set",
                              key="metric_description")
        self.value = None
        if self.mode != cmetrics.COUNTER:
            if not conf["value_field"]:
                raise ConfigError("log_to_metrics: value_field is not set", key="value_field")
            self.value = self._option_accessor("value_field")
        self.rules = []
        keys, self.label_getters, bounds = [], [], []
        if conf["kubernetes_mode"]:
            for name in KUBERNETES_LABELS:
                keys.append(name)
                self.label_getters.append(accessor("$kubernetes['%s']" % name))
        for key, value, entry in conf.ordered:
            if key in ("regex", "exclude"):
                self.rules.append(grep_rule("log_to_metrics", key == "regex", value, entry,
                                            add_dollar=False))
            elif key == "label_field":
                keys.append(value)
                self.label_getters.append(rule_accessor("log_to_metrics", value, entry))
            elif key == "add_label":
                words = split_fields(value, 1)
                if len(words) != 2:
                    raise rule_error("log_to_metrics", "invalid label, expected name and "
                                     "key", entry)
                keys.append(words[0])
                self.label_getters.append(rule_accessor("log_to_metrics", words[1], entry))
            elif key == "bucket":
                bound = strtod(value, none=None)
                if bound is None:
                    raise rule_error("log_to_metrics", "Error during conversion of bucket "
                                     "'%s'" % value, entry)
                bounds.append(bound)
        if len(keys) > MAX_LABELS:
            raise ConfigError("log_to_metrics: too many labels configured: %d (max=%d)"
                              % (len(keys), MAX_LABELS), key="add_label")
        if self.mode == cmetrics.HISTOGRAM:
            if not bounds:
                self.log.warn("buckets are not set for histogram. Will use defaults: %s",
                              ", ".join(str(b) for b in DEFAULT_BUCKETS))
                bounds = DEFAULT_BUCKETS
            self.bounds = sorted(bounds)
        self.metrics = cmetrics.Context()
        self.family = self.metrics.family(
            self.mode, conf["metric_namespace"] or "", conf["metric_subsystem"] or mode,
            conf["metric_name"] or "", conf["metric_description"], keys,
            bounds=self.bounds if self.mode == cmetrics.HISTOGRAM else None)
        self.series = {}        # label values -> count, value, or histogram state
        self.interval = conf["flush_interval_sec"] + conf["flush_interval_nsec"] / 1e9
        self.changed = False
        self.timer = None

    def _option_accessor(self, key):
        text = self.conf[key]
        try:
            found = accessor(text)
        except ValueError as exc:
            raise ConfigError("log_to_metrics: %s" % exc, key=key)
        if found is None:
            raise ConfigError("log_to_metrics: invalid record accessor key for %s" % key,
                              key=key)
        return found

    # ------------------------------------------------------------------ updates
    def _number(self, record, missing, refused):
        value = self.value.get(record, _MISSING)
        if value is _MISSING or value is None:
            missing[0] += 1
        elif isinstance(value, str):
            return strtod(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        else:
            refused[0] += 1
        return None

    def _update(self, record, now, missing, refused):
        labels = tuple(label_text(get.get(record, None)) for get in self.label_getters)
        if self.mode == cmetrics.COUNTER:
            count = self.series.get(labels, 0) + 1
            self.series[labels] = count
            self.family.set(count, labels, now)
            return True
        number = self._number(record, missing, refused)
        if number is None:
            return False
        if self.mode == cmetrics.GAUGE:
            self.family.set(number, labels, now)
            return True
        counts, total, seen = self.series.get(labels) or ([0] * (len(self.bounds) + 1), 0.0, 0)
        for index, bound in enumerate(self.bounds):
            if number <= bound:
                counts[index] += 1
        counts[-1] += 1
        self.series[labels] = (counts, total + number, seen + 1)
        self.family.set_histogram(counts, total + number, seen + 1, labels, now)
        return True

    def filter(self, tag, events):
        now = ev.now_ns()
        missing, refused = [0], [0]
        updated = False
        rules = self.rules
        for _, record in events:
            if not rules or legacy_decision(rules, record) == KEEP:
                updated = self._update(record, now, missing, refused) or updated
        if missing[0]:
            self.log.warn("given value field is empty or not existent in %d record(s)",
                          missing[0])
        if refused[0]:
            self.log.error("cannot convert given value to metric in %d record(s)", refused[0])
        if updated:
            if self.interval > 0:
                self.changed = True
                self._start_timer()
            else:
                self._emit()
        if self.conf["discard_logs"]:
            self.dropped += len(events)
            return []
        return events

    # ------------------------------------------------------------------ emitting
    def _emit(self):
        self.changed = False
        self.context.emit_metrics(self.conf["tag"], self.metrics.encode())

    def _start_timer(self):
        if self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def _tick(self):
        self.timer = asyncio.get_running_loop().call_later(self.interval, self._tick)
        if self.changed:
            self._emit()

    def stop(self):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.changed:
            self._emit()


PLUGIN = LogToMetricsFilter
