"""Maxim DS18B20 on OneWire: temperature.

Each read collects the conversion started by the one before (started at set-up for the
first), so the 750 ms conversion never holds the loop. ``rom`` (16 hex digits) picks one
sensor on a shared bus; without it the bus must have one. The scratchpad's CRC-8 (Maxim,
reflected poly 0x8C) is checked. Field: ``<name>``.
"""


def crc8(data):
    crc = 0
    for byte in data:
        for _ in range(8):
            mix = (crc ^ byte) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C
            byte >>= 1
    return crc


class DS18B20:
    def __init__(self, conf, bus=None):
        if bus is None:
            from drivers import bus
        self.name = conf["name"]
        self.ow = bus.onewire(conf["pin"])
        self.rom = bytes.fromhex(conf["rom"]) if conf.get("rom") else None
        self.pad = bytearray(9)
        self._command(0x44)

    def _command(self, command):
        if not self.ow.reset():
            raise OSError("DS18B20: no presence pulse")
        if self.rom is None:
            self.ow.writebyte(0xCC)   # skip ROM: the only device
        else:
            self.ow.writebyte(0x55)
            self.ow.write(self.rom)
        self.ow.writebyte(command)

    def read(self, record):
        self._command(0xBE)
        self.ow.readinto(self.pad)
        self._command(0x44)   # the next conversion
        if crc8(self.pad[0:8]) != self.pad[8]:
            raise ValueError("DS18B20 CRC mismatch")
        raw = self.pad[0] | (self.pad[1] << 8)
        record[self.name] = (raw - 65536 if raw & 0x8000 else raw) / 16


Driver = DS18B20
