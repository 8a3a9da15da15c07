"""tail: the offsets committed to the DB, and where a file found again starts (in_tail's
tail_db.c use; the SQLite table itself is ``db.py``).

Unlike Fluent Bit, an offset is committed only when every batch read up to it was confirmed by
the outputs (each batch carries an ``Ack``); see ``_confirmed``. With a multiline parser the
offset stays before the oldest line an open group holds. Each offset carries Fluent Bit
5.1.1's offset marker and edgeship's head marker (see db.py): a file changed while the process
was not running is read from its start, not from a stale offset. ``db.py`` (sqlite3, xxhash)
is imported only when a DB is configured.
"""
import os

from edgeship.engine.ack import Ack


class Offsets:
    """The part of TailInput that hands batches over with their ``Ack`` and commits each
    file's offset once they are confirmed (state: ``db``, each TailFile's ``inflight``)."""

    def _emit(self, f, events, offset, size):
        if self.db is None or f.db_id is None:
            if events:
                self.context.emit(f.tag, events, size)
            return
        if not events:
            self._advance(f, offset)
            return
        entry = [offset, False, self._bytes_before(f, offset)]
        f.inflight.append(entry)
        self.context.emit(f.tag, events, size, Ack(lambda: self._confirmed(f, entry)))

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
