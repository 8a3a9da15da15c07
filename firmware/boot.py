"""Runs first on a board, before main.py (tools/flash.py copies it): quiet the vendor debug
output, switch off the access point some ports start with (an open AP next to the device is a
way in), and leave a clean heap to the agent. WiFi itself is main.py's job: it is brought up
and kept up by the main loop without ever blocking it."""
import gc

try:
    import esp
    esp.osdebug(None)
except ImportError:
    pass
try:
    import network
    network.WLAN(network.AP_IF).active(False)
except (ImportError, AttributeError, OSError):
    pass
gc.collect()
