"""Errors that carry where in the configuration they come from."""


class ConfigError(Exception):
    """A configuration problem, reported as ``file:line: key: message``."""

    def __init__(self, message, file=None, line=None, key=None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.key = key

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
        return where + self.message
