"""What kinesis_firehose and kinesis_streams share (Fluent Bit's out_kinesis_firehose and
out_kinesis_streams do the same but for the API they call): each record rendered as Fluent
Bit renders it, base64 in a batch request within the API's limits, and the records AWS
accepted remembered so that a retry sends only the others.

Rendering, as Fluent Bit 5.1.1: the record's JSON, or with ``log_key`` that key's value
(a string's JSON text without its quotes: escapes stay, as Fluent Bit writes it); JSON of
two bytes or fewer (``{}``, ``""``) is skipped; ``time_key`` adds
``"<time_key>":"<strftime(time_key_format)>"`` as the last member of the record, the format
taking ``%3N`` (milliseconds), ``%9N`` and ``%L`` (nanoseconds); a newline ends each record.
A record of the API's maximum size or more (its newline counted) is dropped with a warning.
``simple_aggregation`` joins consecutive records (each with its newline) into one of at most
that size. ``compression`` (gzip, zstd, snappy) compresses each record before base64.
"""
import base64
import re
import time

from edgeship.codecs import formats, untrusted
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import ERROR, OK, RETRY
from edgeship.net import aws
from edgeship.net.http_client import gzip_body
from edgeship.plugins.outputs._aws import AwsOutput, Failed

MAX_RECORDS = 500
_REMEMBERED_CHUNKS = 256
_FRACTION = re.compile(r"(%3N|%9N|%L)")
_MISSING = object()
_COMPRESSIONS = ("gzip", "zstd", "snappy")


class KinesisOutput(AwsOutput):
    """The subclass names its API: ``service``, ``target`` (X-Amz-Target), ``stream_key``
    (its option), ``stream_field``, ``failed_key``/``answers_key`` (of the answer),
    ``max_record`` (raw bytes), ``max_request``, ``record_overhead`` (JSON around one
    record's data, at most), ``final_newline`` (aggregated records end with one more
    newline), ``retry_codes``, and ``record_suffixes(tag, count)``, what follows the Data
    of each of ``count`` records."""

    workers = 1
    final_newline = False

    @staticmethod
    def own_options(service, stream_key, stream_help):
        """The options of a Kinesis output whose stream is named by ``stream_key``."""
        return (
            Option("region", help="AWS region (required)"),
            Option(stream_key, help=stream_help + " (required)"),
            Option("time_key", help="add the record's time under this key"),
            Option("time_key_format", default="%Y-%m-%dT%H:%M:%S",
                   help="strftime of time_key (%3N milliseconds, %9N or %L nanoseconds)"),
            Option("log_key", help="send only this key's value, not the whole record"),
            Option("compression", help="compress each record: gzip, zstd or snappy"),
            Option("simple_aggregation", "bool", "false",
                   help="join several records into one"),
            Option("endpoint", help="endpoint (default %s.<region>.amazonaws.com)"
                                    % service),
            Option("Port", "int", "443", min=1, max=65535, help="port of the endpoint"),
        ) + AwsOutput.common_options

    def configure(self):
        conf = self.conf
        for key in ("region", self.stream_key):
            if not conf[key]:
                raise ConfigError("%s: '%s' is a required field" % (self.name, key), key=key)
        if conf["log_key"] is not None and conf["time_key"] is not None:
            raise ConfigError("%s: 'time_key' and 'log_key' can not be used together"
                              % self.name, key="time_key")
        self.stream = conf[self.stream_key]
        self.compress = self._compressor(conf["compression"])
        self.time_pieces = _FRACTION.split(conf["time_key_format"] or "")
        self._time_cache = (None, None)
        try:
            self._time_text(0)
        except ValueError as exc:
            raise ConfigError("%s: bad time_key_format: %s" % (self.name, exc),
                              key="time_key_format")
        region = conf["region"]
        endpoint = conf["endpoint"] or "%s.%s.amazonaws.com%s" % (
            self.service, region, ".cn" if region.startswith("cn-") else "")
        self.configure_aws(endpoint, conf["port"], region, self.service)
        self.head = b'{"%s":%s,"Records":[' % (self.stream_field.encode(),
                                                formats.to_json(self.stream))
        self.headers = [("Content-Type", "application/x-amz-json-1.1"),
                        ("X-Amz-Target", self.target), aws.USER_AGENT]
        self.sent = {}        # chunk.id -> indices of its records AWS accepted

    def _compressor(self, name):
        if name is None:
            return None
        if name not in _COMPRESSIONS:       # as Fluent Bit: exactly one of these words
            raise ConfigError("%s: unknown compression: %s (edgeship has gzip, zstd and "
                              "snappy)" % (self.name, name), key="compression")
        if name == "gzip":
            return gzip_body
        try:    # imported here: a missing extra is a config error, not a traceback
            import cramjam
        except ImportError as exc:
            raise ConfigError("%s: compression %s needs cramjam (pip install "
                              "'edgeship[all]'): %s" % (self.name, name, exc),
                              key="compression")
        if name == "zstd":
            return lambda data: bytes(cramjam.zstd.compress(data))
        return lambda data: bytes(cramjam.snappy.compress_raw(data))

    def summary(self):
        return "region=%s %s=%s" % (self.conf["region"], self.stream_key, self.stream)

    # ------------------------------------------------------------------ records
    def _time_text(self, time_ns):
        sec, nsec = divmod(time_ns, formats.NS)
        cached_sec, parts = self._time_cache
        if cached_sec != sec:
            moment = time.gmtime(sec)
            parts = [time.strftime(piece, moment) if index % 2 == 0 else piece
                     for index, piece in enumerate(self.time_pieces)]
            self._time_cache = (sec, parts)
        if len(parts) == 1:
            return parts[0]
        fractions = {"%3N": "%03d" % (nsec // 1000000), "%9N": "%09d" % nsec,
                     "%L": "%09d" % nsec}
        return "".join(part if index % 2 == 0 else fractions[part]
                       for index, part in enumerate(parts))

    def _texts(self, events):
        """The JSON text of each event's record (or log_key's value); None for none."""
        key = self.conf["log_key"]
        if key is None:
            return formats.json_batch([record for _, record in events])
        values = [record.get(key, _MISSING) for _, record in events]
        missing = sum(1 for value in values if value is _MISSING)
        if missing:
            self.log.error("could not find log_key '%s' in %d record(s), %s", key, missing,
                           self.stream)
        found = [value for value in values if value is not _MISSING]
        texts = iter(formats.json_batch(found))
        out = []
        for value in values:
            if value is _MISSING:
                out.append(None)
                continue
            text = next(texts)
            # a string's JSON without its quotes, as Fluent Bit writes it; empty stays empty
            out.append(text[1:-1] if isinstance(value, str) and len(text) > 2 else text)
        return out

    def _records(self, chunk):
        """The base64 Data of each record to send, in order (the same on every retry)."""
        events = chunk.events()
        time_key = self.conf["time_key"]
        limit = self.max_record
        lines = []
        too_large = 0
        for (time_ns, _), text in zip(events, self._texts(events)):
            if text is None or len(text) <= 2:
                continue
            if time_key is not None:
                stamp = self._time_text(time_ns)
                if stamp:
                    text = b'%s,"%s":"%s"}' % (text[:-1], time_key.encode(), stamp.encode())
            if len(text) + 1 >= limit:
                too_large += 1
                continue
            lines.append(text + b"\n")
        if self.conf["simple_aggregation"]:
            lines = self._aggregate(lines)
        records = []
        for line in lines:
            data = base64.b64encode(self.compress(line) if self.compress else line)
            if len(data) > (limit + 2) // 3 * 4:     # compressed larger than allowed
                too_large += 1
                continue
            records.append(data)
        if too_large:
            self.log.warn("%d record(s) of %d bytes or more dropped (larger than %s allows), "
                          "%s", too_large, limit, self.service, self.stream)
        return records

    def _aggregate(self, lines):
        """Consecutive lines joined into records of at most max_record bytes."""
        limit = self.max_record
        final = b"\n" if self.final_newline else b""
        records, run, size = [], [], 0
        for line in lines:
            if run and size + len(line) > limit:
                records.append(b"".join(run) + (final if size < limit else b""))
                run, size = [], 0
            run.append(line)
            size += len(line)
        if run:
            records.append(b"".join(run) + (final if size < limit else b""))
        return records

    def _batches(self, records, pending):
        """Lists of indices of ``records`` (those in ``pending``), each one request."""
        base = len(self.head) + 2
        batches, batch, size = [], [], base
        for index in pending:
            cost = len(records[index]) + self.record_overhead
            if batch and (len(batch) == MAX_RECORDS or size + cost > self.max_request):
                batches.append(batch)
                batch, size = [], base
            batch.append(index)
            size += cost
        if batch:
            batches.append(batch)
        return batches

    # ------------------------------------------------------------------ requests
    async def _put(self, tag, records, batch):
        """Indices of ``batch`` AWS did not take, with their error codes; Failed when the
        request as a whole failed."""
        suffixes = self.record_suffixes(tag, len(batch))
        body = b"".join((self.head, b",".join(
            b'{"Data":"%s"%s}' % (records[index], suffix)
            for index, suffix in zip(batch, suffixes)), b"]}"))
        action = self.target.split(".", 1)[1]
        response = await self.call(action, "POST", "/", list(self.headers), body)
        self.check(action, response, self.retry_codes)
        try:
            answer = untrusted.loads(response.body) if response.body else {}
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise Failed(RETRY, "%s: the answer could not be parsed: %s"
                         % (action, response.first_line()))
        failed_count = answer.get(self.failed_key) or 0
        if not failed_count:
            return [], []
        answers = answer.get(self.answers_key)
        if not isinstance(answers, list) or len(answers) != len(batch):
            return list(batch), ["(no per-record answer)"]   # all sent again: none lost
        failed, codes = [], []
        for index, item in zip(batch, answers):
            if isinstance(item, dict) and item.get("ErrorCode"):
                failed.append(index)
                codes.append(str(item["ErrorCode"]))
        return failed, codes

    async def flush(self, chunk):
        done = self.sent.get(chunk.id, set())
        records = self._records(chunk)
        pending = [index for index in range(len(records)) if index not in done]
        try:
            for batch in self._batches(records, pending):
                failed, codes = await self._put(chunk.tag, records, batch)
                done.update(set(batch).difference(failed))
                self.sent[chunk.id] = done
                if failed:
                    raise Failed(RETRY, "%d out of %d records failed to be delivered to %s "
                                        "(%s)" % (len(failed), len(batch), self.stream,
                                                  ", ".join(sorted(set(codes)))))
        except Failed as exc:
            if exc.result == ERROR:
                self.log.error("%s; the chunk will not be retried", exc)
                self.sent.pop(chunk.id, None)
            else:
                self.log.error("%s; the records not delivered will be retried", exc)
                while len(self.sent) > _REMEMBERED_CHUNKS:
                    self.sent.pop(next(iter(self.sent)))
            return exc.result
        self.sent.pop(chunk.id, None)
        return OK
