"""A real InfluxDB 1.x (Debian's influxd) per test: free ports, its own directories, auth on
or off; queried over its HTTP API."""
import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request

from conftest import accepts_connections, free_port, wait_for

INFLUXD = shutil.which("influxd") or "/usr/bin/influxd"


class Influx:
    def __init__(self, folder, auth=False):
        self.folder = str(folder)
        os.makedirs(self.folder, exist_ok=True)
        self.port = free_port()
        self.auth = auth
        self.user = None
        conf = os.path.join(self.folder, "influxdb.conf")
        with open(conf, "w") as f:
            f.write('reporting-disabled = true\nbind-address = "127.0.0.1:%d"\n'
                    '[meta]\n  dir = "%s/meta"\n'
                    '[data]\n  dir = "%s/data"\n  wal-dir = "%s/wal"\n'
                    '  query-log-enabled = false\n'
                    '[http]\n  bind-address = "127.0.0.1:%d"\n  auth-enabled = %s\n'
                    '  log-enabled = false\n'
                    '[monitor]\n  store-enabled = false\n'
                    '[continuous_queries]\n  enabled = false\n'
                    % (free_port(), self.folder, self.folder, self.folder, self.port,
                       "true" if auth else "false"))
        self.log = open(os.path.join(self.folder, "influxd.log"), "w")
        self.proc = subprocess.Popen([INFLUXD, "-config", conf], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        wait_for(lambda: accepts_connections(self.port), timeout=30)
        if auth:        # the first user of an auth-enabled InfluxDB may be made without one
            self.query("CREATE USER admin WITH PASSWORD 'secret' WITH ALL PRIVILEGES")
            self.user = ("admin", "secret")

    def query(self, q, db=None):
        params = {"q": q}
        if db:
            params["db"] = db
        if self.user:
            params["u"], params["p"] = self.user
        url = "http://127.0.0.1:%d/query?%s" % (self.port, urllib.parse.urlencode(params))
        with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10) as r:
            return json.loads(r.read())

    def rows(self, q, db):
        """The rows of a SELECT as dicts (column -> value), [] when there are none."""
        result = self.query(q, db)["results"][0]
        rows = []
        for series in result.get("series", []):
            for values in series["values"]:
                row = dict(zip(series["columns"], values))
                row.update(series.get("tags") or {})
                rows.append(row)
        return rows

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
