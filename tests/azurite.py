"""Azurite, Microsoft's Azure Storage emulator (npm ``azurite``, installed by .ci/run into
``.azurite/``), as the real Azure Blob Storage of the azure_blob output's tests; and a
recording forwarder in front of it, so a test sees every request as it was sent (head
bytes, body) and the answer Azurite gave.

    azurite = Azurite(tmp_path).start()         # blob service on 127.0.0.1:<port>
    proxy = Recorder(azurite.port)              # proxy.port: what the output is pointed at
    azurite.blob("logs", "app.logs")            # a blob's content, read back over REST
    azurite.kill(); azurite.start()             # same port, same (in-memory: empty) store

Azurite checks SharedKey signatures as Azure documents them (its well-known account
``devstoreaccount1`` and key) and SAS tokens the same account key signed.
"""
import base64
import datetime
import hashlib
import hmac
import http.client
import os
import signal
import subprocess
import time
import urllib.parse

from conftest import accepts_connections, free_port
from http_receiver import Receiver

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AZURITE = os.environ.get("EDGESHIP_AZURITE") or os.path.join(
    ROOT, ".azurite", "node_modules", ".bin", "azurite-blob")
ACCOUNT = "devstoreaccount1"
KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
       "KBHBeksoGMGw==")
VERSION = "2019-12-12"
RELEASE = "3.35.0"   # the Azurite release .ci/run installs


class Azurite:
    def __init__(self, folder, port=None):
        self.folder = str(folder)
        self.port = port or free_port()
        self.proc = None

    def start(self):
        if not os.path.exists(AZURITE):
            raise RuntimeError("Azurite is not installed at %s: .ci/run installs it (npm "
                               "install --prefix .azurite azurite@%s)" % (AZURITE, RELEASE))
        os.makedirs(self.folder, exist_ok=True)
        self.log = open(os.path.join(self.folder, "azurite.log"), "ab")
        self.proc = subprocess.Popen(
            [AZURITE, "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
             "--inMemoryPersistence", "--disableTelemetry"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while not accepts_connections(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("azurite did not start: see %s/azurite.log" % self.folder)
            time.sleep(0.1)
        return self

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None
        if getattr(self, "log", None) is not None:
            self.log.close()
            self.log = None

    # ------------------------------------------------------------------ REST reads
    def request(self, method, path, query=(), body=b"", headers=()):
        """An independent SharedKey-signed request (Azure's documented string to sign,
        written here from the REST documentation): (status, body bytes)."""
        date = datetime.datetime.now(datetime.timezone.utc).strftime(
            "%a, %d %b %Y %H:%M:%S GMT")
        resource = "/%s/%s/%s" % (ACCOUNT, ACCOUNT, path)
        canon_query = "".join("\n%s:%s" % (k, v) for k, v in sorted(query))
        ms_headers = sorted([("x-ms-date", date), ("x-ms-version", VERSION)]
                            + [(k.lower(), v) for k, v in headers if k.lower().startswith(
                                "x-ms-")])
        to_sign = "\n".join([method, "", "", str(len(body)) if body else "", "", "", "",
                             "", "", "", "", ""]) + "\n"
        to_sign += "".join("%s:%s\n" % pair for pair in ms_headers)
        to_sign += resource + canon_query
        signature = base64.b64encode(hmac.new(base64.b64decode(KEY), to_sign.encode(),
                                              hashlib.sha256).digest()).decode()
        url = "/%s/%s" % (ACCOUNT, urllib.parse.quote(path))
        if query:
            url += "?" + urllib.parse.urlencode(list(query))
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, url, body=body or None, headers=dict(
                list(headers) + [("x-ms-date", date), ("x-ms-version", VERSION),
                                 ("Authorization", "SharedKey %s:%s" % (ACCOUNT,
                                                                        signature))]))
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            conn.close()

    def blob(self, container, name):
        """The content of a blob, None when there is none."""
        status, body = self.request("GET", "%s/%s" % (container, name))
        return body if status == 200 else None

    def blobs(self, container):
        """The names of the container's blobs (committed ones), [] when there is none."""
        status, body = self.request("GET", container, [("comp", "list"),
                                                       ("restype", "container")])
        if status != 200:
            return []
        text = body.decode("utf-8")
        return [part.split("</Name>", 1)[0] for part in text.split("<Name>")[1:]]

    def create_container(self, name):
        return self.request("PUT", name, [("restype", "container")])[0]

    def sas(self, container, permissions="racwl", services="b", resource_types="sco"):
        """An account SAS token for the blob service (Azure's documented account SAS
        string to sign, version 2019-12-12)."""
        start = "2020-01-01T00:00:00Z"
        expiry = "2099-01-01T00:00:00Z"
        to_sign = "\n".join([ACCOUNT, permissions, services, resource_types, start, expiry,
                             "", "http", VERSION, ""])
        signature = base64.b64encode(hmac.new(base64.b64decode(KEY), to_sign.encode(),
                                              hashlib.sha256).digest()).decode()
        return urllib.parse.urlencode([("sv", VERSION), ("ss", services),
                                       ("srt", resource_types), ("sp", permissions),
                                       ("st", start), ("se", expiry), ("spr", "http"),
                                       ("sig", signature)])


def _raw_response(answer):
    head = ["HTTP/1.1 %d %s" % (answer.status, answer.reason)]
    body = answer.read()
    for name, value in answer.getheaders():
        if name.lower() not in ("transfer-encoding", "content-length", "connection"):
            head.append("%s: %s" % (name, value))
    head.append("Content-Length: %d" % len(body))
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class Recorder(Receiver):
    """A Receiver that forwards each request to 127.0.0.1:``port`` (Azurite) as it came and
    answers what it answered (503 while it is down); ``statuses`` holds those answers'
    status codes, in order."""

    def __init__(self, port):
        self.upstream = port
        self.statuses = []
        super().__init__(self._forward)

    def _forward(self, request, index):
        headers = [(k, v) for k, v in request.headers if k.lower() != "connection"]
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=30)
        try:
            conn.putrequest(request.method, request.path, skip_host=True,
                            skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            conn.endheaders(request.body or None)
            answer = _raw_response(conn.getresponse())
        except OSError:
            answer = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
        finally:
            conn.close()
        self.statuses.append(int(answer.split(b" ", 2)[1]))
        return answer
