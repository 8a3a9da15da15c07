"""Host metrics at rest: node_exporter_metrics every 5 s + fluentbit_metrics ->
prometheus_exporter, scraped every 5 s as Prometheus would, for a minute (after a 10 s
warm-up). Prints the CPU it used as a share of one core, its peak RSS and the RSS at the end;
with --fluent-bit (or fluent-bit on PATH) the same config under Fluent Bit in the same run.

    python tools/bench/bench_metrics.py [--seconds 60] [--fluent-bit PATH]
"""
import argparse
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.bench.common import (EDGESHIP, Measured, fluent_bit, free_port,  # noqa: E402
                                peak_rss_mb, workdir)

CONFIG = """[SERVICE]
    Flush 1
    Log_Level warn
[INPUT]
    Name node_exporter_metrics
    Tag node
    Scrape_Interval 5
    metrics cpu,cpufreq,meminfo,diskstats,filesystem,loadavg,netdev,thermal_zone,uname,time,stat,vmstat
[INPUT]
    Name fluentbit_metrics
    Tag internal
    Scrape_Interval 5
[OUTPUT]
    Name prometheus_exporter
    Match *
    Host 127.0.0.1
    Port %d
"""


def _rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def measure(command, folder, port, seconds):
    child = Measured(command, cwd=folder)
    time.sleep(10)                       # start-up and the first scrapes are not "at rest"
    child.window()
    peak = 0.0
    pages = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
            pages += bool(r.read())
        peak = peak_rss_mb(child.pid, peak)
        time.sleep(5)
    rss_now = _rss_mb(child.pid)
    cpu, peak = child.finish()
    return cpu / seconds * 100, peak, rss_now, pages


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--fluent-bit", default=None)
    args = parser.parse_args()
    print("| process | CPU (% of one core) | peak RSS | RSS at the end | pages scraped |")
    print("|---|---|---|---|---|")
    with workdir() as folder:
        runs = [("edgeship", EDGESHIP)]
        binary = fluent_bit(args.fluent_bit)
        if binary:
            runs.append(("Fluent Bit 5.1.1", [binary]))
        for name, base in runs:
            port = free_port()
            conf = os.path.join(folder, "%s.conf" % name.split()[0])
            with open(conf, "w") as f:
                f.write(CONFIG % port)
            cpu, peak, rss, pages = measure(base + ["-c", conf], folder, port, args.seconds)
            print("| %s | %.2f%% | %.1f MB | %.1f MB | %d |" % (name, cpu, peak, rss, pages))


if __name__ == "__main__":
    main()
