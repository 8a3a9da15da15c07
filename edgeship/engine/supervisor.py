"""The running process: one Engine at a time, its signals, hot reload and the monitoring
HTTP server.

Hot reload (``Hot_Reload On`` or ``-Y``; SIGHUP, or POST/PUT /api/v2/reload), as Fluent Bit:
the configuration is read again (command-line options apply again) and the old pipeline is
replaced by the new one; uptime and the pipeline counters start over, the reload count
goes up. Kept from Fluent Bit: the log lines, a reload while one runs is refused, without
Hot_Reload SIGHUP only logs "hot reloading is not enabled".

Differences, because Fluent Bit loses data or hangs there (fluent-bit #9354, #10518,
#12225):
- the new configuration is read and every plugin built *before* the old pipeline is
  touched: when it has an error, the error is logged and the old pipeline keeps running;
- the old outputs get half of Grace to finish the flushes in flight, then those are
  cancelled (the chunks stay queued): a dead output cannot hang the reload;
- chunks of an output the new configuration still has (same Alias or plugin.N) carry
  over: spooled ones stay in the spool and the new pipeline replays them, memory ones are
  handed to the new queue with their acks; an output the new configuration drops gets
  Grace to deliver, like at shutdown.
"""
import asyncio
import gc
import signal
import sys

from edgeship.core.errors import ConfigError


class Supervisor:
    def __init__(self, engine, build, follow_monitor=None):
        """``engine``: the first pipeline, built; ``build()``: a new Engine from the
        configuration as it is now (raises ConfigError); ``follow_monitor(supervisor,
        current)``: the monitoring server the current configuration asks for
        (``edgeship.http.monitor.follow``: the front's, passed in by the CLI)."""
        self.follow_monitor = follow_monitor
        self.engine = engine
        self.build = build
        self.reload_count = 0
        self.reloading = False
        self._wake = None
        self._reload_wanted = False
        self._stop_signal = None
        self.monitor = None
        # Output errors and failed retries of the pipelines a reload replaced: the health
        # window counts since the process started.
        self.carried = (0, 0)

    @property
    def log(self):
        return self.engine.log

    # ------------------------------------------------------------------ signals, requests
    def _on_stop_signal(self, sig):
        self._stop_signal = sig
        if not self.reloading:
            self.engine.on_signal(sig)

    def _on_hangup(self):
        self.log.info("caught signal (SIGHUP)")
        if not self.request_reload():
            if not self.engine.service["hot_reload"]:
                self.log.child("reload").warn("hot reloading is not enabled")
            else:
                self.log.child("reload").warn("a reload is in progress; this one is ignored")

    def request_reload(self):
        """Ask for a reload; False when Hot_Reload is off or one is under way."""
        if (not self.engine.service["hot_reload"] or self.reloading or self._reload_wanted
                or self.engine.stopping):
            return False
        self._reload_wanted = True
        self._wake.set()
        return True

    # ------------------------------------------------------------------ running
    async def run(self, early_signals=None):
        from edgeship.engine.engine import _tune_garbage_collector
        _tune_garbage_collector()
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_stop_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self._on_hangup)
        caught = early_signals.caught if early_signals is not None else None
        await self._start_monitor()
        await self.engine.start(caught)
        try:
            while True:
                stopped = asyncio.ensure_future(self.engine.stop_requested())
                woken = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait([stopped, woken], return_when=asyncio.FIRST_COMPLETED)
                stopped.cancel()
                woken.cancel()
                self._wake.clear()
                if self.engine.stopping:
                    break  # a reload asked for during shutdown is not done
                if self._reload_wanted:
                    await self._reload()
            return await self.engine.finish()
        finally:
            if self.monitor is not None:
                await self.monitor.close()
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)

    async def _reload(self):
        """Replace the pipeline, or keep it when the new configuration has an error."""
        self.reloading = True
        log = self.log.child("reload")
        try:
            log.info("reloading instance")
            try:
                new = self.build()
            except ConfigError as exc:
                for error in getattr(exc, "errors", [exc]):
                    log.error("%s", error)
                log.error("the new configuration has errors: the running one is kept")
                return
            except Exception as exc:  # a plugin failing to build: the same, not a crash
                log.error("the new configuration cannot be built (%r): the running one is "
                          "kept", exc)
                return
            old = self.engine
            log.info("stop everything of the old context")
            kept = {out.plugin.display for out in new.outputs}
            handed = await old.hand_over(kept)
            self.carried = (self.carried[0] + sum(out.errors for out in old.outputs),
                            self.carried[1] + sum(out.retries_failed for out in old.outputs))
            self.engine = new
            new.process_started_at = old.process_started_at
            new.reloads = self.reload_count + 1
            _close_log(old.log, new.log)
            del old
            # What the old pipeline left in cycles is freed now (start-up froze the objects
            # of the first one; they are unfrozen so that it can be).
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            log = self.log.child("reload")
            log.info("start everything")
            self.reload_count += 1
            await self._start_monitor()
            await new.start(self._stop_signal, handed)
            log.info("successful reload done")
        finally:
            self.reloading = False
            self._reload_wanted = False

    async def _start_monitor(self):
        """The monitoring HTTP server of the current config (HTTP_Server); it stays up across
        reloads unless its address changed."""
        if self.follow_monitor is not None:
            self.monitor = await self.follow_monitor(self, self.monitor)


def _close_log(old, new):
    """The old pipeline's Log_File, once the new pipeline logs elsewhere."""
    if old.stream is not new.stream and old.stream not in (sys.stderr, sys.stdout):
        try:
            old.stream.close()
        except OSError:
            pass
