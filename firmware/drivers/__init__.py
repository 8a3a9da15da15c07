"""Sensor drivers, one module per sensor type, each naming its class ``Driver``; startup.py
imports only the ones config.json names, so the others cost no RAM.

Every driver is built from one entry of config.json's ``sensors`` list, ``{"name", "type",
...}`` (and, in tests, a stand-in for drivers/bus.py), and has ``name`` and ``read(record)``,
which adds its fields to a reading: ``name``, or ``<name>_<quantity>`` for a sensor measuring several things.
A failed read raises OSError or ValueError: the agent counts it and the reading goes out
without those fields. A read never waits on the sensor: drivers that must wait for a
conversion collect the one started at the previous read.
"""
