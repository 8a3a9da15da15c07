"""Bosch BME280 (temperature, pressure, humidity) and BMP280 (no humidity) on I2C.

Normal mode, 1x oversampling, 1 s standby: the chip measures on its own and a read never waits.
Compensation is the datasheet's integer version (BME280 section 4.2.3, BMP280 section 3.11.3),
exact on MicroPython's integers. Fields: ``<name>_temp_c``, ``<name>_hpa``, ``<name>_rh``.
"""
import struct


class BME280:
    def __init__(self, conf, bus=None):
        if bus is None:
            from drivers import bus
        self.name = conf["name"]
        self.i2c = bus.i2c(conf)
        self.addr = conf.get("addr", 0x76)
        chip = self.i2c.readfrom_mem(self.addr, 0xD0, 1)[0]
        if chip not in (0x58, 0x60):
            raise ValueError("no BME280/BMP280 at 0x%02x (chip id 0x%02x)" % (self.addr, chip))
        self.humidity = chip == 0x60
        self.cal = struct.unpack("<HhhHhhhhhhhh", self.i2c.readfrom_mem(self.addr, 0x88, 24))
        if self.humidity:
            h1 = self.i2c.readfrom_mem(self.addr, 0xA1, 1)[0]
            e = self.i2c.readfrom_mem(self.addr, 0xE1, 7)
            h4 = (e[3] << 4) | (e[4] & 0x0F)
            h5 = (e[5] << 4) | (e[4] >> 4)
            self.hcal = (h1, struct.unpack("<h", e[0:2])[0], e[2],
                         h4 - 4096 if h4 > 2047 else h4, h5 - 4096 if h5 > 2047 else h5,
                         e[6] - 256 if e[6] > 127 else e[6])
            self.i2c.writeto_mem(self.addr, 0xF2, b"\x01")   # humidity x1, before ctrl_meas
        self.i2c.writeto_mem(self.addr, 0xF5, b"\xa0")       # 1000 ms standby, no filter
        self.i2c.writeto_mem(self.addr, 0xF4, b"\x27")       # T x1, P x1, normal mode

    def read(self, record):
        d = self.i2c.readfrom_mem(self.addr, 0xF7, 8 if self.humidity else 6)
        t_fine, centi = self.temperature((d[3] << 12) | (d[4] << 4) | (d[5] >> 4))
        record[self.name + "_temp_c"] = centi / 100
        record[self.name + "_hpa"] = round(self.pressure(
            (d[0] << 12) | (d[1] << 4) | (d[2] >> 4), t_fine) / 25600, 2)
        if self.humidity:
            record[self.name + "_rh"] = round(self.relative_humidity(
                (d[6] << 8) | d[7], t_fine) / 1024, 2)

    def temperature(self, adc):
        """(t_fine, hundredths of a degree C)"""
        t1, t2, t3 = self.cal[0:3]
        var1 = (((adc >> 3) - (t1 << 1)) * t2) >> 11
        var2 = (((((adc >> 4) - t1) * ((adc >> 4) - t1)) >> 12) * t3) >> 14
        t_fine = var1 + var2
        return t_fine, (t_fine * 5 + 128) >> 8

    def pressure(self, adc, t_fine):
        """Pascal * 256."""
        p1, p2, p3, p4, p5, p6, p7, p8, p9 = self.cal[3:12]
        var1 = t_fine - 128000
        var2 = var1 * var1 * p6 + ((var1 * p5) << 17) + (p4 << 35)
        var1 = ((var1 * var1 * p3) >> 8) + ((var1 * p2) << 12)
        var1 = (((1 << 47) + var1) * p1) >> 33
        if not var1:
            return 0   # the datasheet's guard against a division by zero
        p = 1048576 - adc
        p = (((p << 31) - var2) * 3125) // var1
        var1 = (p9 * (p >> 13) * (p >> 13)) >> 25
        var2 = (p8 * p) >> 19
        return ((p + var1 + var2) >> 8) + (p7 << 4)

    def relative_humidity(self, adc, t_fine):
        """%RH * 1024."""
        h1, h2, h3, h4, h5, h6 = self.hcal
        v = t_fine - 76800
        v = ((((adc << 14) - (h4 << 20) - (h5 * v)) + 16384) >> 15) * \
            (((((((v * h6) >> 10) * (((v * h3) >> 11) + 32768)) >> 10) + 2097152) * h2 + 8192)
             >> 14)
        v -= ((((v >> 15) * (v >> 15)) >> 7) * h1) >> 4
        return min(max(v, 0), 419430400) >> 12


Driver = BME280
