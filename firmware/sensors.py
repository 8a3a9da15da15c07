"""Sensor drivers for the agent. Each is built from one config map and has ``read()``
returning a number (or None when the sensor has nothing right now).

``sim`` and ``file`` run anywhere (the unix port in tests, a Pi); ``adc``, ``internal_temp``
and ``dht22`` need a board's ``machine`` / ``dht`` modules and are imported only when used.
"""
import math


class SimSensor:
    """A deterministic wave: value = offset + amplitude * sin(n / period). For demos and tests."""

    def __init__(self, conf):
        self.offset = conf.get("offset", 20.0)
        self.amplitude = conf.get("amplitude", 2.0)
        self.period = conf.get("period", 10)
        self.n = 0

    def read(self):
        value = self.offset + self.amplitude * math.sin(self.n / self.period)
        self.n += 1
        return round(value, 3)


class FileSensor:
    """A number read from a file, e.g. /sys/class/thermal/thermal_zone0/temp, times ``scale``."""

    def __init__(self, conf):
        self.path = conf["path"]
        self.scale = conf.get("scale", 1)

    def read(self):
        try:
            with open(self.path) as f:
                return float(f.read().strip()) * self.scale
        except (OSError, ValueError):
            return None


class AdcSensor:
    def __init__(self, conf):
        import machine
        self.adc = machine.ADC(conf["pin"])
        self.scale = conf.get("scale", 1)

    def read(self):
        return self.adc.read_u16() * self.scale


class InternalTempSensor:
    """RP2040 internal temperature (ADC channel 4), in degrees Celsius."""

    def __init__(self, conf):
        import machine
        self.adc = machine.ADC(4)

    def read(self):
        volts = self.adc.read_u16() * 3.3 / 65535
        return round(27 - (volts - 0.706) / 0.001721, 2)


class Dht22Sensor:
    def __init__(self, conf):
        import dht
        import machine
        self.dev = dht.DHT22(machine.Pin(conf["pin"]))
        self.quantity = conf.get("quantity", "temperature")

    def read(self):
        try:
            self.dev.measure()
        except OSError:
            return None
        return self.dev.temperature() if self.quantity == "temperature" else self.dev.humidity()


KINDS = {"sim": SimSensor, "file": FileSensor, "adc": AdcSensor,
         "internal_temp": InternalTempSensor, "dht22": Dht22Sensor}


def build(confs):
    """[(name, sensor)] from the config's ``sensors`` list."""
    out = []
    for conf in confs:
        kind = KINDS.get(conf.get("type"))
        if kind is None:
            raise ValueError("unknown sensor type %r" % conf.get("type"))
        out.append((conf["name"], kind(conf)))
    return out
