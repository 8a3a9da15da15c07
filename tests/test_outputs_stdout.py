"""stdout output, run as a real edgeship child process (stdin input, so each run ends on its
own once everything was printed)."""
import json

import pytest

from conftest import run_edgeship, run_edgeship_into_a_closed_pipe

LINES = ('[1711360801, {"k":"v","f":1.5,"b":true,"n":null}]\n'
         '[1711360802.25, {"s":"\\u00e9 \\"q\\"","l":[1,"a"],"m":{"x":{}}}]\n'
         '[1711360803, {}]\n')


def stdout_of(*props):
    args = ["-i", "stdin", "-t", "app", "-o", "stdout", "-m", "*"]
    for prop in props:
        args += ["-p", prop]
    result = run_edgeship(args, input=LINES)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.e2e
def test_default_format_is_fluent_bits_msgpack_print():
    # Under Python 3.9 (.ci/run) this printed nothing while the engine made its asyncio
    # events before the loop ran ("attached to a different loop").
    assert stdout_of() == (
        '[0] app: [[1711360801.000000000, {}], {"k"=>"v", "f"=>1.500000, "b"=>true, '
        '"n"=>nil}]\n'
        '[1] app: [[1711360802.250000000, {}], {"s"=>"é "q"", "l"=>[1, "a"], '
        '"m"=>{"x"=>{}}}]\n'
        '[2] app: [[1711360803.000000000, {}], {}]\n')


def test_json_formats_with_the_date_first():
    first = '{"date":1711360801.0,"k":"v","f":1.5,"b":true,"n":null}'
    second = '{"date":1711360802.25,"s":"\\u00e9 \\"q\\"","l":[1,"a"],"m":{"x":{}}}'
    third = '{"date":1711360803.0}'
    assert stdout_of("format=json") == "[%s,%s,%s]\n" % (first, second, third)
    assert stdout_of("format=json_lines") == "%s\n%s\n%s\n" % (first, second, third)
    assert stdout_of("format=json_stream") == "%s%s%s\n" % (first, second, third)


def test_json_date_key_and_format():
    out = stdout_of("format=json_lines", "json_date_key=false").splitlines()
    assert out[0] == '{"k":"v","f":1.5,"b":true,"n":null}'
    expected = {"epoch": "1711360802", "epoch_ms": "1711360802250",
                "iso8601": '"2024-03-25T10:00:02.250000Z"',
                "java_sql_timestamp": '"2024-03-25 10:00:02.250000"', "double": "1711360802.25"}
    for name, text in expected.items():
        out = stdout_of("format=json_lines", "json_date_key=@t", "json_date_format=" + name)
        assert out.splitlines()[1].startswith('{"@t":%s,"s":' % text), name


def test_bad_format_or_date_format_is_a_config_error():
    for prop in ("format=yaml", "json_date_format=rfc3339"):
        result = run_edgeship(["-i", "dummy", "-o", "stdout", "-p", prop, "--dry-run"])
        assert result.returncode == 1, prop
        assert prop.split("=")[1] in result.stderr


@pytest.mark.e2e
def test_a_closed_stdout_is_reported_once_and_the_process_carries_on(tmp_path):
    # Fluent Bit ignores SIGPIPE and write errors and goes on. Here too, with one error per
    # plugin that prints (not one per chunk), while the other outputs get every record.
    lines = "".join('[1711360801, {"n":%d}]\n' % n for n in range(3000))
    proc = run_edgeship_into_a_closed_pipe(
        ["-f", "0.1", "-i", "stdin", "-t", "app", "-p", "buffer_size=16000",
         "-F", "stdout", "-m", "*", "-o", "stdout", "-m", "*", "-o", "counter", "-m", "*",
         "-o", "file", "-m", "*", "-p", "path=%s" % tmp_path, "-p", "format=plain"],
        input=lines)
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "app") as f:
        assert [json.loads(line)["n"] for line in f] == list(range(3000))
    closed = [line for line in proc.stderr.splitlines() if "stdout is closed" in line]
    assert len(closed) == 3, proc.stderr
    assert "[stdout.0]" in closed[0] and "Traceback" not in proc.stderr \
        and "Exception ignored" not in proc.stderr and "dropped" not in proc.stderr
