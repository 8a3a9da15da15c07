"""expect filter: check that records have the expected keys and values (filter_expect).

Made for testing pipelines. Rules run in config order on every record; keys are record
accessors (``$a['b']``, or a plain top-level name). On a failure:
- action warn (default): log the failed rule and the record, once per batch;
- action exit: log it and end the process with exit code 255, as Fluent Bit does;
- action result_key: add ``Result_Key`` (default "matched") true/false to every record.
"""
from edgeship.codecs import formats
from edgeship.core.accessor import MISSING, to_text
from edgeship.core.schema import Option
from edgeship.engine.plugin import Filter
from edgeship.plugins.filters._rules import rule_accessor, rule_error
from edgeship.plugins.filters._tokens import split_fields

EXIT_CODE = 255


def check(kind, value, expected):
    """None when the rule holds, else why it does not."""
    if kind == "key_exists":
        return None if value is not MISSING else "not found"
    if kind == "key_not_exists":
        return None if value is MISSING else "exists"
    if value is MISSING:
        return "not found"
    if kind == "key_val_is_null":
        return None if value is None else "contains a value that is not null"
    if kind == "key_val_is_not_null":
        return None if value is not None else "contains null"
    return None if to_text(value) == expected else "value is %r, expected %r" % (
        value, expected)


class ExpectFilter(Filter):
    name = "expect"
    description = "Validate expected keys and values"
    options = tuple(Option(kind, multiple=True, help=text) for kind, text in (
        ("key_exists", "KEY: the key exists"),
        ("key_not_exists", "KEY: the key does not exist"),
        ("key_val_is_null", "KEY: the key exists and is null"),
        ("key_val_is_not_null", "KEY: the key exists and is not null"),
        ("key_val_eq", "KEY VALUE: the key's value equals VALUE"),
    )) + (
        Option("Action", default="warn", choices=("warn", "exit", "result_key"),
               help="on a failed check: warn, exit (code 255) or result_key"),
        Option("Result_Key", default="matched", help="key added by action result_key"),
    )

    def configure(self):
        self.rules = []
        for kind, value, entry in self.conf.ordered:
            expected = None
            key = value
            if kind == "key_val_eq":
                words = split_fields(value, 1)
                if len(words) != 2:
                    raise rule_error("expect", "key_val_eq needs 'KEY VALUE'", entry)
                key, expected = words
            acc = rule_accessor("expect", key, entry)
            self.rules.append((kind, acc, expected, value))
        if not self.rules:
            self.log.warn("no rules has been defined")
        self.action = self.conf["action"]
        self.result_key = self.conf["result_key"]

    def _failure(self, record):
        for number, (kind, acc, expected, text) in enumerate(self.rules):
            why = check(kind, acc.lookup(record), expected)
            if why is not None:
                return "exception on rule #%d '%s', key '%s' %s. Record content:\n%s" % (
                    number, kind, text, why, formats.to_json(record).decode("ascii"))
        return None

    def filter(self, tag, events):
        if self.action == "result_key":
            for _, record in events:
                matched = self._failure(record) is None
                record.pop(self.result_key, None)
                record[self.result_key] = matched
            return events
        for _, record in events:
            failure = self._failure(record)
            if failure is None:
                continue
            if self.action == "warn":
                self.log.warn("expect check failed: %s", failure)
            else:
                self.log.error("expect check failed, exiting: %s", failure)
                self.context.request_exit(EXIT_CODE)
            break
        return events


PLUGIN = ExpectFilter
