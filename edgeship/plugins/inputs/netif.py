"""netif input: traffic of one network interface since the last collection (in_netif).

Every interval it reads ``/proc/net/dev`` once and emits, for ``Interface eth0``,
``{"eth0.rx.bytes":..,"eth0.rx.packets":..,"eth0.rx.errors":..,"eth0.tx.bytes":..,
"eth0.tx.packets":..,"eth0.tx.errors":..}`` (unsigned integer deltas). ``Verbose on`` adds
every other column in the file's order, with Fluent Bit's key names, misspelled
``tx.compressepd`` included (so dashboards built on Fluent Bit keep working).

Kept from Fluent Bit 5.1.1 (plugins/in_netif): ``Interface`` is required; the first tick
only reads the counters, so the first record comes two intervals after the start;
``Test_At_Init on`` refuses to start when the interface is not in ``/proc/net/dev``.

Differences, for safety: Fluent Bit compares only the first len(Interface) characters of
each name (``eth0`` also matches ``eth0.100``, and the last match wins); edgeship takes the
interface of exactly that name. While the interface is absent (a USB adapter unplugged)
edgeship emits nothing and logs it once (Fluent Bit emits zeros, then a jump when it comes
back); when it returns it starts from a fresh first reading. A counter that goes down counts
from 0 instead of wrapping to a huge number.
"""
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.plugins.inputs._host import Host, delta, net_dev
from edgeship.plugins.inputs._interval import IntervalInput, interval_options

# The 16 columns of /proc/net/dev, with Fluent Bit's names; True: in the record without Verbose.
COLUMNS = (("rx.bytes", True), ("rx.packets", True), ("rx.errors", True),
           ("rx.drop", False), ("rx.fifo", False), ("rx.frame", False),
           ("rx.compressed", False), ("rx.multicast", False),
           ("tx.bytes", True), ("tx.packets", True), ("tx.errors", True),
           ("tx.drop", False), ("tx.fifo", False), ("tx.collisions", False),
           ("tx.carrier", False), ("tx.compressepd", False))


class NetifInput(IntervalInput):
    name = "netif"
    description = "Network Interface Usage"
    options = (
        Option("Interface", required=True, help="the interface, e.g. eth0 or wlan0"),
    ) + interval_options() + (
        Option("Verbose", "bool", "false", help="every /proc/net/dev column, not only "
                                                "bytes, packets and errors"),
        Option("Test_At_Init", "bool", "false",
               help="refuse to start when the interface does not exist"),
    )

    def configure(self):
        self.host = Host()
        self.interface = self.conf["interface"]
        verbose = self.conf["verbose"]
        self.columns = [(i, "%s.%s" % (self.interface, name))
                        for i, (name, usual) in enumerate(COLUMNS) if usual or verbose]
        self.before = None
        self.absent = False
        if self.conf["test_at_init"]:
            try:
                found = self._read() is not None
            except (OSError, ValueError) as exc:
                found = False
                self.log.error("cannot read %s: %s", self.host.proc("net", "dev"), exc)
            if not found:
                raise ConfigError("netif: %s: init test failed (not in %s)"
                                  % (self.interface, self.host.proc("net", "dev")),
                                  key="test_at_init")
            self.log.info("%s: init test passed", self.interface)

    def _read(self):
        """The 16 counters of the interface, or None when it is not there."""
        for name, values in net_dev(self.host.read(self.host.proc("net", "dev"))):
            if name == self.interface and len(values) == len(COLUMNS):
                return [int(v) for v in values]
        return None

    def collect(self, now_ns):
        try:
            now = self._read()
        except (OSError, ValueError) as exc:
            now = None
            if not self.absent:
                self.log.error("cannot read %s: %s", self.host.proc("net", "dev"), exc)
                self.absent = True
        if now is None:
            if not self.absent:
                self.log.warn("interface %s not found in %s", self.interface,
                              self.host.proc("net", "dev"))
            self.absent = True
            self.before = None
            return []
        if self.absent:
            self.log.info("interface %s is back", self.interface)
        self.absent = False
        before, self.before = self.before, now
        if before is None:
            return []
        return [{key: delta(now[i], before[i]) for i, key in self.columns}]


PLUGIN = NetifInput
