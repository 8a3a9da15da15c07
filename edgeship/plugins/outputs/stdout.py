"""stdout output: prints each chunk on standard output (out_stdout).

Format msgpack (the default) is Fluent Bit's human print, one line per record:
``[0] tag: [[1711360801.000000000, {}], {"k"=>"v", "f"=>1.500000, "n"=>nil}]``, counting from
0 in every chunk. json, json_lines and json_stream print JSON with the time under
json_date_key (in json_date_format) as the first key. One write per chunk. A metrics chunk is
printed as Fluent Bit prints it in every Format: one line per series
(``2026-11-24T10:18:11.127471264Z node_load1 = 1.02``).

A closed stdout (the reader of ``edgeship ... | head`` is gone) is Fluent Bit's case too: it
ignores SIGPIPE and the write error, and reports the chunk delivered. So does edgeship, with
one error line per plugin instead of none; nothing can ever read those records again.
"""
import asyncio
import os
import sys

from edgeship.codecs import cmetrics, formats
from edgeship.core.schema import Option
from edgeship.engine.plugin import ERROR, LOGS, METRICS, OK, Output


_stdout_closed = False


def write_stdout(data):
    """Write all of ``data`` to the process's standard output (blocking), after any text
    already in ``sys.stdout``'s buffer. False when stdout is a closed pipe: it then points at
    /dev/null, so later writes and Python's flush at exit fail no more."""
    global _stdout_closed
    if _stdout_closed:
        return False
    try:
        sys.stdout.flush()
        out = sys.stdout.buffer
        out.write(data)
        out.flush()
        return True
    except BrokenPipeError:
        _stdout_closed = True
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
        return False


def warn_stdout_closed(plugin):
    """The one error line a plugin logs when stdout turns out to be closed."""
    if not getattr(plugin, "told_stdout_closed", False):
        plugin.told_stdout_closed = True
        plugin.log.error("stdout is closed (broken pipe): what %s prints is discarded from "
                         "now on", plugin.name)


class StdoutOutput(Output):
    name = "stdout"
    description = "Prints events to STDOUT"
    signals = (LOGS, METRICS)
    options = (
        Option("Format", default="msgpack", choices=("msgpack", "json", "json_lines", "json_stream"),
               help="msgpack (human print), json (one array per chunk), json_lines or json_stream"),
        Option("json_date_key", default="date",
               help="key of the record time in JSON formats; false/off/no leaves it out"),
        Option("json_date_format", default="double", choices=formats.DATE_FORMATS,
               help="time in JSON formats: double, epoch, epoch_ms, iso8601 or java_sql_timestamp"),
    )

    def configure(self):
        self.format = self.conf["format"]
        self.date_key = formats.date_key_option(self.conf["json_date_key"])
        self.date_format = self.conf["json_date_format"]

    def render(self, tag, events):
        if self.format == "msgpack":
            return formats.render_msgpack_print(tag, events)
        data = formats.render_json(events, self.format, self.date_key, self.date_format)
        # Fluent Bit ends json and json_stream chunks with a newline; json_lines has its own.
        return data if self.format == "json_lines" else data + b"\n"

    async def flush(self, chunk):
        if chunk.signal == METRICS:     # one line per series, whatever the Format
            data = cmetrics.render_text(cmetrics.decode(chunk.payload)).encode()
        else:
            data = self.render(chunk.tag, chunk.events())
        try:
            # A slow reader of a pipe must not stall the loop.
            written = await asyncio.to_thread(write_stdout, data)
        except OSError as exc:
            self.log.error("cannot write %d records to stdout: %s", chunk.count, exc)
            return ERROR
        if not written:
            warn_stdout_closed(self)
        return OK


PLUGIN = StdoutOutput
