"""A real Prometheus server (Debian's, 2.42) per test: free port, its own config and TSDB
directory, scraping the given targets (and itself with ``scrape_self``) every second, writing
what it scrapes to ``write_to`` (a remote write URL) when given; queried over its HTTP API."""
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request

from conftest import accepts_connections, free_port, wait_for

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


class Prometheus:
    def __init__(self, folder, targets=(), metrics_path="/metrics", remote_write=False,
                 scrape_self=False, write_to=None):
        self.folder = str(folder)
        os.makedirs(self.folder, exist_ok=True)
        self.port = free_port()
        conf = os.path.join(self.folder, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n")
            if targets:
                f.write("scrape_configs:\n  - job_name: edgeship\n    metrics_path: %s\n"
                        "    static_configs:\n      - targets: [%s]\n"
                        % (metrics_path, ", ".join('"%s"' % t for t in targets)))
            if scrape_self:
                f.write("%s  - job_name: prometheus\n    static_configs:\n"
                        "      - targets: [\"127.0.0.1:%d\"]\n"
                        % ("" if targets else "scrape_configs:\n", self.port))
            if write_to:
                f.write("remote_write:\n  - url: %s\n    queue_config:\n"
                        "      batch_send_deadline: 1s\n      min_backoff: 100ms\n"
                        "      max_backoff: 1s\n" % write_to)
        args = [PROMETHEUS, "--config.file=" + conf,
                "--storage.tsdb.path=" + os.path.join(self.folder, "data"),
                "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn"]
        if remote_write:
            args.append("--web.enable-remote-write-receiver")
        self.log = open(os.path.join(self.folder, "prometheus.log"), "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: accepts_connections(self.port), timeout=60)

    def query(self, promql):
        """The instant vector of ``promql``: [(labels dict, value float)]; [] while the
        server is still starting (it answers 503 until its TSDB is open)."""
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (
            self.port, urllib.parse.urlencode({"query": promql}))
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                data = json.loads(r.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 503:
                return []
            raise
        return [(item["metric"], float(item["value"][1])) for item in data["data"]["result"]]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
