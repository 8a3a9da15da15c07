"""Parser time formats: Fluent Bit's strptime (flb_strptime.c, from OpenBSD) plus ``%L``.

``TimeFormat(fmt, ...)`` compiles a Time_Format once into one regular expression and a list
of field setters; ``parse(text)`` returns integer nanoseconds since the epoch, or None when
the text does not parse. No ``time.strptime`` on the hot path: the epoch is computed with
integer arithmetic, so the nanoseconds of ``%L`` are kept exactly.

Fluent Bit rules reproduced here:

- Numbers are read the way ``_conv_num`` reads them: greedily, but a digit is only taken
  while ``value * 10 <= upper limit`` (so ``%d`` reads "45" as 4 and leaves "5").
- Whitespace in the format eats any run of whitespace (even none) in the text; every other
  character must match exactly. Text left over after the format is ignored.
- ``%L`` (fraction, 1 to 9 digits) may follow ``%S`` or ``%s``; a ``.`` or ``,`` before it is
  part of the format.
- ``%z``: ``Z``, ``UT``, ``UTC``, ``GMT``, ``+hh``, ``+hhmm``, ``+hh:mm``, ``EST``/``EDT``...;
  ``%Z``: the known zone abbreviations (UTC, CET, JST, ...). A format holding ``%z``, ``%Z``,
  ``%SZ`` or ``%S.%LZ`` has a zone; any other is read as UTC, or shifted by Time_Offset, or
  read in the local zone (Time_System_Timezone) or in an IANA zone (Time_Zone).
- A format without ``%Y``/``%y``/``%s`` gets the current year, month and day as defaults.
- Time_Strict off: a text that stops matching part way still gives a time, built from the
  fields read so far over a zeroed ``struct tm`` (Fluent Bit's "non-exact match"): a text
  that matches nothing gives 1899-12-31T00:00:00 (a format without a year: today, 00:00).
  The parser refuses such a time (see ``events.in_range``).
- A time text longer than 63 characters is refused.

Fast path (same results, checked against the general path by tests/test_strptime.py): a format
made of a date (``%Y``, ``%m`` or a month name, ``%d``), then ``%H``, ``%M``, ``%S``, maybe
``%L`` and a numeric ``%z``, with literals between (Fluent Bit's stock formats: RFC 3339,
RFC 3164, Apache) reads the common texts (two-digit fields, a four-digit year, ``Z`` or
``+hh[:]mm``) with one plainer regex, the days of each distinct date text cached (consecutive
records share it). A text it does not take, or with a field out of range, goes the general
way.
"""
import calendar
import re
import time

_WS = "[ \\t\\n\\v\\f\\r]"
_MAX_TEXT = 63

# tm slots, kept in a plain list for speed.
(YEAR, MON, MDAY, HOUR, MIN, SEC, GMTOFF, YDAY, WDAY, RELYEAR, CENTURY, FIELDS,
 FRAC) = range(13)
F_MON, F_MDAY, F_WDAY, F_YDAY, F_YEAR = 1, 2, 4, 8, 16

_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")
_COMPOSITES = {"D": "%m/%d/%y", "F": "%Y-%m-%d", "R": "%H:%M", "r": "%I:%M:%S %p",
               "T": "%H:%M:%S", "c": "%a %b %e %H:%M:%S %Y", "x": "%m/%d/%y",
               "X": "%H:%M:%S"}
_H = 3600
# flb_strptime.c's table, in its order (the first abbreviation that matches wins).
KNOWN_ZONES = (
    ("GMT", 0), ("UTC", 0), ("Z", 0), ("UT", 0),
    ("EST", -5 * _H), ("EDT", -4 * _H), ("CST", -6 * _H), ("CDT", -5 * _H),
    ("MST", -7 * _H), ("MDT", -6 * _H), ("PST", -8 * _H), ("PDT", -7 * _H),
    ("AKST", -9 * _H), ("AKDT", -8 * _H), ("HST", -10 * _H), ("HADT", -9 * _H),
    ("AST", -4 * _H), ("ADT", -3 * _H), ("NST", -12600), ("NDT", -9000),
    ("WET", 0), ("WEST", _H), ("CET", _H), ("CEST", 2 * _H), ("EET", 2 * _H),
    ("EEST", 3 * _H), ("MSK", 3 * _H),
    ("ART", -3 * _H), ("BRT", -3 * _H), ("BRST", -2 * _H), ("CLT", -4 * _H), ("CLST", -3 * _H),
    ("AEST", 10 * _H), ("AEDT", 11 * _H), ("ACST", 34200), ("ACDT", 37800), ("AWST", 8 * _H),
    ("NZST", 12 * _H), ("NZDT", 13 * _H),
    ("JST", 9 * _H), ("KST", 9 * _H), ("SGT", 8 * _H), ("IST", 19800), ("GST", 4 * _H),
    ("ICT", 7 * _H), ("WIB", 7 * _H), ("WITA", 8 * _H), ("WIT", 9 * _H), ("MYT", 8 * _H),
    ("BDT", 6 * _H), ("NPT", 20700),
    ("WAT", _H), ("CAT", 2 * _H), ("EAT", 3 * _H), ("SAST", 2 * _H),
) + tuple((letter, hours * _H) for letter, hours in zip(
    "ABCDEFGHIKLMNOPQRSTUVWXY",
    (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12)))
_ZONE_OFFSETS = dict((name.upper(), offset) for name, offset in reversed(KNOWN_ZONES))
_RFC822 = {"EST": -5 * _H, "CST": -6 * _H, "MST": -7 * _H, "PST": -8 * _H,
           "EDT": -4 * _H, "CDT": -5 * _H, "MDT": -6 * _H, "PDT": -7 * _H}


def parse_offset(text):
    """A Time_Offset value (``+0200``, ``-06:00``, ``Z``) in seconds; ValueError if bad."""
    if text.startswith("Z"):
        return 0
    digits = text[1:]
    if text[:1] not in "+-" or len(text) < 4 or not digits[:2].isdigit():
        raise ValueError("invalid time offset '%s' (expected +HHMM, -HH:MM or Z)" % text)
    minutes = digits[3:5] if len(digits) == 5 and digits[2] == ":" else digits[2:4]
    if not (minutes.isdigit() and len(minutes) == 2) or int(minutes) > 59 \
            or int(digits[:2]) > 59:
        raise ValueError("invalid time offset '%s' (expected +HHMM, -HH:MM or Z)" % text)
    seconds = int(digits[:2]) * 3600 + int(minutes) * 60
    return -seconds if text[0] == "-" else seconds


def _digit_class(digits):
    if len(digits) == 10:
        return "[0-9]"
    if len(digits) == 1:
        return str(digits[0])
    if digits == list(range(digits[0], digits[-1] + 1)):
        return "[%d-%d]" % (digits[0], digits[-1])
    return "[%s]" % "".join(str(d) for d in digits)


def _number_pattern(upper):
    """A regex reading digits exactly as _conv_num does for limit ``upper``."""
    if str(upper) == "9" * len(str(upper)):
        return "[0-9]{1,%d}" % len(str(upper))
    def follow(value, depth):
        if value * 10 > upper or upper // 10 ** depth == 0:
            return ""
        by_tail = {}
        for digit in range(10):
            by_tail.setdefault(follow(value * 10 + digit, depth + 1), []).append(digit)
        alternatives = [_digit_class(digits) + ("(?:%s)?" % tail if tail else "")
                        for tail, digits in by_tail.items()]
        return alternatives[0] if len(alternatives) == 1 else "(?:%s)" % "|".join(alternatives)

    by_tail = {}
    for digit in range(10):
        by_tail.setdefault(follow(digit, 1), []).append(digit)
    return "|".join(_digit_class(digits) + ("(?:%s)?" % tail if tail else "")
                    for tail, digits in by_tail.items())


def _names_pattern(names):
    """Full name before abbreviation, for each name in order (the strptime loop)."""
    return "(?i:%s)" % "|".join(
        name if len(name) == 3 else "%s(?:%s)?" % (name[:3], name[3:]) for name in names)


# ------------------------------------------------------------------------ setters
def _ranged(slot, low, high, field=0, adjust=0):
    """A plain number setter, as data: the parse loop applies it inline (hot path)."""
    return (slot, low, high, adjust, field)


def _checked(low, high):
    def setter(tm, text):
        return low <= int(text) <= high
    return setter


def _set_year(tm, text):
    tm[YEAR] = int(text)
    tm[RELYEAR] = -1
    tm[FIELDS] |= F_YEAR
    return True


def _set_century(tm, text):
    tm[CENTURY] = int(text) * 100
    return int(text) <= 99


def _set_relyear(tm, text):
    value = int(text)
    tm[RELYEAR] = value
    return value <= 99


_MONTH_INDEX = dict((name[:3], index) for index, name in enumerate(_MONTHS))
_DAY_INDEX = dict((name[:3], index) for index, name in enumerate(_DAYS))


def _set_month_name(tm, text):
    tm[MON] = _MONTH_INDEX[text[:3].lower()]
    tm[FIELDS] |= F_MON
    return True


def _set_day_name(tm, text):
    tm[WDAY] = _DAY_INDEX[text[:3].lower()]
    tm[FIELDS] |= F_WDAY
    return True


def _set_weekday_monday1(tm, text):
    value = int(text)
    if not 1 <= value <= 7:
        return False
    tm[WDAY] = value % 7
    tm[FIELDS] |= F_WDAY
    return True


def _set_ampm(tm, text):
    hour = tm[HOUR]
    if hour > 12:
        return False
    if text.lower() == "am":
        if hour == 12:
            tm[HOUR] = 0
    elif hour < 12:
        tm[HOUR] = hour + 12
    return True


def _set_epoch(tm, text):
    value = int(text)
    if value >= 922337203685477580:
        return False
    try:
        parts = time.gmtime(value)
    except (OverflowError, ValueError, OSError):
        return False
    tm[YEAR], tm[MON], tm[MDAY] = parts.tm_year, parts.tm_mon - 1, parts.tm_mday
    tm[HOUR], tm[MIN], tm[SEC] = parts.tm_hour, parts.tm_min, parts.tm_sec
    tm[YDAY], tm[WDAY] = parts.tm_yday - 1, (parts.tm_wday + 1) % 7
    tm[GMTOFF] = 0
    tm[FIELDS] = 0xffff
    return True


def _set_numeric_zone(tm, text):
    text = text.lstrip(" \t\n\v\f\r")
    head = text[:1]
    if head == "G" or head == "U" or head == "Z":
        tm[GMTOFF] = 0
    elif head in "+-":
        tm[GMTOFF] = _numeric_offset(text)
    else:
        tm[GMTOFF] = _RFC822[text.upper()]
    return True


def _numeric_offset(text):
    """Seconds of ``+hh``, ``+hhmm`` or ``+hh:mm`` (no range check, as strptime)."""
    seconds = int(text[1:3]) * 3600
    minutes = text[3:].lstrip(":")
    if minutes:
        seconds += int(minutes) * 60
    return -seconds if text[0] == "-" else seconds


def _set_zone_name(tm, text):
    offset = _ZONE_OFFSETS.get(text.upper())
    if offset is None:
        # One of the local zone names (tzname); strptime uses the standard offset.
        offset = -time.timezone
    tm[GMTOFF] = offset
    return True


def _set_fraction(tm, text):
    tm[FRAC] = int(text.ljust(9, "0"))
    # Fluent Bit parses what follows %L with a fresh strptime call: the offset restarts at 0.
    tm[GMTOFF] = 0
    return True


def _no_op(tm, text):
    return True


def _directives():
    num = _number_pattern
    ampm = "(?i:am|pm)"
    zone_names = "|".join(re.escape(name) for name, _ in KNOWN_ZONES)
    local_names = "|".join(re.escape(name) for name in time.tzname if name)
    zone = "(?i:(?:%s)(?![A-Za-z0-9]))|GMT|UTC%s" % (
        zone_names, "|" + local_names if local_names else "")
    numeric_zone = (_WS + "*(?:GMT|UTC?|Z|[+-][0-9]{2}:?(?:[0-9]{2}|(?![0-9]))"
                    "|(?i:[ECMP][SD]T))")
    return {
        "Y": (num(9999), _set_year),
        "y": (num(99), _set_relyear),
        "C": (num(99), _set_century),
        "m": (num(12), _ranged(MON, 1, 12, F_MON, -1)),
        "d": (num(31), _ranged(MDAY, 1, 31, F_MDAY)),
        "e": ("%s?(?:%s)" % (_WS, num(31)), None),
        "H": (num(23), _ranged(HOUR, 0, 23)),
        "k": (num(23), _ranged(HOUR, 0, 23)),
        "I": (num(12), _ranged(HOUR, 1, 12)),
        "l": (num(12), _ranged(HOUR, 1, 12)),
        "M": (num(59), _ranged(MIN, 0, 59)),
        "S": (num(60), _ranged(SEC, 0, 60)),
        "j": (num(366), _ranged(YDAY, 1, 366, F_YDAY, -1)),
        "b": (_names_pattern(_MONTHS), _set_month_name),
        "B": (_names_pattern(_MONTHS), _set_month_name),
        "h": (_names_pattern(_MONTHS), _set_month_name),
        "a": (_names_pattern(_DAYS), _set_day_name),
        "A": (_names_pattern(_DAYS), _set_day_name),
        "w": (num(6), _ranged(WDAY, 0, 6, F_WDAY)),
        "u": (num(7), _set_weekday_monday1),
        "U": (num(53), _checked(0, 53)),
        "W": (num(53), _checked(0, 53)),
        "V": (num(53), _checked(0, 53)),
        "g": (num(99), _checked(0, 99)),
        "G": ("[\\s\\S][0-9]*", _no_op),
        "p": (ampm, _set_ampm),
        "s": ("[0-9]{1,19}", _set_epoch),
        "z": (numeric_zone, _set_numeric_zone),
        "Z": (zone, _set_zone_name),
    }


_DIRECTIVES = None


def _elements(fmt):
    """Split a format into ("ws",), ("lit", char) and ("dir", letter), composites expanded."""
    out = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c in " \t\n\v\f\r":
            out.append(("ws", None))
            i += 1
            continue
        if c != "%" or i + 1 >= len(fmt):
            out.append(("lit", c))
            i += 1
            continue
        letter = fmt[i + 1]
        i += 2
        if letter in "EO" and i < len(fmt):
            letter = fmt[i]
            i += 1
        if letter == "%":
            out.append(("lit", "%"))
        elif letter in _COMPOSITES:
            out.extend(_elements(_COMPOSITES[letter]))
        elif letter in "nt":
            out.append(("space", None))
        else:
            out.append(("dir", letter))
    return out


class TimeFormat:
    """One compiled Time_Format with its zone rules."""

    def __init__(self, fmt, offset=None, system_timezone=False, zone=None, strict=True):
        global _DIRECTIVES
        if _DIRECTIVES is None:
            _DIRECTIVES = _directives()
        self.fmt = fmt
        self.strict = strict
        self.with_year = "%Y" in fmt or "%y" in fmt or "%s" in fmt
        self.with_zone = any(mark in fmt for mark in ("%z", "%Z", "%SZ", "%S.%LZ"))
        self.offset = 0
        self.system_timezone = False
        self.zone = None
        if zone:
            if system_timezone:
                raise ValueError("time_zone cannot be combined with time_system_timezone")
            if offset:
                raise ValueError("time_zone cannot be combined with time_offset")
            self.zone = _load_zone(zone)
        elif system_timezone:
            self.system_timezone = True
        elif offset:
            self.offset = parse_offset(offset)
        self._compile(fmt)

    def _compile(self, fmt):
        fragments = []
        self.setters = []
        if not self.with_year:
            # Fluent Bit prepends "%Y " (and the current year) to the format and the text.
            fragments.append(_WS + "*")
        head, cut, tail = fmt.partition("%L")
        for element in _elements(head) + ([("frac", None)] if cut else []) + _elements(tail):
            fragments.append(self._fragment(element))
        # Strict: every fragment must match. Partial (Time_Strict off): each fragment is
        # optional inside the previous one, and a final empty group tells "all matched".
        if self.strict:
            self.regex = re.compile("".join(fragments) + "()")
        else:
            pattern = "()"
            for fragment in reversed(fragments):
                pattern = "(?:%s%s)?" % (fragment, pattern)
            self.regex = re.compile(pattern)
        self.complete_group = len(self.setters) + 1
        self.fast = None
        if not self.system_timezone:
            self._compile_fast(head, cut, tail)

    def _compile_fast(self, head, cut, tail):
        """The fast path's regex and group layout, when the format has its shape (see the
        module docstring); self.fast stays None otherwise."""
        elements = _elements(head) + ([("frac", None)] if cut else []) + _elements(tail)
        directives = [value for kind, value in elements if kind == "dir"]
        date = directives[:-3] if directives[-1:] != ["z"] else directives[:-4]
        months = [letter for letter in date if letter in "mbBh"]
        if sorted(date) not in (sorted("Ymd"), sorted("md"), sorted(months + ["Y", "d"]),
                                sorted(months + ["d"])) or len(months) != 1 \
                or directives[len(date):len(date) + 3] != ["H", "M", "S"] \
                or any(kind == "space" for kind, _ in elements) \
                or (cut and elements.index(("frac", None)) < elements.index(("dir", "S"))):
            return
        fragments = [] if self.with_year else [_WS + "*"]
        date_open = False
        previous = None
        for kind, value in elements:
            if kind == "dir" and value in date and not date_open:
                fragments.append("(")          # group 1: the whole date text, the cache key
                date_open = True
            if kind == "dir" and value == "H":
                fragments.append(")")
            if kind == "ws":
                fragments.append(_WS + "*")
            elif kind == "lit":
                if previous in ("b", "B", "h") and value.isalpha():
                    return  # a month name must end where its abbreviation does
                fragments.append(re.escape(value))
            elif kind == "frac":
                fragments.append("([0-9]{1,9})")
            elif value == "Y":
                fragments.append("([0-9]{4})")
            elif value in ("b", "B", "h"):
                fragments.append("([A-Za-z]{3})")
            elif value == "z":
                fragments.append("(Z|[+-][0-9]{2}:?[0-9]{2})")
            else:
                fragments.append("([0-9]{2})")
            previous = value if kind == "dir" else kind
        self.fast = re.compile("".join(fragments))
        self.fast_date = [(value, index) for index, value in enumerate(date, 1)]
        self.fast_time = len(date) + 1       # index of %H in match.groups()
        self.fast_frac = bool(cut)
        self.fast_zone = directives[-1] == "z"
        self.dates = {}
        self.zones = {}
        self.dates_year = None
        self.year_second = self.year = None

    def _fragment(self, element):
        kind, value = element
        if kind == "ws":
            return _WS + "*"
        if kind == "space":
            return "(?=[\\s\\S])" + _WS + "*"
        if kind == "lit":
            return re.escape(value)
        if kind == "frac":
            self.setters.append(_set_fraction)
            return "([0-9]{1,9})"
        spec = _DIRECTIVES.get(value)
        if spec is None:
            return "(?!)"  # an unknown conversion never matches, as in strptime
        pattern, setter = spec
        if value == "e":
            self.setters.append(_DIRECTIVES["d"][1])
            return "%s?(%s)" % (_WS, _number_pattern(31))
        self.setters.append(setter)
        return "(%s)" % pattern

    # ------------------------------------------------------------------ parsing
    def parse(self, text, now=None):
        """Nanoseconds since the epoch for ``text``, or None when it does not parse."""
        if len(text) > _MAX_TEXT or (not self.with_year and len(text) + 6 >= _MAX_TEXT + 1):
            return None
        if self.fast is not None:
            match = self.fast.match(text)
            if match is not None:
                result = self._parse_fast(match, now)
                if result is not None:
                    return result
        match = self.regex.match(text)
        if match is None:
            return None
        complete = match.group(self.complete_group) is not None
        # A zeroed struct tm, as Fluent Bit's: year 1900 (tm_year 0), January, day 0.
        tm = [1900, 0, 0, 0, 0, 0, 0, 0, 0, -1, 1900, 0, 0]
        if not self.with_year:
            self._today(tm, now)
        groups = match.groups()
        for index, setter in enumerate(self.setters):
            value = groups[index]
            if value is None:
                break
            if type(setter) is tuple:
                slot, low, high, adjust, field = setter
                number = int(value)
                if low <= number <= high:
                    tm[slot] = number + adjust
                    tm[FIELDS] |= field
                    continue
            elif setter(tm, value):
                continue
            if self.strict:
                return None
            break
        if complete:
            _finish_fields(tm)
        return self._epoch(tm) * 1000000000 + tm[FRAC]

    def _parse_fast(self, match, now):
        """Nanoseconds of a text the fast regex matched, or None to go the general way."""
        groups = match.groups()
        if not self.with_year:
            year = self._year(now)
            if year != self.dates_year:
                self.dates.clear()
                self.dates_year = year
        days = self.dates.get(groups[0])
        if days is None:
            days = self._date_days(groups)
            if days is None:
                return None
        index = self.fast_time
        hour, minute, second = int(groups[index]), int(groups[index + 1]), int(groups[index + 2])
        if hour > 23 or minute > 59 or second > 60:
            return None
        wall = days * 86400 + hour * 3600 + minute * 60 + second
        index += 3
        fraction = 0
        if self.fast_frac:
            fraction = int(groups[index].ljust(9, "0"))
            index += 1
        if self.with_zone:
            zone = groups[index] if self.fast_zone else "Z"
            offset = self.zones.get(zone)
            if offset is None:
                offset = 0 if zone == "Z" else _numeric_offset(zone)
                if len(self.zones) < 64:
                    self.zones[zone] = offset
            epoch = wall - offset
        elif self.zone is not None:
            epoch = wall - _zone_offset(self.zone, wall)
        else:
            epoch = wall - self.offset
        return epoch * 1000000000 + fraction

    def _date_days(self, groups):
        """Days since the epoch of the date groups (None when a field is out of range),
        cached by the date text."""
        year = self.dates_year
        month = day = 0
        for letter, index in self.fast_date:
            value = groups[index]
            if letter == "Y":
                year = int(value)
            elif letter == "d":
                day = int(value)
            elif letter == "m":
                month = int(value)
            else:
                month = _MONTH_INDEX.get(value.lower(), -1) + 1
        if not (1 <= month <= 12 and 1 <= day <= 31):
            return None
        days = days_from_civil(year, month, 1) + day - 1
        if len(self.dates) >= 512:
            self.dates.clear()
        self.dates[groups[0]] = days
        return days

    def _year(self, now):
        """The current year where a yearless text is read (as ``_today``), looked up once a
        second."""
        second = int(time.time() if now is None else now)
        if second != self.year_second:
            tm = [0] * 13
            self._today(tm, second)
            self.year_second, self.year = second, tm[YEAR]
        return self.year

    def _today(self, tm, now):
        now = time.time() if now is None else now
        if self.zone is not None:
            local = _zone_now(self.zone, now)
        elif self.system_timezone:
            local = time.localtime(now)
        else:
            local = time.gmtime(now)
        tm[YEAR] = local.tm_year
        tm[MON] = local.tm_mon - 1
        tm[MDAY] = local.tm_mday
        tm[FIELDS] |= F_YEAR

    def _epoch(self, tm):
        wall = (days_from_civil(tm[YEAR], tm[MON] + 1, 1) + tm[MDAY] - 1) * 86400 \
            + tm[HOUR] * 3600 + tm[MIN] * 60 + tm[SEC]
        if self.with_zone:
            return wall - tm[GMTOFF]
        if self.zone is not None:
            return wall - _zone_offset(self.zone, wall)
        if self.system_timezone:
            return int(time.mktime((tm[YEAR], tm[MON] + 1, tm[MDAY], tm[HOUR], tm[MIN],
                                    tm[SEC], 0, 0, -1)))
        return wall - self.offset


def _finish_fields(tm):
    """strptime's end: two-digit years, then month/day from a day of the year."""
    if tm[RELYEAR] != -1:
        if tm[CENTURY] == 1900:
            tm[YEAR] = tm[RELYEAR] + (2000 if tm[RELYEAR] <= 68 else 1900)
        else:
            tm[YEAR] = tm[RELYEAR] + tm[CENTURY]
        tm[FIELDS] |= F_YEAR
    fields = tm[FIELDS]
    if fields & F_YEAR and fields & F_YDAY and fields != 0xffff:
        lengths = _month_lengths(tm[YEAR])
        days = tm[YDAY]
        if not fields & F_MON:
            month = 0
            while month < 12 and days >= lengths[month]:
                days -= lengths[month]
                month += 1
            tm[MON] = month
        if not fields & F_MDAY:
            tm[MDAY] = days + 1


def _month_lengths(year):
    leap = calendar.isleap(year)
    return (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def days_from_civil(year, month, day):
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _load_zone(name):
    try:
        from zoneinfo import ZoneInfo
        return ZoneInfo(name)
    except Exception:
        raise ValueError("invalid or unavailable time_zone '%s'" % name)


def _zone_offset(zone, wall):
    """UTC offset (seconds) of ``zone`` at local wall-clock seconds ``wall``."""
    import datetime
    try:
        naive = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=wall)
    except OverflowError:
        return 0    # year 0 or past 9999: a time events.in_range refuses anyway
    return int(naive.replace(tzinfo=zone).utcoffset().total_seconds())


def _zone_now(zone, now):
    import datetime
    return datetime.datetime.fromtimestamp(now, zone).timetuple()
