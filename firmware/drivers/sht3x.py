"""Sensirion SHT3x (SHT30/31/35) on I2C: temperature and relative humidity.

Single shot, high repeatability, no clock stretching (command 0x2400): each read collects the
measurement started by the one before (started at set-up for the first), so the bus is never
held while the sensor converts (15 ms). Each word's CRC-8 (poly 0x31, init 0xFF) is checked.
Fields: ``<name>_temp_c``, ``<name>_rh``.
"""


def crc8(data):
    crc = 0xFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


class SHT3x:
    def __init__(self, conf, bus=None):
        if bus is None:
            from drivers import bus
        self.name = conf["name"]
        self.i2c = bus.i2c(conf)
        self.addr = conf.get("addr", 0x44)
        self.i2c.writeto(self.addr, b"\x24\x00")

    def read(self, record):
        d = self.i2c.readfrom(self.addr, 6)
        self.i2c.writeto(self.addr, b"\x24\x00")   # the next measurement
        if crc8(d[0:2]) != d[2] or crc8(d[3:5]) != d[5]:
            raise ValueError("SHT3x CRC mismatch")
        record[self.name + "_temp_c"] = round(-45 + 175 * ((d[0] << 8) | d[1]) / 65535, 2)
        record[self.name + "_rh"] = round(100 * ((d[3] << 8) | d[4]) / 65535, 2)


Driver = SHT3x
