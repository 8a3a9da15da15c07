"""statsd input: StatsD lines from UDP datagrams, as records or as metrics (in_statsd).

A datagram holds lines ``bucket:value|type[|@sample_rate][|#key:value,...]`` (empty lines
skipped). The type is the first letter after the bar: ``g`` gauge, ``s`` set, ``ms`` timer,
anything else (``c``, ``h``...) a counter; a sample rate that is missing or reads as 0 is 1.

Kept from Fluent Bit 5.1.1 (records checked on the real binary):
- Listens on ``0.0.0.0:8125`` (``Listen``, ``Port``); one record per line, stamped when the
  datagram is read: counter ``{"type":"counter","bucket":B,"value":V,"sample_rate":R}``,
  gauge ``{"type":"gauge","bucket":B,"value":V,"incremental":0|1}`` (1 when the value
  starts with ``+`` or ``-``), set ``{"type":"set","bucket":B,"value":"text"}``; a value is
  read as C's strtod does (``abc`` is 0.0) and not scaled by the sample rate.
- A line without ``:`` ("no bucket name found") or without ``|`` ("no metric type found")
  is an error that ends the datagram: the lines before it are kept, the rest skipped. A
  datagram ends at a NUL byte (Fluent Bit reads it as a C string).
- ``Metrics on``: each datagram becomes one metrics context, a family per line named by
  its bucket (no namespace, description ``-``): a counter, a gauge, a timer as a gauge, a
  set as untyped (its value read by strtod), each value divided by the sample rate when
  that is between 0 and 1; the labels are ``incremental="true"`` for a signed value, then
  the ``|#`` tags in their order.

Differences (README "Where edgeship differs"):
- A timer is the record ``{"type":"timer","bucket":B,"value":V,"sample_rate":R}``;
  Fluent Bit's record falls through into the set case and is printed as a set whose value
  is the timer's text.
- Metrics: every ``|#`` tag is a label (Fluent Bit keeps only the first), a tag without
  ``:`` is skipped, and a line without ``|`` is an error (Fluent Bit's decoder loops on
  both forever); the lines of a datagram before an error line are kept (Fluent Bit drops
  the whole datagram).
- Errors are logged once per batch of datagrams with their count, not once per line.
"""
from edgeship.codecs import cmetrics
from edgeship.codecs.cnumbers import strtod
from edgeship.core import events as ev
from edgeship.core.schema import Option
from edgeship.plugins.inputs._sockets import NET_OPTIONS, ListeningInput

DEFAULT_PORT = 8125
MAX_PACKET = 65535          # Fluent Bit reads a datagram into a 64 KiB buffer


class StatsdError(ValueError):
    """A line Fluent Bit refuses; the message is its own."""


def parse_line(line):
    """(bucket, value text, type letter code, sample rate, tags text or None) of a line."""
    colon = line.find(":")
    if colon < 0:
        raise StatsdError("no bucket name found")
    bar = line.find("|", colon + 1)
    if bar < 0:
        raise StatsdError("no metric type found")
    kind = line[bar + 1:bar + 3]
    if kind[:1] in ("g", "s"):
        kind = kind[:1]
    elif kind != "ms":
        kind = "c"
    rate = 1.0
    at = line.find("|@", bar + 1)
    if at >= 0:
        rate = strtod(line[at + 2:]) or 1.0
    tags = line.find("|#", bar + 1)
    return (line[:colon], line[colon + 1:bar], kind, rate,
            line[tags + 2:] if tags >= 0 else None)


def _record(bucket, value, kind, rate):
    if kind == "c":
        return {"type": "counter", "bucket": bucket, "value": strtod(value),
                "sample_rate": rate}
    if kind == "g":
        return {"type": "gauge", "bucket": bucket, "value": strtod(value),
                "incremental": 1 if value[:1] in ("+", "-") else 0}
    if kind == "ms":
        return {"type": "timer", "bucket": bucket, "value": strtod(value),
                "sample_rate": rate}
    return {"type": "set", "bucket": bucket, "value": value}


_FAMILY_KINDS = {"c": cmetrics.COUNTER, "g": cmetrics.GAUGE, "ms": cmetrics.GAUGE,
                 "s": cmetrics.UNTYPED}


def _add_metric(context, bucket, value, kind, rate, tags, now):
    keys, values = [], []
    if value[:1] in ("+", "-"):
        keys.append("incremental")
        values.append("true")
    for tag in (tags.split(",") if tags else ()):
        key, colon, label = tag.partition(":")
        if colon:
            keys.append(key)
            values.append(label)
    number = strtod(value)
    if 0.0 < rate < 1.0:
        number /= rate
    family = context.family(_FAMILY_KINDS[kind], "", "", bucket, "-", keys)
    family.set(number, values, now)


class StatsdInput(ListeningInput):
    name = "statsd"
    description = "StatsD"
    options = (
        Option("Listen", default="0.0.0.0", aliases=("host",), help="address to listen on"),
        Option("Port", "int", str(DEFAULT_PORT), min=0, max=65535, help="UDP port"),
        Option("Metrics", "bool", "off", help="emit metrics instead of records"),
    ) + NET_OPTIONS

    async def run(self):
        take = self._metrics if self.conf["metrics"] else self._records
        await self.serve_datagrams(take, MAX_PACKET)

    def _lines(self, datagrams, errors):
        """(datagram index, parsed line) of every line until each datagram's first error;
        ``errors`` gets (message, line) of those errors."""
        for index, (data, _) in enumerate(datagrams):
            text = data.split(b"\0", 1)[0].decode("utf-8", "replace")   # a C string
            for line in text.split("\n"):
                if not line:
                    continue
                try:
                    yield index, parse_line(line)
                except StatsdError as exc:
                    errors.append((str(exc), line))
                    break

    def _report(self, errors):
        if errors:
            message, line = errors[0]
            self.log.error("%s, failed to process line: %r (%d line(s) refused in this "
                           "read)", message, line, len(errors))

    def _records(self, datagrams):
        now = ev.now_ns()
        errors = []
        events = [(now, _record(bucket, value, kind, rate))
                  for _, (bucket, value, kind, rate, _) in self._lines(datagrams, errors)]
        self._report(errors)
        if events:
            self.context.emit(self.tag, events, sum(len(data) for data, _ in datagrams))

    def _metrics(self, datagrams):
        now = ev.now_ns()
        errors = []
        contexts = {}
        for index, (bucket, value, kind, rate, tags) in self._lines(datagrams, errors):
            context = contexts.get(index)
            if context is None:
                context = contexts[index] = cmetrics.Context()
            _add_metric(context, bucket, value, kind, rate, tags, now)
        self._report(errors)
        for context in contexts.values():
            self.context.emit_metrics(self.tag, context.encode())


PLUGIN = StatsdInput
