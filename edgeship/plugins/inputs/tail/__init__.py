"""tail input: follows text files line by line (in_tail).

The plugin is split by concern, as Fluent Bit's in_tail/ is; TailInput is composed of:

    discovery   finding the files Path names, opening them, rotation, truncation (TailFile)
    reading     reading blocks, cutting lines, making records (parser, multiline, keys)
    offsets     batches handed over with their Ack, offsets committed once confirmed
    db          the offsets DB: Fluent Bit's own SQLite table
    legacy      the old multiline mode (Multiline On, Parser_Firstline, Parser_N)

Each module's docstring lists the Fluent Bit behaviour kept there and where edgeship differs.
Here: the options, their checks and the loop that reads every file in turn.

A Parser that names no [PARSER] is an error in Fluent Bit's log, and the lines are read raw
({Key: line}); edgeship warns the same way (an error under --strict).
Docker_Mode and the old multiline mode are in legacy.py; multiline.parser wins over
Docker_Mode, which wins over Multiline, as in Fluent Bit's reading order.
"""
import asyncio
import os
import time

from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import Input
from edgeship.plugins.inputs.tail.discovery import Discovery
from edgeship.plugins.inputs.tail.offsets import Offsets
from edgeship.plugins.inputs.tail.reading import Reading

POLL = 0.25             # seconds between checks of idle files (growth, rotation, truncation)


class TailInput(Discovery, Reading, Offsets, Input):
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
        Option("Refresh_Interval", "time", "60", above=0, help="seconds between rescans of Path"),
        Option("Rotate_Wait", "time", "5", above=0, help="seconds a renamed file is still followed"),
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
               compat=True, help="edgeship always polls (works on every filesystem)"),
        Option("Docker_Mode", "bool", "off",
               help="join docker's JSON lines split by docker (before Parser)"),
        Option("Docker_Mode_Flush", "int", "4", help="Docker_Mode: seconds parts wait"),
        Option("Docker_Mode_Parser", help="Docker_Mode: first-line parser (accepted, not used)"),
        Option("Multiline", "bool", "off",
               help="old multiline mode: Parser_Firstline starts a record, Parser_N add to it"),
        Option("Multiline_Flush", "time", "4", help="old multiline mode: seconds a record waits"),
        Option("Parser_Firstline", help="old multiline mode: parser of a record's first line"),
        Option("Parser_", prefix=True,
               help="old multiline mode: Parser_1, Parser_2...: parsers of the next lines"),
        Option("truncate_long_lines", "bool", "off",
               help="cut a line longer than the buffer to it, instead of skipping it"),
        Option("ignore_active_older_files", "bool", "off", compat=True),
        Option("unicode.encoding", compat=True),
        Option("generic.encoding", compat=True),
        Option("static_batch_size", "size", "50M", compat=True),
        Option("event_batch_size", "size", "50M", compat=True),
        Option("watcher_interval", "time", "2", compat=True),
        Option("progress_check_interval", "time", "2", compat=True),
        Option("file_cache_advise", "bool", "on", compat=True),
    )

    def configure(self):
        conf = self.conf
        self.paths = [p.strip() for p in conf["path"].split(",") if p.strip()]
        if not self.paths:
            raise ConfigError("tail: no input 'path' was given", key="path")
        self.excludes = [p.strip() for p in (conf["exclude_path"] or "").split(",") if p.strip()]
        if conf["docker_mode_parser"]:
            self.context.tolerate(ConfigError(
                "tail: Docker_Mode_Parser is not implemented: lines are joined by their "
                "newlines only", key="docker_mode_parser"))
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
        if conf["parser"] and not (conf["multiline"] and not conf["docker_mode"]):
            try:
                self.parser = self.context.parser(conf["parser"])
            except KeyError:
                self.context.tolerate(ConfigError(
                    "tail: parser '%s' is not registered; lines are read raw, as in Fluent Bit"
                    % conf["parser"], key="parser"))
        self.multiline = self._multiline(sum(conf["multiline.parser"], []))
        if self.multiline is None and conf["docker_mode"]:
            from edgeship.plugins.inputs.tail.legacy import DockerMode
            self.multiline = DockerMode(self.parser, self.key, conf["docker_mode_flush"])
        elif self.multiline is None and conf["multiline"]:
            if conf["parser"]:
                self.log.warn("on multiline mode 'Parser' is not allowed (parser disabled)")
            self.multiline = self._old_multiline()
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
        self.truncated_long_lines = 0

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
                parsers.append(self.context.multiline(name))
            except KeyError:
                raise ConfigError("tail: multiline parser '%s' is not registered" % name,
                                  key="multiline.parser")
        return multiline.group(parsers)

    def _old_multiline(self):
        from edgeship.plugins.inputs.tail.legacy import OldMultiline
        if not self.conf["parser_firstline"]:
            raise ConfigError("tail: multiline: no parser defined for firstline",
                              key="parser_firstline")
        names = [("parser_firstline", self.conf["parser_firstline"])]
        names += [("parser_", name) for name in self.conf["parser_"]]
        found = []
        for key, name in names:
            try:
                found.append(self.context.parser(name))
            except KeyError:
                raise ConfigError("tail: multiline: invalid parser '%s'" % name, key=key)
        return OldMultiline(found[0], found[1:], self.conf["multiline_flush"], self.key)

    # ------------------------------------------------------------------ the loop
    async def run(self):
        # run() again after an error (the engine restarts inputs) resumes every file where
        # it was: the DB, the files and the start-up scan are kept from the first run.
        if not self.started:
            self.started = True
            if self.conf["db"] and not self._open_db():
                self.context.finished()
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
        if self.context.has_room():
            return
        waiter = asyncio.ensure_future(self.context.room())
        try:
            while not waiter.done():
                await asyncio.wait((waiter,), timeout=POLL)
                if not waiter.done():
                    self._housekeeping(time.monotonic())
        finally:
            waiter.cancel()     # only when this task itself was cancelled
        waiter.result()

    def close(self):
        """The files and the DB are let go (a hot reload's new tail opens its own); the
        acks still pending commit nothing then, so the next reader resumes at the last
        committed offset."""
        for f in list(self.files.values()):
            try:
                os.close(f.fd)
            except OSError:
                pass
        self.files.clear()
        if self.db is not None:
            self.db.close()
            self.db = None

    def _finish(self):
        """Exit_On_Eof: hand over the open multiline groups, then tell the engine. A last line
        without a newline stays unread, as in Fluent Bit."""
        for f in self.files.values():
            self._flush_stream(f)
        self.context.finished()


PLUGIN = TailInput
