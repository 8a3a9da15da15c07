"""tail: finding the files Path names and following them through rotation (in_tail's
tail_scan.c and tail_file.c rotation checks).

Files are watched by polling ``fstat``/``stat`` every POLL seconds while they are idle instead
of inotify: the standard library has no inotify, polling costs two syscalls per idle file per
poll, and it also works on NFS, overlay and bind mounts where inotify misses events.
``Inotify_Watcher`` is accepted and has no effect.

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
"""
import collections
import fnmatch
import glob
import os
import stat
import time

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


class Discovery:
    """The part of TailInput that finds files, opens them and watches them for renames,
    deletion and truncation (state: ``files``, ``paths``, ``excludes``, ``conf``)."""

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
