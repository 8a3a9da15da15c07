"""Stand-in for a board's WiFi station (``network``) on the MicroPython unix port: see
standin.py. The file ``$STANDIN_DIR/wifi`` holds ``up`` (the default), ``down`` (association
lost or refused) or ``crash`` (the radio driver raises: the agent's top-level guard must catch
it)."""
import os

STA_IF = 0
STAT_GOT_IP = 3
STAT_CONNECT_FAIL = -1
_PATH = (os.getenv("STANDIN_DIR") or ".") + "/wifi"


class WLAN:
    """A station that associates once connect() was called, while ``wifi`` says ``up``."""

    def __init__(self, *_):
        self.joined = False

    def active(self, *_, **__):   # active() and config(pm=): nothing to do here
        pass

    config = active

    def connect(self, *ssid_password):   # disconnect() is connect() with no ssid
        self.joined = bool(ssid_password)

    disconnect = connect

    def status(self):
        try:
            with open(_PATH, "rb") as f:
                mode = f.read().strip()
        except OSError:
            mode = b"up"
        if mode == b"crash":
            raise RuntimeError("stand-in WiFi driver fault")
        return STAT_GOT_IP if self.joined and mode == b"up" else STAT_CONNECT_FAIL

    def isconnected(self):
        return self.status() == STAT_GOT_IP

    def ifconfig(self):
        return "127.0.0.1", "255.0.0.0", "127.0.0.1", os.getenv("STANDIN_DNS") or "127.0.0.1"
