"""Format json: one JSON object per text, as Fluent Bit's flb_parser_json.c.

- Only an object parses: arrays, scalars, invalid JSON, two objects on one line or single
  quotes fail (the caller keeps the raw line). Whitespace around the object is fine.
- A key given twice keeps the last value at the later position (``{"a":1,"b":2,"a":3}``
  gives ``{"b":2,"a":3}``), at every depth.
- Integers beyond 64 bits become floats; NaN, Infinity and 1e400 are refused.
- An object nested deeper than ``untrusted.MAX_DEPTH`` (64) levels fails, as Fluent Bit's
  msgpack stack makes it fail (the caller keeps the raw line).
- Types does not apply (as in Fluent Bit). Decoders run before the time lookup.
- Time_Key with a string value is parsed with Time_Format; a value that does not parse is
  warned about and kept, and the record gets the current time. A number is not a time.

A caller that hands the events on unchanged (``as_rendered``) gets, when every line already
is Fluent Bit's JSON rendering of its record (``formats.verbatim_json_lines``), a
``formats.RenderedEvents`` carrying that text: an output writing JSON lines writes it as it
came instead of rendering the records again.

The decoding is edgeship.codecs.untrusted's, the one JSON decoder of every input: orjson
does the work when it is installed (about 1 us a line); the standard library gives the same
records without it.
"""
from edgeship.codecs.formats import RenderedEvents, verbatim_json_lines
from edgeship.codecs.untrusted import loads_object, loads_objects, loads_plain_objects
from edgeship.plugins.parsers._base import Parser


class JsonParser(Parser):
    format = "json"

    def parse(self, text):
        record = loads_object(text)
        if record is None:
            self.failed += 1
            return None
        return self._finish(record, None)

    def parse_lines(self, lines, now_ns, as_rendered=False):
        plain = self.decoders is None and self.time_format is None
        if plain and as_rendered:
            found = loads_plain_objects(lines)
            if found is not None:
                events = [(now_ns, record) for record in found[0]]
                text = verbatim_json_lines(found[1])
                return events if text is None else RenderedEvents(events, text)
        records = loads_objects(lines)
        failed = records.count(None)
        self.failed += failed
        if plain and not failed:
            return [(now_ns, record) for record in records]
        finish = self._finish
        return [None if record is None else finish(record, now_ns) for record in records]

    def _finish(self, record, now_ns):
        """Decoders, then the time lookup: the event of a decoded record."""
        if self.decoders is not None:
            record = self.decoders.apply(record)
        if self.time_format is None:
            return now_ns, record
        value = record.get(self.time_key)
        if value is None:
            return now_ns, record
        if not isinstance(value, str):
            self.log.warn_often("invalid non-string time")
            return now_ns, record
        time_ns = self.lookup_time(value)
        if time_ns is None:
            return now_ns, record
        if not self.time_keep:
            del record[self.time_key]
        return time_ns, record


PLUGIN = JsonParser
