"""edgeship.codecs.strptime: Fluent Bit's strptime with %L, zones, offsets and partial matches."""
import time

import pytest
from hypothesis import given, settings, strategies as st

from edgeship.codecs.strptime import TimeFormat, days_from_civil, parse_offset

ISO = "%Y-%m-%dT%H:%M:%S.%L%z"


def sec(fmt, text, **kw):
    result = TimeFormat(fmt, **kw).parse(text)
    return None if result is None else "%d.%09d" % divmod(result, 1000000000)


def test_conformance_time_formats():
    # parser_time_formats and parser_syslog_rfc5424 (Fluent Bit 5.1.1 outputs)
    assert sec(ISO, "2024-03-25T10:00:01.123+0000") == "1711360801.123000000"
    assert sec(ISO, "2024-03-25T10:00:01.5-0330") == "1711373401.500000000"
    assert sec(ISO, "2024-12-31T23:59:59.999999+0100") == "1735685999.999999000"
    assert sec(ISO, "2024-03-25T22:14:15.000003-07:00") == "1711430055.000003000"
    assert sec(ISO, "2024-03-25T10:00:01.003Z") == "1711360801.003000000"
    assert sec("%s", "1000000000") == "1000000000.000000000"
    assert sec("%d/%b/%Y:%H:%M:%S %z", "01/Jan/2024:00:00:00 -0800") == "1704096000.000000000"
    assert sec("%Y-%m-%d %H:%M:%S", "2024-03-25 12:00:00", offset="+0200") == \
        "1711360800.000000000"


def test_no_zone_is_utc_even_with_tz_set(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert sec("%Y-%m-%dT%H:%M:%S", "2024-03-25T10:00:01") == "1711360801.000000000"
        assert sec("%Y-%m-%dT%H:%M:%S", "2024-03-25T10:00:01", system_timezone=True) == \
            "1711375201.000000000"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_nanoseconds_are_exact_and_trailing_text_ignored():
    assert sec(ISO[:-2], "2024-03-25T10:00:01.123456789") == "1711360801.123456789"
    assert sec("%Y-%m-%dT%H:%M:%S", "2024-03-25T10:00:07.250") == "1711360807.000000000"
    assert sec("%s.%L", "1711360801,5") is None        # the format says '.'
    assert sec("%s,%L", "1711360801,25") == "1711360801.250000000"
    assert sec(ISO, "2024-03-25T10:00:01.+0000") is None  # %L needs a digit


def test_zones_and_names():
    assert sec("%Y-%m-%d %H:%M:%S %Z", "2024-03-25 12:00:00 JST") == "1711335600.000000000"
    assert sec("%Y-%m-%d %H:%M:%S %Z", "2024-03-25 12:00:00 cest") == "1711360800.000000000"
    assert sec("%Y-%m-%d %H:%M:%S %z", "2024-03-25 12:00:00 EDT") == "1711382400.000000000"
    assert sec("%Y-%m-%d %H:%M:%S %z", "2024-03-25 12:00:00 +05") == "1711350000.000000000"
    assert sec("%Y-%m-%d %H:%M:%S %z", "2024-03-25 12:00:00 +051") is None
    assert sec("%Y-%m-%d %H:%M:%S", "2024-03-25 12:00:00", zone="Europe/Paris") == \
        "1711364400.000000000"
    assert sec("%a, %d %B %Y %I:%M:%S %p", "Mon, 25 March 2024 01:00:00 PM") == \
        "1711371600.000000000"
    assert sec("%A %b %e %T %Y", "monday Mar  5 10:00:00 2024") == "1709632800.000000000"


def test_numbers_are_read_like_conv_num():
    # %d reads one digit of "45" (4*10 > 31), the format then needs the '5'
    assert sec("%d5/%m/%Y", "45/03/2024") == "1709510400.000000000"
    assert sec("%Y-%m-%d", "2024-13-01") is None
    assert sec("%H:%M:%S", "10:00:60") is not None     # a leap second rolls over


def test_yearless_formats_take_today_and_the_current_year():
    now = time.time()
    year = time.gmtime(now).tm_year
    got = TimeFormat("%b %d %H:%M:%S").parse("Mar 25 10:00:01", now=now)
    assert got == (days_from_civil(year, 3, 25) * 86400 + 36001) * 10 ** 9
    today = time.gmtime(now)
    got = TimeFormat("%H:%M").parse("10:30", now=now)
    assert got == (days_from_civil(year, today.tm_mon, today.tm_mday) * 86400 + 37800) * 10 ** 9


def test_strict_and_partial():
    assert sec("%Y-%m-%dT%H:%M:%S", "2024-03-25Tx") is None
    assert sec("%Y-%m-%dT%H:%M:%S", "2024-03-25Tx", strict=False) == "1711324800.000000000"
    assert sec("%Y-%m-%d", "x" * 70) is None


def test_partial_match_builds_on_a_zeroed_struct_tm():
    # Fluent Bit 5.1.1, json parser with Time_Strict off, checked on the binary: the fields
    # read so far over tm_year 0 (1900), January, day 0.
    loose = "%Y-%m-%dT%H:%M:%S"
    assert sec(loose, "2024-05-0", strict=False) == "1714435200.000000000"
    assert sec(loose, "2024-13-01T00:00:00", strict=False) == "1703980800.000000000"
    # nothing readable: 1899-12-31T00:00:00, which Fluent Bit cannot pack (it loses the
    # record) and edgeship's parsers refuse (test_parsers)
    assert sec(loose, "garbage", strict=False) == "-2209075200.000000000"
    assert sec(loose + ".%L", "", strict=False) == "-2209075200.000000000"


def test_offset_and_zone_options():
    assert parse_offset("+0200") == 7200 and parse_offset("-06:30") == -23400
    assert parse_offset("Z") == 0
    for bad in ("0200", "+2", "+ab00", "+02:7"):
        with pytest.raises(ValueError):
            parse_offset(bad)
    with pytest.raises(ValueError):
        TimeFormat("%H", zone="Mars/Olympus")
    with pytest.raises(ValueError):
        TimeFormat("%H", zone="UTC", offset="+0100")
    # year 0 is past what datetime holds: a number (that parsers refuse), not an exception
    assert TimeFormat("%Y-%m-%d", zone="Europe/Paris").parse("0000-01-01") < 0


def test_days_from_civil_matches_calendar():
    import calendar
    for year, month, day in ((1970, 1, 1), (2000, 2, 29), (1969, 12, 31), (2100, 3, 1)):
        assert days_from_civil(year, month, day) * 86400 == \
            calendar.timegm((year, month, day, 0, 0, 0))


# ------------------------------------------------------------------ fast path equivalence
FAST_FORMATS = (ISO, "%Y-%m-%dT%H:%M:%S.%L", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%dT%H:%M:%S.%LZ", "%Y-%m-%d %H:%M:%S,%L", "%b %d %H:%M:%S",
                "%d/%b/%Y:%H:%M:%S %z", "%d.%m.%Y %T")
NOW = 1711360801.5      # 2024-03-25: the year of the yearless formats


@st.composite
def time_texts(draw):
    """Texts near the stock formats: well-formed fields (edge dates included: 29 February of
    leap and common years, day 31 of short months, second 60), each field sometimes replaced
    by an out-of-range, one-digit or non-digit value; fractions of 0 to 10 digits; zones Z,
    +hh:mm, -hhmm, +hh, names; trailing text."""
    fields = {"year": draw(st.sampled_from(["2024", "2023", "2000", "2100", "1970", "1969",
                                            "2106", "0000", "9999"])),
              "month": "%02d" % draw(st.integers(1, 12)),
              "day": "%02d" % draw(st.integers(1, 31)),
              "hour": "%02d" % draw(st.integers(0, 23)),
              "minute": "%02d" % draw(st.integers(0, 59)),
              "second": "%02d" % draw(st.integers(0, 60)),
              "name": draw(st.sampled_from(["Jan", "Feb", "mar", "DEC", "sep"])),
              "fraction": draw(st.text("0123456789", min_size=1, max_size=9)),
              "zone": draw(st.sampled_from(["Z", "+00:00", "-07:00", "+0530", "-0330"]))}
    if draw(st.booleans()):
        fields["month"], fields["day"] = draw(st.sampled_from(
            [("02", "29"), ("02", "30"), ("04", "31"), ("12", "31"), ("01", "01")]))
    for _ in range(draw(st.integers(0, 2))):
        fields[draw(st.sampled_from(sorted(fields)))] = draw(st.sampled_from(
            ["", "0", "00", "5", "13", "24", "29", "32", "45", "60", "61", "99", "123",
             "20245", "x", "\u0663\u0663", " 5", "March", "Foo", "Ma", "0123456789", "+05",
             "+5", "UTC", "GMT", "EST", " +01:00", "+01:0", "+99:99", "z"]))
    shape = draw(st.integers(0, 3))
    if shape == 0:
        text = "{year}-{month}-{day}T{hour}:{minute}:{second}.{fraction}{zone}"
    elif shape == 1:
        text = "{name}" + draw(st.sampled_from([" ", "  ", "-"])) + "{day} {hour}:{minute}:{second}"
    elif shape == 2:
        text = "{day}/{name}/{year}:{hour}:{minute}:{second} {zone}"
    else:
        text = "{year}-{month}-{day} {hour}:{minute}:{second},{fraction}"
    return (draw(st.sampled_from(["", " ", "\t"])) + text.format(**fields)
            + draw(st.sampled_from(["", "x", "5", " trailing"])))


def _general(fmt, **kw):
    general = TimeFormat(fmt, **kw)
    general.fast = None     # the general regex and setters only
    return general


@pytest.mark.parametrize("options", [{}, {"strict": False}, {"offset": "-0600"},
                                     {"zone": "Europe/Paris"}])
@settings(max_examples=600, deadline=None)
@given(text=time_texts())
def test_fast_path_gives_what_the_general_path_gives(options, text):
    for fmt in FAST_FORMATS:
        fast = TimeFormat(fmt, **options)
        assert fast.fast is not None, fmt
        expected = _general(fmt, **options).parse(text, now=NOW)
        assert fast.parse(text, now=NOW) == expected, (fmt, text)
        assert fast.parse(text, now=NOW) == expected, (fmt, text)    # from its caches


def test_fast_path_reads_the_stock_formats_and_keeps_out_of_others():
    cases = {ISO: "2024-02-29T23:59:60.5-07:00", "%b %d %H:%M:%S": "Feb 29 10:00:01",
             "%d/%b/%Y:%H:%M:%S %z": "31/Dec/1999:23:59:59 +0100"}
    for fmt, text in cases.items():
        fast = TimeFormat(fmt)
        assert fast.fast.match(text)
        assert fast.parse(text, now=NOW) == _general(fmt).parse(text, now=NOW) is not None
    assert TimeFormat(ISO).parse("2024-03-25T10:00:01.123456+00:00") == 1711360801123456000
    for fmt in ("%Y-%m-%d %H:%M:%S %Z", "%s.%L", "%H:%M:%S", "%Y-%j %H:%M:%S", "%L %Y-%m-%d %T",
                "%d %bch %Y %H:%M:%S", "%Y-%m-%d %I:%M:%S %p"):
        assert TimeFormat(fmt).fast is None, fmt
    assert TimeFormat(ISO, system_timezone=True).fast is None


def test_fast_path_caches_stay_small():
    fast = TimeFormat("%Y-%m-%d %H:%M:%S")
    for day in range(2000):
        fast.parse("%04d-01-01 00:00:00" % (1971 + day))
    assert len(fast.dates) <= 512
    yearless = TimeFormat("%b %d %H:%M:%S")
    jan = yearless.parse("Jan 01 00:00:00", now=NOW)
    # a new year clears the dates read with the old one
    assert yearless.parse("Jan 01 00:00:00", now=NOW + 366 * 86400) == jan + 366 * 86400 * 10 ** 9
