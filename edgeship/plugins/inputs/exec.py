"""exec input: runs a shell command every interval (or once) and makes a record of each line
it prints (in_exec).

Kept from Fluent Bit 5.1.1 (plugins/in_exec):
- ``Command`` runs through ``/bin/sh -c`` in a process group of its own, every interval
  (the first run one interval after the start); each line of its standard output becomes
  ``{"exec": "<line>"}``, the trailing newline removed. A line longer than ``Buf_Size`` - 1
  bytes (fgets into ``Buf_Size``, default 4096) comes out in pieces of that size.
- ``Parser``: each line goes through the parser; the parsed map is the record, its time the
  parser's (else now). A line the parser rejects is dropped and logged ("parser returned an
  error").
- ``Oneshot``: the command runs once, at start. ``Exit_After_Oneshot`` implies it and stops
  edgeship (gracefully: what was read is delivered) when the command ends;
  ``Propagate_Exit_Code`` (only with Exit_After_Oneshot, else a config error) makes the
  command's exit status edgeship's: its code, or 128 + the signal that killed it.
- At shutdown the command's process group gets SIGTERM.

Differences, for safety: Fluent Bit runs the command inside its collector and waits for it,
so a command that hangs stops that input for good; edgeship never blocks the loop (the output
is read as it comes, one batch per read), and a command still running at the next tick is
killed (its whole process group, SIGKILL), logged, and the next run starts. The command reads
/dev/null, not edgeship's standard input (a stdin input may be reading it). A Parser that does
not exist is a config error at its line (Fluent Bit logs it and goes on without a parser);
lines the parser rejects are logged once per read, with their count.
"""
import asyncio
import os
import signal
import subprocess

from edgeship.core import events as ev
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.plugins.inputs._host import fgets_pieces
from edgeship.plugins.inputs._interval import IntervalInput, interval_options

READ_SIZE = 65536


def _kill_group(proc, sig):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class ExecInput(IntervalInput):
    name = "exec"
    description = "Exec Input"
    options = (
        Option("Command", required=True, help="the shell command to run"),
        Option("Parser", help="parser applied to each line of its output"),
    ) + interval_options() + (
        Option("Buf_Size", "size", "4096", min=2, help="longest line read at once (bytes)"),
        Option("Oneshot", "bool", "false", help="run the command only once, at start"),
        Option("Exit_After_Oneshot", "bool", "false",
               help="stop edgeship when the one-shot command ends (implies Oneshot)"),
        Option("Propagate_Exit_Code", "bool", "false",
               help="exit with the one-shot command's exit status (needs Exit_After_Oneshot)"),
    )

    def configure(self):
        self.command = self.conf["command"]
        self.parser = None
        if self.conf["parser"]:
            try:
                self.parser = self.context.parser(self.conf["parser"])
            except KeyError:
                raise ConfigError("exec: requested parser '%s' not found" % self.conf["parser"],
                                  key="parser")
        if self.conf["propagate_exit_code"] and not self.conf["exit_after_oneshot"]:
            raise ConfigError("exec: propagate_exit_code=True option makes no sense without "
                              "exit_after_oneshot=True", key="propagate_exit_code")
        self.exit_after = self.conf["exit_after_oneshot"]
        self.oneshot = self.conf["oneshot"] or self.exit_after
        self.buf_size = self.conf["buf_size"]
        self.running = None         # the task of the command in flight
        self.rejected = 0

    # ------------------------------------------------------------------ scheduling
    async def run(self):
        if not self.oneshot:
            try:
                await IntervalInput.run(self)
            finally:
                self._end_running(signal.SIGTERM)
            return
        self.done = True
        try:
            code = await self._run_once()
        finally:
            self._end_running(signal.SIGTERM)
        if self.exit_after and not self.stopping:
            self.log.info("one-shot command exited, terminating edgeship")
            self.context.request_exit(code if self.conf["propagate_exit_code"] else 0)

    async def tick(self):
        if self.running is not None and not self.running.done():
            self.log.warn("command '%s' still running after %gs (one interval): killed",
                          self.command, self.period)
            self.running.cancel()
        self.running = asyncio.ensure_future(self._run_once())
        self.running.add_done_callback(self._finished)

    def _finished(self, task):
        if not task.cancelled() and task.exception() is not None:
            self.log.error("command '%s' failed: %r", self.command, task.exception())

    def _end_running(self, sig):
        if self.running is not None and not self.running.done():
            self.running.cancel()
        if self._proc is not None and self._proc.returncode is None:
            _kill_group(self._proc, sig)

    _proc = None

    # ------------------------------------------------------------------ one run
    async def _run_once(self):
        """Run the command once, emitting its lines as they come; its exit status (a code, or
        128 + the signal that ended it; 128 when it could not start)."""
        try:
            proc = await asyncio.create_subprocess_exec(
                "/bin/sh", "-c", self.command, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            self.log.error("command '%s' failed to start: %s", self.command, exc)
            return 128
        self._proc = proc
        try:
            await self._read(proc.stdout)
            code = await proc.wait()
        finally:
            if proc.returncode is None:         # cancelled: killed at the next tick or stop
                _kill_group(proc, signal.SIGKILL)
        self.log.debug("command %s exited with %s %d", self.command,
                       "code" if code >= 0 else "signal", abs(code))
        return code if code >= 0 else 128 - code

    async def _read(self, stream):
        pending = b""
        while True:
            data = await stream.read(READ_SIZE)
            pending += data
            pieces, pending = fgets_pieces(pending, self.buf_size, at_eof=not data)
            if pieces:
                await self.context.room()
                self._emit(pieces)
            if not data:
                return

    def _emit(self, pieces):
        # The trailing newline removed, as Fluent Bit's chomp.
        lines = [(p[:-1] if p.endswith(b"\n") else p).decode("utf-8", "replace")
                 for p in pieces]
        now = ev.now_ns()
        if self.parser is None:
            events = [(now, {"exec": line}) for line in lines]
        else:
            parsed = self.parser.parse_lines(lines, now)
            events = [event for event in parsed if event is not None]
            rejected = len(parsed) - len(events)
            if rejected:
                self.rejected += rejected
                self.log.error("parser returned an error (%d lines of this read dropped)",
                               rejected)
        if events:
            self.context.emit(self.tag, events, sum(len(p) for p in pieces))


PLUGIN = ExecInput
