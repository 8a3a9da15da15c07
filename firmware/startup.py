"""Everything the agent does once, at start: read and check config.json, open (or create) the
ring's flash file and read back what it holds, pick the boot id, build the sensor drivers.
main.py unloads this module afterwards (its code and messages give their RAM back).

Settings (config.json; unknown keys and bad values are refused, naming the key):
identity ``device_id`` (default: machine.unique_id() in hex), ``client_id`` (default:
``edgeship-<unique id>``: unique per board, so two boards given one device_id do not take over
each other's session); broker ``host``, ``port`` (default 1883, or 8883 with TLS),
``keepalive``, ``connect_timeout_s``, ``username``, ``password``, ``tls``, ``ca_file``,
``server_hostname``, ``allow_insecure``; topics (``{device_id}`` is replaced) ``topic``,
``status_topic`` (retained online/offline/sleeping, the will), ``stats_topic`` (counters
every ``stats_s``); readings ``format`` (cbor/json), ``qos``, ``interval_s``, ``samples``
(0: forever), ``max_inflight``; store ``ring_bytes``, ``page_bytes``, ``ring_file`` (a path,
"rtc", or null: RAM only), ``persist_s``; ``retry_base_s``, ``retry_cap_s``; WiFi ``ssid``,
``wifi_password``, ``wifi_pm``, ``wifi_timeout_s``, ``dns``; ``ntp_host`` (null: no NTP),
``ntp_resync_s``; ``wdt_s`` (0: no watchdog); duty cycle ``sleep`` (light/deep/null),
``awake_s``; ``sensors``.
"""
import json
import os
import struct
import sys
from binascii import hexlify

from board import Board, hw, log
from store import FORMAT, HDR, MAGIC, Ring

DEFAULTS = {
    "device_id": None, "client_id": None, "host": "127.0.0.1", "port": 0, "keepalive": 60,
    "connect_timeout_s": 10, "username": None, "password": None, "tls": False,
    "ca_file": None, "server_hostname": None, "allow_insecure": False,
    "topic": "devices/{device_id}/telemetry", "status_topic": "devices/{device_id}/status",
    "stats_topic": "devices/{device_id}/stats", "stats_s": 300, "format": "cbor", "qos": 1,
    "interval_s": 5, "samples": 0, "max_inflight": 8, "ring_bytes": 65536, "page_bytes": 512,
    "ring_file": "ring.bin", "persist_s": 60, "retry_base_s": 1, "retry_cap_s": 60,
    "ssid": None, "wifi_password": None, "wifi_pm": "performance", "wifi_timeout_s": 20,
    "dns": None, "ntp_host": "pool.ntp.org", "ntp_resync_s": 3600, "wdt_s": 8,
    "sleep": None, "awake_s": 20, "sensors": [],
}
CHOICES = {"format": ("json", "cbor"), "qos": (0, 1), "sleep": (None, "light", "deep"),
           "wifi_pm": ("performance", "powersave", "none")}


def configure(path):
    """DEFAULTS overlaid with the settings in ``path``, checked; ValueError names the key."""
    with open(path) as f:
        given = json.load(f)
    conf = dict(DEFAULTS)
    for key in given:
        if key not in DEFAULTS:
            raise ValueError("unknown setting %r" % key)
    conf.update(given)
    for key, allowed in CHOICES.items():
        if conf[key] not in allowed:
            raise ValueError("%s must be one of %s, not %r" % (key, allowed, conf[key]))
    for key in ("interval_s", "keepalive", "max_inflight", "connect_timeout_s", "ring_bytes",
                "page_bytes", "persist_s", "stats_s"):
        if not conf[key] > 0:
            raise ValueError("%s must be more than 0" % key)
    for key in ("keepalive", "max_inflight", "ring_bytes", "page_bytes", "samples"):
        if not isinstance(conf[key], int) or conf[key] < 0:
            raise ValueError("%s must be a whole number" % key)
    if conf["keepalive"] > 65535:
        raise ValueError("keepalive must be 65535 s or less")
    uid = hexlify(hw.unique_id()).decode()
    conf["device_id"] = conf["device_id"] or uid
    conf["client_id"] = conf["client_id"] or "edgeship-" + uid
    for key in ("topic", "status_topic", "stats_topic"):
        conf[key] = conf[key].replace("{device_id}", conf["device_id"])
    conf["port"] = conf["port"] or (8883 if conf["tls"] else 1883)
    insecure = conf["allow_insecure"]
    if (conf["username"] is not None or conf["password"] is not None) and not conf["tls"] \
            and not insecure:
        raise ValueError("username/password would cross the network in clear: set tls "
                         "(with ca_file), or allow_insecure")
    if conf["tls"] and not conf["ca_file"] and not insecure:
        raise ValueError("tls needs ca_file to check the broker (or allow_insecure)")
    if conf["sleep"] == "deep" and not conf["ring_file"]:
        raise ValueError("sleep 'deep' needs ring_file (a path, or 'rtc') to keep the readings")
    if conf["ring_bytes"] // conf["page_bytes"] < 2 or not 64 <= conf["page_bytes"] <= 65535:
        raise ValueError("ring_bytes must hold 2 pages or more of page_bytes (64..65535)")
    if conf["ring_file"] in (None, "rtc") and conf["ring_bytes"] > 16384:
        raise ValueError("a ring in RAM (ring_file null or 'rtc') takes ring_bytes of RAM: "
                         "set ring_bytes to 16384 or less")
    return conf


def sensors(conf, board):
    """The drivers of the config's ``sensors`` list; ValueError names a bad entry."""
    out = []
    for conf in conf["sensors"]:
        if not conf.get("name"):
            raise ValueError("sensor %r has no name" % conf)
        kind = "drivers.%s" % conf.get("type")
        try:   # the type names the driver's module (drivers/<type>.py), which names its class
            module = __import__(kind, None, None, ["Driver"])
        except ImportError as exc:
            if kind not in str(exc):   # the driver is there, something it needs is not
                raise ValueError("sensor %r: %s" % (conf["name"], exc))
            raise ValueError("sensor %r: unknown type %r" % (conf["name"], conf.get("type")))
        out.append(module.Driver(conf))
    return out


def open_ring(conf, board):
    """The ring, with what the flash file (or RTC memory) held, and this boot's id."""
    size, page, where = conf["ring_bytes"], conf["page_bytes"], conf["ring_file"]
    if where and where != "rtc":
        try:
            f = open(where, "r+b")
            if f.seek(0, 2) != size // page * page:
                log("%s is not ring_bytes long: starting afresh" % where)
                f.close()
                f = None
        except OSError:
            f = None
        fresh = f is None
        if fresh:
            try:
                f = open(where, "w+b")
                zeros = bytes(page)
                for _ in range(size // page):
                    f.write(zeros)
                f.flush()
            except OSError as exc:
                raise ValueError("ring_file %r cannot be written: %s" % (where, exc))
        ring = Ring(size, page, f)
        if not fresh:
            restore(ring)
    else:
        ring = Ring(size, page)
        if where == "rtc":
            if board.rtc is None:
                raise ValueError("ring_file 'rtc': this board has no RTC memory")
            ring.rtc = board.rtc
            kept = ring.rtc.memory()
            if len(kept) == len(ring.buf):
                ring.buf[:] = kept
                restore(ring)
    if not (ring.restored and hw.reset_cause() == hw.DEEPSLEEP_RESET):
        # A new boot: the last id plus one, or a random one when there is no history (then
        # (device, boot, seq) stays unique all the same, but for a 1 in 2**31 chance).
        ring.boot = ring.boot + 1 if ring.restored else \
            int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF
        ring.seq = 0
        ring.checkpoint(True)   # before any reading of this boot can leave
    if ring.restored or ring.torn:
        log("ring restored: %d readings, %d torn pages, boot %d" % (ring.kept, ring.torn,
                                                                    ring.boot))
    return ring


def restore(ring):
    """Read back the pages: the valid ones (magic, CRC) in page-number order, the newest giving
    the ack cursor, boot id and next reading number. A torn page (magic right, CRC wrong) is
    counted and skipped; ``ring.kept`` counts the readings still to send."""
    pages, page = ring.pages, ring.page
    ring.head = -1   # no page is the open one yet: view() reads each from flash
    newest = -1
    for slot in range(pages):
        v = ring.view(slot)
        magic, version, used, no, ack_no, ack_off, _, boot, seq, _ = struct.unpack_from(
            FORMAT, v, 0)
        ok = magic == MAGIC and version == 1 and used <= page - HDR and \
            struct.unpack_from("<I", v, HDR - 4)[0] == ring.crc(v, used)
        if magic == MAGIC and not ok:
            ring.torn += 1
        ring.no[slot] = no if ok else 0
        ring.used[slot] = used if ok else 0
        if ok and (newest < 0 or no > ring.no[newest]):
            newest, cursor, ring.boot, ring.seq = slot, (ack_no, ack_off), boot, seq
    ring.loaded = -1
    if newest < 0:
        ring.head = 0
        ring.no[0] = 1
        return
    ring.head = newest
    if ring.file is not None:   # the open page lives in the first half of buf
        ring.file.seek(newest * page)
        ring.file.readinto(ring.mv[:page])
    top = ring.no[newest]
    ack_no, ack_off = cursor
    ring.ack[0] = -1
    for back in range(pages - 1, -1, -1):   # oldest first
        slot = (newest - back) % pages
        want = top - back
        if ring.no[slot] != want or want < ack_no:   # stale, torn, unused or acknowledged
            ring.used[slot] = 0
        ring.no[slot] = max(want, 0)
        if ring.ack[0] < 0 and want >= ack_no:
            ring.ack[0], ring.ack[1] = slot, ack_off if want == ack_no else 0
    ring.settle(ring.ack)
    ring.out[:] = ring.ack
    ring.restored = True
    slot, off = ring.ack
    while True:   # count what is left to send
        if off < ring.used[slot]:
            v = ring.view(slot)
            ring.kept += 1
            off += 3 + ((v[HDR + off] << 8) | v[HDR + off + 1])
        elif slot != ring.head:
            slot, off = (slot + 1) % pages, 0
        else:
            break


def tls_context(conf):
    """The TLS context of the broker connection: the broker is checked against ``ca_file``
    (DER, or PEM turned into DER: MicroPython's TLS reads DER), or not at all with
    ``allow_insecure``."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if conf["ca_file"]:
        with open(conf["ca_file"], "rb") as f:
            data = f.read()
        if data.startswith(b"-----"):
            from binascii import a2b_base64
            data = a2b_base64(b"".join(line for line in data.split(b"\n")
                                       if line and line[:5] != b"-----"))
        ctx.load_verify_locations(cadata=data)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def start(path="config.json"):
    """(conf, board, ring, sensor drivers) for agent.Agent; on a bad config, says why and
    exits with status 2."""
    try:
        conf = configure(path)
        board = Board(conf)
        ring = open_ring(conf, board)
        drivers = sensors(conf, board)
        if conf["tls"]:
            conf["tls_context"] = tls_context(conf)
    except (OSError, ValueError) as exc:
        print("agent: config %s: %s" % (path, exc))
        sys.exit(2)
    return conf, board, ring, drivers
