"""The tail offsets database: Fluent Bit's own SQLite table, so an existing Fluent Bit ``DB``
file keeps working (same table, same columns, rows keyed by inode) and edgeship's file can be
handed back to Fluent Bit.

What differs is *when* an offset is written: the tail input calls ``set_offset`` only once the
records read up to that offset were confirmed by every output (see tail.py), where Fluent Bit
writes it as soon as the lines are in a memory chunk (its issue #1797).
"""
import sqlite3
import time

CREATE = ("CREATE TABLE IF NOT EXISTS in_tail_files ("
          "  id      INTEGER PRIMARY KEY,"
          "  name    TEXT NOT NULL,"
          "  offset  INTEGER,"
          "  inode   INTEGER,"
          "  created INTEGER,"
          "  rotated INTEGER DEFAULT 0"
          ");")

SYNC_LEVELS = {"off": 0, "normal": 1, "full": 2, "extra": 3}


class OffsetsDB:
    def __init__(self, path, sync="normal", locking=False, journal_mode="wal"):
        # Autocommit: each statement is its own transaction, so an offset is on disk (or in
        # the WAL) when set_offset returns, and a SIGKILL right after cannot undo it.
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute(CREATE)
        self.conn.execute("PRAGMA synchronous=%d;" % SYNC_LEVELS[sync])
        if locking:
            self.conn.execute("PRAGMA locking_mode=EXCLUSIVE;")
        self.conn.execute("PRAGMA journal_mode=%s;" % journal_mode.upper())

    def find(self, inode, name=None):
        """(id, offset) of the newest row for ``inode`` (and ``name`` when given), or None."""
        if name is None:
            row = self.conn.execute("SELECT id, offset FROM in_tail_files WHERE inode=? "
                                    "ORDER BY id DESC", (inode,)).fetchone()
        else:
            row = self.conn.execute("SELECT id, offset FROM in_tail_files WHERE inode=? AND "
                                    "name=? ORDER BY id DESC", (inode, name)).fetchone()
        return (row[0], row[1] or 0) if row else None

    def insert(self, name, offset, inode):
        cur = self.conn.execute("INSERT INTO in_tail_files (name, offset, inode, created) "
                                "VALUES (?, ?, ?, ?)", (name, offset, inode, int(time.time())))
        return cur.lastrowid

    def set_offset(self, row_id, offset):
        """False when the row is gone (someone deleted it): the caller re-inserts it."""
        cur = self.conn.execute("UPDATE in_tail_files SET offset=? WHERE id=?", (offset, row_id))
        return cur.rowcount > 0

    def rotated(self, row_id, new_name):
        self.conn.execute("UPDATE in_tail_files SET name=?, rotated=1 WHERE id=?",
                          (new_name, row_id))

    def delete(self, row_id):
        self.conn.execute("DELETE FROM in_tail_files WHERE id=?", (row_id,))

    def delete_others(self, keep_ids):
        """Delete every row but ``keep_ids``. The ids are our own integers, written into the
        statement so that no count of files meets SQLite's limit on bound parameters."""
        keep = ",".join(str(int(i)) for i in keep_ids if i is not None)
        self.conn.execute("DELETE FROM in_tail_files WHERE id NOT IN (%s)" % keep)


Error = sqlite3.Error
