"""Debian's rsyslog as a syslog receiver for the tests: rsyslogd in the foreground (-n) with its
own config, work directory and pid file, imtcp (octet-counted and newline-framed messages
alike) and imudp on free loopback ports, each message written to a file as
``pri|timestamp|hostname|app|procid|msgid|structured-data|msg``."""
import os
import shutil
import signal
import subprocess
import time

from conftest import accepts_connections, free_port

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
FIELDS = ("pri", "time", "hostname", "app", "procid", "msgid", "sd", "msg")

CONFIG = """\
global(workDirectory="{folder}")
module(load="imtcp")
module(load="imudp")
input(type="imtcp" port="{tcp_port}" address="127.0.0.1" ruleset="edgeship"
      supportOctetCountedFraming="on")
input(type="imudp" port="{udp_port}" address="127.0.0.1" ruleset="edgeship")
template(name="fields" type="string"
         string="%pri%|%timereported:::date-rfc3339%|%hostname%|%app-name%|%procid%|%msgid%|%structured-data%|%msg%\\n")
ruleset(name="edgeship") {{
  action(type="omfile" file="{output}" template="fields")
}}
"""


class Rsyslog:
    def __init__(self, folder):
        self.folder = str(folder)
        os.makedirs(self.folder, exist_ok=True)
        self.tcp_port = free_port()
        self.udp_port = free_port()
        self.output = os.path.join(self.folder, "messages.log")
        self.config = os.path.join(self.folder, "rsyslog.conf")
        with open(self.config, "w") as f:
            f.write(CONFIG.format(folder=self.folder, tcp_port=self.tcp_port,
                                  udp_port=self.udp_port, output=self.output))
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", self.config, "-i", os.path.join(self.folder, "rsyslogd.pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("rsyslogd exited: %s" % self.proc.stderr.read().decode())
            if accepts_connections(self.tcp_port):
                return self
            time.sleep(0.02)
        raise RuntimeError("rsyslogd did not listen on %d" % self.tcp_port)

    def messages(self):
        """Every message written so far, as a dict of FIELDS."""
        try:
            with open(self.output, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        return [dict(zip(FIELDS, line.split("|", len(FIELDS) - 1))) for line in lines]

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
