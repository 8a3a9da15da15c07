"""tail input: follows text files line by line (in_tail).

Reading: each file is read with ``os.pread`` in blocks of BLOCK bytes; a block is split into
lines at once, parsed with one ``parse_lines`` call (if there is a parser), turned into one
batch and handed to the engine with one ``emit``. Files are watched by polling ``fstat``/``stat``
every POLL seconds while they are idle instead of inotify: the standard library has no inotify,
polling costs two syscalls per idle file per poll, and it also works on NFS, overlay and bind
mounts where inotify misses events. ``Inotify_Watcher`` is accepted and has no effect.

Text: a block is decoded as UTF-8 with ``errors="replace"``. An invalid byte becomes U+FFFD, so
a binary or mis-encoded line still becomes a record that every output can encode (surrogate
escapes would make JSON encoders fail further down), and it never stops the input. Offsets
are kept in bytes of the file, so Offset_Key and the DB stay exact.

Offsets DB: unlike Fluent Bit, an offset is committed only when every batch read up to it was
confirmed by the outputs (each batch carries an ``Ack``); see ``_confirmed``. With a multiline
parser the offset stays before the oldest line an open group holds. Each offset carries Fluent
Bit 5.1.1's offset marker and edgeship's head marker (see db.py): a file changed while
the process was not running is read from its start, not from a stale offset.

Rotation, where edgeship is safer than Fluent Bit:
- a renamed file is followed for Rotate_Wait *and* until it is read to its end (Fluent Bit
  drops it after Rotate_Wait even with unread bytes); a new file at the old path is read at
  once from its head;
- a renamed file whose new name Path also matches stays followed instead of being found
  again and read twice;
- every read checks that the file still holds what was read from it (its head and the bytes
  before the offset, FINGERPRINT each), also after a pause for Mem_Buf_Limit and behind a
  fast writer, not only at the end of the file: truncated, or truncated and written past the
  offset again (copytruncate), the file is read from its start, where Fluent Bit reads it from
  the middle; a copytruncate loses only what was written between its copy and its truncate;
- while the input waits for room in the outputs' budget the files are still polled, so a
  rename and a new file at the path are picked up (and held open) during a long pause;
- the DB row of a rotated or deleted file goes only once its last batches are confirmed.

A line longer than Buffer_Max_Size without Skip_Long_Lines stops the file with Fluent Bit's
error, once: the file stays open, unread, until it is truncated or replaced (Fluent Bit drops
it and finds it again at every rescan, logging the error each time and, without a DB,
reading the lines before it again).
"""
import asyncio
import collections
import fnmatch
import glob
import itertools
import os
import stat
import time

from edgeship.core import events as ev
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.ack import Ack
from edgeship.engine.plugin import Input

BLOCK = 256 * 1024      # bytes per read: large enough that per-block costs vanish
POLL = 0.25             # seconds between checks of idle files (growth, rotation, truncation)
# Bytes at the head and before the read position of a file, checked before every read: if
# they changed, the file was truncated and maybe written past our offset again
# (copytruncate). Long enough to span several lines, so timestamps or counters tell the
# contents apart.
FINGERPRINT = 1024
RECENT = 2.0            # seconds since a file's last change during which its content is checked


def compose_tag(tag, path):
    """Fluent Bit's tag_compose without Tag_Regex: the first ``*`` becomes the path; ``/``,
    ``\\`` and ``:`` become ``.`` (dropped at the start), ``..`` collapses, other ``*`` go and
    a trailing ``.`` is dropped."""
    star = tag.find("*")
    text = tag[:star] + path + tag[star + 1:]
    out = []
    for ch in text:
        if ch in "/\\:":
            if not out:
                continue
            ch = "."
        if ch == "." and out and out[-1] == ".":
            continue
        if ch == "*":
            continue
        out.append(ch)
    if out and out[-1] == ".":
        out.pop()
    return "".join(out)


def compose_regex_tag(tag, regex, path):
    """``Tag`` with ``<name>`` placeholders filled from Tag_Regex captures of the path; a
    capture that is missing or empty becomes ``_``. None when the regex does not match."""
    match = regex.search(path)
    if match is None:
        return None
    groups = match.groupdict()
    out = []
    pos = 0
    while True:
        begin = tag.find("<", pos)
        if begin < 0:
            break
        end = tag.find(">", begin)
        if end < 0 or "<" in tag[begin + 1:end]:
            return None
        out.append(tag[pos:begin])
        out.append(groups.get(tag[begin + 1:end]) or "_")
        pos = end + 1
    out.append(tag[pos:])
    return "".join(out)


class TailFile:
    """One followed file: its descriptor, where reading stands and what is not yet confirmed."""

    def __init__(self, name, fd, st, tag):
        self.name = name                # path as globbed; the new name after a rename
        self.fd = fd
        self.key = (st.st_dev, st.st_ino)
        self.inode = st.st_ino
        self.tag = tag
        self.read_pos = 0               # where the next pread starts
        self.pending = b""              # bytes after the last newline (an incomplete line)
        self.skip_next = False          # discarding the rest of an over-long line
        self.warned_long = False
        self.stalled = False            # stopped at a line over Buffer_Max_Size (no skipping)
        self.at_eof = False
        self.seen = (st.st_size, st.st_mtime_ns)   # at the last poll: a change is worth a look
        # The content read so far, to recognise it: the file's first bytes and the bytes just
        # before read_pos (at most FINGERPRINT each), as they were read.
        self.head = b""
        self.fingerprint = b""
        self.rotated_at = None          # monotonic time of the rename, None if not rotated
        self.stream = None              # multiline stream
        self.ml_safe = 0                # offset before the oldest line held by the stream
        self.last_feed = 0.0
        self.db_id = None
        self.committed = -1
        self.inflight = collections.deque()   # [offset, confirmed] per batch, oldest first
        self.closed = False

    @property
    def consumed(self):
        """Offset after the last complete line handed over."""
        return self.read_pos - len(self.pending)


class TailInput(Input):
    name = "tail"
    description = "Tail files"
    options = (
        Option("Path", required=True, help="comma list of glob patterns of the files to follow"),
        Option("Exclude_Path", help="comma list of patterns (fnmatch, '*' matches '/') to skip"),
        Option("Tag_Regex", help="regex on the path whose named captures fill <name> in Tag"),
        Option("Key", default="log", help="field holding the line when it is not parsed"),
        Option("Path_Key", help="add the file path under this field"),
        Option("Offset_Key", help="add the byte offset of the line under this field"),
        Option("Parser", help="parser applied to each line"),
        Option("multiline.parser", "list", multiple=True,
               help="comma list of multiline parsers (built-in or [MULTILINE_PARSER])"),
        Option("Read_From_Head", "bool", "false",
               help="read files found at start-up from their beginning (else from their end)"),
        Option("read_newly_discovered_files_from_head", "bool", "true",
               help="read files that appear later from their beginning"),
        Option("Exit_On_Eof", "bool", "false", help="end the process once every file is read"),
        Option("Refresh_Interval", "time", "60", help="seconds between rescans of Path"),
        Option("Rotate_Wait", "time", "5", help="seconds a renamed file is still followed"),
        Option("Ignore_Older", "time", "0", help="skip files modified longer ago (e.g. 1h, 2d)"),
        Option("Buffer_Chunk_Size", "size", "32768", help="initial line buffer size"),
        Option("Buffer_Max_Size", "size", "32768",
               help="longest line + newline + 1; longer lines stop the file or are skipped"),
        Option("Skip_Long_Lines", "bool", "off",
               help="skip lines longer than the buffer instead of dropping the file"),
        Option("Skip_Empty_Lines", "bool", "off", help="drop empty lines"),
        Option("DB", help="SQLite file keeping each file's offset across restarts"),
        Option("DB.sync", default="normal", choices=("extra", "full", "normal", "off"),
               help="SQLite synchronous mode of the DB"),
        Option("DB.locking", "bool", "false", help="lock the DB for this process only"),
        Option("DB.journal_mode", default="wal",
               choices=("delete", "truncate", "persist", "memory", "wal", "off"),
               help="SQLite journal mode of the DB"),
        Option("db.compare_filename", "bool", "false",
               help="a DB row matches only when inode and file name both match"),
        Option("Inotify_Watcher", "bool", "true",
               help="accepted; edgeship always polls (works on every filesystem)"),
        Option("Docker_Mode", "bool", "off",
               help="old docker mode, refused when on: use multiline.parser docker"),
        Option("Multiline", "bool", "off",
               help="old multiline mode, refused when on: use multiline.parser"),
        Option("Parser_Firstline", help="old multiline mode, refused: use multiline.parser"),
        Option("static_batch_size", "size", "50M", help="accepted for compatibility"),
        Option("event_batch_size", "size", "50M", help="accepted for compatibility"),
        Option("watcher_interval", "time", "2", help="accepted for compatibility"),
        Option("progress_check_interval", "time", "2", help="accepted for compatibility"),
        Option("file_cache_advise", "bool", "on", help="accepted for compatibility"),
    )

    def configure(self):
        conf = self.conf
        self.paths = [p.strip() for p in conf["path"].split(",") if p.strip()]
        if not self.paths:
            raise ConfigError("tail: no input 'path' was given", key="path")
        self.excludes = [p.strip() for p in (conf["exclude_path"] or "").split(",") if p.strip()]
        if conf["docker_mode"] or conf["multiline"] or conf["parser_firstline"]:
            raise ConfigError("tail: the old Docker_Mode/Multiline/Parser_Firstline keys are not "
                              "supported; use 'multiline.parser docker' (or cri, or a "
                              "[MULTILINE_PARSER])", key="multiline")
        if conf["rotate_wait"] <= 0:
            raise ConfigError("tail: invalid 'rotate_wait' config value", key="rotate_wait")
        if conf["refresh_interval"] <= 0:
            raise ConfigError("tail: invalid 'refresh_interval' config value",
                              key="refresh_interval")
        if conf["buffer_chunk_size"] > conf["buffer_max_size"]:
            raise ConfigError("tail: buffer_max_size must be >= buffer_chunk_size",
                              key="buffer_max_size")
        # A line fits when line + newline <= Buffer_Max_Size - 1 (Fluent Bit keeps one byte of
        # its buffer for a NUL).
        self.max_line = conf["buffer_max_size"] - 2
        self.key = conf["key"]
        self.path_key = conf["path_key"]
        self.offset_key = conf["offset_key"]
        self.parser = None
        if conf["parser"]:
            try:
                self.parser = self.engine.parser(conf["parser"])
            except KeyError:
                raise ConfigError("tail: parser '%s' is not registered" % conf["parser"],
                                  key="parser")
        self.multiline = self._multiline(sum(conf["multiline.parser"], []))
        self.tag_regex = None
        if conf["tag_regex"]:
            from edgeship.text.onigmo import compile_onigmo
            try:
                self.tag_regex = compile_onigmo(conf["tag_regex"])
            except ValueError as exc:
                raise ConfigError("tail: invalid 'tag_regex' config value: %s" % exc,
                                  key="tag_regex")
        self.dynamic_tag = self.tag_regex is not None or "*" in self.tag
        if conf["db"]:
            folder = os.path.dirname(os.path.abspath(conf["db"]))
            if not os.path.isdir(folder):
                raise ConfigError("tail: cannot create the DB '%s': no directory '%s'"
                                  % (conf["db"], folder), key="db")
        self.exit_on_eof = conf["exit_on_eof"]
        self.db = None
        self.files = {}                 # (dev, inode) -> TailFile, in discovery order
        self.started = False            # the first run() opened the DB and scanned
        self.parse_failures = 0
        self.skipped_long_lines = 0

    def _multiline(self, names):
        if not names:
            return None
        if self.parser is not None:
            raise ConfigError("tail: multiline.parser cannot be combined with Parser",
                              key="multiline.parser")
        from edgeship.text import multiline
        parsers = []
        for name in names:
            try:
                parsers.append(multiline.get(name, self.engine))
            except KeyError:
                raise ConfigError("tail: multiline parser '%s' is not registered" % name,
                                  key="multiline.parser")
        return multiline.group(parsers)

    # ------------------------------------------------------------------ the loop
    async def run(self):
        # run() again after an error (the engine restarts inputs) resumes every file where
        # it was: the DB, the files and the start-up scan are kept from the first run.
        if not self.started:
            self.started = True
            if self.conf["db"] and not self._open_db():
                self.engine.input_finished(self)
                return
            self._scan(startup=True)
            if self.db is not None:
                # Rows of files no longer matched would only wait for a reused inode to
                # resume a new file at a stale offset (Fluent Bit deletes them at start too).
                self._db_call(self.db.delete_others, [f.db_id for f in self.files.values()])
            if self.exit_on_eof and not self.files:
                self.log.warn("no file matches %s; nothing to read", self.conf["path"])
        now = time.monotonic()
        self.next_poll, self.next_scan = now + POLL, now + self.conf["refresh_interval"]
        while not self.stopping:
            busy = False
            for f in list(self.files.values()):
                if f.at_eof or f.closed or f.stalled:
                    continue
                await self._wait_for_room()
                if self.stopping:
                    break
                if f.closed or f.stalled:       # seen deleted or changed during the pause
                    continue
                busy = self._read(f) or busy
                # Let the outputs and other inputs run between blocks.
                await asyncio.sleep(0)
            if self.stopping:
                break
            if self.exit_on_eof and all(f.at_eof or f.closed or f.stalled
                                        for f in self.files.values()):
                self._finish()
                return
            self._housekeeping(time.monotonic())
            if not busy:
                await asyncio.sleep(max(0.0, min(self.next_poll, self.next_scan)
                                        - time.monotonic()))
        # Stopping: open multiline groups go out with the rest, within the engine's Grace.
        for f in self.files.values():
            self._flush_stream(f)

    def _housekeeping(self, now):
        if now >= self.next_poll:
            self._poll(now)
            self.next_poll = now + POLL
        if now >= self.next_scan:
            self._scan(startup=False)
            self.next_scan = now + self.conf["refresh_interval"]

    async def _wait_for_room(self):
        """``room()``, with the files still watched while the outputs are over their budget:
        a rename, a new file or a truncation during a long pause is seen when it happens and
        the new file is held open, so a generation rotated away during the pause is not
        missed. Nothing is read until there is room."""
        if self.has_room():
            return
        waiter = asyncio.ensure_future(self.room())
        try:
            while not waiter.done():
                await asyncio.wait((waiter,), timeout=POLL)
                if not waiter.done():
                    self._housekeeping(time.monotonic())
        finally:
            waiter.cancel()     # only when this task itself was cancelled
        waiter.result()

    def _finish(self):
        """Exit_On_Eof: hand over the open multiline groups, then tell the engine. A last line
        without a newline stays unread, as in Fluent Bit."""
        for f in self.files.values():
            self._flush_stream(f)
        self.engine.input_finished(self)

    # ------------------------------------------------------------------ files
    def _matches(self):
        """(path, stat) of every regular file Path matches and Exclude_Path does not, each
        pattern's matches in name order."""
        for pattern in self.paths:
            for path in sorted(glob.glob(os.path.expanduser(pattern))):
                if any(fnmatch.fnmatchcase(path, ex) for ex in self.excludes):
                    continue
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    yield path, st

    def _matched_keys(self):
        return {(st.st_dev, st.st_ino) for _, st in self._matches()}

    def _scan(self, startup):
        from_head = (self.conf["read_from_head"] if startup
                     else self.conf["read_newly_discovered_files_from_head"])
        for path, st in self._matches():
            if (st.st_dev, st.st_ino) not in self.files and not self._too_old(st):
                self._add(path, st, from_head)

    def _too_old(self, st):
        older = self.conf["ignore_older"]
        return older > 0 and st.st_mtime < time.time() - older

    def _add(self, path, st, from_head):
        if self.tag_regex is not None:
            tag = compose_regex_tag(self.tag, self.tag_regex, path)
            if tag is None:
                self.log.error("invalid tag_regex pattern for file %s", path)
                return
        elif self.dynamic_tag:
            tag = compose_tag(self.tag, path)
        else:
            tag = self.tag
        try:
            # O_NONBLOCK: a path swapped for a FIFO after the stat must not block the loop
            # in open() waiting for a writer; it has no effect on regular files.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
            st = os.fstat(fd)
        except OSError as exc:
            self.log.error("cannot open %s: %s", path, exc.strerror)
            return
        # Replaced (by another file, a FIFO or a directory) between the stat and the open.
        if (st.st_dev, st.st_ino) in self.files or not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return
        f = TailFile(path, fd, st, tag)
        offset = 0 if from_head else st.st_size
        if self.db is not None:
            offset = self._db_position(f, offset, st.st_size)
        f.read_pos = f.ml_safe = f.committed = offset
        self._remember_content(f)
        if self.db is not None and f.db_id is None:
            f.db_id = self._db_call(self.db.insert, f.name, offset, f.inode,
                                    self._bytes_before(f, offset), f.head)
        if self.multiline is not None:
            f.stream = self.multiline.stream(f.key)
        self.files[f.key] = f
        self.log.debug("inode=%d with offset=%d appended as %s", f.inode, offset, path)

    def _remove(self, f, why):
        """Stop following ``f``. Its DB row goes once its last batches are confirmed, so a
        crash before then still finds the offset."""
        self.log.debug("inode=%d removing file name %s (%s)", f.inode, f.name, why)
        self._flush_stream(f)
        f.closed = True
        self.files.pop(f.key, None)
        try:
            os.close(f.fd)
        except OSError:
            pass
        self._release_row(f)

    def _poll(self, now):
        """Multiline timeouts and renames for every file; for the files read to their end (or
        stalled at a long line) also changes, deletion and the end of Rotate_Wait."""
        for f in list(self.files.values()):
            if f.stream is not None and f.stream.pending and \
                    now - f.last_feed >= self.multiline.flush_timeout:
                self._flush_stream(f)
            if f.rotated_at is None:
                self._check_moved(f, now)
            if f.closed or not (f.at_eof or f.stalled):
                continue
            try:
                st = os.fstat(f.fd)
            except OSError:
                self._remove(f, "stat failed")
                continue
            seen, f.seen = f.seen, (st.st_size, st.st_mtime_ns)
            # File times move in clock ticks: truncated and rewritten to the same size within
            # one, a file looks unchanged, so a recently modified one has its content checked.
            maybe_changed = f.seen != seen or time.time() - st.st_mtime < RECENT
            if f.stalled:
                if maybe_changed and not self._same_content(f):
                    self._truncated(f)  # changed under the long line: read it from its start
                    continue
            elif st.st_size != f.read_pos or (maybe_changed and not self._same_content(f)):
                # Grown, shrunk or rewritten: the next read tells which.
                f.at_eof = False
                continue
            # Read to its end (or stalled): now it may go.
            if st.st_nlink == 0:
                self._remove(f, "deleted")
            elif f.rotated_at is not None and now - f.rotated_at >= self.conf["rotate_wait"]:
                if f.key in self._matched_keys():
                    # Renamed to a name Path also matches (app.log -> app.log.1 with Path
                    # app.log*): keep following it rather than find it again as a new file
                    # and read it twice, as Fluent Bit would.
                    f.rotated_at = None
                else:
                    self._remove(f, "rotated %ss ago" % self.conf["rotate_wait"])
            elif self._too_old(st):
                self._remove(f, "ignore_older")

    def _remember_content(self, f):
        """Take the head and the bytes before ``read_pos`` of a file just opened."""
        window = min(f.read_pos, FINGERPRINT)
        try:
            f.fingerprint = os.pread(f.fd, window, f.read_pos - window)
            f.head = os.pread(f.fd, window, 0)
        except OSError:
            f.fingerprint = f.head = b""

    def _same_head(self, f):
        """Does the file still begin with the bytes it began with? (Within the first
        FINGERPRINT bytes the window before read_pos already covers the head.)"""
        return f.read_pos <= FINGERPRINT or os.pread(f.fd, len(f.head), 0) == f.head

    def _same_content(self, f):
        """Does the file still hold what was read: its head, and the bytes before the read
        position? Truncated, or truncated and written past our offset again (copytruncate),
        it must be read from its start, not from the middle."""
        size = len(f.fingerprint)
        try:
            return os.pread(f.fd, size, f.read_pos - size) == f.fingerprint and self._same_head(f)
        except OSError:
            return False

    def _truncated(self, f):
        self.log.debug("inode=%d file truncated %s", f.inode, f.name)
        self._flush_stream(f)
        f.read_pos = f.ml_safe = 0
        f.pending = f.fingerprint = f.head = b""
        f.skip_next = f.stalled = f.at_eof = False
        # Batches of the old content may still be in flight: their confirmations must not
        # move the offset of the new content.
        f.inflight.clear()
        self._commit(f, 0, b"")

    def _check_moved(self, f, now):
        """Renamed or deleted? The open descriptor keeps being read (for Rotate_Wait after a
        rename, to its end after a deletion); a new file at the old path is read at once."""
        try:
            st = os.stat(f.name)
            if (st.st_dev, st.st_ino) == f.key:
                return
        except FileNotFoundError:
            pass
        except OSError:
            return
        old_name = f.name
        f.rotated_at = now
        try:
            renamed = os.fstat(f.fd).st_nlink > 0
            if renamed:
                f.name = os.readlink("/proc/self/fd/%d" % f.fd)
        except OSError:
            renamed = False
        if renamed:
            self.log.info("inode=%d handle rotation(): %s => %s", f.inode, old_name, f.name)
            if self.db is not None and f.db_id is not None:
                self._db_call(self.db.rotated, f.db_id, f.name)
        try:
            st = os.stat(old_name)
        except OSError:
            return
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in self.files:
            self._add(old_name, st, from_head=True)

    # ------------------------------------------------------------------ reading
    def _read(self, f):
        """Read one block of ``f`` and emit its complete lines; False at end of file.

        Every read first checks that the file still holds what was read from it, whatever
        happened since (a pause, a long burst behind a fast writer): the bytes before the read
        position come in the same pread as the block, and the head is compared after it. A
        file that shrank below our offset, or was truncated and written past it again, is read
        from its start, not from the old offset in the middle of the new content."""
        window = len(f.fingerprint)
        try:
            data = os.pread(f.fd, window + BLOCK, f.read_pos - window)
            same_head = self._same_head(f)
        except OSError as exc:
            self.log.error("error reading %s: %s", f.name, exc.strerror)
            self._remove(f, "read error")
            return False
        if data[:window] != f.fingerprint:
            self._truncated(f)          # the block belongs to other content: not emitted
            return True
        data = data[window:]
        f.at_eof = len(data) < BLOCK
        if data:
            self._consume(f, data)
        if not same_head:
            # Changed after the block was read (or the window matched by chance): the block
            # was emitted (a duplicate at worst, never a loss), now start over.
            self._truncated(f)
            return True
        return bool(data)

    def _consume(self, f, data):
        if len(f.head) == f.read_pos < FINGERPRINT:
            f.head = (f.head + data)[:FINGERPRINT]
        f.read_pos += len(data)
        f.fingerprint = (f.fingerprint + data)[-FINGERPRINT:] if len(data) < FINGERPRINT \
            else data[-FINGERPRINT:]
        if f.pending:
            data = f.pending + data
            f.pending = b""
        self._process(f, data, f.read_pos - len(data))

    def _process(self, f, data, start):
        """Cut ``data`` (starting at file offset ``start``) into lines and emit them."""
        if f.skip_next:
            # The rest of an over-long line: dropped up to its newline. No offset is committed
            # inside it, so a restart never begins in the middle of a line.
            newline = data.find(b"\n")
            if newline < 0:
                return
            f.skip_next = False
            data = data[newline + 1:]
            start += newline + 1
        if data[:1] == b"\0":
            # NULs at a line start come from copytruncate racing the writer; Fluent Bit skips
            # them too.
            kept = data.lstrip(b"\0")
            start += len(data) - len(kept)
            data = kept
        last = data.rfind(b"\n")
        f.pending = data[last + 1:]
        if last >= 0:
            body = data[:last]
            end = start + last + 1
            lines, offsets, stop = self._split(f, body, start)
            self._emit_lines(f, lines, offsets, end if stop is None else stop, len(body) + 1,
                             b"\r" in body)
            if stop is not None:
                self._drop_for_long_line(f)
                return
        if len(f.pending) > self.max_line:
            self._long_partial(f)

    def _split(self, f, body, start):
        """(lines, offsets or None, stop offset or None). Offsets are computed only when some
        feature needs them; ``stop`` is where an over-long line ends the file's reading."""
        need_offsets = self.offset_key is not None or f.stream is not None
        may_be_long = len(body) > self.max_line
        blines = body.split(b"\n") if may_be_long or need_offsets else None
        if may_be_long and max(map(len, blines)) > self.max_line:
            return self._split_long(f, blines, start)
        lines = body.decode("utf-8", "replace").split("\n")
        if not need_offsets:
            return lines, None, None
        offsets = list(itertools.accumulate([len(b) + 1 for b in blines[:-1]], initial=start))
        return lines, offsets, None

    def _split_long(self, f, blines, start):
        """The slow path of a block holding a line over Buffer_Max_Size."""
        lines, offsets = [], []
        pos = start
        for b in blines:
            if len(b) > self.max_line:
                if not self.conf["skip_long_lines"]:
                    return lines, offsets, pos
                self._warn_long(f)
                self.skipped_long_lines += 1
            else:
                lines.append(b.decode("utf-8", "replace"))
                offsets.append(pos)
            pos += len(b) + 1
        return lines, offsets, None

    def _long_partial(self, f):
        """An incomplete line already longer than allowed: skip it up to its newline, or stop
        following the file."""
        if not self.conf["skip_long_lines"]:
            self._drop_for_long_line(f)
            return
        self._warn_long(f)
        self.skipped_long_lines += 1
        f.pending = b""
        f.skip_next = True

    def _warn_long(self, f):
        if not f.warned_long:
            self.log.warn("file=%s have long lines. Skipping long lines.", f.name)
            f.warned_long = True

    def _drop_for_long_line(self, f):
        """Fluent Bit stops following the file and finds it again at every rescan, logging this
        error (and, without a DB, reading the lines before it again) each Refresh_Interval.
        edgeship keeps it open but unread, stalled at the line, until its content changes
        (truncated, replaced): one error per file."""
        self.log.error("file=%s requires a larger buffer size, lines are too long. "
                       "Skipping file.", f.name)
        f.pending = b""
        f.stalled = True

    # ------------------------------------------------------------------ records
    def _emit_lines(self, f, lines, offsets, end, size, has_cr):
        if self.conf["skip_empty_lines"]:
            if offsets is None:
                lines = [line for line in lines if line]
            else:
                kept = [(line, off) for line, off in zip(lines, offsets) if line]
                lines = [k[0] for k in kept]
                offsets = [k[1] for k in kept]
        now = ev.now_ns()
        if f.stream is not None:
            events, end = self._feed(f, lines, offsets, end, now)
        elif self.parser is not None:
            events = self._parse(f, lines, offsets, now, has_cr)
        elif self.path_key is None and self.offset_key is None:
            key = self.key
            if has_cr:
                lines = [_strip_cr(line) for line in lines]
            events = [(now, {key: line}) for line in lines]
        else:
            events = [(now, self._raw(f, _strip_cr(line), off))
                      for line, off in zip(lines, offsets or itertools.repeat(None))]
        self._emit(f, events, end, size)

    def _raw(self, f, line, offset):
        """An unparsed line: Path_Key and Offset_Key come before the line."""
        record = self._decorate(f, {}, offset)
        record[self.key] = line
        return record

    def _decorate(self, f, record, offset):
        """Parsed and multiline records get Path_Key and Offset_Key after their fields."""
        if self.path_key is not None:
            record[self.path_key] = f.name
        if self.offset_key is not None:
            record[self.offset_key] = offset
        return record

    def _parse(self, f, lines, offsets, now, has_cr):
        texts = [_strip_cr(line) for line in lines] if has_cr else lines
        events = self.parser.parse_lines(texts, now)
        decorate = self.path_key is not None or self.offset_key is not None
        if not decorate and None not in events:
            return events
        failed = 0
        for i, (line, off) in enumerate(zip(lines, offsets or itertools.repeat(None))):
            event = events[i]
            if event is None:
                # Fluent Bit keeps the raw line, trailing '\r' included.
                failed += 1
                events[i] = (now, self._raw(f, line, off))
            elif decorate:
                self._decorate(f, event[1], off)
        if failed:
            self.parse_failures += failed
            self.log.debug("%d of %d lines of %s did not match parser '%s'; kept raw",
                           failed, len(lines), f.name, self.conf["parser"])
        return events

    def _feed(self, f, lines, offsets, end, now):
        """Multiline: returns the completed records and the offset that may be committed with
        them: after the last line at which the stream held nothing back."""
        stream = f.stream
        feed = stream.feed
        events = []
        safe = f.ml_safe
        for i, line in enumerate(lines):
            feed(now, _strip_cr(line), events)
            if not stream.pending:
                safe = offsets[i + 1] if i + 1 < len(offsets) else end
        if not lines and not stream.pending:
            safe = end
        f.ml_safe = safe
        f.last_feed = time.monotonic()
        if self.path_key is not None or self.offset_key is not None:
            for _, record in events:
                self._decorate(f, record, end)
        return events, safe

    def _flush_stream(self, f):
        """Hand over the group a multiline stream still holds (flush timeout, EOF, close)."""
        if f.stream is None or not f.stream.pending:
            return
        events = f.stream.flush()
        f.ml_safe = f.consumed
        if self.path_key is not None or self.offset_key is not None:
            for _, record in events:
                self._decorate(f, record, f.consumed)
        self._emit(f, events, f.ml_safe, 0)

    # ------------------------------------------------------------------ offsets
    def _emit(self, f, events, offset, size):
        if self.db is None or f.db_id is None:
            if events:
                self.emit(f.tag, events, size)
            return
        if not events:
            self._advance(f, offset)
            return
        entry = [offset, False, self._bytes_before(f, offset)]
        f.inflight.append(entry)
        self.emit(f.tag, events, size, Ack(lambda: self._confirmed(f, entry)))

    def _bytes_before(self, f, offset):
        """The bytes before ``offset`` that its DB marker hashes, as they were read (the
        fingerprint ends at read_pos); from the file when it does not reach back so far (a
        multiline group held for long)."""
        from edgeship.plugins.inputs.tail.db import MARKER_SIZE
        need = min(offset, MARKER_SIZE)
        end = len(f.fingerprint) - (f.read_pos - offset)
        if end >= need:
            return f.fingerprint[end - need:end]
        try:
            return os.pread(f.fd, need, offset - need)
        except OSError:
            return b""

    def _advance(self, f, offset):
        """Bytes consumed without a record (skipped lines): committed with the batches before."""
        if self.db is None or f.db_id is None:
            return
        before = self._bytes_before(f, offset)
        if f.inflight:
            f.inflight.append([offset, True, before])
        else:
            self._commit(f, offset, before)

    def _confirmed(self, f, entry):
        """A batch of ``f`` was confirmed by every output. Acks may come out of order across
        outputs: commit the offset of the newest batch whose predecessors are all confirmed."""
        entry[1] = True
        newest = None
        while f.inflight and f.inflight[0][1]:
            newest = f.inflight.popleft()
        if newest is not None:
            self._commit(f, newest[0], newest[2])
        if f.closed and not f.inflight:
            self._release_row(f)

    def _commit(self, f, offset, before):
        if self.db is None or f.db_id is None or offset == f.committed:
            return
        f.committed = offset
        ok = self._db_call(self.db.set_offset, f.db_id, offset, before, f.head)
        if ok is False and not f.closed:
            f.db_id = self._db_call(self.db.insert, f.name, offset, f.inode, before, f.head)

    def _release_row(self, f):
        """A closed file whose batches are all confirmed: a rotated or deleted file's row is
        deleted (as Fluent Bit does); any other keeps its offset for the next run."""
        if self.db is None or f.db_id is None or f.inflight:
            return
        gone = f.rotated_at is not None
        if not gone:
            try:
                gone = os.stat(f.name).st_ino != f.inode
            except OSError:
                gone = True
        if gone:
            self._db_call(self.db.delete, f.db_id)
            f.db_id = None

    def _db_position(self, f, default, size):
        """Where to start reading ``f``: its DB row's offset when the file still holds the bytes
        the offset marker describes, else from its start (truncated, or truncated and written
        past the offset again, while we were not running; or a reused inode)."""
        name = f.name if self.conf["db.compare_filename"] else None
        row = self._db_call(self.db.find, f.inode, name)
        if row:
            f.db_id, offset, saved = row
            if offset > size or not self._markers_match(f, offset, saved):
                self.log.debug("inode=%d %s changed since offset %d was saved, reading it "
                               "from its start", f.inode, f.name, offset)
                offset = 0
                self._db_call(self.db.set_offset, f.db_id, 0, b"")
            return offset
        return default      # a new row once the file's content is taken (see _add)

    def _markers_match(self, f, offset, saved):
        """Does the file still hold the bytes the saved markers describe? A marker of size 0
        (a row of an older Fluent Bit, or no bytes to hash) does not count."""
        from edgeship.plugins.inputs.tail.db import marker
        offset_hash, offset_size, head_hash, head_size = saved
        try:
            if offset_size and marker(os.pread(f.fd, offset_size, offset - offset_size)) \
                    != (offset_hash, offset_size):
                return False
            return not head_size or marker(os.pread(f.fd, head_size, 0)) == (head_hash,
                                                                              head_size)
        except OSError:
            return False

    def _open_db(self):
        from edgeship.plugins.inputs.tail.db import Error, OffsetsDB
        try:
            self.db = OffsetsDB(self.conf["db"], self.conf["db.sync"], self.conf["db.locking"],
                                self.conf["db.journal_mode"])
        except Error as exc:
            self.log.error("could not open/create database %s: %s", self.conf["db"], exc)
            return False
        return True

    def _db_call(self, method, *args):
        """A DB failure (disk full, file removed) is logged; reading goes on, and the worst
        outcome is a re-read after a restart."""
        from edgeship.plugins.inputs.tail.db import Error
        try:
            return method(*args)
        except Error as exc:
            self.log.error("db: %s failed: %s", method.__name__, exc)
            return None


def _strip_cr(line):
    """CRLF ends lose the '\\r'; a line that is only '\\r' keeps it, as in Fluent Bit."""
    if len(line) > 1 and line[-1] == "\r":
        return line[:-1]
    return line


PLUGIN = TailInput
