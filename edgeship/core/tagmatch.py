"""Tag matching as Fluent Bit's router does it (flb_router.c).

``Match`` is a glob where ``*`` matches any run of characters, '.' and the empty string
included; no ``?``, no classes; case-sensitive; anchored at both ends.
"""


def glob_match(pattern, tag):
    """True when ``tag`` matches the Fluent Bit ``Match`` glob ``pattern``."""
    if "*" not in pattern:
        return pattern == tag
    parts = pattern.split("*")
    first, last = parts[0], parts[-1]
    if not tag.startswith(first):
        return False
    pos = len(first)
    end = len(tag) - len(last)
    if end < pos or not tag.endswith(last):
        return False
    for middle in parts[1:-1]:
        if not middle:
            continue
        found = tag.find(middle, pos, end)
        if found < 0:
            return False
        pos = found + len(middle)
    return True


class Matcher:
    """One ``Match`` glob and/or ``Match_Regex``: either one matching is a match.

    ``regex`` is any object with a ``match(tag)`` method anchored at the start (a compiled
    Python pattern on CPython), so this module needs no regex engine of its own.
    """

    def __init__(self, pattern=None, regex=None):
        self.pattern = pattern
        self.regex = regex

    def matches(self, tag):
        if self.pattern is not None and glob_match(self.pattern, tag):
            return True
        return self.regex is not None and self.regex.match(tag) is not None

    def is_empty(self):
        return self.pattern is None and self.regex is None


class RouteCache:
    """Resolves a tag to the subset of ``targets`` whose matcher accepts it, once per tag.

    ``targets`` is a list of objects with a ``matcher`` attribute. Tags repeat and records
    don't, so the per-record cost of routing is one dict lookup.
    """

    MAX_TAGS = 4096  # bound the cache when tags are unbounded (rewrite_tag on a field)

    def __init__(self, targets):
        self.targets = list(targets)
        self.cache = {}

    def resolve(self, tag):
        hit = self.cache.get(tag)
        if hit is None:
            hit = [t for t in self.targets if t.matcher.matches(tag)]
            if len(self.cache) >= self.MAX_TAGS:
                self.cache.clear()
            self.cache[tag] = hit
        return hit
