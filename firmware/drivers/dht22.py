"""``dht22``: DHT22 / AM2302 through MicroPython's dht module: ``<name>_temp_c``, ``<name>_rh``.
(measure() bit-bangs the 5 ms answer: the one driver that holds the loop, briefly.)"""


class Dht22:
    def __init__(self, conf, bus=None):
        if bus is None:
            from drivers import bus
        import dht
        self.name = conf["name"]
        self.dev = dht.DHT22(bus.pin(conf["pin"]))

    def read(self, record):
        self.dev.measure()
        record[self.name + "_temp_c"] = self.dev.temperature()
        record[self.name + "_rh"] = self.dev.humidity()


Driver = Dht22
