"""Pure logic shared by edgeship (CPython) and the firmware (MicroPython).

Nothing in this package imports a module MicroPython lacks, and its protocols do no I/O: the
engine and the firmware bring their own sockets. The one exception to sans-IO is ``files``,
the checked reading of the local files a config names, with plain ``os.stat`` and ``open``.
"""
