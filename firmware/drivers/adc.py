"""``adc``: an analog input, calibrated.

Calibration: ``cal`` [[raw, value], [raw, value]] maps two known points (read_u16 counts) to
the quantity, straight line through them; else value = ``offset`` + raw * ``scale``. ``average``
readings are taken per sample.
"""


class Adc:
    def __init__(self, conf, bus=None):
        if bus is None:
            from drivers import bus
        self.name = conf["name"]
        self.adc = bus.adc(conf["pin"])
        self.average = conf.get("average", 1)
        cal = conf.get("cal")
        if cal:
            (raw1, v1), (raw2, v2) = cal
            self.scale = (v2 - v1) / (raw2 - raw1)
            self.offset = v1 - raw1 * self.scale
        else:
            self.scale, self.offset = conf.get("scale", 1), conf.get("offset", 0)
        self.digits = conf.get("digits", 4)

    def raw(self):
        total = 0
        for _ in range(self.average):
            total += self.adc.read_u16()
        return total / self.average

    def read(self, record):
        record[self.name] = round(self.offset + self.raw() * self.scale, self.digits)


Driver = Adc
