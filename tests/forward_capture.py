"""A forward server for tests: keeps every frame (and the raw bytes), acks each chunk id."""
import socket
import threading

import msgpack

from conftest import free_port


class Capture:
    """A forward server that keeps every frame and acks each chunk id."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.frames = []
        self.raw = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(8)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            conn, _ = self.sock.accept()
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        unpacker = msgpack.Unpacker(raw=False)
        while True:
            data = conn.recv(65536)
            if not data:
                return
            self.raw.append(data)
            unpacker.feed(data)
            for frame in unpacker:
                self.frames.append(frame)
                chunk = frame[-1].get("chunk") if isinstance(frame[-1], dict) else None
                if chunk:
                    conn.sendall(msgpack.packb({"ack": chunk}))
