"""One UDP question and its answer, asked without blocking the main loop: the DNS lookup of a
host name (the broker's, the NTP server's) and the NTP time.

``socket.getaddrinfo`` on a name and ``ntptime.settime`` both block (seconds on a dead
network, as mqtt_as notes of DNS), and a blocked loop stops sampling; here the main loop polls
the answer instead. A name is looked up at the DNS server the WiFi link was given (or the
``dns`` setting), once per question. Imported only by a board that needs it (a broker given
by name, NTP), to spare the RAM of the others.
"""
import errno
import os
import socket
import struct
import time

from board import EPOCH_MS, address, is_ip, log

_NTP_TO_UNIX = 2208988800


def _split(server, port):
    host, _, given = server.partition(":")
    return host, int(given) if given else port


class Ask:
    """Ask ``request`` of host:port by UDP; ``poll()`` gives ``parse(answer)`` once there is
    one, None while waiting, and raises OSError when the time is up or the answer says no."""

    def __init__(self, host, port, request, parse, dns, timeout_ms):
        self.port, self.request, self.parse = port, request, parse
        self.deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
        self.sock = self.lookup = None
        self.what = host
        if is_ip(host):
            self._send(host)
        else:
            server, dns_port = _split(dns, 53)
            self.ident = os.urandom(2)
            self.lookup = Ask(server, dns_port, _dns_query(self.ident, host), self._dns_answer,
                              dns, timeout_ms)
            self.lookup.what = "DNS %s for %s" % (dns, host)

    def _send(self, ip):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.connect(address(ip, self.port))
        self.sock.send(self.request)

    def poll(self):
        try:
            if self.sock is None:
                ip = self.lookup.poll()
                if ip is None:
                    return None
                if self.parse is None:   # a lookup only
                    self.close()
                    return ip
                self._send(ip)
            try:
                answer = self.parse(self.sock.recv(512))
            except OSError as exc:
                if exc.args[0] != errno.EAGAIN:
                    raise
                answer = None
            if answer is not None:
                self.close()
                return answer
            if time.ticks_diff(time.ticks_ms(), self.deadline) > 0:
                raise OSError("no answer from %s" % self.what)
            return None
        except Exception:
            self.close()
            raise

    def close(self):
        for part in (self.sock, self.lookup):
            if part is not None:
                part.close()
        self.sock = self.lookup = None

    def _dns_answer(self, data):
        if len(data) < 12 or data[:2] != self.ident:
            return None   # not the answer to this question
        if data[3] & 0x0F:
            raise OSError("DNS: %s not found (rcode %d)" % (self.what, data[3] & 0x0F))
        count = (data[6] << 8) | data[7]
        pos = _skip_name(data, 12) + 4
        for _ in range(count):
            pos = _skip_name(data, pos)
            kind, _, _, size = struct.unpack_from(">HHIH", data, pos)
            pos += 10
            if kind == 1 and size == 4:
                return "%d.%d.%d.%d" % tuple(data[pos:pos + 4])
            pos += size
        raise OSError("DNS: no IPv4 address for %s" % self.what)


def lookup(host, dns, timeout_ms):
    """Ask for the IPv4 address of ``host``: poll() gives it as text."""
    return Ask(host, 0, None, None, dns, timeout_ms)


def _dns_query(ident, host):
    out = bytearray(ident + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00")
    for label in host.split("."):
        out.append(len(label))
        out.extend(label.encode())
    return bytes(out) + b"\x00\x00\x01\x00\x01"   # root, type A, class IN


def _skip_name(data, pos):
    while True:
        size = data[pos]
        if size >= 0xC0:   # a pointer ends the name
            return pos + 2
        pos += 1 + size
        if not size:
            return pos


def ntp(server, dns, timeout_ms):
    """Ask ``server`` (host, or host:port) the time: poll() gives Unix milliseconds."""
    host, port = _split(server, 123)
    return Ask(host, port, b"\x1b" + bytes(47), _ntp_answer, dns, timeout_ms)


def _ntp_answer(data):
    if len(data) < 48 or data[0] & 7 != 4 or not data[1]:   # not a server reply, or a kiss
        return None
    secs, frac = struct.unpack_from(">II", data, 40)
    return (secs - _NTP_TO_UNIX) * 1000 + ((frac * 1000) >> 32)


def sync_clock(board):
    """Start, poll or finish the NTP query of ``board`` (its ``ntp_query``, ``ntp_at``): the
    answer sets the RTC; the next sync is ``ntp_resync_s`` later (a minute after a failure)."""
    conf = board.conf
    if board.ntp_query is None:
        board.ntp_query = ntp(conf["ntp_host"], board.dns(), 3000)
        return
    try:
        unix_ms = board.ntp_query.poll()
    except OSError as exc:
        log("NTP failed:", exc)
        unix_ms, wait = None, 60
    else:
        if unix_ms is None:
            return
        wait = conf["ntp_resync_s"]
    board.ntp_query = None
    board.ntp_at = time.ticks_add(time.ticks_ms(), int(wait * 1000))
    if unix_ms is None:
        return
    step = unix_ms - board.now_ms()
    if board.rtc is not None:
        t = time.gmtime((unix_ms - EPOCH_MS) // 1000)
        board.rtc.datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))
        board.offset = 0
    board.offset += unix_ms - board.now_ms()   # below a second: what the RTC cannot hold
    board.synced = True
    log("clock set by NTP, step %d ms" % step)
