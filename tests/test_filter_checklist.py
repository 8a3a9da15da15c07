"""checklist filter: real edgeship runs (stdin -> checklist -> stdout json_lines) compared
with what Fluent Bit 5.1.1 wrote for the same config, list file and lines (the literals and
the flagged line numbers were captured from the real binary, ``"date"`` left out); the
config checks and large lists run in-process."""
import re

import pytest

from edgeship.core.errors import ConfigError
from filter_helpers import plugin, run, run_config, section

LIST = (b"# comment\n\nbad.example.com\nEvil.Example.COM\n10.0.0.1\r\n  spaced\nexact\n"
        b"wild_card\npct%x\n")

INPUT = ['{"host":"bad.example.com","x":1}', '{"host":"BAD.example.com"}',
         '{"host":"evil.example.com"}', '{"host":"Evil.Example.COM"}', '{"host":"10.0.0.1"}',
         '{"host":"10.0.0.12"}', '{"host":"  spaced"}', '{"host":"spaced"}',
         '{"host":"exactly"}', '{"host":"wildXcard"}', '{"host":"wild_card"}',
         '{"host":"pctABCx"}', '{"host":"pct%x"}', '{"host":["bad.example.com"]}',
         '{"host":5}', '{"nohost":1}', '{"host":"# comment"}', '{"host":""}',
         '{"host":"xbad.example.com"}', '{"flagged":false,"host":"exact","one":2}']

RECORDS = ["Lookup_Key $host", "Record flagged true", "Record level null",
           "Record three a b", "Record four a b c", 'Record note "hello world"',
           "Record FALSE False", "Record host replaced"]

FLAGS = ('"flagged":true,"level":null,"three":"b","four":"b c","note":"hello world",'
         '"FALSE":false,"host":"replaced"}')

# Captured from Fluent Bit 5.1.1, Mode exact, Ignore_Case false.
FLUENT_BIT_EXACT = [
    '{"x":1,' + FLAGS, '{"host":"BAD.example.com"}', '{"host":"evil.example.com"}',
    '{' + FLAGS, '{' + FLAGS, '{"host":"10.0.0.12"}', '{' + FLAGS, '{"host":"spaced"}',
    '{"host":"exactly"}', '{"host":"wildXcard"}', '{' + FLAGS, '{"host":"pctABCx"}',
    '{' + FLAGS, '{"host":["bad.example.com"]}', '{"host":5}', '{"nohost":1}',
    '{"host":"# comment"}', '{"host":""}', '{"host":"xbad.example.com"}',
    '{"one":2,' + FLAGS]

# The input lines (1-based) Fluent Bit 5.1.1 flagged in each mode, captured from its output
# (the flagged records are written as above, the others unchanged).
FLUENT_BIT_FLAGGED = {
    ("exact", "false"): {1, 4, 5, 7, 11, 13, 20},
    ("exact", "true"): {1, 2, 3, 4, 5, 7, 11, 13, 20},
    ("partial", "false"): {1, 4, 5, 6, 7, 9, 10, 11, 12, 13, 20},
    ("partial", "true"): {1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 20},
}


def through_edgeship(tmp_path, lines, records, list_bytes=LIST):
    (tmp_path / "list.txt").write_bytes(list_bytes)
    proc = run_config(tmp_path, "[SERVICE]\n    Flush 0.2\n    Grace 1\n"
                      "[INPUT]\n    Name stdin\n    Tag t\n" + section("checklist", *lines)
                      + "[OUTPUT]\n    Name stdout\n    Match *\n    Format json_lines\n",
                      input="".join(line + "\n" for line in records))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    out = [re.sub(r'^\{"date":[0-9.e+-]+,', "{", line)
           for line in proc.stdout.splitlines() if line.startswith("{")]
    return out, proc.stderr


def flagged_as(line):
    """The line as Fluent Bit writes it flagged: its keys but the Record ones, then FLAGS."""
    keys = re.sub(r'"(host|flagged)":("[^"]*"|\[[^]]*\]|[^,}]*),?', "", line[1:-1]).rstrip(",")
    return "{" + (keys + "," if keys else "") + FLAGS


def test_exact_mode_as_fluent_bit(tmp_path):
    out, _ = through_edgeship(tmp_path, ["File list.txt"] + RECORDS, INPUT)
    assert out == FLUENT_BIT_EXACT


@pytest.mark.parametrize("mode, ignore_case", sorted(FLUENT_BIT_FLAGGED))
def test_modes_and_ignore_case_as_fluent_bit(tmp_path, mode, ignore_case):
    out, _ = through_edgeship(tmp_path, ["File list.txt", "Mode " + mode,
                                         "Ignore_Case " + ignore_case] + RECORDS, INPUT)
    flagged = FLUENT_BIT_FLAGGED[(mode, ignore_case)]
    assert out == [flagged_as(line) if n in flagged else line
                   for n, line in enumerate(INPUT, 1)]


def test_the_expected_lines_are_built_as_fluent_bit_wrote_them():
    assert [flagged_as(line) if n in FLUENT_BIT_FLAGGED[("exact", "false")] else line
            for n, line in enumerate(INPUT, 1)] == FLUENT_BIT_EXACT


LINES = ['{"log":"a","n":1}', '{"log":"bad.example.com","n":2}', '{"log":"10.0.0.1","n":3}',
         '{"log":"after","n":4}', '{"log":"xx","n":5}']


# (list file, the input lines Fluent Bit 5.1.1 flagged, whether it logged "length of content
# has exceeded limit"): a line of more than 2045 bytes (2046 with its newline) or with a NUL
# ends the loading, what was loaded before stays.
@pytest.mark.parametrize("content, flagged, too_long", [
    (b"bad.example.com\n" + b"x" * 2046 + b"\n10.0.0.1\n", {2}, True),
    (b"bad.example.com\n" + b"x" * 2045 + b"\n10.0.0.1\n" + b"y" * 2045, {2, 3}, False),
    (b"bad.example.com\n" + b"x" * 2044 + b"\r\n10.0.0.1\n" + b"y" * 2046, {2, 3}, True),
    (b"a\n" + b"y" * 2046, {1}, True),
    (b"bad.exa\0mple.com\n10.0.0.1\nafter\n", set(), True),
])
def test_line_limit_as_fluent_bit(tmp_path, content, flagged, too_long):
    out, stderr = through_edgeship(tmp_path, ["File list.txt", "Record f 1"], LINES,
                                   list_bytes=content)
    assert out == [line[:-1] + ',"f":"1"}' if n in flagged else line
                   for n, line in enumerate(LINES, 1)]
    assert ("length of content has exceeded limit" in stderr) == too_long
    if too_long:
        assert re.search(r"fluent-bit\.conf:10: key 'file': checklist: .*the rest of the file "
                         r"is not loaded", stderr), stderr


@pytest.mark.parametrize("lines, words", [
    (["File missing.txt", "Record f 1"], "could not open file"),
    (["File .", "Record f 1"], "Is a directory"),
    (["Record f 1"], "option 'file' is not set"),
])
def test_no_list_matches_nothing_with_a_warning(tmp_path, lines, words):
    # Fluent Bit 5.1.1 logs an error and passes every record unchanged, as here.
    out, stderr = through_edgeship(tmp_path, lines, LINES)
    assert out == LINES
    assert words in stderr and "no record will match" in stderr


def test_a_missing_list_is_an_error_in_strict_mode(tmp_path):
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[INPUT]\n    Name dummy\n" + section("checklist", "File missing.txt")
                    + "[OUTPUT]\n    Name null\n    Match *\n")
    from conftest import run_edgeship
    proc = run_edgeship(["--strict", "--dry-run", "-c", str(conf)])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "fluent-bit.conf:6: key 'file': checklist: could not open file" in proc.stderr


def test_print_query_time_logs_once_per_batch(tmp_path):
    out, stderr = through_edgeship(tmp_path, ["File list.txt", "Print_Query_Time on",
                                              "Record f 1"], LINES)
    assert out[1] == '{"log":"bad.example.com","n":2,"f":"1"}'
    assert len(re.findall(r"query time \(sec\.ns\): \d+\.\d{9} : 2 of 5 records matched, "
                          r"the first 'bad.example.com'", stderr)) == 1, stderr


# ------------------------------------------------------------------------- in-process
def checklist(tmp_path, entries, *lines):
    (tmp_path / "list.txt").write_text(entries)
    return plugin(tmp_path, section("checklist", "File list.txt", *lines))


def test_nested_lookup_key_and_keys_that_are_not_strings(tmp_path):
    flt = checklist(tmp_path, "alice\n", "Lookup_Key $user['name']", "Record seen yes")
    out = run(flt, [{"user": {"name": "alice"}, 7: "x", "seen": "no"},
                    {"user": {"name": "bob"}, 7: "x"}, {"user": "alice"}, {"user": ["alice"]}])
    # As Fluent Bit 5.1.1 flagged them (captured): a subkey of a string is the string itself
    # (the record accessor's rule); as checklist.c re-encodes a match, it loses its keys that
    # are not strings.
    assert out == [{"user": {"name": "alice"}, "seen": "yes"}, {"user": {"name": "bob"}, 7: "x"},
                   {"user": "alice", "seen": "yes"}, {"user": ["alice"]}]


def test_a_record_key_given_twice_shows_its_last_value_last(tmp_path):
    flt = checklist(tmp_path, "x\n", "Record a 1", "Record b 2", "Record a 3")
    out = run(flt, [{"log": "x"}])
    assert list(out[0].items()) == [("log", "x"), ("b", "2"), ("a", "3")]


def test_large_lists_in_both_modes(tmp_path):
    entries = "".join("host-%d.example.com\n" % i for i in range(100000))
    exact = checklist(tmp_path, entries, "Record hit true")
    partial = plugin(tmp_path, section("checklist", "File list.txt", "Mode partial",
                                       "Record hit true"))
    values = ["host-99999.example.com", "host-5.example.com.evil", "host-100000.example.com",
              "other"]
    assert [r.get("hit") for r in run(exact, [{"log": v} for v in values])] == \
        [True, None, None, None]
    assert [r.get("hit") for r in run(partial, [{"log": v} for v in values])] == \
        [True, True, None, None]


def test_partial_wildcards_are_sqlite_like(tmp_path):
    # What Fluent Bit 5.1.1 flagged for these entries and values (captured from the binary).
    flt = checklist(tmp_path, "a_c\n50%\nx.y\n", "Mode partial", "Record hit true")
    values = ["abc", "a\u00e9c", "ac", "50", "50 percent", "x.y", "xzy", "ABC"]
    assert [r.get("hit") for r in run(flt, [{"log": v} for v in values])] == \
        [True, True, None, True, True, True, None, None]


@pytest.mark.parametrize("lines, words, key", [
    (["Lookup_Key $a[", "Record f 1"], "invalid lookup_key pattern", "lookup_key"),
    (["Lookup_Key $TAG", "Record f 1"], "invalid lookup_key pattern", "lookup_key"),
    (["Record lonely"], "property 'record' expects 2 values (only 1 were found)", "record"),
])
def test_config_errors(tmp_path, lines, words, key):
    with pytest.raises(ConfigError) as err:
        checklist(tmp_path, "x\n", *lines)
    assert words in str(err.value) and err.value.key == key
