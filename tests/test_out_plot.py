"""plot output: a real edgeship child writes GNU Plot data files; the lines are those Fluent
Bit 5.1.1 wrote for the same records and options (captured from the binary)."""
import pytest

from conftest import ROOT, Printed, wait_for
from edgeship.plugins.outputs.plot import plot_lines

pytestmark = pytest.mark.e2e

RECORD = ('{"a":"x","v":-7,"f":2.25,"u":18446744073709551615,"big":1e300,"b":true}')
# What Fluent Bit 5.1.1 wrote for RECORD at 1700000000.123456789, one output per Key.
BIG = ("1000000000000000052504760255204420248704468581108159154915854115511802457988908195786"
       "371375080447864043704443832883878176942523235360430575644792184786706982848387200926"
       "575803737830233794788090059368953234970799945081119038967640880074652742780142494579"
       "258788820056842838115669472196386865459400540160.000000")
FLUENT_BIT_LINES = {
    "v": "1700000000.123457 -7\n",
    "f": "1700000000.123457 2.250000\n",
    "u": "1700000000.123457 18446744073709551615\n",
    "big": "1700000000.123457 %s\n" % BIG,
}
# No Key, no File: the first value, into a file named as the tag (t2), at .999999999.
FLUENT_BIT_FIRST_VALUE = "1700000002.000000 3.500000\n"


def config(tmp_path):
    outputs = "".join("[OUTPUT]\n    Name plot\n    Match t1\n    Key %s\n    File %s.dat\n"
                      % (key, key) for key in list(FLUENT_BIT_LINES) + ["b", "nope"])
    path = tmp_path / "fluent-bit.conf"
    path.write_text(
        "[SERVICE]\n    Flush 0.3\n    Log_File %s\n"
        "[INPUT]\n    Name dummy\n    Tag t1\n    Dummy %s\n    Samples 1\n"
        "    Fixed_Timestamp on\n    Start_time_sec 1700000000\n"
        "    Start_time_nsec 123456789\n"
        "[INPUT]\n    Name dummy\n    Tag t2\n    Dummy {\"first\":3.5,\"v\":1}\n"
        "    Samples 1\n    Fixed_Timestamp on\n    Start_time_sec 1700000001\n"
        "    Start_time_nsec 999999999\n"
        "%s[OUTPUT]\n    Name plot\n    Match t2\n" % (tmp_path / "log", RECORD, outputs))
    return path


def test_lines_as_fluent_bit_writes_them(spawn, tmp_path):
    # the tag's file is in the working directory (PYTHONPATH: this checkout's edgeship)
    spawn(["-c", str(config(tmp_path))], cwd=str(tmp_path), env={"PYTHONPATH": ROOT})
    log = tmp_path / "log"
    wait_for(lambda: (tmp_path / "t2").exists() and log.exists()
             and "unmatched key 'nope'" in log.read_text()
             and "value must be integer, negative integer or float" in log.read_text(),
             timeout=30)
    wait_for(lambda: all((tmp_path / ("%s.dat" % key)).exists() for key in FLUENT_BIT_LINES))
    for key, line in FLUENT_BIT_LINES.items():
        assert (tmp_path / ("%s.dat" % key)).read_text() == line
    assert (tmp_path / "t2").read_text() == FLUENT_BIT_FIRST_VALUE
    assert not (tmp_path / "b.dat").exists() and not (tmp_path / "nope.dat").exists()


def test_a_record_without_the_key_leaves_the_rest_of_the_chunk_plotted():
    ns = 1000000000
    events = [(1 * ns, {"v": 1}), (2 * ns, {"w": 2}), (3 * ns, {"v": "x"}), (4 * ns, {"v": 4}),
              (5 * ns, {})]
    assert plot_lines(events, "v") == ("1.000000 1\n4.000000 4\n", 2, 1)
    assert plot_lines(events, None) == ("1.000000 1\n2.000000 2\n4.000000 4\n", 1, 1)


def test_a_file_that_cannot_be_opened_goes_to_stdout(spawn, tmp_path):
    path = tmp_path / "fluent-bit.conf"
    path.write_text("[SERVICE]\n    Flush 0.3\n    Log_File %s\n"
                    "[INPUT]\n    Name dummy\n    Dummy {\"n\":5}\n    Samples 1\n"
                    "    Fixed_Timestamp on\n    Start_time_sec 7\n    Start_time_nsec 0\n"
                    "[OUTPUT]\n    Name plot\n    Match *\n    File %s\n"
                    % (tmp_path / "log", tmp_path / "missing" / "x.dat"))
    child = spawn(["-c", str(path)])
    printed = Printed(child)
    wait_for(lambda: "7.000000 5" in printed.lines(), timeout=30)
    assert "switching to STDOUT" in (tmp_path / "log").read_text()
