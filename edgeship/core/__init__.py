"""Pure logic shared by edgeship (CPython) and the firmware (MicroPython).

Nothing in this package does I/O or imports a module MicroPython lacks: the engine and
the firmware bring their own sockets and files.
"""
