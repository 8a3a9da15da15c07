"""``file``: a number read from a file, times ``scale`` (e.g. a Linux board's
/sys/class/thermal/thermal_zone0/temp with scale 0.001)."""


class File:
    def __init__(self, conf, bus=None):
        self.name = conf["name"]
        self.path = conf["path"]
        self.scale = conf.get("scale", 1)

    def read(self, record):
        with open(self.path) as f:
            record[self.name] = float(f.read().strip()) * self.scale


Driver = File
