"""file output: appends records to a file per tag (out_file).

The file is ``Path/File`` (File defaults to the tag, made safe for a file name as Fluent Bit
does). Formats and their exact bytes are in ``edgeship.codecs.formats``; ``msgpack`` writes
the chunk's bytes as they are (Fluent Bit writes each record's bytes from its chunk), so that
format never decodes a record.

Delivery is durable: a chunk is confirmed (OK) only after its bytes are written and
fsync'd. Any failure (missing directory without Mkdir, disk full, permission) is a RETRY
with a log line naming the file; a partial write is cut off again first, so a retried
chunk is never written twice. Fluent Bit drops the chunk when the file cannot be opened
(FLB_ERROR) and never fsyncs; edgeship keeps it queued instead.

One file descriptor per file stays open across flushes (at most MAX_OPEN_FILES per output);
it is reopened when the file was moved or deleted (logrotate), and closed on stop. The
blocking write + fsync runs in one thread per output, so the loop stays free and writes to
a file keep their order.

Metrics chunks are written as the stdout output prints them (``cmetrics.render_text``), in
every Format, as Fluent Bit's file output writes them.
"""
import asyncio
import errno
import os
import re
from concurrent.futures import ThreadPoolExecutor

from edgeship.codecs import cmetrics, formats
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import LOGS, METRICS, OK, RETRY, Output

FORMATS = ("out_file", "plain", "csv", "ltsv", "template", "msgpack")
MAX_OPEN_FILES = 64
_UNSAFE = re.compile(rb"[^A-Za-z0-9._-]")


def file_name_of_tag(tag):
    """The relative file name Fluent Bit derives from a tag: '/' and '\\' separate
    directories, '.' and '..' components become '_', and every byte other than ASCII
    letters, digits, '.', '_' and '-' becomes '_' (so no tag can leave Path)."""
    parts = []
    for part in re.split(r"[/\\]+", tag):
        if part in (".", ".."):
            parts.append("_")
        elif part:
            parts.append(_UNSAFE.sub(b"_", part.encode("utf-8", "surrogateescape")).decode())
    return "/".join(parts) or "_"


class OpenFile:
    """An append-only descriptor of one output file, reopened when the path changed."""

    def __init__(self, path, mkdir):
        self.path = path
        self.mkdir = mkdir
        self.fd = None
        self.identity = None

    def _open(self):
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except FileNotFoundError:
            directory = os.path.dirname(self.path)
            if not self.mkdir:
                raise FileNotFoundError(errno.ENOENT, "directory %s does not exist (set Mkdir on "
                                        "to create it)" % (directory or "."), self.path)
            os.makedirs(directory, 0o755, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        st = os.fstat(fd)
        self.fd, self.identity = fd, (st.st_dev, st.st_ino)
        if st.st_size == 0:  # probably created now: make its directory entry durable too
            sync_directory(os.path.dirname(self.path) or ".")

    def _current(self):
        """Open (again) unless the open descriptor still is the file at ``path``."""
        if self.fd is not None:
            try:
                st = os.stat(self.path)
                if (st.st_dev, st.st_ino) == self.identity:
                    return
            except FileNotFoundError:
                pass
            self.close()
        self._open()

    def append(self, data, header=b""):
        """Append ``data`` (after ``header`` when the file is empty) and fsync. On failure
        the file is cut back to its former size, so a retry does not duplicate lines, and
        the descriptor is closed, so the retry opens the file again."""
        self._current()
        start = os.fstat(self.fd).st_size
        if header and start == 0:
            data = header + data
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]
            os.fsync(self.fd)
        except OSError:
            try:
                os.ftruncate(self.fd, start)
            except OSError:
                pass
            self.close()
            raise

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def sync_directory(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileOutput(Output):
    STOP_TIMEOUT = 10
    name = "file"
    description = "Generate log file"
    signals = (LOGS, METRICS)
    options = (
        Option("Path", help="directory of the files (default: the current directory)"),
        Option("File", help="file name (default: the tag)"),
        Option("Format", default="out_file", choices=FORMATS,
               help="out_file ('tag: [time, {json}]'), plain (JSON), csv, ltsv, template or "
                    "msgpack"),
        Option("Mkdir", "bool", "false", help="create the directory (mode 0755) when missing"),
        Option("Delimiter", help="csv/ltsv field separator: tab (or \\t), space or comma"),
        Option("Label_Delimiter", help="ltsv label separator: tab (or \\t), space or comma"),
        Option("Template", default="{time} {message}",
               help="template format: {key} is a top-level value, {time} the time"),
        Option("csv_column_names", "bool", "false",
               help="csv: start an empty file with a header of the first record's keys"),
        Option("rotate", "bool", "false",
               help="size-based rotation: accepted, not done (logrotate rotates the file)"),
        Option("rotate_max_size", "size", "100M", compat=True),
        Option("rotate_max_files", "int", "7", compat=True),
        Option("rotate_gzip", "bool", "true", compat=True),
    )

    def configure(self):
        if self.conf["rotate"]:
            self.context.tolerate(ConfigError(
                "file: rotate is not done by edgeship: the file is reopened when logrotate "
                "moves it", key="rotate"))
        self.format = self.conf["format"]
        self.reads_records = {"msgpack": False, "plain": "json_lines"}.get(self.format, True)
        self.delimiter = {"csv": ",", "ltsv": "\t"}.get(self.format)
        self.label_delimiter = ":" if self.format == "ltsv" else None
        for key, name in (("delimiter", "Delimiter"), ("label_delimiter", "Label_Delimiter")):
            text = self.conf[key]
            chosen = formats.check_delimiter(text)
            if chosen is not None:
                setattr(self, key, chosen)
            elif text is not None:
                # Fluent Bit ignores the value silently; say so.
                self.log.warn("%s '%s' is not tab, space or comma: ignored", name, text)
        self.template = formats.Template(self.conf["template"])
        self.files = {}      # path -> OpenFile, least recently used first
        self.writer = None   # the thread doing the blocking writes

    def target(self, tag):
        name = self.conf["file"] or file_name_of_tag(tag)
        path = self.conf["path"]
        return os.path.join(path, name) if path else name

    def render(self, chunk):
        """(bytes, header for an empty file) of a chunk in the configured format."""
        fmt = self.format
        if chunk.signal == METRICS:     # one line per series, whatever the Format
            return cmetrics.render_text(cmetrics.decode(chunk.payload)).encode(), b""
        if fmt == "msgpack":
            return chunk.payload, b""  # Fluent Bit writes its chunk's bytes as they are
        if fmt == "plain" and chunk.json_lines is not None:
            return chunk.json_lines, b""    # the records as they came (RenderedEvents)
        tag, events = chunk.tag, chunk.events()
        if fmt == "out_file":
            return formats.render_out_file(tag, events), b""
        if fmt == "plain":
            return formats.render_plain(events), b""
        if fmt == "csv":
            header = b""
            if self.conf["csv_column_names"]:
                first = next((record for _, record in events if record), None)
                if first is not None:
                    header = formats.csv_header(first, self.delimiter)
            return formats.render_csv(events, self.delimiter), header
        if fmt == "ltsv":
            return formats.render_ltsv(events, self.delimiter, self.label_delimiter), b""
        return self.template.render(events), b""

    async def flush(self, chunk):
        data, header = self.render(chunk)
        if not data:
            return OK
        path = self.target(chunk.tag)
        handle = self.files.pop(path, None) or OpenFile(path, self.conf["mkdir"])
        self.files[path] = handle
        evicted = list(self.files.values())[:-MAX_OPEN_FILES]
        for old in evicted:
            del self.files[old.path]
        try:
            await self._in_writer(self._append, handle, data, header, evicted)
        except OSError as exc:
            self.log.error("cannot write %d records to %s: %s; will retry",
                           chunk.count, path, exc.strerror or exc)
            return RETRY
        return OK

    @staticmethod
    def _append(handle, data, header, evicted):
        for old in evicted:
            old.close()
        handle.append(data, header)

    def _in_writer(self, func, *args):
        if self.writer is None:
            self.writer = ThreadPoolExecutor(1, thread_name_prefix=self.display)
        return asyncio.get_running_loop().run_in_executor(self.writer, func, *args)

    def _close_all(self):
        for handle in self.files.values():
            handle.close()
        self.files.clear()

    async def stop(self):
        if self.writer is None:
            return
        # Queued behind a write still running (its flush may have been cancelled at the end
        # of Grace), so no descriptor is closed under it; a write hung on a dead network
        # file system must not hold the exit forever.
        try:
            await asyncio.wait_for(self._in_writer(self._close_all), self.STOP_TIMEOUT)
        except asyncio.TimeoutError:
            self.log.warn("a write is still running after %ds; files left open", self.STOP_TIMEOUT)
        self.writer.shutdown(wait=False)
        self.writer = None


PLUGIN = FileOutput
