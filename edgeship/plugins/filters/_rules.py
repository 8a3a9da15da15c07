"""Compiling the parts of a rule line (grep Regex, rewrite_tag Rule, expect checks).

A rule is one entry of ``conf.ordered``; a bad part is a ConfigError naming the rule's file,
line and key, since a filter may have many rules of the same key.
"""
from edgeship.core.accessor import accessor
from edgeship.core.errors import ConfigError
from edgeship.text.onigmo import compile_onigmo


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
