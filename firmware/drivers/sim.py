"""``sim``: a deterministic wave, offset + amplitude * sin(n / period), for demos and tests."""
import math


class Sim:
    def __init__(self, conf, bus=None):
        self.name = conf["name"]
        self.offset = conf.get("offset", 20.0)
        self.amplitude = conf.get("amplitude", 2.0)
        self.period = conf.get("period", 10)
        self.n = 0

    def read(self, record):
        record[self.name] = round(self.offset + self.amplitude * math.sin(self.n / self.period), 3)
        self.n += 1


Driver = Sim
