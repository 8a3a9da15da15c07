"""A ring buffer measured in bytes: keys in arrival order, each with a size, and a byte limit.

The engine uses one per budget: chunks held in RAM (the oldest are pushed out to disk or, for
``memrb`` inputs, dropped), and segments held on disk for ``storage.total_limit_size`` (the
oldest are dropped). The ring only decides *which* keys have to go (``victims``); whoever
owns the keys does the dropping and then calls ``remove``.

Sizes may change after a key is added (``grow``): an open chunk keeps taking batches.
MicroPython-compatible: no ordered dicts are needed (the order is kept in a list).
"""


class ByteRing:
    def __init__(self, limit=0):
        self.limit = limit        # 0: no limit
        self.bytes = 0
        self._entries = {}        # key -> [size, stamp]
        self._order = []          # (key, stamp) oldest first; stale pairs are skipped lazily
        self._head = 0
        self._stamp = 0

    def __len__(self):
        return len(self._entries)

    def __contains__(self, key):
        return key in self._entries

    def _live(self, pair):
        entry = self._entries.get(pair[0])
        return entry is not None and entry[1] == pair[1]

    def add(self, key, size=0):
        if key in self._entries:
            raise KeyError("already in the ring")
        self._stamp += 1
        self._entries[key] = [size, self._stamp]
        self._order.append((key, self._stamp))
        self.bytes += size

    def grow(self, key, delta):
        self._entries[key][0] += delta
        self.bytes += delta

    def size(self, key):
        return self._entries[key][0]

    def remove(self, key):
        """Forget ``key``; returns its size, or None when it was not in the ring."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        self.bytes -= entry[0]
        self._compact()
        return entry[0]

    def _compact(self):
        # Skip stale pairs at the front; rebuild the list when it is mostly stale.
        order = self._order
        while self._head < len(order) and not self._live(order[self._head]):
            self._head += 1
        if not self._entries:
            self._order = []
            self._head = 0
        elif len(order) > 2 * len(self._entries) + 64:
            self._order = [p for p in order[self._head:] if self._live(p)]
            self._head = 0

    def keys(self):
        """The keys, oldest first."""
        return [p[0] for p in self._order[self._head:] if self._live(p)]

    def over(self, extra=0):
        return self.limit > 0 and self.bytes + extra > self.limit

    def victims(self, extra=0, keep=None):
        """The oldest keys whose removal brings the ring to ``limit - extra`` bytes or under
        (room for ``extra`` more), leaving out keys for which ``keep(key)`` is true. May free
        less than asked when the kept keys are too big; [] when there is no limit."""
        if not self.over(extra):
            return []
        need = self.bytes + extra - self.limit
        out = []
        for pair in self._order[self._head:]:
            if need <= 0:
                break
            if not self._live(pair) or (keep is not None and keep(pair[0])):
                continue
            out.append(pair[0])
            need -= self._entries[pair[0]][0]
        return out
