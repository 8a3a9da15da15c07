"""A real nginx per test, unprivileged (master_process off: no user switch), on a free
loopback port with its own prefix: TLS with the test CA's certificate, basic auth, keep-alive,
proxying to a recording Receiver (tests/http_receiver.py). Its access log names the
connection and the request number on it, and the authenticated user. ``locations`` adds
server-level config before ``location /`` (the stub_status page of the nginx_metrics tests);
without a backend, ``/`` answers 200 ``ok``. ``stop()`` then ``start()`` brings it back on the
same port.

    server = Nginx(tmp_path, backend_port, users={"alice": "pw"}, tls=True).start()
    server.log_lines()    # [(connection, request number, user, status, uri), ...]
    Nginx(tmp_path, locations="location = /status { stub_status; }").start()
"""
import base64
import hashlib
import os
import shutil
import signal
import subprocess

from conftest import accepts_connections, free_port, wait_for
from mosquitto import Certs

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class Nginx:
    def __init__(self, folder, backend_port=None, users=None, tls=False, locations=""):
        self.folder = os.path.join(str(folder), "nginx")
        os.makedirs(os.path.join(self.folder, "logs"), exist_ok=True)
        self.port = free_port()
        self.certs = Certs(os.path.join(self.folder, "certs")) if tls else None
        self.access_log = os.path.join(self.folder, "logs", "access.log")
        auth = ""
        if users:
            passwd = os.path.join(self.folder, "htpasswd")
            with open(passwd, "w") as f:
                for user, password in users.items():
                    digest = base64.b64encode(hashlib.sha1(password.encode()).digest())
                    f.write("%s:{SHA}%s\n" % (user, digest.decode()))
            auth = 'auth_basic "edgeship"; auth_basic_user_file %s;' % passwd
        listen = "listen 127.0.0.1:%d%s;" % (self.port, " ssl" if tls else "")
        if tls:
            listen += " ssl_certificate %s; ssl_certificate_key %s;" % (
                self.certs.server_crt, self.certs.server_key)
        config = """
daemon off; master_process off; pid %(dir)s/nginx.pid;
error_log %(dir)s/logs/error.log warn;
events { worker_connections 64; }
http {
  log_format probe '$connection $connection_requests $remote_user $status $request_uri';
  access_log %(log)s probe;
  client_body_temp_path %(dir)s/body; proxy_temp_path %(dir)s/proxy;
  fastcgi_temp_path %(dir)s/fastcgi; uwsgi_temp_path %(dir)s/uwsgi;
  scgi_temp_path %(dir)s/scgi;
  keepalive_timeout 60s;
  client_max_body_size 64m;
  %(upstream)s
  server {
    %(listen)s
    %(auth)s
    %(locations)s
    location / { %(root)s }
  }
}
""" % {"dir": self.folder, "log": self.access_log, "listen": listen, "auth": auth,
       "locations": locations,
       "upstream": "upstream receiver { server 127.0.0.1:%d; keepalive 4; }" % backend_port
                   if backend_port else "",
       "root": 'proxy_pass http://receiver; proxy_http_version 1.1; '
               'proxy_set_header Connection "";' if backend_port else 'return 200 "ok\\n";'}
        self.config = os.path.join(self.folder, "nginx.conf")
        with open(self.config, "w") as f:
            f.write(config)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([NGINX, "-p", self.folder, "-c", self.config],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(lambda: accepts_connections(self.port) or self.proc.poll() is not None)
        if self.proc.poll() is not None:
            raise RuntimeError("nginx did not start: %s" % self.proc.stderr.read().decode())
        return self

    def log_lines(self):
        if not os.path.exists(self.access_log):
            return []
        with open(self.access_log) as f:
            return [tuple(line.split()) for line in f if line.strip()]

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
