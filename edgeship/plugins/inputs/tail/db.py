"""The tail offsets database: Fluent Bit's own SQLite table, so an existing Fluent Bit ``DB``
file keeps working (same table, same columns, rows keyed by inode) and edgeship's file can be
handed back to Fluent Bit.

Each offset comes with Fluent Bit 5.1.1's offset marker: the XXH3-64 hash of the (at most 32)
bytes before it, and their count. A file truncated and written past the offset again while the
process was not running no longer holds those bytes there, so it is read from its start rather
than from the middle of its new content. 32 bytes often are the same end of a line (a fixed
message, padding), so edgeship adds a head marker in two columns of its own, the hash and size
of the file's first (at most 1024) bytes; Fluent Bit names its columns in every statement, so
it ignores them. A DB of an older Fluent Bit gets the missing columns added (as Fluent Bit
does); a row without a marker is trusted as it is.

What differs is *when* an offset is written: the tail input calls ``set_offset`` only once the
records read up to that offset were confirmed by every output (see offsets.py), where Fluent Bit
writes it as soon as the lines are in a memory chunk (its issue #1797).
"""
import sqlite3
import time

import xxhash

CREATE = ("CREATE TABLE IF NOT EXISTS in_tail_files ("
          "  id      INTEGER PRIMARY KEY,"
          "  name    TEXT NOT NULL,"
          "  offset  INTEGER,"
          "  inode   INTEGER,"
          "  created INTEGER,"
          "  rotated INTEGER DEFAULT 0,"
          "  offset_marker INTEGER DEFAULT 0,"
          "  offset_marker_size INTEGER DEFAULT 0,"
          "  head_marker INTEGER DEFAULT 0,"
          "  head_marker_size INTEGER DEFAULT 0"
          ");")
MARKER_COLUMNS = ("offset_marker", "offset_marker_size", "head_marker", "head_marker_size")
MARKER_SIZE = 32        # bytes before the offset that the offset marker hashes


def marker(data):
    """(hash, size) of ``data``; (0, 0), no marker, when empty. The hash is unsigned;
    Fluent Bit stores its bits as SQLite's signed 64-bit integer."""
    if not data:
        return 0, 0
    value = xxhash.xxh3_64_intdigest(data)
    return (value - (1 << 64) if value >= 1 << 63 else value), len(data)


def markers(before, head):
    """The four marker columns for an offset: ``before`` holds the bytes before it (the last
    MARKER_SIZE count), ``head`` the file's first bytes as they were read."""
    return marker(before[-MARKER_SIZE:]) + marker(head)

SYNC_LEVELS = {"off": 0, "normal": 1, "full": 2, "extra": 3}


def connect(path, create, sync="normal", locking=False, journal_mode="wal"):
    """An autocommit connection to the SQLite file ``path`` as Fluent Bit opens its plugins'
    DBs: the ``create`` statement, then the DB.sync, DB.locking and DB.journal_mode pragmas
    (tail and kubernetes_events)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(create)
        conn.execute("PRAGMA synchronous=%d;" % SYNC_LEVELS[sync])
        if locking:
            conn.execute("PRAGMA locking_mode=EXCLUSIVE;")
        conn.execute("PRAGMA journal_mode=%s;" % journal_mode.upper())
    except sqlite3.Error:
        conn.close()
        raise
    return conn


class OffsetsDB:
    def __init__(self, path, sync="normal", locking=False, journal_mode="wal"):
        # Autocommit: each statement is its own transaction, so an offset is on disk (or in
        # the WAL) when set_offset returns, and a SIGKILL right after cannot undo it.
        self.conn = connect(path, CREATE, sync, locking, journal_mode)
        have = {row[1] for row in self.conn.execute("PRAGMA table_info(in_tail_files)")}
        for column in MARKER_COLUMNS:
            if column not in have:
                self.conn.execute("ALTER TABLE in_tail_files ADD COLUMN %s INTEGER DEFAULT 0"
                                  % column)

    def close(self):
        self.conn.close()

    def find(self, inode, name=None):
        """(id, offset, markers) of the newest row for ``inode`` (and ``name`` when given),
        or None; ``markers`` as ``markers()`` makes them."""
        query = ("SELECT id, offset, %s FROM in_tail_files WHERE inode=?"
                 % ", ".join(MARKER_COLUMNS))
        if name is None:
            row = self.conn.execute(query + " ORDER BY id DESC", (inode,)).fetchone()
        else:
            row = self.conn.execute(query + " AND name=? ORDER BY id DESC",
                                    (inode, name)).fetchone()
        return (row[0], row[1] or 0, tuple(v or 0 for v in row[2:])) if row else None

    def insert(self, name, offset, inode, before=b"", head=b""):
        """A new row; see ``markers()`` for ``before`` and ``head``."""
        cur = self.conn.execute(
            "INSERT INTO in_tail_files (name, offset, inode, created, %s) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)" % ", ".join(MARKER_COLUMNS),
            (name, offset, inode, int(time.time())) + markers(before, head))
        return cur.lastrowid

    def set_offset(self, row_id, offset, before=b"", head=b""):
        """False when the row is gone (someone deleted it): the caller re-inserts it."""
        cur = self.conn.execute(
            "UPDATE in_tail_files SET offset=?, %s WHERE id=?"
            % ", ".join(c + "=?" for c in MARKER_COLUMNS),
            (offset,) + markers(before, head) + (row_id,))
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
