"""Pure logic shared by edgeship (CPython) and the firmware (MicroPython).

Nothing in this package imports a module MicroPython lacks, and its protocols do no I/O: the
engine and the firmware bring their own sockets. The one exception to sans-IO is ``files``,
the checked reading of the local files a config names, with plain ``os.stat`` and ``open``.
"""

# edgeship's version: here so every layer and the firmware may name it (no module of its own:
# the device's heap pays for each one).
VERSION = "0.1.0"
# The Fluent Bit release edgeship behaves as, where a protocol or record names a version.
FLUENT_BIT_VERSION = "5.1.1"
