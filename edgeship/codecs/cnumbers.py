"""Text to numbers the way Fluent Bit's C calls read them: the one place for parser ``Types``
(atoll, strtoull base 16, atof: flb_parser.c) and type_converter (strtoimax, strtoumax base
10 and 16, atof: flb_typecast.c).

C rules kept: leading C whitespace (space, \\t \\n \\v \\f \\r, nothing else) and a sign are
skipped; the longest valid prefix is read and the rest ignored ("12abc" is 12); no digits
at all is 0; base 16 takes an optional 0x; a signed value beyond 64 bits saturates at
INT64_MIN/MAX, an unsigned one at UINT64_MAX, and a negative unsigned value wraps
(strtoull("-1") is 2**64 - 1); atof/strtod also read hex floats (0x1p3), inf, infinity and
nan in any case, and a value beyond a double is infinity.
"""
import re

INT64_MIN, INT64_MAX, UINT64_MAX = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1

_C_SPACE = "[ \t\n\v\f\r]*"
_INTEGER = re.compile(_C_SPACE + r"([+-]?)([0-9]+)")
_HEX = re.compile(_C_SPACE + r"([+-]?)(?:0[xX](?=[0-9a-fA-F]))?([0-9a-fA-F]+)")
_FLOAT = re.compile(
    _C_SPACE + r"([+-]?(?:0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)"
    r"(?:[pP][+-]?[0-9]+)?|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|(?i:inf(?:inity)?|nan)))")


def strtoll(text):
    """strtoll(text, NULL, 10), as atoll and strtoimax read it: saturated to int64."""
    match = _INTEGER.match(text)
    if match is None:
        return 0
    value = int(match.group(2))
    if match.group(1) == "-":
        value = -value
    return INT64_MIN if value < INT64_MIN else INT64_MAX if value > INT64_MAX else value


def strtoull(text, base=10):
    """strtoull(text, NULL, base) for base 10 or 16 (strtoumax is the same): an out of
    range magnitude is UINT64_MAX, a negative value wraps around."""
    match = (_INTEGER if base == 10 else _HEX).match(text)
    if match is None:
        return 0
    value = int(match.group(2), base)
    if value > UINT64_MAX:
        return UINT64_MAX
    return (-value) & UINT64_MAX if match.group(1) == "-" else value


def strtod(text, none=0.0):
    """strtod(text, NULL), as atof reads it: the longest leading number, ``none`` (0.0) when
    there is none (strtod's end pointer left at the start)."""
    match = _FLOAT.match(text)
    if match is None:
        return none
    number = match.group(1)
    body = number.lstrip("+-")
    if body[:2] in ("0x", "0X"):
        if "p" not in body and "P" not in body:
            body += "p0"
        try:
            value = float.fromhex(body)
        except OverflowError:   # C gives HUGE_VAL
            value = float("inf")
        return -value if number.startswith("-") else value
    return float(number)        # "1e400" is inf, as strtod's HUGE_VAL
