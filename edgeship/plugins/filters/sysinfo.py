"""sysinfo filter: adds facts about the system to every record (filter_sysinfo).

Kept from Fluent Bit 5.1.1: each option names the key a fact is written under, and a fact
is added only when its key is set, in this order: ``fluentbit_version_key`` (the Fluent Bit
release edgeship behaves as, 5.1.1), ``os_name_key`` (``linux``), ``hostname_key``
(gethostname), ``os_version_key`` (uname's version) and ``kernel_version_key`` (uname's
release). The facts are read once per batch of records.

Difference: a key the record already has is replaced and moved last (Fluent Bit appends a
second key of the same name, which most outputs then print twice).
"""
import os
import socket
import sys

from edgeship.core import FLUENT_BIT_VERSION
from edgeship.core import events as ev
from edgeship.core.schema import Option
from edgeship.engine.plugin import Filter


def _os_name():
    return "linux" if sys.platform.startswith("linux") else "unix"


class SysinfoFilter(Filter):
    name = "sysinfo"
    description = "Filter for system info"
    options = (
        Option("fluentbit_version_key", help="key of the Fluent Bit version"),
        Option("os_name_key", help="key of the OS name (linux)"),
        Option("hostname_key", help="key of the hostname"),
        Option("os_version_key", help="key of the OS version (uname's version)"),
        Option("kernel_version_key", help="key of the kernel version (uname's release)"),
    )

    def _facts(self):
        conf = self.conf
        uname = os.uname()
        facts = (("fluentbit_version_key", lambda: FLUENT_BIT_VERSION),
                 ("os_name_key", _os_name),
                 ("hostname_key", socket.gethostname),
                 ("os_version_key", lambda: uname.version),
                 ("kernel_version_key", lambda: uname.release))
        return [(conf[key], read()) for key, read in facts if conf[key]]

    def filter(self, tag, events):
        return ev.append_keys(events, self._facts())


PLUGIN = SysinfoFilter
