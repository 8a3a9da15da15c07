"""geoip2 filter: real edgeship runs (stdin -> geoip2 -> stdout json_lines) on a MaxMind DB
the test writes itself (tests/geoip_db.py), compared with what Fluent Bit 5.1.1 wrote for the
same config, database and input lines. The ``FLUENT_BIT_*`` literals were captured from the
real binary (``fluent-bit -c`` on the same config, ``"date"`` left out); the database
errors and the config checks run edgeship in-process or as a child."""
import re
import sys

import pytest

from edgeship.core.errors import ConfigError, StartError
from filter_helpers import plugin, run, run_config, section

from conftest import run_edgeship
from geoip_db import write_city_db

pytest.importorskip("maxminddb")


@pytest.fixture
def db(tmp_path):
    """tmp_path with city.mmdb (IPv6, IPv4 at ::/96) and city4.mmdb (IPv4 only)."""
    write_city_db(tmp_path / "city.mmdb")
    write_city_db(tmp_path / "city4.mmdb", ip_version=4)
    return tmp_path


def through_edgeship(tmp_path, filter_lines, lines):
    """The records (JSON lines without "date") and stderr of a real edgeship run."""
    proc = run_config(tmp_path, "[SERVICE]\n    Flush 0.2\n    Grace 1\n"
                      "[INPUT]\n    Name stdin\n    Tag t\n"
                      + section("geoip2", *filter_lines)
                      + "[OUTPUT]\n    Name stdout\n    Match *\n    Format json_lines\n",
                      input="".join(line + "\n" for line in lines))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    records = [re.sub(r'^\{"date":[0-9.e+-]+,', "{", line)
               for line in proc.stdout.splitlines() if line.startswith("{")]
    return records, proc.stderr


CITY = ["Database city.mmdb", "Lookup_Key ip",
        "Record country ip %{country.names.en}", "Record iso ip %{country.iso_code}",
        "Record lat ip %{location.latitude}", "Record sub1 ip %{subdivisions.1.iso_code}",
        "Record subneg ip %{subdivisions.-1.iso_code}", "Record missing ip %{nope.x}",
        "Record map ip %{country}"]

CITY_INPUT = [
    '{"ip":"81.2.69.160","a":1}', '{"ip":"1.1.1.1"}', '{"ip":"not an ip"}', '{"other":"x"}',
    '{"ip":5}', '{"ip":"2001:db8::5"}', '{"IP_addr":"10.2.3.4"}', '{"ip":""}',
    '{"ip":"127.1"}', '{"ip":"0x51.2.69.1"}', '{"ip":"2130706433"}', '{"ip":"1.2.3.4 x"}',
    '{"ip":" 81.2.69.1"}', '{"ip":"fe80::1%lo"}', '{"ip":"fe80::1%nonexist"}',
    '{"ip":"fe80::1%7"}', '{"ip":"081.2.69.1"}', '{"ip":"FE80::1"}',
    '{"ip":"::ffff:81.2.69.1"}']

_NULLS = '"country":null,"iso":null,"lat":null,"sub1":null,"subneg":null,"missing":null,' \
         '"map":null}'
_LONDON = '"country":"United Kingdom","iso":"GB","lat":51.5142,"sub1":"WSM","subneg":"WSM",' \
          '"missing":null,"map":null}'
_LL = '"country":null,"iso":"LL","lat":null,"sub1":null,"subneg":null,"missing":null,' \
      '"map":null}'
# Captured from Fluent Bit 5.1.1 (CITY on CITY_INPUT); its log had 42 "getaddrinfo failed"
# errors, 40 "cannot get value: The lookup path does not match the data" and 7 "Not
# supported MAP and ARRAY" warnings.
FLUENT_BIT_CITY = [
    '{"ip":"81.2.69.160","a":1,' + _LONDON,
    '{"ip":"1.1.1.1",' + _NULLS,
    '{"ip":"not an ip",' + _NULLS,
    '{"other":"x",' + _NULLS,
    '{"ip":5,' + _NULLS,
    '{"ip":"2001:db8::5","country":"Docland","iso":"ZZ","lat":null,"sub1":null,'
    '"subneg":null,"missing":null,"map":null}',
    '{"IP_addr":"10.2.3.4","country":null,"iso":"XX","lat":null,"sub1":null,"subneg":null,'
    '"missing":null,"map":null}',
    '{"ip":"",' + _NULLS,
    '{"ip":"127.1",' + _NULLS,
    '{"ip":"0x51.2.69.1",' + _LONDON,
    '{"ip":"2130706433",' + _NULLS,
    '{"ip":"1.2.3.4 x",' + _NULLS,
    '{"ip":" 81.2.69.1",' + _NULLS,
    '{"ip":"fe80::1%lo",' + _LL,
    '{"ip":"fe80::1%nonexist",' + _NULLS,
    '{"ip":"fe80::1%7",' + _LL,
    '{"ip":"081.2.69.1",' + _NULLS,
    '{"ip":"FE80::1",' + _LL,
    '{"ip":"::ffff:81.2.69.1",' + _NULLS,
]


def test_city_lookups_missing_keys_and_bad_addresses_as_fluent_bit(db):
    records, stderr = through_edgeship(db, CITY, CITY_INPUT)
    assert records == FLUENT_BIT_CITY
    # Counted per batch, one line each (Fluent Bit logs every one).
    assert "42 Record values null: their lookup key holds no IP address" in stderr
    assert "40 Record paths do not match the data found" in stderr
    assert "7 Record paths end at a map or an array" in stderr
    assert stderr.count("geoip2:") == 3


TYPES = ["Database city.mmdb", "Lookup_Key ip"] + [
    "Record %s ip %%{%s}" % pair for pair in (
        ("u16", "types.u16"), ("u32", "types.u32"), ("u64", "types.u64"),
        ("u128", "types.u128"), ("u128big", "types.u128big"), ("i32", "types.i32"),
        ("f32", "types.f32"), ("f32b", "types.f32b"), ("f64", "types.f64"), ("t", "types.t"),
        ("f", "types.f"), ("bytes", "types.bytes"), ("empty", "types.empty"),
        ("uni", "types.uni"), ("emptymap", "types.emptymap"), ("arr3k", "arr.3.k"),
        ("arr41", "arr.4.1"), ("arrm1", "arr.-1"), ("arrm2", "arr.-2.k"), ("arrm9", "arr.-9"),
        ("arrx", "arr.x"), ("arrplus", "arr.+1"), ("arrsp", "arr. 2"), ("arr1x", "arr.1x"),
        ("dotted", "a.b"), ("top", ""))] + [
    "Record after ip %{city.names.en}extra", "Record noprefix ip XYcountry.iso_code}",
    "Record dots ip %{..country..iso_code.}", "Record emptykey ip %{.}",
    "Record geo ip %{city.geoname_id}", "Record eu ip %{country.is_in_european_union}",
    "Record acc ip %{location.accuracy_radius}", "Record deep ip %{a.b.c.d.e.f.g.h.i.j}",
    "Record four ip %{city.names.en} %{x}"]

# Captured from Fluent Bit 5.1.1 (TYPES on the two lines below).
FLUENT_BIT_TYPES = [
    '{"ip":"81.2.69.1","u16":65535,"u32":4294967295,"u64":18446744073709551615,'
    '"u128":null,"u128big":null,"i32":-5,"f32":1.5,"f32b":0.1000000014901161,"f64":0.1,'
    '"t":true,"f":false,"bytes":"\\u0000ab","empty":"","uni":"Z\\u00fcrich","emptymap":null,'
    '"arr3k":"v","arr41":9,"arrm1":null,"arrm2":"v","arrm9":null,"arrx":null,"arrplus":"y",'
    '"arrsp":"z","arr1x":null,"dotted":null,"top":null,"after":"London","noprefix":"GB",'
    '"dots":"GB","emptykey":"emptykey","geo":2643743,"eu":false,"acc":10,"deep":null,'
    '"four":"London"}',
    '{"ip":"127.0.0.1","u16":null,"u32":null,"u64":null,"u128":null,"u128big":null,'
    '"i32":null,"f32":null,"f32b":null,"f64":null,"t":null,"f":null,"bytes":null,'
    '"empty":null,"uni":null,"emptymap":null,"arr3k":null,"arr41":null,"arrm1":null,'
    '"arrm2":null,"arrm9":null,"arrx":null,"arrplus":null,"arrsp":null,"arr1x":null,'
    '"dotted":null,"top":"just a string","after":null,"noprefix":null,"dots":null,'
    '"emptykey":null,"geo":null,"eu":null,"acc":null,"deep":null,"four":null}',
]


def test_value_types_and_paths_as_fluent_bit(db):
    records, _ = through_edgeship(db, TYPES, ['{"ip":"81.2.69.1"}', '{"ip":"127.0.0.1"}'])
    # The one difference (README): a small uint128 is its number; Fluent Bit writes null.
    expected = [FLUENT_BIT_TYPES[0].replace('"u128":null', '"u128":5'), FLUENT_BIT_TYPES[1]]
    assert records == expected


LOOKUP_KEYS = ["Database city4.mmdb", "Lookup_Key ip", "Lookup_Key Src",
               "Record a ip %{country.iso_code}", "Record b src %{country.iso_code}",
               "Record c Src %{country.iso_code}", "Record ip ip %{country.iso_code}",
               "Record a ip %{city.names.en}"]

LOOKUP_INPUT = ['{"ip":"81.2.69.1","ipv6":"2001:db8::1"}',
                '{"ipv6":"2001:db8::1","IP":"81.2.69.1"}', '{"ip":"81.2.69.1","ipx":5}', '{"SRC_ip":"10.0.0.1","src":"81.2.69.1"}',
                '{"i":"81.2.69.1"}', '{"ip":"2001:db8::1"}', '{"a":"keep?","ip":"10.9.9.9"}']

# Captured from Fluent Bit 5.1.1 (LOOKUP_KEYS on LOOKUP_INPUT): keys starting with a
# Lookup_Key in any case, the last one wins, a non-string value is skipped, Record keys that
# the record has are replaced, an IPv6 address in an IPv4-only database is null (6 "lookup
# failed : You attempted to look up an IPv6 address in an IPv4-only database" errors).
FLUENT_BIT_LOOKUP_KEYS = [
    '{"ipv6":"2001:db8::1","b":null,"c":null,"ip":null,"a":null}',
    '{"ipv6":"2001:db8::1","IP":"81.2.69.1","b":null,"c":null,"ip":"GB","a":"London"}',
    '{"ipx":5,"b":null,"c":null,"ip":"GB","a":"London"}',
    '{"SRC_ip":"10.0.0.1","src":"81.2.69.1","b":null,"c":"GB","ip":null,"a":null}',
    '{"i":"81.2.69.1","b":null,"c":null,"ip":null,"a":null}',
    '{"b":null,"c":null,"ip":null,"a":null}',
    '{"b":null,"c":null,"ip":"XX","a":null}',
]


def test_lookup_keys_as_fluent_bit(db):
    records, stderr = through_edgeship(db, LOOKUP_KEYS, LOOKUP_INPUT)
    assert records == FLUENT_BIT_LOOKUP_KEYS
    assert "6 Record values null: the lookup failed" in stderr
    # A Record whose lookup key is no Lookup_Key is always null: said once, at its line.
    assert re.search(r"fluent-bit\.conf:14: key 'record': geoip2: 'src' is no Lookup_Key "
                     r"\(ip, Src\): record 'b' is always null", stderr), stderr


def corrupt_copy(src, dst):
    """The database with 384 bytes of its data section overwritten."""
    data = bytearray(src.read_bytes())
    meta = data.rfind(b"\xab\xcd\xefMaxMind.com")
    data[meta - 400:meta - 16] = b"\xff" * 384
    dst.write_bytes(bytes(data))


def test_corrupt_data_gives_null_as_fluent_bit(db):
    corrupt_copy(db / "city.mmdb", db / "corrupt.mmdb")
    records, stderr = through_edgeship(
        db, ["Database corrupt.mmdb", "Lookup_Key ip", "Record ip ip %{country.iso_code}",
             "Record a ip %{city.names.en}"],
        ['{"ip":"81.2.69.1"}', '{"ip":"10.0.0.1"}', '{"ip":"2001:db8::1"}',
         '{"ip":"127.0.0.1"}', '{"ip":"fe80::1"}'])
    # Captured from Fluent Bit 5.1.1 on the same corrupt file ("cannot get value: The MaxMind
    # DB file's data section contains bad data" for the broken entries).
    assert records == ['{"ip":null,"a":null}', '{"ip":"XX","a":null}', '{"ip":null,"a":null}',
                       '{"ip":null,"a":null}', '{"ip":"LL","a":null}']
    assert "Record values null: the lookup failed" in stderr


# ------------------------------------------------------------------ start-up and config
@pytest.mark.parametrize("name, make, words", [
    ("missing.mmdb", None, "No such file or directory"),
    ("garbage.mmdb", lambda p: p.write_bytes(b"not a maxmind db\n" * 10), "valid MaxMind DB"),
    ("truncated.mmdb", lambda p: p.write_bytes(p.with_name("city.mmdb").read_bytes()[:100]),
     "valid MaxMind DB"),
    ("empty.mmdb", lambda p: p.write_bytes(b""), "MaxMind DB"),
    ("folder.mmdb", lambda p: p.mkdir(), "Is a directory"),
])
def test_a_database_that_cannot_be_opened_stops_the_start(db, name, make, words):
    if make is not None:
        make(db / name)
    with pytest.raises(StartError) as err:
        plugin(db, section("geoip2", "Database %s" % name, "Lookup_Key ip",
                           "Record a ip %{country.iso_code}"))
    assert (err.value.line, err.value.key) == (6, "database")
    assert "cannot open geoip2 database" in str(err.value) and name in str(err.value)
    assert words in str(err.value)


def test_a_missing_database_fails_the_run_and_warns_in_a_dry_run(tmp_path):
    config = ("[INPUT]\n    Name dummy\n" + section("geoip2", "Database nope.mmdb",
                                                      "Lookup_Key ip", "Record a ip %{x}")
              + "[OUTPUT]\n    Name null\n    Match *\n")
    proc = run_config(tmp_path, config)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "fluent-bit.conf:6: key 'database': geoip2: cannot open geoip2 database" \
        in proc.stderr
    (tmp_path / "dry.conf").write_text(config)
    dry = run_edgeship(["--dry-run", "-c", str(tmp_path / "dry.conf")])
    assert dry.returncode == 0 and "cannot open geoip2 database" in dry.stderr


@pytest.mark.parametrize("lines, words, line, key", [
    (["Record a ip"], "expects 'KEY LOOKUP_KEY %{path}'", 8, "record"),
    (["Record a ip %{country.iso_code"], "expects %{path.to.value}", 8, "record"),
    (["Record a ip x}"], "expects %{path.to.value}", 8, "record"),
    ([], "at least one record is required", 3, "record"),
])
def test_bad_or_missing_records_are_config_errors(db, lines, words, line, key):
    with pytest.raises(ConfigError) as err:
        plugin(db, section("geoip2", "Database city.mmdb", "Lookup_Key ip", *lines))
    assert words in str(err.value)
    assert (err.value.line, err.value.key) == (line, key)


def test_lookup_key_and_database_are_required(db):
    with pytest.raises(ConfigError, match="at least one lookup_key is required"):
        plugin(db, section("geoip2", "Database city.mmdb", "Record a ip %{x}"))
    with pytest.raises(ConfigError, match="no geoip2 database"):
        plugin(db, section("geoip2", "Lookup_Key ip", "Record a ip %{x}"))


def test_many_records_of_a_batch_and_a_cached_address(db):
    flt = plugin(db, section("geoip2", "Database city.mmdb", "Lookup_Key ip",
                             "Record iso ip %{country.iso_code}"))
    out = run(flt, [{"ip": "81.2.69.%d" % (i % 256)} for i in range(3000)]
              + [{"ip": "10.0.0.1"}, {"ip": "81.2.69.7"}])
    assert [r["iso"] for r in out] == ["GB"] * 3000 + ["XX", "GB"]


def test_without_the_extra_the_config_error_names_it(tmp_path):
    """A child whose maxminddb cannot be imported (as without the geoip2 extra)."""
    blocker = tmp_path / "blocked" / "maxminddb"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError(\"No module named 'maxminddb'\")\n")
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[INPUT]\n    Name dummy\n" + section("geoip2", "Database x.mmdb",
                                                          "Lookup_Key ip", "Record a ip %{x}")
                    + "[OUTPUT]\n    Name null\n    Match *\n")
    proc = run_edgeship(["--dry-run", "-c", str(conf)],
                        env={"PYTHONPATH": str(tmp_path / "blocked")})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "%s:4: key 'name': geoip2 needs the geoip2 extra (pip install " \
           "'edgeship[geoip2]')" % conf in proc.stderr


def test_help_needs_no_database():
    proc = run_edgeship(["-F", "geoip2", "-h"])
    assert proc.returncode == 0
    assert "Lookup_Key" in proc.stdout and "%{path.to.value}" in proc.stdout


def test_the_plugin_module_imports_without_maxminddb(monkeypatch):
    monkeypatch.setitem(sys.modules, "maxminddb", None)
    monkeypatch.delitem(sys.modules, "edgeship.plugins.filters.geoip2", raising=False)
    from edgeship.plugins.filters import geoip2
    with pytest.raises(ConfigError, match=r"pip install 'edgeship\[geoip2\]'"):
        geoip2.require_maxminddb()


def test_the_pure_python_reader_gives_the_same_values(db, monkeypatch):
    """Where maxminddb has no C wheel (armhf) its pure-Python reader runs: same values."""
    import functools

    import maxminddb

    records = [{"ip": "81.2.69.1"}, {"ip": "127.0.0.1"}, {"ip": "fe80::1"}, {"ip": "x"}]
    with_c = run(plugin(db, section("geoip2", *TYPES)), records)
    monkeypatch.setattr(maxminddb, "open_database",
                        functools.partial(maxminddb.open_database, mode=maxminddb.MODE_MMAP))
    flt = plugin(db, section("geoip2", *TYPES))
    assert type(flt.reader).__module__ == "maxminddb.reader"
    assert run(flt, records) == with_c
    assert with_c[0]["bytes"] == "\0ab" and with_c[0]["f32b"] == 0.10000000149011612
