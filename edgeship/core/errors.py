"""Errors that carry where in the configuration they come from."""


class ConfigError(Exception):
    """A configuration problem, reported as ``file:line: key: message``."""

    def __init__(self, message, file=None, line=None, key=None, unknown=None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.key = key
        # (the name given, the names accepted) where an unknown key or plugin was named: the
        # loader offers the closest ("did you mean").
        self.unknown = unknown

    def located(self, file, line, key=None):
        """Return this error with a location filled in where it has none."""
        if self.file is None:
            self.file, self.line = file, line
        if self.key is None:
            self.key = key
        return self

    def __str__(self):
        where = ""
        if self.file is not None:
            where = "%s:%s: " % (self.file, self.line) if self.line else "%s: " % self.file
        if self.key:
            where += "key '%s': " % self.key
        return _one_line(where + self.message)


class StartError(ConfigError):
    """A problem Fluent Bit finds only when the plugin starts (its init callback), not in
    ``--dry-run``: a TLS file that is absent here, an es Cloud_ID it cannot decode, a unix
    socket mode without a path. A run stops on it as on any ConfigError; a dry run reports
    it as a warning and passes, as Fluent Bit's does (a config is often checked on another
    machine than the one it runs on), unless strict."""


class ConfigErrors(ConfigError):
    """Every error of one configuration, so a run reports them all, not only the first;
    ``errors`` in file order. Shown as the first, for callers that print one."""

    def __init__(self, errors):
        first = errors[0]
        ConfigError.__init__(self, first.message, first.file, first.line, first.key)
        self.errors = list(errors)

    def __str__(self):
        return str(self.errors[0])


_LINE_BREAKS = "\x85\u2028\u2029"


def _plain(ch):
    return (" " <= ch or ch == "\t") and ch not in _LINE_BREAKS


def _one_line(text):
    """Control characters and line breaks (a newline in a path, a script's multi-line error)
    escaped: an error is always one line of the log."""
    if all(_plain(ch) for ch in text):
        return text
    return "".join(ch if _plain(ch) else "\\u%04x" % ord(ch) for ch in text)
