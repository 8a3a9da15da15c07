"""``edgeship top``: a live terminal view of a running edgeship, read from its monitoring API
(HTTP_Server On): per input and output the records per second (with a sparkline of the last
minute), records, bytes, retries, errors, dropped records, queued chunks and spool bytes,
paused inputs; uptime, reloads and health on top. It polls every second; ``q`` quits.

Plain ``curses`` from the standard library: it is on every Pi's Python, and one screen of
columns needs nothing more. Works against Fluent Bit's API too (without the edgeship-only
spool columns, shown as ``-``).
"""
import curses
import locale
import sys
import time
import urllib.error
import urllib.request

from edgeship.codecs.untrusted import loads

USAGE = "usage: edgeship top [-L ADDRESS] [-P PORT] [-i SECONDS]\n"
HISTORY = 60
BARS_UTF8 = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"
BARS_ASCII = "_.-=+*#@"


def fetch(base, path):
    """The JSON of ``path``, or None when the endpoint is not there (404) or not JSON."""
    try:
        with urllib.request.urlopen(base + path, timeout=2) as response:
            return loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            return loads(exc.read())   # /api/v2/health answers 500 with its state
        except ValueError:
            return None
    except ValueError:
        return None


def human(size):
    """Bytes as ``512``, ``1.5K``, ``2.0M``."""
    if size is None:
        return "-"
    if size < 1024:
        return "%d" % size
    for unit in "KMGT":
        size /= 1024.0
        if size < 1024 or unit == "T":
            return "%.1f%s" % (size, unit)


def sparkline(values, bars, width):
    """The last ``width`` values as bars scaled to the highest of them."""
    values = list(values)[-width:] if width else []
    top = max(values) if values else 0
    if not top:
        return bars[0] * len(values)
    return "".join(bars[min(len(bars) - 1, int(v * (len(bars) - 1) / top + 0.5))]
                   for v in values)


class Sampler:
    """The API's numbers now, and records per second from the previous sample."""

    def __init__(self, base):
        self.base = base
        self.previous = {}       # ("input" | "output", name) -> (monotonic time, records)
        self.history = {}        # same key -> [records/s]
        self.error = None

    def sample(self):
        try:
            metrics = fetch(self.base, "/api/v1/metrics")
            storage = fetch(self.base, "/api/v1/storage") or {}
            uptime = fetch(self.base, "/api/v1/uptime") or {}
            reload_state = fetch(self.base, "/api/v2/reload") or {}
            health = fetch(self.base, "/api/v2/health") or {}
        except (OSError, urllib.error.URLError) as exc:
            self.error = "cannot reach %s: %s" % (self.base, getattr(exc, "reason", exc))
            return None
        if metrics is None:
            self.error = "%s/api/v1/metrics answers nothing yet" % self.base
            return None
        self.error = None
        now = time.monotonic()
        view = {"uptime": uptime.get("uptime_sec"), "reloads": reload_state.get(
            "hot_reload_count"), "health": health.get("status"), "inputs": [],
                "outputs": []}
        for name, entry in metrics.get("input", {}).items():
            chunks = storage.get("input_chunks", {}).get(name, {})
            row = {"name": name, "records": entry.get("records", 0),
                   "bytes": entry.get("bytes", 0),
                   "paused": chunks.get("status", {}).get("paused"),
                   "chunks": chunks.get("chunks", {}).get("total")}
            row["rate"] = self._rate(("input", name), row["records"], now)
            view["inputs"].append(row)
        for name, entry in metrics.get("output", {}).items():
            queue = storage.get("output_chunks", {}).get(name, {})
            row = {"name": name, "records": entry.get("proc_records", 0),
                   "bytes": entry.get("proc_bytes"), "retries": entry.get("retries", 0),
                   "errors": entry.get("errors", 0),
                   "dropped": entry.get("dropped_records", 0),
                   "chunks": queue.get("total_chunks"), "spool": queue.get("fs_bytes")}
            row["rate"] = self._rate(("output", name), row["records"], now)
            view["outputs"].append(row)
        return view

    def _rate(self, key, records, now):
        before = self.previous.get(key)
        self.previous[key] = (now, records)
        rate = 0.0
        if before is not None and now > before[0]:
            rate = max(0.0, (records - before[1]) / (now - before[0]))
        history = self.history.setdefault(key, [])
        history.append(rate)
        del history[:-HISTORY]
        return rate


def _cell(value, width, fmt="%d"):
    if value is None:
        return "-".rjust(width)
    if isinstance(value, bool):
        return ("yes" if value else "no").rjust(width)
    return (fmt % value).rjust(width)


def render(view, sampler, bars, address, width=80):
    """The screen as lines of text, fitting ``width`` columns (80 is enough; a wider
    terminal gets longer sparklines)."""
    head = "edgeship top  %s" % address
    if view is None:
        return [head, "", sampler.error or "", "", "q: quit"]
    uptime = view["uptime"]
    if uptime is not None:
        days, rest = divmod(uptime, 86400)
        head += "  up %dd %02d:%02d:%02d" % (days, rest // 3600, rest % 3600 // 60, rest % 60)
    head += "  reloads %s  health %s" % (_cell(view["reloads"], 0).strip(),
                                          view["health"] or "-")
    lines = [head, ""]
    columns = "%-14s %7s %9s %6s %6s %6s"
    spark = max(0, width - 1 - len(columns % (("",) * 6)) - 1)
    lines.append(columns % ("INPUT", "rec/s", "records", "bytes", "paused", "chunks"))
    for row in view["inputs"]:
        lines.append(" ".join([
            "%-14s" % row["name"][:14], _cell(row["rate"], 7, "%.1f"), _cell(row["records"], 9),
            human(row["bytes"]).rjust(6), _cell(row["paused"], 6), _cell(row["chunks"], 6),
            sparkline(sampler.history.get(("input", row["name"]), []), bars, spark)]))
    lines.append("")
    columns = "%-14s %7s %9s %6s %5s %4s %5s %6s %6s"
    spark = max(0, width - 1 - len(columns % (("",) * 9)) - 1)
    lines.append(columns % ("OUTPUT", "rec/s", "records", "bytes", "retry", "err", "drop",
                            "chunks", "spool"))
    for row in view["outputs"]:
        lines.append(" ".join([
            "%-14s" % row["name"][:14], _cell(row["rate"], 7, "%.1f"), _cell(row["records"], 9),
            human(row["bytes"]).rjust(6), _cell(row["retries"], 5), _cell(row["errors"], 4),
            _cell(row["dropped"], 5), _cell(row["chunks"], 6), human(row["spool"]).rjust(6),
            sparkline(sampler.history.get(("output", row["name"]), []), bars, spark)]))
    lines += ["", "rec/s: records per second, the last ones on the right   q: quit"]
    return lines


def _parse(args):
    host, port, interval = "127.0.0.1", 2020, 1.0
    i = 0
    while i < len(args):
        flag = args[i]
        if flag in ("-h", "--help"):
            raise SystemExit(USAGE)
        if flag not in ("-L", "-P", "-i") or i + 1 >= len(args):
            raise ValueError("unexpected argument '%s'" % flag)
        value = args[i + 1]
        if flag == "-L":
            host = value
        elif flag == "-P":
            port = int(value)
        else:
            interval = float(value)
            if interval <= 0:
                raise ValueError("-i needs a positive number of seconds")
        i += 2
    return host, port, interval


def main(args):
    try:
        host, port, interval = _parse(args)
    except ValueError as exc:
        sys.stderr.write("edgeship top: %s\n%s" % (exc, USAGE))
        return 1
    except SystemExit as done:
        sys.stdout.write(str(done))
        return 0
    locale.setlocale(locale.LC_ALL, "")
    utf8 = "UTF-8" in locale.getpreferredencoding(False).upper().replace("UTF8", "UTF-8")
    bars = BARS_UTF8 if utf8 else BARS_ASCII
    address = "%s:%d" % (host, port)
    try:
        curses.wrapper(_loop, Sampler("http://" + address), bars, address, interval)
    except KeyboardInterrupt:
        pass
    return 0


def _loop(screen, sampler, bars, address, interval):
    try:
        curses.curs_set(0)
    except curses.error:
        pass  # a terminal without cursor control
    screen.timeout(100)
    next_sample = 0.0
    while True:
        now = time.monotonic()
        if now >= next_sample:
            next_sample = now + interval
            height, width = screen.getmaxyx()
            lines = render(sampler.sample(), sampler, bars, address, width)
            screen.erase()
            for y, line in enumerate(lines[:height]):
                try:
                    screen.addstr(y, 0, line[:width - 1])
                except curses.error:
                    pass  # the last cell of a small window
            screen.refresh()
        key = screen.getch()
        if key in (ord("q"), ord("Q")):
            return

