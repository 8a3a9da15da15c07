"""python filter (edgeship's own; Fluent Bit has none): a Python function per batch.

    [FILTER]
        Name   python
        Match  *
        Script enrich.py        # relative to the main config file's directory
        Call   enrich           # def enrich(events): return events

The function gets the batch, a list of (time_ns, record) tuples (and the tag first when it
takes two arguments: ``def enrich(tag, events)``), and returns the list to pass on ([] drops
them all). If it raises, or returns something that is not a list of (int, dict) pairs with
times an event can carry (``events.in_range``: 1970 to 2106), the error is counted and logged
and the batch goes on unchanged: the process never dies of a script error.
"""
from edgeship.core import events as ev
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import Filter
from edgeship.plugins.filters._script import read_script


def _valid(events):
    if not isinstance(events, list):
        return False
    for event in events:
        if not (isinstance(event, tuple) and len(event) == 2 and isinstance(event[0], int)
                and ev.in_range(event[0]) and isinstance(event[1], dict)):
            return False
    return True


class PythonFilter(Filter):
    name = "python"
    description = "Python function called on each batch (edgeship)"
    options = (
        Option("Script", required=True,
               help="Python file (relative to the config file's directory)"),
        Option("Call", required=True, help="function(events) or function(tag, events) -> events"),
    )

    def configure(self):
        path, source = read_script(self)
        namespace = {"__file__": path, "__name__": "edgeship_filter_script"}
        try:
            exec(compile(source, path, "exec"), namespace)
        except SyntaxError as exc:
            raise ConfigError("python: syntax error in %s line %s: %s"
                              % (path, exc.lineno, exc.msg), key="script")
        except Exception as exc:
            raise ConfigError("python: error loading %s: %r" % (path, exc), key="script")
        self.function = namespace.get(self.conf["call"])
        if not callable(self.function):
            raise ConfigError("python: function '%s' is not defined in %s"
                              % (self.conf["call"], path), key="call")
        code = getattr(self.function, "__code__", None)
        self.wants_tag = code is not None and code.co_argcount >= 2
        self.errors = 0

    def filter(self, tag, events):
        try:
            if self.wants_tag:
                result = self.function(tag, list(events))
            else:
                result = self.function(list(events))
        except Exception as exc:
            self.errors += 1
            self.log.error("%s raised on a batch of %d records, passed on unchanged: %r",
                           self.conf["call"], len(events), exc)
            return events
        if not _valid(result):
            self.errors += 1
            self.log.error("%s must return a list of (time_ns, record) tuples, time_ns from "
                           "1970 to 2106; batch of %d records passed on unchanged",
                           self.conf["call"], len(events))
            return events
        return result


PLUGIN = PythonFilter
