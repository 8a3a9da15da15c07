"""Outside CI: edgeship's metrics chunks read by a real Fluent Bit. edgeship runs
node_exporter_metrics (the test suite's fake Pi tree) into its own prometheus_exporter and,
over forward, into Fluent Bit's in_forward -> prometheus_exporter; the two /metrics pages must
hold the same series.

    python tools/check_metrics_with_fluent_bit.py [--fluent-bit PATH]
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "tests", "data", "node_exporter", "fixture")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def page(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=2) as r:
            return r.read().decode()
    except OSError:
        return ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fluent-bit", default=shutil.which("fluent-bit"))
    args = parser.parse_args()
    if not args.fluent_bit:
        sys.exit("no fluent-bit binary: give --fluent-bit PATH")
    forward_port, fb_port, es_port = free_port(), free_port(), free_port()
    folder = tempfile.mkdtemp()
    procs = []
    try:
        procs.append(subprocess.Popen(
            [args.fluent_bit, "-q", "-i", "forward", "-p", "port=%d" % forward_port,
             "-o", "prometheus_exporter", "-p", "match=*", "-p", "port=%d" % fb_port,
             "-p", "host=127.0.0.1"], cwd=folder))
        conf = os.path.join(folder, "edgeship.conf")
        with open(conf, "w") as f:
            f.write("[SERVICE]\n    Flush 1\n    Log_Level warn\n"
                    "[INPUT]\n    Name node_exporter_metrics\n    Tag node\n"
                    "    Scrape_Interval 1\n"
                    "    metrics cpu,cpufreq,meminfo,diskstats,loadavg,netdev,thermal_zone,"
                    "stat,vmstat\n    path.procfs %s/proc\n    path.sysfs %s/sys\n"
                    "[OUTPUT]\n    Name forward\n    Match *\n    Port %d\n"
                    "[OUTPUT]\n    Name prometheus_exporter\n    Match *\n    Host 127.0.0.1\n"
                    "    Port %d\n" % (FIXTURE, FIXTURE, forward_port, es_port))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", forward_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        procs.append(subprocess.Popen([sys.executable, "-m", "edgeship", "-c", conf],
                                      cwd=ROOT))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (page(fb_port) and page(es_port)):
            time.sleep(0.5)
        theirs, ours = page(fb_port), page(es_port)
        if not theirs or theirs != ours:
            sys.stdout.write("DIFFERENT\n--- Fluent Bit\n%s\n--- edgeship\n%s\n" % (theirs, ours))
            return 1
        print("same series: %d lines, %d families" % (
            len(ours.splitlines()), ours.count("# TYPE ")))
        return 0
    finally:
        for proc in reversed(procs):   # edgeship first: it must not retry into a stopped peer
            proc.terminate()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
