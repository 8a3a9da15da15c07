"""Issue 17 codecs: the JSON and msgpack libraries on the benchmark's records, one process.

    python tools/bench/bench_codecs.py [--records 100000]

Each figure is the best of 5 passes over the records (the garbage collector off, as the engine
runs), in microseconds per record: decoding the JSON lines (orjson, msgspec untyped and with
the plain-record type edgeship's json parser uses), packing chunk entries (a msgpack Packer
call per part of each entry, as before; msgspec's one call per batch, as now), rendering JSON
(orjson, msgspec, and edgeship's Fluent Bit rendering) and unpacking entries (msgpack,
msgspec). What each line costs in edgeship is in the README's Performance table.

arm64, emulated (ratios only): unpack aarch64 wheels of msgspec, orjson and msgpack into a
folder and run ``PYTHONPATH=folder:. qemu-aarch64-static -L ROOTFS ROOTFS/usr/bin/python3
tools/bench/bench_codecs.py`` with an arm64 root file system (tools/rootfs.sh makes one).
"""
import argparse
import gc
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.bench.common import generate_lines  # noqa: E402


def best(func, passes=5):
    fastest = None
    for _ in range(passes):
        start = time.perf_counter()
        func()
        took = time.perf_counter() - start
        fastest = took if fastest is None else min(fastest, took)
    return fastest


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100000)
    count = ap.parse_args().records
    import msgpack
    import msgspec
    import orjson

    from edgeship.codecs import entries, formats, untrusted
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "movies.log")
        generate_lines(path, count)
        with open(path) as f:
            lines = f.read().split("\n")[:-1]
    gc.disable()
    records = [orjson.loads(line) for line in lines]
    now = time.time_ns()
    events = [(now, record) for record in records]
    payload, _ = entries.pack_entries(events)
    head = entries.array_header(count)
    untyped = msgspec.json.Decoder().decode
    unpack_msgspec = msgspec.msgpack.Decoder().decode
    saved = entries._encode

    def packer_per_entry():
        entries._encode = None
        try:
            entries.pack_entries(events)
        finally:
            entries._encode = saved

    rows = (
        ("JSON decode", "orjson.loads, one call a line", lambda: [orjson.loads(x) for x in lines]),
        ("JSON decode", "msgspec, untyped", lambda: [untyped(x) for x in lines]),
        ("JSON decode", "msgspec, plain-record type (json parser)",
         lambda: untrusted.loads_plain_objects(lines)),
        ("entries pack", "msgpack Packer, a call per entry part", packer_per_entry),
        ("entries pack", "msgspec, one call a batch (Raw heads)",
         lambda: entries.pack_entries(events)),
        ("JSON render", "orjson.dumps of the batch", lambda: orjson.dumps(records)),
        ("JSON render", "msgspec.json.encode of the batch", lambda: msgspec.json.encode(records)),
        ("JSON render", "Fluent Bit's json_lines (formats.render_json)",
         lambda: formats.render_json(events, "json_lines")),
        ("entries unpack", "msgpack.unpackb", lambda: entries.unpack_entries(payload, count)),
        ("entries unpack", "msgspec.msgpack (no EventTime hook)",
         lambda: unpack_msgspec(head + payload)),
    )
    print("| job | library | us per record |\n|---|---|---|")
    for job, name, func in rows:
        print("| %s | %s | %.3f |" % (job, name, best(func) * 1e6 / count))


if __name__ == "__main__":
    main()
