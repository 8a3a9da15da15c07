"""The board layer: what the agent needs from an ESP32 or a Raspberry Pi Pico W, behind one small
class, so the rest of the firmware is the same on every board.

- WiFi: brought up and kept up from the main loop, never waiting on the radio; a refused or
  timed-out association backs off (jittered, as the broker reconnects do). On RP2040 the
  CYW43's power management is set (``wifi_pm``: ``performance`` by default, as mqtt_as does,
  since power-save mode drops packets; ``powersave`` for battery boards; ``none``).
- Time: integer Unix milliseconds end to end (``time.time_ns() // 1000000``: the old
  ``time_ns() // 1e6 / 1000`` landed on a 128 s grid with the single-precision floats of ESP32
  and RP2040 builds). NTP sets the RTC once WiFi is up and again every ``ntp_resync_s``,
  without blocking (udp.py).
- ``machine.WDT``, fed by the main loop; ``machine.unique_id()``; reset, light and deep sleep;
  RTC memory where the port has it. (The sensor buses are set up by startup.py.)

On the MicroPython unix port, standin.py plays the watchdog, the RTC and the reset, and
standin_wifi.py the radio.
"""
import socket
import sys
import time

import machine as hw

if not hasattr(hw, "WDT"):   # the unix port's machine module has none of these parts
    import standin as hw

from edgeship.core.backoff import retry_wait

EPOCH_MS = 946684800000 if time.gmtime(0)[0] == 2000 else 0   # ports counting from 2000
_time_ns = getattr(hw, "time_ns", time.time_ns)


def ms_since(start):
    return time.ticks_diff(time.ticks_ms(), start)


def log(*parts):
    print("agent:", *parts)


def is_ip(host):
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() for p in parts)


def address(ip, port):
    """The socket address of an IPv4 literal (getaddrinfo does no lookup for one)."""
    return socket.getaddrinfo(ip, port)[0][-1]


class Board:
    def __init__(self, conf):
        self.conf = conf
        self.platform = sys.platform
        self.wdt = self.wlan = self.ntp_query = None
        self.wdt_ms = int(conf["wdt_s"] * 1000) or 2000   # the watchdog starts with the loop
        self.wifi_up = self.joining = False
        self.wifi_failures = self.wifi_drops = 0
        self.wifi_at = self.ntp_at = time.ticks_ms()   # next attempt, or its deadline
        self.offset = 0                                # ms the RTC cannot hold
        self.synced = self.now_ms() > 1704067200000    # after 2024: the RTC was set before
        self.rtc = hw.RTC() if hasattr(hw, "RTC") else None
        if conf["ssid"]:
            try:
                import network
            except ImportError:   # the unix port: no radio
                import standin_wifi as network
            self.wlan = wlan = network.WLAN(network.STA_IF)
            wlan.active(True)
            self.failed = tuple(getattr(network, name) for name in (
                "STAT_WRONG_PASSWORD", "STAT_NO_AP_FOUND", "STAT_CONNECT_FAIL")
                if hasattr(network, name))
            if self.platform == "rp2":   # mqtt_as: 0xA11140, power saving off
                wlan.config(pm={"performance": getattr(wlan, "PM_PERFORMANCE", 0xA11140),
                                "powersave": getattr(wlan, "PM_POWERSAVE", 0xA11C82),
                                "none": getattr(wlan, "PM_NONE", 0x10)}[conf["wifi_pm"]])

    # -------------------------------------------------------------- watchdog, sleep
    def feed(self):
        if self.wdt is not None:
            self.wdt.feed()

    def lightsleep(self, ms):
        """Sleep ``ms``, waking to feed the watchdog (RP2040's waits 8 s at most)."""
        while ms > 0:
            self.feed()
            hw.lightsleep(min(ms, self.wdt_ms // 2))
            ms -= self.wdt_ms // 2
        self.feed()

    # -------------------------------------------------------------- WiFi
    def wifi(self):
        """Drive the station; True while it is associated (always, without ``ssid``)."""
        wlan = self.wlan
        if wlan is None or (self.wifi_up and wlan.isconnected()):
            return True
        if self.wifi_up:
            self.wifi_up = False
            self.wifi_drops += 1
            log("WiFi lost")
            self._retry()
        elif self.joining:
            if wlan.isconnected():
                self.wifi_up, self.joining, self.wifi_failures = True, False, 0
                self.ntp_at = time.ticks_ms()
                log("WiFi up", wlan.ifconfig()[0])
                return True
            if wlan.status() in self.failed or ms_since(self.wifi_at) > 0:
                log("WiFi association failed, status", wlan.status())
                self._retry()
        elif ms_since(self.wifi_at) >= 0:
            wlan.connect(self.conf["ssid"], self.conf["wifi_password"])
            self.joining = True
            self.wifi_at = time.ticks_add(time.ticks_ms(), int(self.conf["wifi_timeout_s"] * 1000))
        return False

    def _retry(self):
        self.joining = False
        try:
            self.wlan.disconnect()
        except OSError:
            pass
        self.wifi_failures += 1
        wait = retry_wait(self.wifi_failures, self.conf["retry_base_s"], self.conf["retry_cap_s"])
        self.wifi_at = time.ticks_add(time.ticks_ms(), int((wait - 1) * 1000))

    def dns(self):
        """The DNS server to ask: the ``dns`` setting, else the one DHCP gave the station."""
        return self.conf["dns"] or (self.wlan.ifconfig()[3] if self.wlan else "127.0.0.1")

    # -------------------------------------------------------------- time
    def now_ms(self):
        """Unix time in integer milliseconds."""
        return _time_ns() // 1000000 + EPOCH_MS + self.offset

    def ntp(self, online):
        """Keep the clock set by NTP (udp.py, imported only while it is needed)."""
        if online and self.conf["ntp_host"] and (self.ntp_query or ms_since(self.ntp_at) >= 0):
            import udp
            udp.sync_clock(self)
