"""A real Mosquitto broker per test: free port, temporary config, optional password file,
TLS certificates and websocket listener; stopped (or SIGKILLed) at the end.

    broker = Broker(tmp_path).start()           # plain 127.0.0.1:<port>
    broker = Broker(tmp_path, users={"bob": "pw"}).start()
    broker = Broker(tmp_path, tls=True).start() # broker.certs: ca/server/client files
    broker.kill(); broker.start()               # same port, same config

    broker = pytest.fixture(running_broker, name="broker")   # in a test module
"""
import os
import pwd
import shutil
import signal
import ssl
import subprocess
import time

from conftest import accepts_connections, free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


class Certs:
    """A test CA, a server certificate for 127.0.0.1/localhost and a client certificate,
    made with the openssl CLI."""

    def __init__(self, folder):
        os.makedirs(folder, exist_ok=True)
        self.folder = folder
        self.ca = os.path.join(folder, "ca.crt")
        self.server_crt = os.path.join(folder, "server.crt")
        self.server_key = os.path.join(folder, "server.key")
        self.client_crt = os.path.join(folder, "client.crt")
        self.client_key = os.path.join(folder, "client.key")
        ext = os.path.join(folder, "san.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        # keyUsage: Python 3.13's default client context (VERIFY_X509_STRICT) refuses a CA
        # without it.
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=edgeship test CA",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
        for name, cn in (("server", "localhost"), ("client", "edgeship client")):
            _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
                     "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=folder)
            _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                     "-CAcreateserial", "-days", "2", "-out", name + ".crt",
                     "-extfile", "san.ext", cwd=folder)

    def server_context(self):
        """A server-side SSLContext presenting the server certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_crt, self.server_key)
        return context


class Broker:
    def __init__(self, folder, users=None, tls=False, require_certificate=False,
                 websockets=False, extra=""):
        self.folder = str(folder)
        os.makedirs(self.folder, exist_ok=True)
        self.port = free_port()
        self.ws_port = free_port() if websockets else None
        self.proc = None
        self.certs = Certs(os.path.join(self.folder, "certs")) if tls else None
        # Run as ourselves: as root, mosquitto would switch to its own user, which cannot
        # read the test's private temporary files.
        lines = ["user %s" % pwd.getpwuid(os.getuid()).pw_name,
                 "per_listener_settings false",
                 "persistence false" if "persistence true" not in extra else "",
                 "log_dest file %s" % os.path.join(self.folder, "mosquitto.log"),
                 "log_type all" if os.environ.get("MOSQUITTO_DEBUG") else "log_type error",
                 "listener %d 127.0.0.1" % self.port]
        if self.certs is not None:
            lines += ["cafile %s" % self.certs.ca, "certfile %s" % self.certs.server_crt,
                      "keyfile %s" % self.certs.server_key]
            if require_certificate:
                lines.append("require_certificate true")
        if self.ws_port:
            lines += ["listener %d 127.0.0.1" % self.ws_port, "protocol websockets"]
        if users:
            passwd = os.path.join(self.folder, "passwd")
            open(passwd, "w").close()
            for user, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", passwd, user, password], check=True,
                               capture_output=True)
            lines += ["allow_anonymous false", "password_file %s" % passwd]
        else:
            lines.append("allow_anonymous true")
        lines.append(extra)
        self.config = os.path.join(self.folder, "mosquitto-%d.conf" % self.port)
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.config], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited: %s" % self.proc.stderr.read().decode())
            if accepts_connections(self.port):
                return self
            time.sleep(0.02)
        raise RuntimeError("mosquitto did not start listening on %d" % self.port)

    def kill(self):
        """SIGKILL: the broker dies without closing anything cleanly."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    stop = kill


def running_broker(tmp_path):
    """Fixture body: a plain broker for one test, SIGKILLed after it."""
    broker = Broker(tmp_path / "broker").start()
    yield broker
    broker.kill()


class Subscriber:
    """An independent paho client (its own network thread) that records every message of
    ``topic``: the check that what edgeship published really reached the broker."""

    def __init__(self, broker, topic="#", qos=1, username=None, password=None, **tls):
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages = []
        self._ready = False
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="test-subscriber")
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls:
            self.client.tls_set(**tls)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos)
        self.client.on_subscribe = lambda *a: setattr(self, "_ready", True)
        self.client.on_message = lambda c, u, m: self.messages.append(m)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        deadline = time.monotonic() + 10
        while not self._ready and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self._ready, "test subscriber could not subscribe"

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()
