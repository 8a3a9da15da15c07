"""The agent's MQTT connection, driven from the main loop and never blocking it: DNS (udp.py),
TCP connect, TLS handshake, CONNECT/CONNACK, publishing and reading each move a step per loop
turn against a deadline, so a dead network, a silent broker or a stuck handshake cannot stop
the sampling (the old agent's blocking connect stopped it 5 s per attempt).

Dead links, as mqtt_as detects them but sooner: the broker must answer within half the
keepalive period. A PINGREQ goes out after half a period without a byte from the broker; no
PINGRESP (or no PUBACK for the oldest reading in flight, or no progress writing) half a period
later drops the connection. A link that went silent is thus noticed within one keepalive
period (mqtt_as takes more than one; the requirement is 1.5). Readings stay in the ring until
their PUBACK and are sent again, with DUP, after a reconnect; reconnects back off with jitter.

The session is clean (nothing is kept at the broker: the ring is the state). The will is the
retained ``offline`` status; ``online`` is published, retained, on every connect.
TLS (the context comes from startup.py): the handshake runs on the non-blocking socket, so it
too moves a step per turn. User name and password go only over TLS unless ``allow_insecure``.
"""
import errno
import select
import socket
import time

from micropython import const

from board import address, is_ip, log, ms_since
from edgeship.core.backoff import retry_wait
from edgeship.core.mqtt_client import ClientSession
from edgeship.core.mqtt_codec import (CONNACK, CONNECT, DISCONNECT, PINGREQ, PINGRESP, PUBACK,
                                      PUBLISH)

_DOWN = const(0)
_RESOLVING = const(1)
_CONNECTING = const(2)
UP = 3
_ENTRY = const(6)   # a reading in flight: packet id, slot, offset, end, page number, sent at
# "try again": EINPROGRESS while connecting; 118/119 are what ESP32 sockets say (mqtt_as)
_BUSY = (errno.EAGAIN, errno.EINPROGRESS, 118, 119)


def _call(method, arg):
    """``method(arg)`` on a non-blocking socket: None when it would block."""
    try:
        return method(arg)
    except OSError as exc:
        if exc.args and exc.args[0] in _BUSY:
            return None
        raise


class Link:
    def __init__(self, conf, board, ring):
        self.conf, self.board, self.ring = conf, board, ring
        self.topic = conf["topic"].encode()
        self.state = _DOWN
        self.sock = self.session = self.query = self.addr = self.pending = self.ping_at = None
        self.ibuf = bytearray(64)
        self.flight = [0] * (_ENTRY * conf["max_inflight"])   # a FIFO, oldest first
        self.first = self.count = 0
        self.connects = self.lost = self.failures = self.acked = 0
        self.retry_at = self.since = self.last_rx = self.stalled = time.ticks_ms()
        self.reply_ms = conf["keepalive"] * 500
        self.poller = select.poll()

    # ------------------------------------------------------------------ state machine
    def step(self, online):
        """One turn: start, advance or keep the connection; ``online``: WiFi is up."""
        if not online:
            if self.state != _DOWN:
                self.drop("WiFi down")
            return
        try:
            if self.state == _RESOLVING or (self.state == _DOWN and ms_since(self.retry_at) >= 0):
                self._dial()
            elif self.state != _DOWN:
                self._io()
        except (OSError, ValueError) as exc:   # ValueError: a TLS certificate refused
            self.drop(exc)

    def _dial(self):
        """Find the broker's address (a name: ask DNS, then poll the answer on the next turns;
        if DNS fails, the last address found), then connect, queueing the CONNECT."""
        conf = self.conf
        ip = conf["host"]
        if self.state == _DOWN:
            self.since = time.ticks_ms()
            if not is_ip(ip):
                import udp   # only for a host name
                self.query = udp.lookup(ip, self.board.dns(), self.reply_ms)
                self.state = _RESOLVING
                return
        else:
            try:
                ip = self.query.poll()
            except OSError as exc:
                if self.addr is None:
                    raise
                log("DNS failed (%s), trying the last address" % exc)
                ip = ""   # self.addr stands
            if ip is None:
                return
            self.query = None
        if ip:
            self.addr = address(ip, conf["port"])
        sock = socket.socket()
        sock.setblocking(False)
        try:
            _call(sock.connect, self.addr)
        except OSError:
            sock.close()
            raise
        if conf["tls"]:
            sock = conf["tls_context"].wrap_socket(
                sock, server_hostname=conf["server_hostname"] or conf["host"],
                do_handshake_on_connect=False)
        self.sock = sock
        self.poller.register(sock, select.POLLIN)
        self.session = ClientSession()
        self.pending = self.ping_at = None
        self.count = 0
        self.state = _CONNECTING
        self.since = self.last_rx = time.ticks_ms()
        self.send(self.session.send((CONNECT, conf["client_id"], conf["keepalive"], True,
                                     conf["username"], conf["password"],
                                     (conf["status_topic"], b"offline", 1, True))))

    def _io(self):
        now = time.ticks_ms()
        self.send(None)
        while True:
            n = _call(self.sock.readinto, self.ibuf)
            if n is None:
                break
            if not n:
                raise OSError("the broker closed the connection")
            self.last_rx = now
            result = self.session.receive(memoryview(self.ibuf)[:n])
            for kind, value in result.events:
                if kind == PUBACK:
                    self._acked(value)
                elif kind == PINGRESP:
                    self.ping_at = None
                elif kind == CONNACK and not value:
                    self.state = UP
                    self.connects += 1
                    self.failures = 0
                    self.ring.rewind()
                    log("connected to %s:%d (connect #%d)" % (self.conf["host"],
                                                              self.conf["port"], self.connects))
                    self.publish(self.conf["status_topic"], b"online", True)
            if result.close is not None:
                raise OSError(result.close)
            if n < len(self.ibuf):
                break
        reply_ms = self.reply_ms
        if self.state == _CONNECTING:
            if ms_since(self.since) > self.conf["connect_timeout_s"] * 1000:
                raise OSError("no CONNACK within %s s" % self.conf["connect_timeout_s"])
            return
        self._publish(now)
        if self.count and time.ticks_diff(now, self.flight[self.first + 5]) > reply_ms:
            raise OSError("dead link: no PUBACK within %d ms" % reply_ms)
        if self.ping_at is not None:
            if time.ticks_diff(now, self.ping_at) > reply_ms:
                raise OSError("dead link: no PINGRESP within %d ms" % reply_ms)
        elif time.ticks_diff(now, self.last_rx) >= reply_ms and \
                self.send(self.session.send((PINGREQ,))):
            self.ping_at = now
        if self.pending and time.ticks_diff(now, self.stalled) > reply_ms:
            raise OSError("dead link: nothing written for %d ms" % reply_ms)

    # ------------------------------------------------------------------ bytes out
    def send(self, data):
        """Write what is pending, then ``data`` (None: nothing new); what the socket does not
        take now stays pending. False when ``data`` cannot go yet (something is pending)."""
        if self.pending:
            n = _call(self.sock.write, self.pending)
            if n:
                self.pending = self.pending[n:]
                self.stalled = time.ticks_ms()
            if self.pending:
                return False
        if data:
            n = _call(self.sock.write, data) or 0
            if n < len(data):
                self.pending = memoryview(data)[n:]
                self.stalled = time.ticks_ms()
        return True

    def publish(self, topic, payload, retain=False):
        """A QoS 0 message outside the ring (status, counters): False when not connected or
        the socket is busy."""
        return self.state == UP and not self.pending and self.send(
            self.session.send((PUBLISH, topic, payload, 0, 0, retain, False)))

    def _publish(self, now):
        qos, ring, flight = self.conf["qos"], self.ring, self.flight
        while self.count * _ENTRY < len(flight) and not self.pending:
            found = ring.peek()
            if found is None:
                return
            slot, off, end, payload, dup = found
            packet_id = self.session.next_packet_id() if qos else 0
            self.send(self.session.send((PUBLISH, self.topic, payload, qos, packet_id, False,
                                         dup)))
            ring.sent(slot, off, end)
            if not qos:   # QoS 0: written is all the broker promises
                self.acked += ring.acked(slot, off, end, ring.no[slot])
                continue
            i = (self.first + self.count * _ENTRY) % len(flight)
            flight[i:i + _ENTRY] = (packet_id, slot, off, end, ring.no[slot], now)
            self.count += 1

    def _acked(self, packet_id):
        """PUBACK: the readings leave the ring in order; one acknowledged ahead of its turn
        (a broker breaking the order) waits, marked by packet id 0, for the older ones."""
        flight, size = self.flight, len(self.flight)
        for k in range(self.count):
            i = (self.first + k * _ENTRY) % size
            if flight[i] == packet_id:
                flight[i] = 0
                break
        while self.count and not flight[self.first]:
            i = self.first
            self.acked += self.ring.acked(flight[i + 1], flight[i + 2], flight[i + 3],
                                          flight[i + 4])
            self.first = (i + _ENTRY) % size
            self.count -= 1

    # ------------------------------------------------------------------ end of a connection
    def drop(self, why):
        """Close the connection; ``why`` it failed (the next attempt backs off), or None."""
        if why is not None:
            if self.state == UP:
                self.lost += 1
            log("connection lost:" if self.state == UP else "connect failed:", why)
            self.failures += 1
            wait = retry_wait(self.failures, self.conf["retry_base_s"], self.conf["retry_cap_s"])
            self.retry_at = time.ticks_add(time.ticks_ms(), int((wait - 1) * 1000))
        if self.query is not None:
            self.query.close()
        if self.sock is not None:
            self.poller.unregister(self.sock)
            self.sock.close()
        self.sock = self.session = self.query = None
        self.state = _DOWN

    def disconnect(self, status):
        """Say goodbye: the retained ``status`` (the will covers only an unclean end), then
        DISCONNECT; waits at most one reply period for the bytes to leave."""
        if self.state == UP:
            goodbye = [self.session.send((PUBLISH, self.conf["status_topic"], status, 0, 0,
                                          True, False)), self.session.send((DISCONNECT,))]
            start = time.ticks_ms()
            try:
                while (goodbye or self.pending) and ms_since(start) < self.reply_ms:
                    if self.send(goodbye[0] if goodbye else None) and goodbye:
                        goodbye.pop(0)
                    time.sleep_ms(5)
            except OSError:
                pass
        self.drop(None)

    def wait(self, ms):
        """Sleep until bytes arrive or ``ms`` pass; shorter while a handshake or a write is
        in progress."""
        if self.sock is None:
            time.sleep_ms(ms)
            return
        if self.state != UP or self.pending:
            ms = min(ms, 10)
        self.poller.poll(ms)
