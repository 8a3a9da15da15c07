"""The cmetrics codec against what Fluent Bit 5.1.1 sent and served (tests/data/cmetrics)."""
import os

import msgpack
import pytest

from edgeship.codecs import cmetrics as cm

DATA = os.path.join(os.path.dirname(__file__), "data", "cmetrics")


def _read(name, mode="rb"):
    with open(os.path.join(DATA, name), mode) as f:
        return f.read()


SCRAPE = _read("scrape_context.msgpack")
SCRAPE_TS = cm.decode(SCRAPE)[0]["metrics"][0]["values"][0]["ts"]


def _scrape_context():
    """The scraped exposition built with the codec as an input would build it."""
    ctx = cm.Context()
    requests = ctx.counter("demo", "requests", "total", "Total requests.", ["method", "code"])
    requests.set(1027, ["get", "200"], SCRAPE_TS)
    requests.set(3, ["post", "500"], SCRAPE_TS)
    # Built out of Fluent Bit's order on purpose: a context packs by type.
    ctx.family(cm.HISTOGRAM, "demo", "latency", "seconds", "Request latency.",
               bounds=[0.1, 0.5]).set_histogram([2, 5, 6], 2.25, 6, ts=SCRAPE_TS)
    ctx.gauge("demo", "", "temperature", "Current temperature.").set(21.5, ts=SCRAPE_TS)
    ctx.family(cm.SUMMARY, "demo", "rpc", "seconds", "RPC durations.",
               bounds=[0.5, 0.9]).set_summary([0.05, 0.2], 12.5, 100, ts=SCRAPE_TS)
    ctx.untyped("demo", "", "untyped", " ", ["x"]).set(7, ["1"], SCRAPE_TS)
    return ctx


def test_a_built_context_packs_to_fluent_bits_bytes():
    assert _scrape_context().encode() == SCRAPE


def test_decoded_contexts_pack_back_to_the_same_bytes():
    for name in ("scrape_context.msgpack", "node_cpu_meminfo_context.msgpack"):
        data = _read(name)
        (context,) = cm.decode(data)
        assert msgpack.packb(context, use_bin_type=True) == data


def test_series_hash_is_xxh3_of_the_name_and_label_values():
    checked = 0
    for name in ("scrape_context.msgpack", "node_cpu_meminfo_context.msgpack"):
        for family in cm.decode(_read(name))[0]["metrics"]:
            for series in family["values"]:
                expected = (cm._series_hash(cm.fqname(family["meta"]["opts"]), series["labels"])
                            if "labels" in series else 0)
                assert series["hash"] == expected
                checked += 1
    assert checked > 20


def test_the_static_series_comes_first_and_resetting_keeps_the_place():
    ctx = cm.Context()
    family = ctx.gauge("app", "", "queue", "Queue length.", ["name"])
    family.set(1, ["a"], 10)
    family.set(2, (), 10)
    family.set(3, ["a"], 20)
    values = family.map["values"]
    assert [v.get("labels") for v in values] == [None, ["a"]]
    assert values[1] == {"ts": 20, "value": 3.0, "labels": ["a"], "hash": values[1]["hash"]}


def test_an_empty_context_encodes_to_nothing():
    ctx = cm.Context()
    ctx.counter("app", "", "errors_total", "Errors.")
    assert ctx.encode() is None


def test_prometheus_text_is_the_exporters():
    (context,) = cm.decode(SCRAPE)
    cm.add_static_labels(context, [("env", "prod")])
    expected = _read("scrape_addlabel_env_prod_timestamp.prom", "r")
    # The exporter's scrape was a later one: only its timestamp differs.
    expected = expected.replace(expected.split()[-1], str(SCRAPE_TS // 1000000))
    assert cm.render_prometheus([context], add_timestamp=True) == expected


def test_influx_lines_are_the_influxdb_outputs():
    expected = _read("scrape.influx", "r")
    expected = expected.replace(expected.split()[-1], str(SCRAPE_TS))
    assert cm.render_influx(cm.decode(SCRAPE)) == expected


def test_text_lines_are_the_stdout_outputs():
    lines = cm.render_text(cm.decode(SCRAPE)).splitlines()
    assert lines[0] == ('2026-11-24T08:53:19.129041893Z demo_requests_total'
                        '{method="get",code="200"} = 1027')
    assert lines[3].endswith("demo_rpc_seconds = { quantiles = { 0.5=0.05, 0.9=0.2 }, "
                             "sum=12.5, count=100 }")
    assert lines[-1].endswith('demo_untyped{x="1"} = 7')


def test_bounds_are_written_as_the_text_exporter_writes_them():
    assert [cm._bound(b) for b in (0.1, 1.0, 5, 0.25, 1e-9, 0.1 + 0.2)] == \
        ["0.1", "1.0", "5.0", "0.25", "1e-09", "0.30000000000000004"]


def _with(context, change):
    context = msgpack.unpackb(msgpack.packb(context))
    change(context)
    return msgpack.packb(context)


@pytest.mark.parametrize("change,message", [
    (lambda c: c["metrics"][0]["meta"].update(ver=3), "version"),
    (lambda c: c["metrics"][0]["values"][0].update(extra=1), "unexpected key"),
    (lambda c: c["meta"].update(other={}), "unexpected key"),
    (lambda c: c["metrics"][0]["values"][0].update(value=1027), "not a double"),
    (lambda c: c["metrics"][0]["meta"].update(type=9), "unknown"),
    (lambda c: c["metrics"][0]["meta"]["opts"].update(name="a\0b"), "not a string"),
    (lambda c: c["metrics"][0]["meta"].update(aggregation_type=7), "aggregation"),
])
def test_the_decoder_refuses_what_cmetrics_refuses(change, message):
    (context,) = cm.decode(SCRAPE)
    with pytest.raises(cm.MetricsError, match=message):
        cm.decode(_with(context, change))


def test_cut_or_garbage_bytes_are_an_error_not_a_crash():
    for data in (SCRAPE[:500], b"\xc1", b"", b"\x93\x01\x02\x03"):
        with pytest.raises(cm.MetricsError):
            cm.decode(data)


def test_first_only_reads_one_context_of_several():
    assert len(cm.decode(SCRAPE + SCRAPE)) == 2
    assert len(cm.decode(SCRAPE + SCRAPE, first_only=True)) == 1
