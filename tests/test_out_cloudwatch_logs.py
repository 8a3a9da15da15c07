"""cloudwatch_logs: records sent by edgeship (a real process, or the plugin built by the real
loader) to moto's CloudWatch Logs server, read back with GetLogEvents."""
import asyncio
import json
import time

from conftest import wait_for
from filter_helpers import load
from moto_aws import CREDENTIALS, REGION, moto  # noqa: F401  (the fixture)
from aws_oracle import aws_env
from edgeship.codecs import entries
from edgeship.engine.plugin import OK
from edgeship.plugins.outputs import cloudwatch_logs


def _config(tmp_path, moto, lines, output):
    (tmp_path / "in.log").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (tmp_path / "parsers.conf").write_text("[PARSER]\n    Name json\n    Format json\n")
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(
        "[SERVICE]\n    Flush 0.2\n    Log_File %s\n    Parsers_File parsers.conf\n"
        "    scheduler.base 1\n    scheduler.cap 1\n"
        "[INPUT]\n    Name tail\n    Path %s\n    Tag app.web\n    Read_From_Head on\n"
        "    Parser json\n"
        "[OUTPUT]\n    Name cloudwatch_logs\n    Match *\n    region %s\n    endpoint %s\n%s"
        % (tmp_path / "edgeship.log", tmp_path / "in.log", REGION, moto.url, output))
    return str(conf)


def _messages(logs, group, stream):
    try:
        return [e["message"] for e in logs.get_log_events(
            logGroupName=group, logStreamName=stream, startFromHead=True)["events"]]
    except logs.exceptions.ResourceNotFoundException:
        return []


def _log(tmp_path):
    path = tmp_path / "edgeship.log"
    return path.read_text() if path.exists() else ""


def test_records_land_in_the_group_and_stream_fluent_bit_chooses(spawn, tmp_path, moto):
    lines = [{"svc": "api", "log": "line one", "n": 1}, {"log": "no svc", "n": 2},
             {"svc": "api", "log": "quote \" and \u00e9", "nested": {"a": [1, 2.5]}}, {}]
    spawn(["-c", _config(tmp_path, moto, lines,
                         "    log_group_name fallback\n    log_group_template grp-$svc\n"
                         "    log_stream_prefix from-\n    auto_create_group on\n"
                         "    log_retention_days 7\n    log_group_class STANDARD\n")],
          env=aws_env(tmp_path, **CREDENTIALS))
    logs = moto.client("logs")
    got = wait_for(lambda: len(_messages(logs, "grp-api", "from-app.web")) == 2
                   and _messages(logs, "grp-api", "from-app.web"), timeout=30)
    assert got == ['{"svc":"api","log":"line one","n":1}',
                   '{"svc":"api","log":"quote \\" and \\u00e9","nested":{"a":[1,2.5]}}']
    assert json.loads(got[1])["log"] == "quote \" and \u00e9"
    fallback = wait_for(lambda: _messages(logs, "fallback", "from-app.web"), timeout=30)
    assert fallback == ['{"log":"no svc","n":2}']   # the empty record is not sent
    groups = {g["logGroupName"]: g for g in logs.describe_log_groups()["logGroups"]}
    assert groups["grp-api"]["retentionInDays"] == 7


def test_log_key_sends_the_value_alone(spawn, tmp_path, moto):
    lines = [{"log": "plain text line", "k": 1}, {"log": {"inner": True}}, {"other": 1}]
    logs = moto.client("logs")
    logs.create_log_group(logGroupName="g")
    spawn(["-c", _config(tmp_path, moto, lines, "    log_group_name g\n"
                                                "    log_stream_name s\n    log_key log\n")],
          env=aws_env(tmp_path, **CREDENTIALS))
    got = wait_for(lambda: len(_messages(logs, "g", "s")) == 2 and _messages(logs, "g", "s"),
                   timeout=30)
    assert got == ["plain text line", '{"inner":true}']
    wait_for(lambda: "could not find log_key 'log' in 1 record(s)" in _log(tmp_path))


def test_a_missing_group_is_retried_until_it_exists(spawn, tmp_path, moto):
    spawn(["-c", _config(tmp_path, moto, [{"n": 1}],
                         "    log_group_name later\n    log_stream_name s\n"
                         "    auto_create_group off\n    Retry_Limit no_limits\n")],
          env=aws_env(tmp_path, **CREDENTIALS))
    wait_for(lambda: "log group later not found and `auto_create_group` disabled"
             in _log(tmp_path), timeout=30)
    logs = moto.client("logs")
    logs.create_log_group(logGroupName="later")
    assert wait_for(lambda: _messages(logs, "later", "s"), timeout=30) == ['{"n":1}']


def test_an_invalid_parameter_is_an_error_logged_with_its_message(spawn, tmp_path, moto):
    spawn(["-c", _config(tmp_path, moto, [{"n": 1}],
                         "    log_group_name %s\n    log_stream_name s\n"
                         "    auto_create_group on\n    Retry_Limit no_limits\n" % ("g" * 513))],
          env=aws_env(tmp_path, **CREDENTIALS))
    line = wait_for(lambda: [l for l in _log(tmp_path).splitlines()
                             if "CreateLogGroup" in l and "error" in l], timeout=30)[0]
    assert "InvalidParameterException" in line and "512" in line
    assert "will not be retried" in line


def test_batches_keep_within_the_put_log_events_limits(tmp_path, moto, monkeypatch):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    engine = load(tmp_path, "", outputs="[OUTPUT]\n    Name cloudwatch_logs\n    Match *\n"
                  "    region %s\n    endpoint %s\n    log_group_name big\n"
                  "    log_stream_name s\n    auto_create_group on\n" % (REGION, moto.url))
    plugin = engine.outputs[0].plugin
    now_ns = int(time.time()) * 10 ** 9
    day_ns = 24 * 3600 * 10 ** 9
    # 12,000 small events over two days (out of order), and 3 of 400 KB
    events = [(now_ns - day_ns - (n % 2) * (day_ns // 2) - n * 10 ** 6, {"n": n})
              for n in range(12000)]
    events += [(now_ns - n * 10 ** 9, {"n": 12000 + n, "pad": "x" * 400000})
               for n in range(3)]
    payload, _ = entries.pack_entries(events)
    chunk = entries.Chunk("t", payload, len(events), 1)
    runs = plugin._batches(chunk)[("big", "s")]
    for run in runs:
        assert len(run) <= cloudwatch_logs.MAX_EVENTS
        assert sum(size + 26 for _, size, _ in run) <= cloudwatch_logs.MAX_BATCH_BYTES
        assert run[-1][0] - run[0][0] < 24 * 3600 * 1000
        assert [ms for ms, _, _ in run] == sorted(ms for ms, _, _ in run)
    assert sum(len(run) for run in runs) == len(events)
    assert asyncio.run(plugin.flush(chunk)) == OK
    logs = moto.client("logs")
    got, token = [], None
    while True:
        kwargs = {"nextToken": token} if token else {}
        answer = logs.get_log_events(logGroupName="big", logStreamName="s",
                                     startFromHead=True, **kwargs)
        got += answer["events"]
        if not answer["events"]:
            break
        token = answer["nextForwardToken"]
    assert sorted(json.loads(e["message"])["n"] for e in got) == list(range(12003))


def test_required_options_are_config_errors(tmp_path):
    from conftest import run_edgeship
    for output, key in (("    log_group_name g\n    log_stream_name s\n", "region"),
                        ("    region r\n    log_stream_name s\n", "log_group_name"),
                        ("    region r\n    log_group_name g\n", "log_stream_name"),
                        ("    region r\n    log_group_name g\n    log_stream_name s\n"
                         "    log_stream_prefix p\n", "log_stream_name"),
                        ("    region r\n    log_group_name g\n    log_stream_name s\n"
                         "    log_group_class COLD\n", "log_group_class")):
        conf = tmp_path / "fluent-bit.conf"
        conf.write_text("[INPUT]\n    Name dummy\n[OUTPUT]\n    Name cloudwatch_logs\n"
                        "    Match *\n" + output)
        done = run_edgeship(["-c", str(conf), "--dry-run"])
        assert done.returncode != 0 and "key '%s'" % key in done.stderr, done.stderr


