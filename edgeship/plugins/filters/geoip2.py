"""geoip2 filter: look IP addresses up in a MaxMind DB and add what it knows (filter_geoip2).

The database is read by the ``maxminddb`` package (the ``geoip2`` extra; its C extension
when installed, else its pure-Python reader), memory-mapped, opened once at start.

Behaviour of Fluent Bit 5.1.1 kept (checked on the real binary):
- ``Lookup_Key NAME`` (repeatable) takes the string value of every top-level key that
  *starts with* NAME, ignoring ASCII case (``ip`` reads ``ip``, ``IP`` and ``ip_addr``); when
  several keys match, the last one in the record wins. Other values (numbers, maps) are not
  addresses.
- ``Record KEY LOOKUP_KEY %{path.to.value}``: three words; the path is what lies between the
  first two characters and the first ``}``, split on dots (empty parts skipped; from the
  ninth part on, the rest is one part). A path part names a map key, or an array index
  as C's strtol reads it (``1``, ``+1``, ``-1`` from the end). LOOKUP_KEY must be one of
  the Lookup_Key names exactly (case-sensitive), else its Records are always null (a
  warning at start here).
- Every Record adds its KEY to every record, after the record's keys, in config order; the
  value is null when the lookup key is missing or not a string, when the value is no IP
  address, when the database has no entry for it, when the path does not match, and when
  the path ends at a map or an array. A key the record already has is replaced and moved
  last (what Fluent Bit's outputs show of the duplicate key it appends).
- An address is what getaddrinfo(AI_NUMERICHOST) takes: IPv4 in inet_aton's forms
  (``127.1``, ``0x7f.0.0.1``, ``2130706433``; nothing after it), IPv6 with an optional
  ``%scope`` (a number or an interface name the host has); anything else is a bad address.
- Values keep their type: strings, booleans, integers, floats (a 32-bit float as its
  double), bytes as a string of those bytes.
- Missing ``Database``, ``Lookup_Key`` or ``Record`` is an error at start, as is a database
  that cannot be opened (named with its file, line and key).

Differences:
- A bad address, a lookup error and a value the path does not reach are counted and logged
  once per batch (rate-limited), not once per Record of every record; each address is
  looked up once per record (Fluent Bit: once per Record), and recent answers are cached.
- A Record that is not three words, or whose value has no ``}`` after its first two
  characters, is a config error (Fluent Bit aborts).
- A relative ``Database`` path is found by edgeship's one rule (the current directory, then
  the main config's directory); Fluent Bit looks in the current directory only.
- A uint128 value below 2**64 is written as its number (Fluent Bit writes null for every
  uint128); one above is null, as there.
"""
import re
import socket
from ipaddress import IPv4Address, IPv6Address

from edgeship.core.errors import ConfigError, StartError
from edgeship.core.files import check_regular
from edgeship.core.schema import Option
from edgeship.engine.plugin import Filter
from edgeship.plugins.filters._tokens import ascii_lower, split_fields

# inet_aton's alphabet: decimal, octal and 0x-hex parts joined by dots. What passes goes to
# socket.inet_aton (the C library's), which decides; the check keeps out the whitespace and
# what follows it, which inet_aton takes and getaddrinfo refuses.
_IPV4_TEXT = re.compile(r"[0-9A-Fa-fXx.]+\Z")
# An array index as strtol reads a path part: C spaces, a sign, decimal digits, nothing after.
_INDEX = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)\Z")
_LONG_MAX = (1 << 63) - 1
_UINT64_LIMIT = 1 << 64
_CACHE_SIZE = 4096

# Outcomes of a lookup other than the entry's data.
_BAD_ADDRESS, _LOOKUP_ERROR, _NOT_FOUND = object(), object(), object()


def require_maxminddb():
    """The maxminddb package; a missing extra is a config error that says what to install."""
    try:
        import maxminddb
    except ImportError as exc:
        raise ConfigError("geoip2 needs the geoip2 extra (pip install 'edgeship[geoip2]'): %s"
                          % exc, key="name")
    return maxminddb


def _path_step(part):
    """(map key, array index or None) of one path part, the index as strtol reads it."""
    if part == "":
        return part, 0
    match = _INDEX.match(part)
    if match is None:
        return part, None
    index = int(match.group(1))
    return part, index if -_LONG_MAX - 1 <= index <= _LONG_MAX else None


def _walk(data, path):
    """The value ``path`` reaches in ``data`` (libmaxminddb's MMDB_aget_value), or
    _NOT_FOUND."""
    for key, index in path:
        if type(data) is dict:
            data = data.get(key, _NOT_FOUND)
            if data is _NOT_FOUND:
                return data
        elif type(data) is list:
            if index is None:
                return _NOT_FOUND
            if index < 0:
                index += len(data)
            if not 0 <= index < len(data):
                return _NOT_FOUND
            data = data[index]
        else:
            return _NOT_FOUND
    return data


class Geoip2Filter(Filter):
    name = "geoip2"
    description = "add geoip information to records"
    options = (
        Option("Database", help="the MaxMind DB file (.mmdb) addresses are looked up in"),
        Option("Lookup_Key", multiple=True,
               help="record keys starting with this name (any case) hold the address"),
        Option("Record", multiple=True,
               help="KEY LOOKUP_KEY %{path.to.value}: add KEY with the value the path "
                    "reaches in the entry of LOOKUP_KEY's address (null when none)"),
    )

    def configure(self):
        maxminddb = require_maxminddb()
        self.lookup_keys = list(self.conf["lookup_key"])
        self.records = []   # (KEY, LOOKUP_KEY, path)
        for key, value, entry in self.conf.ordered:
            if key == "record":
                self.records.append(self._record(value, entry))
        if not self.conf["database"]:
            raise ConfigError("geoip2: no geoip2 database has been loaded: set Database",
                              key="database")
        if not self.lookup_keys:
            raise ConfigError("geoip2: at least one lookup_key is required", key="lookup_key")
        if not self.records:
            raise ConfigError("geoip2: at least one record is required", key="record")
        # (the name as a Record names it, its ASCII lowercase for the key prefix test)
        self.matchers = [(name, ascii_lower(name)) for name in dict.fromkeys(self.lookup_keys)]
        self.reader = self._open(maxminddb)
        self.cache = {}

    def _record(self, value, entry):
        words = split_fields(value, 2)
        if len(words) != 3:
            raise ConfigError("geoip2: invalid record parameter '%s', expects 'KEY LOOKUP_KEY "
                              "%%{path}'" % value, entry.file, entry.line, entry.key)
        key, lookup_key, template = words
        end = template.find("}")
        if end < 2:
            raise ConfigError("geoip2: invalid record value '%s', expects %%{path.to.value}"
                              % template, entry.file, entry.line, entry.key)
        if lookup_key not in self.lookup_keys:
            self.context.tolerate(ConfigError(
                "geoip2: '%s' is no Lookup_Key (%s): record '%s' is always null"
                % (lookup_key, ", ".join(self.lookup_keys) or "none set", key),
                entry.file, entry.line, entry.key))
        path = tuple(_path_step(part) for part in split_fields(template[2:end], 8, "."))
        return key, lookup_key, path

    def _open(self, maxminddb):
        path = self.context.config_files.locate(self.conf["database"])
        try:
            check_regular(path, None)
            return maxminddb.open_database(path)
        except OSError as exc:
            reason = exc.strerror or exc
        except Exception as exc:   # InvalidDatabaseError, or whatever a bad file makes of a reader
            reason = exc
        raise StartError("geoip2: cannot open geoip2 database '%s': %s" % (path, reason),
                         key="database")

    # ---------------------------------------------------------------- the batch
    def filter(self, tag, events):
        matchers, records, cache = self.matchers, self.records, self.cache
        counts = {}
        for _, record in events:
            addresses = {}
            for key, value in record.items():
                if type(value) is str and type(key) is str:
                    low = ascii_lower(key)
                    for name, prefix in matchers:
                        if low.startswith(prefix):
                            addresses[name] = value
            entries = {}
            for name, address in addresses.items():
                entry = cache.get(address)
                if entry is None:
                    entry = self._lookup(address)
                    if len(cache) >= _CACHE_SIZE:
                        cache.clear()
                    cache[address] = entry
                entries[name] = entry
            for key, lookup_key, path in records:
                entry = entries.get(lookup_key, _NOT_FOUND)
                value = None
                if type(entry) is tuple:      # (the address's data,)
                    value = self._value(_walk(entry[0], path), counts)
                elif entry is not _NOT_FOUND:
                    counts[entry] = counts.get(entry, 0) + 1
                record.pop(key, None)
                record[key] = value
        if counts:
            self._report(counts)
        return events

    def _lookup(self, text):
        """(data,) of the address ``text``, or _BAD_ADDRESS, _LOOKUP_ERROR, _NOT_FOUND."""
        address = self._address(text)
        if address is None:
            return _BAD_ADDRESS
        try:
            data = self.reader.get(address)
        except Exception:   # corrupt data, an IPv6 address in an IPv4-only database
            return _LOOKUP_ERROR
        return _NOT_FOUND if data is None else (data,)

    def _address(self, text):
        """The IPv4Address or IPv6Address getaddrinfo(AI_NUMERICHOST) reads in ``text``."""
        nul = text.find("\0")
        if nul >= 0:
            text = text[:nul]       # a C string ends there
        try:
            if ":" in text:
                text, percent, scope = text.partition("%")
                if percent and not self._scope(scope):
                    return None
                return IPv6Address(socket.inet_pton(socket.AF_INET6, text))
            if _IPV4_TEXT.match(text) is None:
                return None
            return IPv4Address(socket.inet_aton(text))
        except (OSError, ValueError, UnicodeError):
            return None

    @staticmethod
    def _scope(scope):
        if scope.isdigit() and scope.isascii():
            return True
        try:
            return bool(scope) and socket.if_nametoindex(scope) > 0
        except (OSError, ValueError, UnicodeError):
            return False

    @staticmethod
    def _value(value, counts):
        kind = type(value)
        if kind is str or kind is float or kind is bool:
            return value
        if kind is int:
            return value if value < _UINT64_LIMIT else None
        if kind is bytes or kind is bytearray:
            return bytes(value).decode("utf-8", "surrogateescape")
        reason = "path" if value is _NOT_FOUND else "container"
        counts[reason] = counts.get(reason, 0) + 1
        return None

    def _report(self, counts):
        log = self.log
        if _BAD_ADDRESS in counts:
            log.warn_often("geoip2: %d Record values null: their lookup key holds no IP "
                           "address", counts[_BAD_ADDRESS])
        if _LOOKUP_ERROR in counts:
            log.error_often("geoip2: %d Record values null: the lookup failed (an IPv6 "
                            "address in an IPv4 database, or corrupt data)",
                            counts[_LOOKUP_ERROR])
        if "path" in counts:
            log.warn_often("geoip2: cannot get value: %d Record paths do not match the data "
                           "found, null added", counts["path"])
        if "container" in counts:
            log.warn_often("geoip2: %d Record paths end at a map or an array (not supported), "
                           "null added", counts["container"])


PLUGIN = Geoip2Filter
