"""multiline filter: parser mode (regex, docker, cri, custom parsers) with and without the
emitter buffer, partial_message mode, the flush timer, the flush at stop, config errors, and
runs through the CLI. Expected records are those Fluent Bit 5.1.1 printed for the same
inputs (see the module docstring for the deliberate differences)."""
import asyncio
import json

import pytest

from edgeship.core.errors import ConfigError
from filter_helpers import T0, capture, captured, emit, load, run_config, section

TRACEBACK = [
    "2024-05-01 10:00:00 INFO starting worker",
    "Traceback (most recent call last):",
    '  File "/app/worker.py", line 12, in <module>',
    "    main()",
    '  File "/app/worker.py", line 8, in main',
    '    raise ValueError("bad value")',
    "ValueError: bad value",
    "2024-05-01 10:00:01 INFO worker restarted",
]
JOINED = "\n".join(TRACEBACK[1:7])


def docker_line(log, stream="stdout", tenth=0):
    return json.dumps({"log": log, "stream": stream,
                       "time": "2024-05-01T10:00:00.%d00000000Z" % tenth},
                      separators=(",", ":"))


DOCKER = [docker_line("single line\n", tenth=1),
          docker_line("first part of a 16K line, ", tenth=2),
          docker_line("err: alone\n", "stderr", tenth=3),
          docker_line("second part, ", tenth=4),
          docker_line("last part\n", tenth=5)]
CRI = ["2024-05-01T10:00:00.100000000+00:00 stdout F single line",
       "2024-05-01T10:00:00.200000000+00:00 stdout P first part, ",
       "2024-05-01T10:00:00.250000000+00:00 stderr F err: alone",
       "2024-05-01T10:00:00.300000000+00:00 stdout P second part, ",
       "2024-05-01T10:00:00.400000000+00:00 stdout F last part"]
T_2024 = 1714557600 * 10 ** 9


def ml(*lines):
    return section("multiline", *lines, match="app")


def in_loop(fn):
    """Run ``fn`` on a running loop (the filter's timer needs one), then the loop's pending
    callbacks."""
    async def main():
        return fn()
    return asyncio.run(main())


def feed(engine, batches, tag="app"):
    """Each batch (a list of records) as one input batch; returns what reached the end."""
    for batch in batches:
        emit(engine, tag, [(T0 + i, r) for i, r in enumerate(batch)])
    return captured(engine)["*"]


def logs(rows, key="log"):
    return [event[1][key] for _, event in rows]


def test_python_traceback_joined_across_batches_and_reemitted(tmp_path):
    engine = load(tmp_path, ml("multiline.key_content log", "multiline.parser python")
                  + capture(tmp_path, "*"))

    def go():
        # One record per batch, as forward delivers them: buffer on joins across batches.
        whole = logs(feed(engine, [[{"log": line}] for line in TRACEBACK]))
        # An unfinished traceback waits for a continuation until the flush timer or the stop.
        feed(engine, [[{"log": line}] for line in TRACEBACK[1:6]])
        waiting = logs(captured(engine)["*"])
        engine.filters[0].plugin.stop()
        return whole, waiting, logs(captured(engine)["*"])

    whole, waiting, after_stop = in_loop(go)
    # Fluent Bit emits the closing line a second time, alone, before the next record.
    assert whole == [TRACEBACK[0], JOINED, TRACEBACK[6], TRACEBACK[7]]
    assert waiting == whole
    assert after_stop == whole + ["\n".join(TRACEBACK[1:6])]
    assert [tag for tag, _ in captured(engine)["*"]] == ["app"] * 5


def test_joined_record_keeps_the_first_records_keys_and_time(tmp_path):
    engine = load(tmp_path, ml("multiline.key_content message", "multiline.parser python")
                  + capture(tmp_path, "*"))

    def go():
        emit(engine, "app", [(T0 + i, {"level": "error", "message": line})
                             for i, line in enumerate(TRACEBACK)])
        engine.filters[0].plugin.stop()

    in_loop(go)
    assert [(t, r) for _, (t, r) in captured(engine)["*"]] == [
        (T0, {"level": "error", "message": TRACEBACK[0]}),
        (T0 + 1, {"level": "error", "message": JOINED}),
        (T0 + 6, {"level": "error", "message": TRACEBACK[6]}),
        (T0 + 7, {"level": "error", "message": TRACEBACK[7]})]


def test_buffer_off_joins_within_a_batch_only(tmp_path):
    flt = load(tmp_path, ml("multiline.key_content log", "multiline.parser python",
                            "buffer off")).filters[0].plugin
    one_batch = flt.filter("app", [(T0 + i, {"log": l}) for i, l in enumerate(TRACEBACK)])
    assert [r["log"] for _, r in one_batch] == [TRACEBACK[0], JOINED, TRACEBACK[6],
                                                TRACEBACK[7]]
    # One record per batch: every batch is flushed at its end, nothing is joined.
    singles = [flt.filter("app", [(T0, {"log": line})]) for line in TRACEBACK[:3]]
    assert [[r["log"] for _, r in batch] for batch in singles] == [[l] for l in TRACEBACK[:3]]


def test_no_key_content_for_a_regex_parser_passes_records_unchanged(tmp_path):
    flt = load(tmp_path, ml("multiline.parser python", "buffer off")).filters[0].plugin
    events = [(T0 + i, {"log": l}) for i, l in enumerate(TRACEBACK)]
    assert flt.filter("app", list(events)) == events


def test_docker_raw_lines_are_parsed_and_joined_per_stream(tmp_path):
    flt = load(tmp_path, ml("multiline.parser docker", "buffer off")).filters[0].plugin
    out = flt.filter("app", [(T0 + i, {"log": line}) for i, line in enumerate(DOCKER)])
    # The stderr line inside the split stdout message comes out first (Fluent Bit's order).
    assert out == [
        (T_2024 + 100000000, {"log": "single line\n", "stream": "stdout",
                              "time": "2024-05-01T10:00:00.100000000Z"}),
        (T_2024 + 300000000, {"log": "err: alone\n", "stream": "stderr",
                              "time": "2024-05-01T10:00:00.300000000Z"}),
        (T_2024 + 200000000, {"log": "first part of a 16K line, second part, last part\n",
                              "stream": "stdout", "time": "2024-05-01T10:00:00.200000000Z"})]


def test_docker_records_already_decoded_pass_unchanged(tmp_path):
    flt = load(tmp_path, ml("multiline.parser docker", "buffer off")).filters[0].plugin
    events = [(T0 + i, json.loads(line)) for i, line in enumerate(DOCKER)]
    assert flt.filter("app", list(events)) == events


def test_cri_raw_lines_keep_the_first_parts_keys(tmp_path):
    flt = load(tmp_path, ml("multiline.parser cri", "buffer off")).filters[0].plugin
    out = flt.filter("app", [(T0 + i, {"log": line}) for i, line in enumerate(CRI)])
    assert [r for _, r in out] == [
        {"time": "2024-05-01T10:00:00.100000000+00:00", "stream": "stdout", "_p": "F",
         "log": "single line"},
        {"time": "2024-05-01T10:00:00.250000000+00:00", "stream": "stderr", "_p": "F",
         "log": "err: alone"},
        {"time": "2024-05-01T10:00:00.200000000+00:00", "stream": "stdout", "_p": "P",
         "log": "first part, second part, last part"}]
    assert out[2][0] == T_2024 + 200000000


def test_custom_parser_and_a_list_of_parsers(tmp_path):
    parsers = ('[MULTILINE_PARSER]\n    Name first_line\n    Type regex\n'
               '    Rule "start_state" "/^\\d{4}-\\d{2}-\\d{2} /" "cont"\n'
               '    Rule "cont" "/^\\s+/" "cont"\n')
    flt = load(tmp_path, ml("multiline.key_content log", "multiline.parser java, first_line",
                            "buffer off"), parsers=parsers).filters[0].plugin
    lines = ["2024-05-01 10:00:00 first", "  cont 1", "  cont 2",
             "no indent, not a start", "2024-05-01 10:00:02 third"]
    out = flt.filter("app", [(T0 + i, {"log": l}) for i, l in enumerate(lines)])
    assert [r["log"] for _, r in out] == ["2024-05-01 10:00:00 first\n  cont 1\n  cont 2",
                                          "no indent, not a start",
                                          "2024-05-01 10:00:02 third"]


def test_filters_before_see_reemitted_records_again(tmp_path):
    engine = load(tmp_path, section("record_modifier", "Record seen_by_rm yes", match="*")
                  + ml("multiline.key_content log", "multiline.parser python")
                  + section("record_modifier", "Record after_ml yes", match="*")
                  + capture(tmp_path, "*"))

    def go():
        emit(engine, "app", [(T0 + i, {"log": l}) for i, l in enumerate(TRACEBACK)])
        engine.filters[1].plugin.stop()

    in_loop(go)
    rows = captured(engine)["*"]
    assert [r for _, (_, r) in rows][1] == {"log": JOINED, "seen_by_rm": "yes",
                                            "after_ml": "yes"}
    assert len(rows) == 4


def test_flush_timer_hands_on_an_open_group(tmp_path):
    engine = load(tmp_path, ml("multiline.key_content log", "multiline.parser python",
                               "flush_ms 500") + capture(tmp_path, "*"))

    async def go():
        emit(engine, "app", [(T0 + i, {"log": l}) for i, l in enumerate(TRACEBACK[1:6])])
        rows = captured(engine)["*"]
        assert rows == []
        for _ in range(100):
            if rows:
                break
            await asyncio.sleep(0.05)
        engine.filters[0].plugin.stop()
        return rows

    rows = asyncio.run(go())
    assert logs(rows) == ["\n".join(TRACEBACK[1:6])]


def partial(log, pid=None, ordinal=None, last=None):
    record = {"container_id": "4f3c2b1a0e9d", "source": "stdout", "log": log}
    if pid is not None:
        record.update({"partial_message": "true", "partial_id": pid,
                       "partial_ordinal": str(ordinal),
                       "partial_last": "true" if last else "false"})
    return record


PARTIAL = [partial("whole line"), partial("part one ", "p1", 1), partial("other A ", "p2", 1),
           partial("part two ", "p1", 2), partial("part three", "p1", 3, True),
           partial("other B", "p2", 2, True), partial("dangling", "p3", 1),
           partial("another whole line")]


def test_partial_messages_completed_in_place_and_dangling_ones_by_the_timer(tmp_path):
    engine = load(tmp_path, ml("mode partial_message", "multiline.key_content log",
                               "flush_ms 200") + capture(tmp_path, "*"))

    async def go():
        emit(engine, "app", [(T0 + i, r) for i, r in enumerate(PARTIAL)])
        rows = captured(engine)["*"]
        in_place = list(rows)
        for _ in range(100):
            if len(rows) > len(in_place):
                break
            await asyncio.sleep(0.05)
        engine.filters[0].plugin.stop()
        return in_place, rows

    in_place, rows = asyncio.run(go())
    base = {"container_id": "4f3c2b1a0e9d", "source": "stdout"}
    assert [(t, r) for _, (t, r) in in_place] == [
        (T0, dict(base, log="whole line")),
        (T0 + 1, dict(base, log="part one part two part three")),
        (T0 + 2, dict(base, log="other A other B")),
        (T0 + 7, dict(base, log="another whole line"))]
    assert rows[4:] == [("app", (T0 + 6, dict(base, log="dangling")))]


def test_partial_record_without_partial_id_passes_with_a_warning(tmp_path):
    flt = load(tmp_path, ml("mode partial_message", "multiline.key_content log")
               ).filters[0].plugin
    logged = []
    flt.log.warn = lambda fmt, *args: logged.append(fmt % args)
    record = {"log": "x", "partial_message": "TRUE"}
    assert flt.filter("app", [(T0, record)]) == [(T0, record)]
    assert "Could not find partial_id" in logged[0]


@pytest.mark.parametrize("lines,words", [
    (["multiline.key_content log"], "requires at least one 'multiline.parser'"),
    (["multiline.parser nope"], "parser 'nope' not registered"),
    (["multiline.parser python", "mode foo"], "expected one of parser, partial_message"),
    (["multiline.parser python", "flush_ms 400"], "flush timeout '400' is too low"),
    (["mode partial_message"], "requires 'multiline.key_content'"),
    (["mode partial_message", "multiline.key_content log", "buffer off"],
     "requires 'Buffer' to be 'On'"),
    (["multiline.parser python", "emitter_storage.type bogus"], "expected one of memory"),
])
def test_config_errors(tmp_path, lines, words):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, ml(*lines))
    assert words in str(err.value)


def _tail_config(tmp_path, lines, filter_lines, parser=None):
    log = tmp_path / "app.log"
    log.write_text("".join(line + "\n" for line in lines))
    (tmp_path / "parsers.conf").write_text("[PARSER]\n    Name json\n    Format json\n")
    return ("[SERVICE]\n    Flush 0.2\n    Grace 2\n    Parsers_File parsers.conf\n"
            "[INPUT]\n    Name tail\n    Path %s\n    Tag app\n    Read_From_Head on\n"
            "    Exit_On_Eof on\n%s"
            "%s"
            "[OUTPUT]\n    Name stdout\n    Match *\n    Format json_lines\n"
            % (log, "    Parser %s\n" % parser if parser else "", ml(*filter_lines)))


@pytest.mark.e2e
def test_cli_tail_python_traceback_pending_at_eof_is_delivered(tmp_path):
    proc = run_config(tmp_path, _tail_config(
        tmp_path, TRACEBACK[:7], ["multiline.key_content log", "multiline.parser python"]))
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    # The closing line's second copy waits as an open group: flushed at the stop.
    assert [r["log"] for r in records] == [TRACEBACK[0], JOINED, TRACEBACK[6]]
    assert "created emitter: emitter_for_multiline.0" in proc.stderr


@pytest.mark.e2e
def test_cli_tail_partial_messages(tmp_path):
    proc = run_config(tmp_path, _tail_config(
        tmp_path, [json.dumps(r) for r in PARTIAL],
        ["mode partial_message", "multiline.key_content log"], parser="json"))
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["log"] for r in records] == ["whole line", "part one part two part three",
                                           "other A other B", "another whole line",
                                           "dangling"]
    assert all(not any(k.startswith("partial_") for k in r) for r in records)


@pytest.mark.e2e
def test_cli_service_multiline_buffer_limit_cuts_the_joined_record(tmp_path):
    text = _tail_config(tmp_path, TRACEBACK, ["multiline.key_content log",
                                              "multiline.parser python"])
    text = text.replace("[SERVICE]\n", "[SERVICE]\n    multiline_buffer_limit 100\n", 1)
    proc = run_config(tmp_path, text)
    assert proc.returncode == 0, proc.stderr
    # Cut at 100 characters; the rest of that traceback passes line by line (Fluent Bit's).
    assert [json.loads(line)["log"] for line in proc.stdout.splitlines()] == [
        TRACEBACK[0], JOINED[:100], TRACEBACK[5], TRACEBACK[6], TRACEBACK[7]]
    assert "multiline message truncated due to buffer limit" in proc.stderr
