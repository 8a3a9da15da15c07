"""type_converter filter: append a converted copy of a field (filter_type_converter).

``str_key | int_key | uint_key | float_key  SRC DST TYPE``. Behaviour of Fluent Bit 5.1.1
(flb_typecast.c):
- The option names the SOURCE type: str_key converts from a string, int_key and uint_key
  from any integer, float_key from a float. TYPE is int, uint, float, hex, string or bool
  (any prefix of those names).
- The copy is appended under DST (SRC stays); added keys come grouped by option: every
  str_key, then int_key, uint_key, float_key.
- A rule that is not ``SRC DST TYPE`` with a known TYPE is logged and ignored, as Fluent Bit
  does; an invalid record accessor as SRC is a config error naming file, line and key
  (Fluent Bit logs it and ignores the rule), as in every option that takes one.
- When the source has another type or does not convert, the original value is copied
  under DST and an error is logged. C conversions are kept (edgeship.codecs.cnumbers, the
  one place for them): "12abc" is 12, "0" as int is a failure (strtoimax gives 0), a float
  string that is not a number is 0.0, "0x1p3" as float is 8.0, a float to string prints
  "%.1f" when whole and "%.16g" otherwise, float to int truncates.
"""
from edgeship.codecs.cnumbers import INT64_MAX, UINT64_MAX, strtod, strtoll, strtoull
from edgeship.core.accessor import MISSING
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import Filter
from edgeship.plugins.filters._rules import rule_accessor
from edgeship.plugins.filters._tokens import split_tokens

TYPE_NAMES = ("int", "uint", "float", "hex", "string", "bool")
SOURCES = (("str_key", "string"), ("int_key", "int"), ("uint_key", "uint"),
           ("float_key", "float"))


class ConversionError(ValueError):
    pass


def type_name(text):
    """flb_typecast_str_to_type_t: the first type name that ``text`` is a prefix of."""
    low = text.lower()
    for name in TYPE_NAMES:
        if low and name.startswith(low):
            return name
    return None


def from_string(text, to):
    if to == "int":
        value = strtoll(text)                           # strtoimax
    elif to in ("uint", "hex"):
        value = strtoull(text, 10 if to == "uint" else 16)  # strtoumax
    elif to == "float":
        return strtod(text)                             # atof
    elif to == "bool":
        low = text.lower()
        if low.startswith("true"):
            return True
        if low.startswith("false"):
            return False
        raise ConversionError("not a boolean")
    else:
        raise ConversionError("string to string: nothing to do")
    if value == 0:
        raise ConversionError("convert error")  # strto*max's 0 is taken as failure
    return value


def from_integer(value, to, unsigned):
    if unsigned:
        value &= UINT64_MAX
    if to == "string":
        return "%d" % value
    if to == "float":
        return float(value)
    if to == "uint" and not unsigned:
        return value & UINT64_MAX
    if to == "int" and unsigned:
        return value - (1 << 64) if value > INT64_MAX else value
    raise ConversionError("type %s is not supported" % to)


def from_float(value, to):
    if to == "string":
        if value == value and value not in (float("inf"), float("-inf")) \
                and value == int(value):
            return "%.1f" % value
        return "%.16g" % value
    if to in ("int", "uint"):
        whole = int(value)
        return whole & UINT64_MAX if to == "uint" else whole
    raise ConversionError("type %s is not supported" % to)


def convert(value, source, to):
    """The converted value; ConversionError when the source type or value does not fit."""
    if source == "string":
        if not isinstance(value, str):
            raise ConversionError("src type is not str")
        return from_string(value, to)
    if source in ("int", "uint"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConversionError("src type is not int")
        return from_integer(value, to, source == "uint")
    if isinstance(value, bool) or not isinstance(value, float):
        raise ConversionError("src type is not float")
    return from_float(value, to)


class TypeConverterFilter(Filter):
    name = "type_converter"
    description = "Data type converter"
    options = tuple(Option(key, multiple=True, help="SRC DST TYPE: convert from %s" % source)
                    for key, source in SOURCES)

    def configure(self):
        self.rules = []
        for option, source in SOURCES:
            for key, value, entry in self.conf.ordered:
                if key != option:
                    continue
                words = split_tokens(value, 3)
                to = type_name(words[2]) if len(words) == 3 else None
                acc = rule_accessor("type_converter", words[0], entry) if to else None
                if acc is None:
                    # Fluent Bit goes on without the bad rule; so do we, saying where it is.
                    self.log.error("invalid rule (%s:%s: %s %s), expects 'from_key to_key "
                                   "type' with type int, uint, float, hex, string or bool; "
                                   "ignored", entry.file, entry.line, option, value)
                    continue
                self.rules.append((acc, words[1], source, to, words[0]))
        if not self.rules:
            raise ConfigError("type_converter: no rules", key=SOURCES[0][0])

    def filter(self, tag, events):
        failed = []
        for _, record in events:
            # Look every source up first: the appended keys must not feed later rules.
            found = [(rule, rule[0].lookup(record)) for rule in self.rules]
            for (_, dst, source, to, src_name), value in found:
                if value is MISSING:
                    continue
                try:
                    new = convert(value, source, to)
                except ConversionError:
                    failed.append(src_name)
                    new = value
                record.pop(dst, None)
                record[dst] = new
        if failed:
            self.log.error("failed to convert %d value(s), originals copied; first key=%s",
                           len(failed), failed[0])
        return events


PLUGIN = TypeConverterFilter
