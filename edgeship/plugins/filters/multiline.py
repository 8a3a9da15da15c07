"""multiline filter: join the records of one logical message (filter_multiline).

Mode ``parser`` runs the records through the multiline parsers of ``edgeship.text.multiline``
(the ones tail uses: built-in docker, cri, python, java, go, ruby, or a [MULTILINE_PARSER]);
mode ``partial_message`` joins the parts Docker's fluentd log driver marks with
``partial_message``/``partial_id``/``partial_last``.

Behaviour of Fluent Bit 5.1.1 (plugins/filter_multiline):
- Parser mode: the text is the record's ``multiline.key_content`` string (else the parser's
  own Key_Content: docker and cri have ``log``, python/java/go/ruby none, so without
  ``multiline.key_content`` they take no record and every record passes unchanged). docker
  and cri first parse that text (raw lines), so records already decoded pass unchanged.
  The joined record is the first record (the pre-parsed one for docker/cri) with its
  content joined ("\\n" between regex lines); the time is the first record's. One stream per
  tag; a record no parser takes passes unchanged, after what was pending in its stream.
  A line a rule leading back to ``start_state`` closes (python's last line) comes out twice:
  in the joined record and alone before the next record (Fluent Bit's, kept: records as its).
- ``buffer on`` (default): the filter returns nothing; the records (joined or not) re-enter
  the pipeline under their tag through the emitter (``context.reemit``), so filters before
  this one see them again, as in Fluent Bit. Open groups are flushed every ``flush_ms``
  (at least 500). ``buffer off``: joined within one batch only; what is open at its end is
  flushed in place.
- Partial message mode (``multiline.key_content`` required): parts are collected per
  (tag, ``partial_id``); the completed record holds the first part's keys but the content
  key and the ``partial_*`` keys, then the content key with the parts' values concatenated,
  at the first part's time. It is returned in place when the part with ``partial_last``
  true arrives; parts idle longer than ``flush_ms`` are flushed through the emitter.
  A partial record without ``partial_id`` passes unchanged, with a warning.
- Config errors: no ``multiline.parser`` in parser mode, an unknown parser, a ``flush_ms``
  under 500 with buffer on, ``partial_message`` without ``multiline.key_content``.

Differences (README "Where edgeship differs"):
- Open groups and parts are flushed when edgeship stops; Fluent Bit drops them.
- ``partial_message`` with ``buffer off`` is refused (Fluent Bit starts, then aborts on the
  first part left dangling). Keys are compared exactly: Fluent Bit also takes a key that is a
  prefix of ``partial_message``/``partial_id``/``partial_last`` and drops any key shorter
  than 8 bytes that is a prefix of ``partial_``.
- Streams are per tag (Fluent Bit: per input and tag); a group cut at ``[SERVICE]
  multiline_buffer_limit`` carries no ``multiline_truncated`` metadata (edgeship records have
  none); the emitter's storage and memory options are accepted: re-emitted records join the
  engine's queues and budget.
"""
import asyncio
import time

from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import Filter
from edgeship.text import multiline

MIN_FLUSH_MS = 500
MIN_TIMER_PERIOD = 0.1


class MultilineFilter(Filter):
    name = "multiline"
    description = "Concatenate multiline messages"
    options = (
        Option("multiline.parser", "list", multiple=True,
               help="comma list of multiline parsers (built-in or [MULTILINE_PARSER])"),
        Option("multiline.key_content", help="key holding the text to join"),
        Option("Mode", default="parser", choices=("parser", "partial_message"),
               help="parser: multiline parsers; partial_message: docker's partial_* keys"),
        Option("Buffer", "bool", "true",
               help="keep open groups across batches and re-emit the records"),
        Option("Flush_ms", "int", "2000", help="milliseconds before open groups flush"),
        Option("Emitter_Name", help="name of the internal emitter (default emitter_for_NAME)"),
        Option("Emitter_Storage.type", default="memory", choices=("memory", "filesystem"),
               compat=True, help="re-emitted records join the output queues"),
        Option("Emitter_Mem_Buf_Limit", "size", "10M",
               compat=True, help="the engine's memory budget applies"),
        Option("Debug_Flush", "bool", "false", compat=True),
    )

    def configure(self):
        conf = self.conf
        self.key_content = conf["multiline.key_content"]
        self.buffered = conf["buffer"]
        self.flush_ms = conf["flush_ms"]
        self.partial_mode = conf["mode"] == "partial_message"
        self.timer = None
        if self.partial_mode:
            if not self.key_content:
                raise ConfigError("'Mode' 'partial_message' requires 'multiline.key_content'",
                                  key="mode")
            if not self.buffered:
                raise ConfigError("'partial_message' 'Mode' requires 'Buffer' to be 'On'",
                                  key="buffer")
            self.parts = {}    # (tag, partial_id) -> _Parts, in arrival order
            self._name_emitter()
            return
        names = [n for line in conf["multiline.parser"] for n in line if n]
        if not names:
            raise ConfigError("The default 'Mode' 'parser' requires at least one "
                              "'multiline.parser'", key="multiline.parser")
        parsers = []
        for name in names:
            try:
                parsers.append(self.context.multiline(name))
            except KeyError:
                raise ConfigError("parser '%s' not registered" % name, key="multiline.parser")
        if self.buffered and self.flush_ms < MIN_FLUSH_MS:
            raise ConfigError("flush timeout '%d' is too low" % self.flush_ms, key="flush_ms")
        self.parser = multiline.group(parsers)
        self.streams = {}      # tag -> multiline.Stream
        self._name_emitter()

    def _name_emitter(self):
        if self.buffered:
            self.emitter_name = self.conf["emitter_name"] or "emitter_for_%s" % self.instance
            if not self.conf["emitter_name"]:
                self.log.info("created emitter: %s", self.emitter_name)

    # ------------------------------------------------------------------ parser mode
    def _stream(self, tag):
        stream = self.streams.get(tag)
        if stream is None:
            stream = self.streams[tag] = self.parser.stream(tag, self.key_content)
            self.log.info("created new multiline stream for %s", tag)
        return stream

    def filter(self, tag, events):
        if self.partial_mode:
            return self._filter_partial(tag, events)
        stream = self._stream(tag)
        out = []
        feed = stream.feed
        truncated = stream.truncated
        for time_ns, record in events:
            feed(time_ns, None, out, record)
        if stream.truncated != truncated:
            self.log.warn("multiline message truncated due to buffer limit (%d record(s))",
                          stream.truncated - truncated)
        if not self.buffered:
            out.extend(stream.flush())
            return out
        self._start_timer()
        if out:
            self.context.reemit(tag, out)
        return []

    def _flush_streams(self):
        for tag, stream in self.streams.items():
            if stream.pending:
                self.context.reemit(tag, stream.flush())

    # ------------------------------------------------------------------ partial_message mode
    def _filter_partial(self, tag, events):
        key = self.key_content
        out = []
        parts = self.parts
        missing_id = 0
        touched = False
        now = time.monotonic()          # once per batch: the whole batch arrived together
        for event in events:
            record = event[1]
            if not _is_true(record.get("partial_message")):
                out.append(event)
                continue
            partial_id = record.get("partial_id")
            content = record.get(key)
            if partial_id is None:
                missing_id += 1
                out.append(event)
                continue
            if not isinstance(content, str):
                out.append(event)
                continue
            touched = True
            slot = (tag, str(partial_id))
            joined = parts.get(slot)
            if joined is None:
                joined = parts[slot] = _Parts(event[0], record, key)
            joined.pieces.append(content)
            joined.last_write = now
            if _is_true(record.get("partial_last")):
                del parts[slot]
                out.append(joined.event())
        if missing_id:
            self.log.warn("Could not find partial_id but partial_message key is FLB_TRUE for "
                          "%d record(s) with tag %s; passed on as they are", missing_id, tag)
        if touched:
            self._start_timer()
        return out

    def _flush_parts(self, older_than):
        now = time.monotonic()
        for slot in [s for s, p in self.parts.items() if now - p.last_write > older_than]:
            self.context.reemit(slot[0], [self.parts.pop(slot).event()])

    # ------------------------------------------------------------------ timer and stop
    def _start_timer(self):
        if self.timer is None:
            period = self.flush_ms / (2000.0 if self.partial_mode else 1000.0)
            period = max(period, MIN_TIMER_PERIOD)   # flush_ms 0 must not spin the loop
            self.timer = asyncio.get_running_loop().call_later(period, self._tick, period)

    def _tick(self, period):
        self.timer = asyncio.get_running_loop().call_later(period, self._tick, period)
        try:
            if self.partial_mode:
                self._flush_parts(self.flush_ms / 1000.0)
            else:
                self._flush_streams()
        except Exception as exc:  # a bug must not stop the timer
            self.log.error("flush failed: %r", exc)

    def stop(self):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.partial_mode:
            self._flush_parts(-1.0)
        elif self.buffered:
            self._flush_streams()


class _Parts:
    """The parts of one partial message so far."""
    __slots__ = ("time_ns", "first", "key", "pieces", "last_write")

    def __init__(self, time_ns, first, key):
        self.time_ns = time_ns
        self.first = first
        self.key = key
        self.pieces = []
        self.last_write = 0.0

    def event(self):
        record = {k: v for k, v in self.first.items()
                  if k != self.key and not (isinstance(k, str) and k.startswith("partial_"))}
        record[self.key] = "".join(self.pieces)
        return (self.time_ns, record)


def _is_true(value):
    """Fluent Bit's test: a string starting with "true", any case."""
    return isinstance(value, str) and value[:4].lower() == "true"


PLUGIN = MultilineFilter
