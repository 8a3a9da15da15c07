"""stdout filter: Fluent Bit's print format, records passed on unchanged (real process)."""
from filter_helpers import run_config, section


def test_prints_each_record(tmp_path):
    proc = run_config(tmp_path, "[SERVICE]\n    Flush 0.2\n"
                      "[INPUT]\n    Name stdin\n    Tag in\n"
                      + section("stdout", match="in")
                      + "[OUTPUT]\n    Name null\n    Match *\n",
                      input='{"a":1}\n{"b":"x","f":1.5,"n":null}\n')
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    assert len(lines) == 2
    assert lines[0].startswith("[0] in: [") and lines[0].endswith(', {}, {"a"=>1}]')
    assert lines[1].endswith(', {}, {"b"=>"x", "f"=>1.500000, "n"=>nil}]')
