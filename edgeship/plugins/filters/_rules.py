"""Compiling the parts of a rule line (grep Regex, rewrite_tag Rule, expect checks).

A rule is one entry of ``conf.ordered``; a bad part is a ConfigError naming the rule's file,
line and key, since a filter may have many rules of the same key.
"""
from edgeship.core.accessor import accessor
from edgeship.core.errors import ConfigError
from edgeship.plugins.filters._tokens import split_fields
from edgeship.text.onigmo import compile_onigmo

KEEP, DROP = True, False


def rule_error(plugin, message, entry):
    return ConfigError("%s: %s" % (plugin, message), entry.file, entry.line, entry.key)


def rule_accessor(plugin, key, entry):
    """The record accessor ``key`` names ($a['b'], or a plain top-level key)."""
    try:
        acc = accessor(key)
    except ValueError as exc:
        raise rule_error(plugin, exc, entry)
    if acc is None:  # $TAG or $0: not a record value
        raise rule_error(plugin, "invalid record accessor '%s'" % key, entry)
    return acc


def rule_regex(plugin, pattern, entry):
    """``pattern`` (Onigmo syntax) compiled to a Python regex."""
    try:
        return compile_onigmo(pattern)
    except ValueError as exc:
        raise rule_error(plugin, "could not compile regex pattern '%s': %s" % (pattern, exc),
                         entry)


def grep_rule(plugin, is_regex, value, entry, add_dollar=True):
    """(is_regex, accessor, regex) of a grep-style ``Regex``/``Exclude`` line ``KEY REGEX``
    (the regex is the rest of the line after one space, spaces included). ``add_dollar``:
    KEY is read as ``$KEY`` (grep), else as an accessor text, where a plain KEY is one
    literal key."""
    words = split_fields(value, 1)
    if len(words) != 2:
        raise rule_error(plugin, "invalid regex, expected field and regular expression",
                         entry)
    field, pattern = words
    if add_dollar and not field.startswith("$"):
        field = "$" + field
    return is_regex, rule_accessor(plugin, field, entry), rule_regex(plugin, pattern, entry)


def rule_matches(acc, regex, record):
    """Does the regex search the record's value? Only a string value can match."""
    # A top-level key (the usual rule) skips the accessor's path walk.
    value = acc.get(record) if acc.path else record.get(acc.key)
    return isinstance(value, str) and regex.search(value) is not None


def legacy_decision(rules, record):
    """KEEP or DROP by grep's legacy order: rules in config order, an Exclude that matches
    drops, a Regex that does not match drops, the first Regex that matches keeps at once."""
    for is_regex, acc, regex in rules:
        if rule_matches(acc, regex, record):
            return is_regex   # Regex match keeps now; Exclude match drops
        if is_regex:
            return DROP
    return KEEP
