"""prometheus_textfile input: metrics from Prometheus text files, as node_exporter's textfile
collector reads them (in_prometheus_textfile).

Kept from Fluent Bit 5.1.1 (checked on the real binary): ``Path`` is a comma list of files
or glob patterns; every ``scrape_interval`` (10 s; the first read one interval after the
start) each regular, non-empty file they match is read and decoded as Prometheus text
(``codecs.prometheus_text``, the ``prometheus_scrape`` extra) into its own metrics context,
every series stamped with the collection's time. A pattern that matches nothing and a file
that does not parse are errors logged at each collection; the other files still go out.

Differences: the files of a pattern are read in name order (Fluent Bit: the directory's
order); a file over ``Buffer_Max_Size`` (edgeship's own bound, 10M like prometheus_scrape's)
is refused with an error instead of being read whole into memory.
"""
import glob
import os
import stat

from edgeship.codecs import prometheus_text
from edgeship.core import events as ev
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.plugins.inputs._interval import IntervalInput


class PrometheusTextfile(IntervalInput):
    name = "prometheus_textfile"
    description = "Read Prometheus metrics from text files"
    options = (
        Option("Path", "list", help="files or glob patterns to read (comma separated)"),
        Option("Scrape_Interval", "time", "10s", above=0, help="seconds between reads"),
        Option("Buffer_Max_Size", "size", "10M", help="the largest file read"),
    )

    def configure(self):
        prometheus_text.require_parser("prometheus_textfile")
        if not self.conf["path"]:
            raise ConfigError("prometheus_textfile: 'path' is required", key="path")

    @property
    def period(self):
        return self.conf["scrape_interval"]

    def _read(self, path):
        """The text of a regular file to decode, None to skip it (logged when an error)."""
        try:
            with open(path, "rb") as f:
                info = os.fstat(f.fileno())
                if not stat.S_ISREG(info.st_mode):
                    return None
                if info.st_size > self.conf["buffer_max_size"]:
                    self.log.error("%s: %d bytes is over buffer_max_size", path, info.st_size)
                    return None
                data = f.read(self.conf["buffer_max_size"] + 1)
        except OSError as exc:
            self.log.error("cannot read '%s': %s", path, exc)
            return None
        return data.decode("utf-8", "replace") if data else None

    async def tick(self):
        now = ev.now_ns()
        for pattern in self.conf["path"]:
            found = sorted(glob.glob(pattern))
            if not found:
                self.log.error("error reading glob pattern: %s (no match)", pattern)
                continue
            for path in found:
                text = self._read(path)
                if text is None:
                    continue
                try:
                    payload = prometheus_text.decode(text, now).encode()
                except ValueError as exc:
                    self.log.error("error parsing file %s: '%s'", path, exc)
                    continue
                if payload is not None:
                    self.context.emit_metrics(self.tag, payload)


PLUGIN = PrometheusTextfile
