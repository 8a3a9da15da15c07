"""edgeship.codecs.strptime: Fluent Bit's strptime with %L, zones, offsets and partial matches."""
import time

import pytest

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


def test_days_from_civil_matches_calendar():
    import calendar
    for year, month, day in ((1970, 1, 1), (2000, 2, 29), (1969, 12, 31), (2100, 3, 1)):
        assert days_from_civil(year, month, day) * 86400 == \
            calendar.timegm((year, month, day, 0, 0, 0))
