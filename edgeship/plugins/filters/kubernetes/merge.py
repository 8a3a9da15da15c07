"""Merge_Log: the record's ``log`` string parsed and its fields added (kubernetes.c
pack_map_content, merge_log_handler).

- Only the first key exactly ``log``. A map is merged as it is; a string is parsed by the
  pod's annotation parser for the record's stream (K8S-Logging.Parser), else ``Merge_Parser``,
  else as JSON, which must be exactly one object. A failed annotation or Merge_Parser parse
  merges nothing (no JSON fallback).
- The parsed fields follow every original key (a key the record already has takes the later
  position, as Fluent Bit's JSON shows its duplicate), or go under ``Merge_Log_Key`` when
  there are any. ``Merge_Log_Trim`` cuts trailing newlines and literal ``\\n``/``\\r`` pairs
  from parsed string values (a map's values are kept). ``Keep_Log Off`` drops ``log`` when
  the merge succeeded.
- A parser's time becomes the record's time; a parser without one: now. JSON keeps it.
"""
from edgeship.codecs import untrusted
from edgeship.core.events import now_ns


def trim(text):
    """Fluent Bit's value_trim_size: the first character is never cut."""
    size = len(text)
    i = size - 1
    while i > 0:
        char = text[i]
        if char == "\n":
            size -= 1
            i -= 1
        elif char in "nr" and text[i - 1] == "\\":
            size -= 2
            i -= 2
        else:
            break
    return text[:size]


class Merger:
    def __init__(self, merge_parser, key, trim_values, keep_log):
        self.parser = merge_parser
        self.key = key
        self.trim = trim_values
        self.keep_log = keep_log

    def parse(self, text, parser):
        """(time_ns or None, fields) or None."""
        parser = parser or self.parser
        if parser is None:
            fields = untrusted.loads_object(text)
            return None if fields is None else (None, fields)
        try:
            result = parser.parse(text)
        except Exception:  # a parser bug must not lose the record: nothing merged
            return None
        if result is None:
            return None
        parsed_time, fields = result
        return (parsed_time or now_ns(), fields)

    def apply(self, time_ns, record, parser):
        """The merged (time_ns, record); ``record`` itself when there is nothing to do."""
        value = record.get("log")
        if isinstance(value, dict):
            fields = value
            trim_values = False
        elif isinstance(value, str):
            result = self.parse(value, parser)
            if result is None:
                return time_ns, record
            parsed_time, fields = result
            if parsed_time is not None:
                time_ns = parsed_time
            trim_values = self.trim
        else:
            return time_ns, record
        out = dict(record)
        if not self.keep_log:
            del out["log"]
        if trim_values:
            fields = {k: trim(v) if isinstance(v, str) else v for k, v in fields.items()}
        if self.key:
            if fields:
                out.pop(self.key, None)
                out[self.key] = fields
        else:
            for key, field in fields.items():
                out.pop(key, None)
                out[key] = field
        return time_ns, out
