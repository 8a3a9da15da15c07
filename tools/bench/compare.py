"""Issue 17: edgeship beside Fluent Bit 5.1.1, the same rows in the same run.

    python tools/bench/compare.py [--lines 1000000] [--runs 3] [--fluent-bit PATH]
                                  [--only file|forward|mqtt]

Rows (N JSON lines of the movie log, see common.py):

file     tail + json parser -> file (Format plain)
forward  tail + json -> forward -> in_forward -> file (Format msgpack): two processes
mqtt     tail + json -> mqtt json_lines QoS 1, one message per chunk, to Mosquitto (edgeship
         only: Fluent Bit has no MQTT output)

Each run times from the (sender's) start until the output file holds N records (counted as
it grows) or the subscriber has them all; the processes are then killed. CPU per event is
user + system time of every process of the pipeline (both in the forward row, shown as the
sum; the broker's in the mqtt row), peak RSS each one's VmHWM (sender / receiver). Runs
alternate edgeship and Fluent Bit; each figure is the median of ``--runs`` runs, and the ratio
edgeship / Fluent Bit follows each row. Fluent Bit is the ``fluent-bit`` on PATH or
``--fluent-bit``; without one, only edgeship's rows are printed. CI does not run this: the
figures belong in the README's Performance table, with the command.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.bench import bench_forward, bench_mqtt  # noqa: E402
from tools.bench.common import (EDGESHIP, Measured, fluent_bit, free_port,  # noqa: E402
                                generate_lines, tail_args, workdir, write_parsers)


def _until_written(lines, out, fmt, processes, start):
    written = bench_forward.Written(out, fmt)
    deadline = time.monotonic() + 600
    while written.poll() < lines and time.monotonic() < deadline:
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    measured = [p.finish() for p in processes]
    if written.count < lines:
        raise SystemExit("only %d of %d records were written to %s" % (written.count, lines, out))
    return elapsed, tuple(m[0] for m in measured), tuple(m[1] for m in measured)


def file_run(ours, binary, lines, log, parsers, folder):
    """tail + json -> file plain: (seconds, (CPU s,), (peak MB,))."""
    out = os.path.join(folder, "out.jsonl")
    if os.path.exists(out):
        os.unlink(out)
    if ours:
        args = EDGESHIP + ["-f", "0.2"] + tail_args(log, parsers, exit_on_eof=False)
    else:
        args = [binary, "-q", "-f", "0.2", "-R", parsers, "-i", "tail", "-p", "path=" + log,
                "-p", "read_from_head=on", "-p", "parser=json", "-t", "movies"]
    args += ["-o", "file", "-m", "*", "-p", "path=" + folder, "-p", "file=out.jsonl",
             "-p", "format=plain"]
    start = time.perf_counter()
    return _until_written(lines, out, "plain", [Measured(args)], start)


def forward_run(ours, binary, lines, log, parsers, folder):
    """tail + json -> forward -> in_forward -> file msgpack: two processes."""
    port = free_port()
    out = os.path.join(folder, "out")
    if os.path.exists(out):
        os.unlink(out)
    if ours:
        source = tail_args(log, parsers, exit_on_eof=False, tag="bench")
        receiver = bench_forward.edgeship_receiver(port, folder, "msgpack")
        sender = bench_forward.edgeship_sender(source, port, [])
    else:
        receiver = bench_forward.fluent_bit_receiver(binary, port, folder, "msgpack")
        sender = bench_forward.fluent_bit_sender(binary, log, parsers, port, [])
    rx = Measured(receiver)
    if not bench_forward._listening(port, time.monotonic() + 10):
        rx.finish()
        raise SystemExit("the receiver did not start")
    rx.window()
    start = time.perf_counter()
    tx = Measured(sender)
    return _until_written(lines, out, "msgpack", [tx, rx], start)


def mqtt_run(ours, binary, lines, log, parsers, folder):
    """tail + json -> mqtt json_lines QoS 1 -> Mosquitto; CPU: edgeship's + the broker's."""
    broker = bench_mqtt.Broker(os.path.join(folder, "broker-%d" % time.monotonic_ns()),
                               extra=bench_mqtt.BROKER_TUNING).start()
    counter = bench_mqtt.Counter(broker.port, "json_lines", 1)
    counter.target = lines
    args = EDGESHIP + ["-f", "0.2"] + tail_args(log, parsers, exit_on_eof=False) + [
        "-o", "mqtt", "-m", "*", "-p", "port=%d" % broker.port, "-p", "topic=bench/$TAG",
        "-p", "qos=1", "-p", "format=json_lines", "-p", "retry_limit=no_limits"]
    broker_before = bench_mqtt.cpu_seconds(broker.proc.pid)
    start = time.perf_counter()
    child = Measured(args)
    finished = counter.done.wait(300)
    elapsed = time.perf_counter() - start
    broker_cpu = bench_mqtt.cpu_seconds(broker.proc.pid) - broker_before
    cpu, rss = child.finish()
    counter.close()
    broker.kill()
    if not finished:
        raise SystemExit("only %d of %d records arrived" % (counter.records, lines))
    return elapsed, (cpu, broker_cpu), (rss,)


ROWS = (
    ("file", "tail + json -> file (plain)", file_run, True),
    ("forward", "tail + json -> forward -> in_forward -> file", forward_run, True),
    ("mqtt", "tail + json -> mqtt json_lines QoS 1 batched", mqtt_run, False),
)


def _median_figures(lines, runs):
    """(events/s, CPU us per event, its parts, peak MB per process) of the median runs."""
    rate = statistics.median(lines / seconds for seconds, _, _ in runs)
    cpu = statistics.median(sum(parts) * 1e6 / lines for _, parts, _ in runs)
    parts = [statistics.median(p[i] * 1e6 / lines for _, p, _ in runs)
             for i in range(len(runs[0][1]))]
    rss = [statistics.median(r[i] for _, _, r in runs) for i in range(len(runs[0][2]))]
    return rate, cpu, parts, rss


def _print(name, who, figures):
    rate, cpu, parts, rss = figures
    split = " (%s)" % " + ".join("%.2f" % p for p in parts) if len(parts) > 1 else ""
    print("| %s | %s | %s | %.2f us%s | %s MB |" % (
        name, who, format(int(rate), ","), cpu, split, " / ".join("%.1f" % r for r in rss)))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1000000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fluent-bit", help="Fluent Bit binary (default: fluent-bit on PATH)")
    ap.add_argument("--only", choices=[r[0] for r in ROWS])
    args = ap.parse_args()
    binary = fluent_bit(args.fluent_bit)
    with workdir("edgeship-compare-") as folder:
        log = os.path.join(folder, "movies.log")
        parsers = write_parsers(folder)
        generate_lines(log, args.lines)
        print("%d lines, medians of %d runs, edgeship and Fluent Bit alternating (%s)"
              % (args.lines, args.runs, binary or "no Fluent Bit found"))
        print("| row | | events/s | CPU per event | peak RSS |\n|---|---|---|---|---|")
        for key, name, run, has_fluent_bit in ROWS:
            if args.only and args.only != key:
                continue
            compare = binary is not None and has_fluent_bit
            ours, theirs = [], []
            for _ in range(args.runs):
                ours.append(run(True, binary, args.lines, log, parsers, folder))
                if compare:
                    theirs.append(run(False, binary, args.lines, log, parsers, folder))
            mine = _median_figures(args.lines, ours)
            _print(name, "edgeship", mine)
            if compare:
                other = _median_figures(args.lines, theirs)
                _print(name, "Fluent Bit", other)
                print("| %s | edgeship / Fluent Bit | %.2fx | %.2fx | %s |" % (
                    name, mine[0] / other[0], mine[1] / other[1],
                    " / ".join("%.2fx" % (a / b) for a, b in zip(mine[3], other[3]))))


if __name__ == "__main__":
    main()
