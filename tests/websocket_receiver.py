"""A WebSocket server for the websocket output's tests, on the ``websockets`` library's
protocol (its sans-IO ServerProtocol: the upgrade checks, frame parsing, UTF-8 checks of
text frames, the pong to every ping) over plain blocking sockets.

Run as a process (``python websocket_receiver.py PORT RECORDS``) so a test can SIGKILL it.
Every upgrade request and every data message is appended to RECORDS as one JSON line
(``{"request": head}`` / ``{"opcode": 1|2, "payload": base64}``) *before* what the protocol
answers is sent: a pong the client got means the messages before its ping are recorded.
"""
import base64
import json
import os
import socket
import sys
import threading

from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol


def record(fd, lock, entry):
    with lock:
        os.write(fd, (json.dumps(entry) + "\n").encode())


def serve(conn, fd, lock):
    protocol = ServerProtocol(max_size=None)
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                protocol.receive_eof()
            else:
                if protocol.state.name == "CONNECTING":
                    head = data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
                    record(fd, lock, {"request": head.decode("latin-1")})
                    # websockets before 16 (the one Python 3.9 gets) waits for a body after
                    # the upgrade's "Content-Length: 0" (Fluent Bit sends it): not given it.
                    data = data.replace(b"\r\nContent-Length: 0\r\n", b"\r\n", 1)
                protocol.receive_data(data)
            for event in protocol.events_received():
                if isinstance(event, Request):
                    protocol.send_response(protocol.accept(event))
                elif event.opcode in (Opcode.TEXT, Opcode.BINARY):
                    record(fd, lock, {"opcode": int(event.opcode),
                                      "payload": base64.b64encode(event.data).decode()})
            out = protocol.data_to_send()
            for chunk in out:
                if chunk:
                    conn.sendall(chunk)
            if not data or protocol.close_expected() and protocol.state.name == "CLOSED":
                return
    except OSError:
        return
    finally:
        conn.close()


def main(port, path):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    lock = threading.Lock()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(16)
    print("listening", flush=True)
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=serve, args=(conn, fd, lock), daemon=True).start()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
