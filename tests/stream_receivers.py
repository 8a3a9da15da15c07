"""Receivers on loopback for the tcp, syslog and gelf output tests: a TCP server that records
every byte per connection (and can close connections or go away and come back on the same
port), a UDP socket that records every datagram, and the vector runner that plays a Fluent
Bit 5.1.1 capture's config through edgeship."""
import glob
import json
import os
import re
import socket
import threading

from conftest import SHARED, free_port, wait_for

VECTORS = os.path.join(SHARED, "reference", "vectors")


def vector_names(prefix):
    """Every Fluent Bit vector whose name starts with ``prefix``."""
    return sorted(os.path.basename(p)[:-5]
                  for p in glob.glob(os.path.join(VECTORS, prefix + "*.json")))


def load_vector(name):
    with open(os.path.join(VECTORS, name + ".json")) as f:
        return json.load(f)


class TcpCapture:
    """A TCP listener on 127.0.0.1; ``connections`` holds a bytearray per accepted
    connection, in order. ``stop()`` closes the listener and every connection (the port
    refuses from then on), ``start()`` listens again on the same port."""

    def __init__(self, port=None, ssl_ctx=None):
        self.port = port or free_port()
        self.ssl_ctx = ssl_ctx
        self.connections = []
        self.lock = threading.Lock()
        self.reading = threading.Event()    # cleared: the receiver stops reading (slow peer)
        self.reading.set()
        self.listener = None
        self.open_socks = []
        self.start()

    def start(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener):
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            if self.ssl_ctx is not None:
                try:
                    sock = self.ssl_ctx.wrap_socket(sock, server_side=True)
                except OSError:
                    sock.close()
                    continue
            with self.lock:
                data = bytearray()
                self.connections.append(data)
                self.open_socks.append(sock)
            threading.Thread(target=self._read, args=(sock, data), daemon=True).start()

    def _read(self, sock, data):
        while True:
            self.reading.wait()
            try:
                got = sock.recv(65536)
            except OSError:
                return
            if not got:
                sock.close()
                return
            with self.lock:
                data.extend(got)

    def data(self):
        with self.lock:
            return b"".join(bytes(c) for c in self.connections)

    def close_connections(self):
        """Close every open connection (the peer sees FIN); keep listening."""
        with self.lock:
            socks, self.open_socks = self.open_socks, []
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def stop(self):
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() of its thread
        except OSError:
            pass
        self.listener.close()
        self.close_connections()


class UdpCapture:
    """A UDP socket on 127.0.0.1 recording each datagram."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Room for a burst: UDP drops what does not fit, which is no output's fault.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.datagrams = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:    # shut down (no output sends an empty datagram)
                return
            self.datagrams.append(data)

    def stop(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)     # wakes the recv() of its thread
        except OSError:
            pass
        self.sock.close()


def vector_config(tmp_path, vec, port, **replace):
    """Write the vector's config (its output pointed at ``port``, Flush shortened, other keys
    replaced by ``replace``), its input lines and its parsers file into ``tmp_path``; returns
    the config's path."""
    (tmp_path / "records.jsonl").write_text("\n".join(vec["input_file_lines"]) + "\n")
    (tmp_path / "parsers.conf").write_text(vec["parsers_conf"])
    text = re.sub(r"(?m)^(\s*Port\s+)\d+", lambda m: m.group(1) + str(port),
                  vec["fluent_bit_config"])
    text = re.sub(r"(?m)^(\s*Flush\s+)\S+", r"\g<1>0.2", text)
    text = text.replace("records.jsonl", str(tmp_path / "records.jsonl"))
    text = text.replace("parsers.conf", str(tmp_path / "parsers.conf"))
    for key, value in replace.items():
        text = re.sub(r"(?m)^(\s*%s\s+)\S.*$" % re.escape(key), lambda m: m.group(1) + value,
                      text)
    path = tmp_path / "fluent-bit.conf"
    path.write_text(text)
    return str(path)


def expected_stream(vec):
    """Every byte Fluent Bit sent over TCP in the vector, all connections joined."""
    return b"".join(bytes.fromhex(c["hex"]) for c in vec["tcp_connections"])


def expected_datagrams(vec):
    return [bytes.fromhex(d["hex"]) for d in vec["udp_datagrams"]]


def run_tcp_vector(tmp_path, spawn, name, done=None, **replace):
    """(expected bytes, bytes edgeship sent) for a TCP vector, once ``done(data)`` (default:
    as many bytes as Fluent Bit sent arrived)."""
    vec = load_vector(name)
    capture = TcpCapture()
    try:
        spawn(["-c", vector_config(tmp_path, vec, capture.port, **replace)])
        want = expected_stream(vec)
        done = done or (lambda data: len(data) >= len(want))
        wait_for(lambda: done(capture.data()))
        return want, capture.data()
    finally:
        capture.stop()


def run_udp_vector(tmp_path, spawn, name, done=None, **replace):
    """(expected datagrams, datagrams edgeship sent) for a UDP vector, once
    ``done(datagrams)`` (default: as many as Fluent Bit sent arrived)."""
    vec = load_vector(name)
    capture = UdpCapture()
    try:
        spawn(["-c", vector_config(tmp_path, vec, capture.port, **replace)])
        want = expected_datagrams(vec)
        done = done or (lambda got: len(got) >= len(want))
        wait_for(lambda: done(list(capture.datagrams)))
        return want, list(capture.datagrams)
    finally:
        capture.stop()
