"""thermal input: the temperature of each thermal zone (in_thermal).

Every interval one record per zone of ``/sys/class/thermal/thermal_zone*``:
``{"name":"thermal_zone0","type":"cpu-thermal","temp":48.686}`` (``temp`` a double:
millidegrees / 1000.0). With no thermal zone it reads ``/sys/class/hwmon/hwmon*/temp{0-9}_input``
instead (name ``hwmon0_temp1_input``, type from ``hwmon0/name``).

Kept from Fluent Bit 5.1.1 (plugins/in_thermal): ``Name_Regex`` filters the entry names of
the folder (``thermal_zone0``, ``hwmon0``), ``Type_Regex`` the types; both are searched
(unanchored), as Onigmo regexes. At most 32 zones. A zone whose files cannot be read is
skipped; a change in the number of zones is logged.

Differences: zones come out in their number order (Fluent Bit: the folder's order); an
invalid regex is a config error at its line (Fluent Bit logs it and ignores the filter); a
machine with no zone logs it once at start and emits nothing (Fluent Bit logs "log event
encoding error" every interval).
"""
import os
import re

from edgeship.core.schema import Option
from edgeship.plugins.inputs._host import Host
from edgeship.plugins.inputs._interval import IntervalInput, interval_options

MAX_ZONES = 32
_NUMBER = re.compile(r"(\d+)")


def _number_order(name):
    """thermal_zone2 before thermal_zone10."""
    return [int(part) if part.isdigit() else part for part in _NUMBER.split(name)]


class ThermalInput(IntervalInput):
    name = "thermal"
    description = "Thermal"
    options = interval_options() + (
        Option("Name_Regex", help="only the zones whose name matches (thermal_zone0)"),
        Option("Type_Regex", help="only the zones whose type matches (cpu-thermal)"),
    )

    def configure(self):
        self.host = Host()
        self.name_regex = self.regex_option("name_regex")
        self.type_regex = self.regex_option("type_regex")
        self.count = len(self._zones())
        if not self.count:
            self.log.warn("thermal device file not found")

    @staticmethod
    def _first_int(path):
        """fscanf("%d"): the leading integer of the file."""
        match = re.match(r"\s*([+-]?\d+)", Host.read(path))
        if match is None:
            raise ValueError("no number in %s" % path)
        return int(match.group(1))

    def _entries(self, folder, prefix):
        try:
            names = os.listdir(folder)
        except OSError:
            return []
        names = [n for n in names if n.startswith(prefix)
                 and (self.name_regex is None or self.name_regex.search(n))]
        return sorted(names, key=_number_order)

    def _wanted(self, kind):
        return self.type_regex is None or self.type_regex.search(kind)

    def _zones(self):
        """[(name, type, temp)] of the thermal zones, else of the hwmon sensors."""
        zones = []
        folder = self.host.sys("class", "thermal")
        for name in self._entries(folder, "thermal_zone"):
            try:
                kind = Host.read(os.path.join(folder, name, "type")).split("\n")[0]
                if not kind or not self._wanted(kind):      # a zone without a type is skipped
                    continue
                temp = self._first_int(os.path.join(folder, name, "temp"))
            except (OSError, ValueError):
                continue
            zones.append((name, kind, temp / 1000.0))
        if zones:
            return zones[:MAX_ZONES]
        folder = self.host.sys("class", "hwmon")
        for name in self._entries(folder, "hwmon"):
            try:
                kind = Host.read(os.path.join(folder, name, "name")).split("\n")[0]
            except OSError:
                continue
            if not self._wanted(kind):
                continue
            for n in range(10):
                sensor = "temp%d_input" % n
                try:
                    temp = self._first_int(os.path.join(folder, name, sensor))
                except (OSError, ValueError):
                    continue
                zones.append(("%s_%s" % (name, sensor), kind, temp / 1000.0))
        return zones[:MAX_ZONES]

    def collect(self, now_ns):
        zones = self._zones()
        if len(zones) != self.count:
            self.log.info("the number of thermal devices changed %d -> %d", self.count,
                          len(zones))
            self.count = len(zones)
        return [{"name": name, "type": kind, "temp": temp} for name, kind, temp in zones]


PLUGIN = ThermalInput
