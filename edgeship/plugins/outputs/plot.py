"""plot output: a data file for GNU Plot, one ``TIME VALUE`` line per record (out_plot).

Kept from Fluent Bit 5.1.1 (lines checked byte for byte on the real binary,
tests/test_out_plot.py): the file is ``File``, else the chunk's tag, relative to the working
directory, opened for appending (created 0666 less the umask) at every flush and closed
after it. The value is the record's ``Key`` (the first key of that name), else the record's
first value; the line is the record time as C's ``%f`` of seconds.nanoseconds as a double
(``1700000000.123457``) then the value: an integer as it is (unsigned ones up to 2^64-1
too), a float as ``%f`` (``2.250000``). A value that is no number (a string, a boolean, a
map) is logged as an error and not plotted (``value must be integer, negative integer or
float``). A file that cannot be opened is warned about and the lines go to standard output
(``could not open FILE, switching to STDOUT``), as there.

Differences: a record without ``Key`` (``unmatched key 'K'``), and an empty record without
``Key``, are not plotted and the rest of the chunk is; Fluent Bit drops the rest of the
chunk at such a record (and reads past an empty record's end). One error line per chunk
and kind of problem, with the number of records left out, where Fluent Bit logs one per
record. The chunk's lines are written in one write, not one per record; a write that fails
(disk full) is cut back off the file and the chunk retried, where Fluent Bit counts it
written.
"""
import asyncio
import os

from edgeship.core.schema import Option
from edgeship.engine.plugin import OK, RETRY, Output
from edgeship.plugins.outputs.stdout import warn_stdout_closed, write_stdout

_NS = 1000000000
_NOT_NUMBER = "value must be integer, negative integer or float"


def plot_value(value):
    """The text of a plottable value, or None (a bool is no number to Fluent Bit)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return "%d" % value
    if isinstance(value, float):
        return "%f" % value
    return None


def plot_lines(events, key):
    """``(text, unmatched, not_numbers)`` of ``events``: the lines and the counts of the
    records left out."""
    lines = []
    unmatched = not_numbers = 0
    for time_ns, record in events:
        if key is not None:
            if key not in record:
                unmatched += 1
                continue
            value = record[key]
        elif record:
            value = next(iter(record.values()))
        else:
            unmatched += 1
            continue
        text = plot_value(value)
        if text is None:
            not_numbers += 1
            continue
        seconds = float(time_ns // _NS) + float(time_ns % _NS) / 1e9
        lines.append("%f %s\n" % (seconds, text))
    return "".join(lines), unmatched, not_numbers


def write_plot(path, data):
    """Append ``data`` to ``path`` (blocking): None once written, ``("open", error)`` when
    the file cannot be opened, ``("write", error)`` when the write failed (the file is then
    cut back to where it was)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        return "open", exc
    try:
        start = os.fstat(fd).st_size
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view):]
        except OSError as exc:
            try:
                os.ftruncate(fd, start)
            except OSError:
                pass
            return "write", exc
    finally:
        os.close(fd)
    return None


class PlotOutput(Output):
    name = "plot"
    description = "Generate data file for GNU Plot"
    options = (
        Option("Key", help="the record key to plot (default: the record's first value)"),
        Option("File", help="the data file (default: the tag)"),
    )

    async def flush(self, chunk):
        key = self.conf["key"]
        text, unmatched, not_numbers = plot_lines(chunk.events(), key)
        if unmatched and key is not None:
            self.log.error("unmatched key '%s': %d records not plotted", key, unmatched)
        elif unmatched:
            self.log.error("empty records have no value: %d records not plotted", unmatched)
        if not_numbers:
            self.log.error("%s: %d records not plotted", _NOT_NUMBER, not_numbers)
        if not text:
            return OK
        data = text.encode("ascii")
        path = self.conf["file"] or chunk.tag
        # a slow disk or a stalled stdout must not stall the loop
        failed = await asyncio.to_thread(write_plot, path, data)
        if failed is None:
            return OK
        step, exc = failed
        if step == "open":
            self.log.warn("could not open %s, switching to STDOUT (%s)", path,
                          exc.strerror or exc)
            if not await asyncio.to_thread(write_stdout, data):
                warn_stdout_closed(self)
            return OK
        self.log.error("cannot write %d records to %s: %s; will retry", chunk.count, path,
                       exc.strerror or exc)
        return RETRY


PLUGIN = PlotOutput
