"""systemd input: records from the systemd journal (in_systemd).

The journal reader is python3-systemd (``systemd._reader``, the systemd project's own
binding, in Debian and Raspberry Pi OS as ``python3-systemd`` for every architecture and
release, bullseye included). It links the system's libsystemd, so it reads whatever the
local journald writes (compact, compressed files). PyPI's cysystemd was the other candidate:
its wheels bundle their own libsystemd and need glibc 2.34, so on bullseye (and armhf) it is
built from source, and its libsystemd can lag the journald it reads. python3-systemd lives in
Debian's dist-packages: run edgeship from Debian's python3 with a virtualenv made with
``--system-site-packages`` (see the README). The reader is imported only when a config names
this input; a missing one is a config error at ``--dry-run`` saying what to install.

Kept from Fluent Bit 5.1.1 (plugins/in_systemd):
- One record per entry: every ``FIELD=value`` becomes a string; a field given more than once
  becomes an array of its values. ``Strip_Underscores`` drops one leading ``_``, then
  ``Lowercase`` lowers the key; keys that meet this way merge into an array, moved to where
  the second came (as Fluent Bit's list does). At most ``Max_Fields`` values per entry.
- The record time is the entry's realtime timestamp (microseconds).
- ``Tag`` with a ``*``: the first ``*`` becomes the entry's ``_SYSTEMD_UNIT``, or ``unknown``.
  A batch is cut where the tag changes.
- ``Systemd_Filter FIELD=value`` (repeatable), each followed by a conjunction
  (``Systemd_Filter_Type and``) or a disjunction (``or``, the default), as Fluent Bit adds them.
- ``Path``: a directory of journal files (else the local journal); ``Read_From_Tail``: only
  entries written after the start (Fluent Bit's skip of the last 350 entries included);
  ``Max_Entries`` per read; ``DB``: the cursor in Fluent Bit's table ``in_systemd_cursor``
  (an existing Fluent Bit DB resumes), ``DB.Sync``. A read also ends past 1,024,000 bytes. A saved cursor wins over Read_From_Tail,
  and reading resumes after it.

Differences from Fluent Bit, for safety:
- The DB cursor is committed only when every output confirmed the entries up to it (memory
  storage) or the spool holds them (filesystem), as tail's offset; Fluent Bit saves it when
  it has read them, so a crash skips entries.
- A cursor the journal no longer has (files vacuumed) is logged and reading starts as
  configured; an unknown ``DB.Sync`` or ``Systemd_Filter_Type`` and an invalid filter are
  config errors (Fluent Bit logs the first and goes on).
- A ``Path`` that is not there (yet) is waited for with backoff and one error line; Fluent
  Bit does not start. ``--dry-run`` accepts it, as Fluent Bit's does.
- A field repeated in one entry is an array at the place of its first value (the reader
  hands the values together); Fluent Bit moves it to the place of its second value, which
  differs only when another field came between them.
- Values that are not UTF-8 (binary fields) hold U+FFFD for the bad bytes: a record holds text.
- Reads run in a worker thread, a batch at a time, so a slow SD card never holds the loop; the
  journal's change notification (its inotify descriptor) wakes the input, and a poll every
  second catches what it misses, as Fluent Bit's timer does.
"""
import asyncio
import os
import re
import time
from collections import deque

from edgeship.core import backoff
from edgeship.core import events as ev
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.ack import Ack
from edgeship.engine.plugin import Input

UNKNOWN_UNIT = "unknown"
TAIL_SKIP = 350         # Fluent Bit's workaround for systemd#9934
POLL = 1.0
BATCH_BYTES = 1024000   # Fluent Bit's pause point: a read ends past this many bytes
REOPEN_CAP = 60.0
# What sd_journal_add_match accepts: a field name of A-Z, 0-9 and _ (not starting with
# "__"), then "=" and any value.
MATCH = re.compile(r"(?!__)[A-Z0-9_]+=")
SYNC_MODES = {"extra": 3, "full": 2, "normal": 1, "off": 0}
INSTALL = ("install it with 'sudo apt install python3-systemd' and run edgeship from "
           "Debian's python3 with that package visible (a virtualenv made with "
           "--system-site-packages)")


def _load_reader():
    try:
        from systemd import _reader
    except ImportError as exc:
        raise ConfigError("systemd: the journal reader python3-systemd is missing (%s): %s"
                          % (exc, INSTALL), key="name")
    return _reader


def compose_tag(pattern, unit):
    """Fluent Bit's tag_compose: the first ``*`` of the Tag becomes the unit."""
    star = pattern.find("*")
    return pattern[:star] + unit + pattern[star + 1:]


class SystemdInput(Input):
    name = "systemd"
    description = "Systemd (Journal) reader"
    options = (
        Option("Path", help="directory of journal files (default: the local journal)"),
        Option("Max_Fields", "int", "8000", min=1, help="values kept per entry"),
        Option("Max_Entries", "int", "5000", min=1, help="entries per read"),
        Option("Systemd_Filter_Type", choices=("and", "or"),
               help="how the filters combine (default: or)"),
        Option("Systemd_Filter", multiple=True, help="FIELD=value entries must match"),
        Option("Read_From_Tail", "bool", "false", help="start at the end of the journal"),
        Option("Lowercase", "bool", "false", help="lowercase the keys"),
        Option("Strip_Underscores", "bool", "false", help="drop one leading _ of the keys"),
        Option("DB.Sync", choices=tuple(SYNC_MODES), help="SQLite synchronous mode of DB"),
        Option("DB", help="SQLite file holding the cursor of the last delivered entry"),
    )

    def configure(self):
        self.reader_module = _load_reader()
        path = self.conf["path"]
        if path is not None and os.path.exists(path) and not os.path.isdir(path):
            raise ConfigError("systemd: given path is not a directory: %s" % path, key="path")
        for rule in self.conf["systemd_filter"]:
            if not MATCH.match(rule):
                raise ConfigError("systemd: systemd_filter error: invalid input '%s' (a "
                                  "journal match is FIELD=value, FIELD in A-Z, 0-9 and _)"
                                  % rule, key="systemd_filter")
        self.dynamic_tag = "*" in self.tag
        self.db = None
        self.inflight = deque()     # [cursor, confirmed] per batch, in reading order
        self.committed = None
        self.wake = None

    def _open(self):
        """The journal with the filters added, as Fluent Bit adds them; OSError or
        ValueError when it cannot be opened."""
        module = self.reader_module
        if self.conf["path"] is not None:
            reader = module._Reader(0, self.conf["path"])
        else:
            reader = module._Reader(module.LOCAL_ONLY)
        conjunction = self.conf["systemd_filter_type"] == "and"
        try:
            for rule in self.conf["systemd_filter"]:
                reader.add_match(rule.encode())
                if conjunction:
                    reader.add_conjunction()
                else:
                    reader.add_disjunction()
        except BaseException:
            reader.close()
            raise
        return reader

    async def _open_when_there(self):
        """Opens the journal, waiting with backoff (one log line) while it cannot be: a
        Path that is not there yet (journald makes /var/log/journal when it first writes
        there)."""
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            try:
                return await loop.run_in_executor(None, self._open)
            except (OSError, ValueError) as exc:
                if attempt == 0:
                    self.log.error("could not open the journal%s (%s); retrying until it "
                                   "can be", " in %s" % self.conf["path"]
                                   if self.conf["path"] else "", exc)
                attempt += 1
                await asyncio.sleep(backoff.jittered(attempt, 1.0, REOPEN_CAP))

    # ------------------------------------------------------------------ where to start
    def _position(self, reader, cursor):
        """Seek where reading starts (in the worker thread)."""
        if cursor:
            try:
                reader.seek_cursor(cursor)
                # The first step lands on the cursor's entry, already delivered.
                if reader._next() and reader.test_cursor(cursor):
                    self.log.info("seek_cursor=%.40s... OK", cursor)
                    return
            except (OSError, ValueError):
                pass
            self.log.warn("seek_cursor failed: the journal no longer holds %.40s...; "
                          "reading from the %s", cursor,
                          "tail" if self.conf["read_from_tail"] else "head")
        if self.conf["read_from_tail"]:
            reader.seek_tail()
            reader._previous()
            reader._next(TAIL_SKIP)
            self.log.debug("jump to the end of journal and skip the last entries")
        else:
            reader.seek_head()

    def _saved_cursor(self):
        if not self.conf["db"]:
            return None
        import sqlite3
        if self.db is not None:         # the input was started again
            self.db.close()
        try:
            self.db = sqlite3.connect(self.conf["db"], isolation_level=None)
            self.db.execute("CREATE TABLE IF NOT EXISTS in_systemd_cursor ("
                            "  cursor  TEXT NOT NULL,  updated INTEGER);")
            if self.conf["db.sync"] is not None:
                self.db.execute("PRAGMA synchronous=%d;" % SYNC_MODES[self.conf["db.sync"]])
            # Fluent Bit keeps one row; a table with more keeps the newest.
            self.db.execute("DELETE FROM in_systemd_cursor WHERE ROWID < "
                            "(SELECT MAX(ROWID) FROM in_systemd_cursor);")
            row = self.db.execute("SELECT cursor FROM in_systemd_cursor LIMIT 1;").fetchone()
        except sqlite3.Error as exc:
            self.log.error("could not open/create database '%s': %s", self.conf["db"], exc)
            self.db = None
            return None
        return row[0] if row else None

    # ------------------------------------------------------------------ reading
    async def run(self):
        loop = asyncio.get_running_loop()
        reader = await self._open_when_there()
        pending = None
        try:
            pending = loop.run_in_executor(None, self._position, reader, self._saved_cursor())
            await pending
            while not self.stopping:
                await self.context.room()
                pending = loop.run_in_executor(None, self._read_batch, reader)
                batches, full = await pending
                pending = None
                for tag, events, size, cursor in batches:
                    self._emit(tag, events, size, cursor)
                if not full and not self.stopping:
                    await self._changed(loop, reader)
        finally:
            if pending is not None and not pending.done():
                # The worker thread still uses the reader: it closes it when done.
                pending.add_done_callback(lambda _: reader.close())
            else:
                reader.close()

    async def _changed(self, loop, reader):
        """Wait until the journal says it changed, at most POLL seconds."""
        wake = self.wake = asyncio.Event()
        fd = reader.fileno()
        loop.add_reader(fd, wake.set)
        try:
            await asyncio.wait_for(wake.wait(), POLL)
        except asyncio.TimeoutError:
            pass
        finally:
            loop.remove_reader(fd)
            self.wake = None

    def stop(self):
        Input.stop(self)
        if self.wake is not None:
            self.wake.set()

    def _read_batch(self, reader):
        """Up to Max_Entries entries (in the worker thread): ``([(tag, events, size, last
        cursor)], full)``, cut where the tag changes."""
        reader.process()        # takes the change notification, so its fd goes quiet
        batches = []
        events = []
        tag = None
        size = batch_size = 0
        count = 0
        limit = self.conf["max_entries"]
        want_cursor = self.db is not None
        cursor = None
        while count < limit and batch_size < BATCH_BYTES and reader._next():
            fields = reader._get_all()
            entry_tag = self.tag
            if self.dynamic_tag:
                unit = fields.get("_SYSTEMD_UNIT")
                if isinstance(unit, list):
                    unit = unit[0]
                unit = unit.decode("utf-8", "replace") if unit else UNKNOWN_UNIT
                entry_tag = compose_tag(self.tag, unit)
            if entry_tag != tag and events:
                batches.append((tag, events, size, cursor))
                events, size = [], 0
            tag = entry_tag
            record, entry_size = self._record(fields)
            time_ns = reader._get_realtime() * 1000
            if not ev.in_range(time_ns):
                time_ns = ev.now_ns()
            events.append((time_ns, record))
            size += entry_size
            batch_size += entry_size
            if want_cursor:
                cursor = reader._get_cursor()
            count += 1
        if events:
            batches.append((tag, events, size, cursor))
        return batches, count >= limit or batch_size >= BATCH_BYTES

    def _record(self, fields):
        strip = self.conf["strip_underscores"]
        lower = self.conf["lowercase"]
        room = self.conf["max_fields"]
        record = {}
        size = 0
        for key, values in fields.items():
            if strip and key.startswith("_"):
                key = key[1:]
            if lower:
                key = key.lower()
            if not isinstance(values, list):
                values = (values,)
            for value in values:
                if room == 0:
                    return record, size
                room -= 1
                size += len(key) + len(value) + 1
                text = value.decode("utf-8", "replace")
                held = record.get(key)
                if held is None:
                    record[key] = text
                elif isinstance(held, list):
                    held.append(text)
                else:
                    del record[key]         # Fluent Bit's list moves it to the end
                    record[key] = [held, text]
        return record, size

    # ------------------------------------------------------------------ the cursor
    def _emit(self, tag, events, size, cursor):
        if self.db is None:
            self.context.emit(tag, events, size)
            return
        entry = [cursor, False]
        self.inflight.append(entry)
        self.context.emit(tag, events, size, Ack(lambda: self._confirmed(entry)))

    def _confirmed(self, entry):
        """Acks may come out of order across outputs: commit the cursor of the newest batch
        whose predecessors are all confirmed."""
        entry[1] = True
        newest = None
        while self.inflight and self.inflight[0][1]:
            newest = self.inflight.popleft()
        if newest is not None:
            self._commit(newest[0])

    def _commit(self, cursor):
        import sqlite3
        if self.db is None or cursor == self.committed:
            return
        now = int(time.time())
        try:
            if self.db.execute("UPDATE in_systemd_cursor SET cursor=?, updated=?;",
                               (cursor, now)).rowcount == 0:
                self.db.execute("INSERT INTO in_systemd_cursor (cursor, updated) "
                                "VALUES (?, ?);", (cursor, now))
        except sqlite3.Error as exc:
            self.log.error("db: saving the cursor failed: %s", exc)
            return
        self.committed = cursor


PLUGIN = SystemdInput
