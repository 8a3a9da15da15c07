from edgeship.core.errors import ConfigError
from edgeship.core.schema import (Entry, Option, Schema, atoi_text, to_binary_size, to_bool,
                                  to_seconds, to_size)


def test_converters():
    assert to_size("32k") == 32000 and to_size("5M") == 5000000 and to_size("1gb") == 10 ** 9
    assert to_size("512") == 512 and to_size("false") == 0 and to_size("1.5K") == 1500
    assert to_seconds("10") == 10 and to_seconds("2m") == 120 and to_seconds("1h") == 3600
    assert to_seconds("0.2") == 0.2 and to_seconds("1d") == 86400
    assert to_seconds("250ms") == 0.25 and to_size("2 MB") == 2000000
    assert to_bool("On") is True and to_bool("NO") is False
    assert to_binary_size("2MB") == 2097152 and to_binary_size("32K") == 32768
    assert to_binary_size("100") == 100
    for bad in (lambda: to_size("x"), lambda: to_binary_size("-1M"), lambda: to_bool("maybe"), lambda: to_seconds("1y"),
                lambda: to_size("-1k"), lambda: to_seconds("-5s")):
        try:
            bad()
        except ValueError:
            pass
        else:
            raise AssertionError("accepted a bad value")


SCHEMA = Schema("demo", (
    Option("Name", required=True),
    Option("Rate", "int", "1"),
    Option("Regex", multiple=True),
    Option("Match", last_wins=True),
    Option("Mode", default="a", choices=("a", "b")),
    Option("Allowlist_key", multiple=True, aliases=("Whitelist_key",)),
))


def entries(*pairs):
    return [Entry(k, v, "f.conf", i + 1) for i, (k, v) in enumerate(pairs)]


def build_error(*pairs):
    try:
        SCHEMA.build(entries(*pairs), ("f.conf", 1))
    except ConfigError as exc:
        return exc
    raise AssertionError("no error")


def test_build_defaults_multiple_and_last_wins():
    conf = SCHEMA.build(entries(("name", "x"), ("regex", "a b"), ("REGEX", "c d"),
                                ("match", "1"), ("match", "2"), ("whitelist_key", "k")))
    assert conf["rate"] == 1 and conf["regex"] == ["a b", "c d"] and conf["match"] == "2"
    assert conf["mode"] == "a" and conf["allowlist_key"] == ["k"]


def test_errors_name_line_and_key():
    err = build_error(("name", "x"), ("rate", "1"), ("rate", "2"))
    assert err.line == 3 and err.key == "rate" and "set 2 times" in err.message
    err = build_error(("name", "x"), ("bogus", "1"))
    assert err.line == 2 and "unknown configuration property 'bogus'" in err.message
    err = build_error(("name", "x"), ("rate", "fast"))
    assert err.key == "rate" and "integer" in err.message
    err = build_error(("name", "x"), ("mode", "c"))
    assert "one of" in err.message
    err = build_error(("rate", "1"))
    assert err.key == "name" and err.line == 1


def test_help_lines_keep_one_column_for_long_names():
    schema = Schema("demo", (Option("Rate", "int", "1", help="per second"),
                             Option("storage.pause_on_chunks_overlimit", "bool", help="x"),
                             Option("Topic", multiple=True, required=True, help="topic")))
    lines = schema.help_lines()
    width = len("storage.pause_on_chunks_overlimit")
    assert [line[width:width + 6] for line in lines] == [" int  ", " bool ", " str  "]
    assert lines[0].endswith("per second [default: 1]")
    assert lines[2].endswith("topic [required] [repeatable]")


def convert_error(option, text):
    try:
        option.convert(text)
    except ValueError as exc:
        return str(exc)
    raise AssertionError("accepted %r" % text)


def test_min_max_and_above_bound_numbers_and_say_the_range():
    port = Option("Port", "int", "1883", min=1, max=65535)
    assert port.convert("65535") == 65535 and port.convert("1") == 1
    assert convert_error(port, "0") == "expected 1 to 65535, got '0'"
    assert convert_error(port, "70000") == "expected 1 to 65535, got '70000'"
    size = Option("Buffer_Size", "size", "16000", min=16000)
    assert size.convert("16k") == 16000
    assert convert_error(size, "1000") == "expected 16000 or more, got '1000'"
    interval = Option("Interval", "time", "1", above=0)
    assert interval.convert("0.5s") == 0.5
    assert convert_error(interval, "0") == "expected more than 0, got '0'"
    assert convert_error(Option("N", "int", max=9), "10") == "expected 9 or less, got '10'"


def test_a_bound_is_checked_at_build_with_file_line_and_key():
    schema = Schema("demo", (Option("Port", "int", "1883", min=1, max=65535),))
    try:
        schema.build([Entry("port", "0", "f.conf", 7)])
    except ConfigError as exc:
        assert exc.line == 7 and exc.key == "port" and "1 to 65535" in exc.message
    else:
        raise AssertionError("port 0 accepted")


def test_bounds_only_for_numbers():
    try:
        Option("Name", min=1)
    except ValueError:
        pass
    else:
        raise AssertionError("a bounded str option was declared")


def test_integer_choices():
    qos = Option("QoS", "int", "1", choices=(0, 1, 2))
    assert qos.convert("2") == 2 and qos.default_value() == 1
    assert convert_error(qos, "3") == "expected one of 0, 1, 2, got '3'"


def test_bound_options_become_attributes():
    schema = Schema("demo", (Option("Interval", "time", "1", attr="interval"),
                             Option("Rate", "int", "1")))
    conf = schema.build([Entry("interval", "2m", "f.conf", 1)])

    class Plugin:
        pass
    plugin = Plugin()
    conf.bind(plugin)
    assert plugin.interval == 120 and not hasattr(plugin, "rate")


def test_compatibility_only_is_shown_in_help():
    line = Option("Threaded", "bool", "false", compat=True).describe()
    assert line.endswith("[default: false] [compatibility only: accepted, no effect]")
    line = Option("Port", "int", "1883", min=1, max=65535, help="port").describe()
    assert line.endswith("port [default: 1883] [1 to 65535]")


def test_an_option_declared_twice_is_refused():
    for options in ((Option("tls.verify", "bool"), Option("TLS.Verify", "bool")),
                    (Option("Listen", aliases=("host",)), Option("Host"))):
        try:
            Schema("demo", options)
        except ValueError as exc:
            assert "declared twice" in str(exc)
        else:
            raise AssertionError("a duplicate option was accepted")


def test_atoi_text_reads_the_leading_integer_as_c_does():
    assert atoi_text("60  # a minute") == "60"
    assert atoi_text(" \t-5x") == "-5"
    assert atoi_text("+7") == "+7"
    for text in ("", "x1", "-", " # 5", "\u00a05"):
        assert atoi_text(text) is None, text


def test_lenient_is_asked_about_a_value_that_does_not_convert():
    schema = Schema("demo", (Option("Port", "int", "1883", min=1, max=65535),))
    asked = []

    def lenient(option, entry, error):
        asked.append((option.key, entry.value, error.line))
        return atoi_text(entry.value)

    conf = schema.build([Entry("port", "8080 # web", "f.conf", 3)], lenient=lenient)
    assert conf["port"] == 8080 and asked == [("port", "8080 # web", 3)]
    # what the lenient text gives is still checked against the bounds
    try:
        schema.build([Entry("port", "0 # none", "f.conf", 4)], lenient=lenient)
    except ConfigError as exc:
        assert exc.line == 4 and "expected an integer" in exc.message
    else:
        raise AssertionError("port 0 accepted")
