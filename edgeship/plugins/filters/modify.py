"""modify filter: rename, copy, set, remove and reorder keys under conditions (filter_modify).

Quirks kept from Fluent Bit 5.1.1:
- Rules run in config order, each on the result of the previous one, and only when every
  Condition holds (conditions are checked once, on the record as it came in).
- Values are split on spaces with "double" or 'single' quotes (``Set k "a b"``); Set and
  Add values are always strings.
- Set removes the key and appends it at the end; Add appends only when the key is absent;
  Rename/Hard_rename keep the key's position; Copy/Hard_copy insert the copy right after
  the source key.
- The "wildcard" operations (Remove_wildcard, Move_to_start, Move_to_end) are plain
  case-sensitive prefix matches: a ``*`` is taken literally, so ``Remove_wildcard Mem.*``
  removes nothing while ``Remove_wildcard Mem`` removes ``Mem.total`` and ``Memx``.
- Condition regexes search (unanchored) and match string values, and booleans as
  "true"/"false"; Key_value_equals compares string values exactly. Condition keys are
  record accessors (``$a['b']``), other keys are plain top-level names.
"""
import copy
from operator import itemgetter

from edgeship.core.accessor import MISSING, accessor
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import Filter
from edgeship.plugins.filters._tokens import split_quoted
from edgeship.text.onigmo import compile_onigmo

ONE_WORD_RULES = ("remove", "remove_wildcard", "remove_regex", "move_to_start", "move_to_end")
TWO_WORD_RULES = ("set", "add", "add_if_not_present", "rename", "hard_rename", "copy",
                  "hard_copy")

# Condition name -> number of words after it.
CONDITIONS = {
    "key_exists": 1, "key_does_not_exist": 1, "a_key_matches": 1, "no_key_matches": 1,
    "key_value_equals": 2, "key_value_does_not_equal": 2, "key_value_matches": 2,
    "key_value_does_not_match": 2, "matching_keys_have_matching_values": 2,
    "matching_keys_do_not_have_matching_values": 2,
}


def regex_matches(regex, value):
    """helper_msgpack_object_matches_regex: strings, and booleans as true/false."""
    if value is True:
        value = "true"
    elif value is False:
        value = "false"
    elif not isinstance(value, str):
        return False
    return regex.search(value) is not None


def starts_with(key, prefix):
    return isinstance(key, str) and key.startswith(prefix)


# ------------------------------------------------------------------------------ conditions
def _key_exists(acc):
    return lambda record: acc.lookup(record) is not MISSING


def _a_key_matches(regex):
    return lambda record: any(isinstance(k, str) and regex.search(k) for k in record)


def _value_equals(acc, expected):
    def check(record):
        value = acc.lookup(record)
        return isinstance(value, str) and value == expected
    return check


def _value_matches(acc, regex):
    def check(record):
        value = acc.lookup(record)
        return value is not MISSING and regex_matches(regex, value)
    return check


def _exists_and_not(acc, positive):
    """Key_value_does_not_*: the key must exist, then the positive test must fail."""
    return lambda record: acc.lookup(record) is not MISSING and not positive(record)


def _all_values_match(key_regex, value_regex):
    def check(record):
        for key, value in record.items():
            if isinstance(key, str) and key_regex.search(key):
                if not regex_matches(value_regex, value):
                    return False
        return True
    return check


# ---------------------------------------------------------------------------------- rules
def rule_set(key, value):
    def apply(record):
        record.pop(key, None)
        record[key] = value
        return record
    return apply


def rule_add(key, value):
    def apply(record):
        if key not in record:
            record[key] = value
        return record
    return apply


def rule_remove(key):
    def apply(record):
        record.pop(key, None)
        return record
    return apply


def rule_remove_if(test):
    def apply(record):
        doomed = [k for k in record if test(k)]
        for k in doomed:
            del record[k]
        return record
    return apply


# Fluent Bit renames in place and copies right after the source key. A dict cannot rename a
# key, so both rebuild it from its key and value lists (C loops, no call per key); a hard
# rename/copy first drops the key it replaces.
def rule_rename(key, new, hard):
    def apply(record):
        if key not in record or key == new or (new in record and not hard):
            return record
        record.pop(new, None)
        keys = list(record)
        keys[keys.index(key)] = new
        return dict(zip(keys, record.values()))
    return apply


def rule_copy(key, new, hard):
    def apply(record):
        if key not in record or key == new or (new in record and not hard):
            return record
        record.pop(new, None)
        keys, values = list(record), list(record.values())
        at = keys.index(key) + 1
        keys.insert(at, new)
        values.insert(at, copy.deepcopy(record[key]))
        return dict(zip(keys, values))
    return apply


def rule_move(prefix, to_start):
    def apply(record):
        moved = [(k, v) for k, v in record.items() if starts_with(k, prefix)]
        if not moved:
            return record
        rest = [(k, v) for k, v in record.items() if not starts_with(k, prefix)]
        return dict(moved + rest if to_start else rest + moved)
    return apply


class ModifyFilter(Filter):
    name = "modify"
    description = "modify records by applying rules"
    options = tuple(Option(name, multiple=True, help=text) for name, text in (
        ("Set", "KEY VALUE: set KEY to VALUE, replacing it"),
        ("Add", "KEY VALUE: add KEY with VALUE if KEY is absent"),
        ("Add_if_not_present", "deprecated name of Add"),
        ("Remove", "KEY: remove KEY"),
        ("Remove_wildcard", "PREFIX: remove every key starting with PREFIX ('*' is literal)"),
        ("Remove_regex", "REGEX: remove every key matching REGEX"),
        ("Rename", "KEY NEW: rename KEY to NEW if NEW is absent"),
        ("Hard_rename", "KEY NEW: rename KEY to NEW, replacing NEW"),
        ("Copy", "KEY NEW: copy KEY to NEW if NEW is absent"),
        ("Hard_copy", "KEY NEW: copy KEY to NEW, replacing NEW"),
        ("Move_to_start", "PREFIX: move keys starting with PREFIX to the start"),
        ("Move_to_end", "PREFIX: move keys starting with PREFIX to the end"),
        ("Condition", "KIND ARGS: apply the rules only when every condition holds"),
    ))

    def configure(self):
        self.conditions = []
        self.rules = []
        self._plans = {}        # key layout -> plan (see _plan)
        for key, value, entry in self.conf.ordered:
            where = (entry.file, entry.line, entry.key)
            try:
                words = split_quoted(value, 3)
            except ValueError as exc:
                raise ConfigError("modify: %s" % exc, *where)
            if not words or len(words) > 3:
                raise ConfigError("modify: Invalid config for %s" % key, *where)
            try:
                if key == "condition":
                    self.conditions.append(self._condition(words))
                else:
                    self.rules.append(self._rule(key, words))
            except ValueError as exc:
                raise ConfigError("modify: %s: %s" % (key, exc), *where)

    def _condition(self, words):
        kind = words[0].lower()
        if kind not in CONDITIONS:
            raise ValueError("unknown condition '%s'" % words[0])
        if len(words) - 1 != CONDITIONS[kind]:
            raise ValueError("%s takes %d argument(s)" % (words[0], CONDITIONS[kind]))
        a = words[1]
        b = words[2] if len(words) == 3 else None
        if kind in ("a_key_matches", "no_key_matches"):
            test = _a_key_matches(compile_onigmo(a))
            return test if kind == "a_key_matches" else (lambda r, t=test: not t(r))
        if kind.startswith("matching_keys"):
            test = _all_values_match(compile_onigmo(a), compile_onigmo(b))
            if kind == "matching_keys_have_matching_values":
                return test
            return lambda r, t=test: not t(r)
        acc = accessor(a)
        if acc is None:
            raise ValueError("'%s' is not a key" % a)
        if kind == "key_exists":
            return _key_exists(acc)
        if kind == "key_does_not_exist":
            return lambda r, t=_key_exists(acc): not t(r)
        if kind in ("key_value_equals", "key_value_does_not_equal"):
            test = _value_equals(acc, b)
        else:
            test = _value_matches(acc, compile_onigmo(b))
        if kind in ("key_value_equals", "key_value_matches"):
            return test
        return _exists_and_not(acc, test)

    def _rule(self, kind, words):
        if len(words) == 1 and kind in ONE_WORD_RULES:
            arg = words[0]
            if kind == "remove":
                return rule_remove(arg)
            if kind == "remove_wildcard":
                return rule_remove_if(lambda k: starts_with(k, arg))
            if kind == "remove_regex":
                regex = compile_onigmo(arg)
                return rule_remove_if(lambda k: isinstance(k, str) and regex.search(k))
            return rule_move(arg, kind == "move_to_start")
        if len(words) == 2 and kind in TWO_WORD_RULES:
            a, b = words
            if kind == "set":
                return rule_set(a, b)
            if kind in ("add", "add_if_not_present"):
                return rule_add(a, b)
            if kind in ("rename", "hard_rename"):
                return rule_rename(a, b, kind == "hard_rename")
            return rule_copy(a, b, kind == "hard_copy")
        raise ValueError("Invalid operation: %s takes %d argument(s), got %d"
                         % (kind, 1 if kind in ONE_WORD_RULES else 2, len(words)))

    def filter(self, tag, events):
        rules, conditions = self.rules, self.conditions
        if not rules:
            return events
        plans = self._plans
        out = []
        for time_ns, record in events:
            if not conditions or all(cond(record) for cond in conditions):
                layout = tuple(record)
                plan = plans.get(layout)
                if plan is None:
                    if len(plans) >= 256:  # records of ever-new shapes: keep it bounded
                        plans.clear()
                    plan = plans[layout] = _plan(rules, layout)
                if plan:
                    keys, constants, pick = plan
                    values = list(record.values())
                    values.extend(constants)
                    record = dict(zip(keys, pick(values)))
                else:
                    for rule in rules:
                        record = rule(record)
            out.append((time_ns, record))
        return out


# ---------------------------------------------------------------------------------- plans
# The rules look at keys only, never at values (conditions do, and run per record first), so
# what they make of a record is fixed by its key layout, and the records of a batch mostly
# share one. A plan runs the rules once on a skeleton of that layout, whose values are slots,
# and then rebuilds each record of the layout in C: its values picked in the result's order,
# Set/Add constants appended. Copy rules need a deep copy per record: no plan for them.
class _Slot:
    __slots__ = ("index",)

    def __init__(self, index):
        self.index = index

    def __deepcopy__(self, memo):
        raise _NeedsCopy()


class _NeedsCopy(Exception):
    pass


def _plan(rules, layout):
    """(keys, constants, pick) for records whose keys are ``layout``, or False."""
    skeleton = dict(zip(layout, map(_Slot, range(len(layout)))))
    try:
        for rule in rules:
            skeleton = rule(skeleton)
    except _NeedsCopy:
        return False
    constants = []
    picks = []
    for value in skeleton.values():
        if type(value) is _Slot:
            picks.append(value.index)
        else:
            picks.append(len(layout) + len(constants))
            constants.append(value)
    if len(picks) > 1:
        pick = itemgetter(*picks)
    elif picks:
        pick = lambda values, i=picks[0]: (values[i],)  # noqa: E731 (itemgetter of one is no tuple)
    else:
        pick = lambda values: ()  # noqa: E731
    return tuple(skeleton), constants, pick


PLUGIN = ModifyFilter
