"""type_converter: every source/target pair Fluent Bit's flb_typecast handles, failures
copying the original value, and the grouping of added keys."""
import pytest

from edgeship.core.errors import ConfigError
from edgeship.plugins.filters.type_converter import ConversionError, convert
from filter_helpers import plugin, run, section


@pytest.mark.parametrize("value,source,to,expected", [
    ("21", "string", "int", 21), ("-4", "string", "int", -4), (" 12abc", "string", "int", 12),
    ("0.25", "string", "float", 0.25), ("3", "string", "float", 3.0),
    ("x", "string", "float", 0.0),                       # atof: not a number is 0.0
    ("ff", "string", "hex", 255), ("0x10", "string", "hex", 16),
    ("-4", "string", "uint", (1 << 64) - 4), ("TRUE!", "string", "bool", True),
    ("false", "string", "bool", False),
    (500, "uint", "string", "500"), (500, "uint", "float", 500.0),
    (-1, "uint", "string", str((1 << 64) - 1)), (-3, "int", "string", "-3"),
    (-3, "int", "uint", (1 << 64) - 3), (-9223372036854775808, "int", "string",
                                          "-9223372036854775808"),
    (2.75, "float", "int", 2), (-1.5, "float", "int", -1), (100.0, "float", "string", "100.0"),
    (2.75, "float", "string", "2.75"), (-1.5, "float", "string", "-1.5"),
    (0.1, "float", "string", "0.1"),
])
def test_conversions(value, source, to, expected):
    assert convert(value, source, to) == expected


@pytest.mark.parametrize("value,source,to", [
    ("0", "string", "int"),          # strtoimax's 0 is taken as a failure
    ("abc", "string", "int"), ("zz", "string", "hex"), ("a", "string", "string"),
    ("maybe", "string", "bool"), ("404", "uint", "string"), (True, "int", "string"),
    (1.5, "int", "string"), (5, "float", "string"), (5, "int", "int"), (1.0, "float", "hex"),
])
def test_failures(value, source, to):
    with pytest.raises(ConversionError):
        convert(value, source, to)


def test_c_conversions_are_the_parsers_types_ones():
    """type_converter and parser Types once had their own C conversions, which disagreed;
    both use codecs/cnumbers now. What Fluent Bit 5.1.1 wrote (real binary) for str_key
    float "0x1p3", int "\u00a012" (NBSP is no C space), uint of a huge negative, hex " 0x1f":
    f2 8.0, i2 the original (convert error), u2 18446744073709551615, h2 31."""
    from edgeship.plugins.parsers._base import CASTS
    assert convert("0x1p3", "string", "float") == 8.0 == CASTS["float"]("0x1p3")
    with pytest.raises(ConversionError):
        convert("\u00a012", "string", "int")
    assert CASTS["integer"]("\u00a012") == 0 and CASTS["integer"]("\v12") == 12
    assert convert("-99999999999999999999999", "string", "uint") == (1 << 64) - 1
    assert convert(" 0x1f", "string", "hex") == 31 == CASTS["hex"](" 0x1f")
    assert convert("99999999999999999999", "string", "int") == (1 << 63) - 1 \
        == CASTS["integer"]("99999999999999999999")


def test_added_keys_grouped_by_option_and_failures_copy_original(tmp_path):
    flt = plugin(tmp_path, section("type_converter", "float_key avg avg_str string",
                                   "uint_key code code_str string", "str_key n n_int int",
                                   "int_key $m['d'] d_str string", "str_key bad bad_int int"))
    out = run(flt, [{"n": "7", "code": 5, "avg": 1.0, "m": {"d": -2}, "bad": "x"}, {"o": 1}])
    assert list(out[0].items())[5:] == [("n_int", 7), ("bad_int", "x"), ("d_str", "-2"),
                                        ("code_str", "5"), ("avg_str", "1.0")]
    assert out[1] == {"o": 1}


def test_bad_rules_are_ignored_but_none_left_is_an_error(tmp_path):
    flt = plugin(tmp_path, section("type_converter", "str_key a b int", "str_key a b nosuch",
                                   "int_key onlytwo words"))
    assert len(flt.rules) == 1
    with pytest.raises(ConfigError) as err:
        plugin(tmp_path, section("type_converter", "str_key a b nosuch"))
    assert "no rules" in str(err.value)
    # an invalid record accessor is a config error at its line, as in every option
    with pytest.raises(ConfigError) as err:
        plugin(tmp_path, section("type_converter", "str_key a b int", "str_key $a|$b c int"))
    assert err.value.line == 7 and err.value.key == "str_key"
    assert "invalid record accessor" in str(err.value)
