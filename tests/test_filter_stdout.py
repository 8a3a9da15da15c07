"""stdout filter: Fluent Bit's print format, records passed on unchanged (real process)."""
from conftest import run_edgeship
from filter_helpers import section


def test_prints_each_record(tmp_path):
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[SERVICE]\n    Flush 0.2\n"
                    "[INPUT]\n    Name stdin\n    Tag in\n"
                    + section("stdout", match="in")
                    + "[OUTPUT]\n    Name null\n    Match *\n")
    proc = run_edgeship(["-c", str(conf)], input='{"a":1}\n{"b":"x","f":1.5,"n":null}\n',
                        timeout=30)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    assert len(lines) == 2
    assert lines[0].startswith("[0] in: [") and lines[0].endswith(', {}, {"a"=>1}]')
    assert lines[1].endswith(', {}, {"b"=>"x", "f"=>1.500000, "n"=>nil}]')
