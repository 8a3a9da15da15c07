"""``internal_temp``: the RP2040's own temperature sensor (ADC channel 4), and only on RP2040: on
ESP32, ADC(4) is pin GPIO4, and reading it as a temperature gave numbers that meant nothing.
"""
from drivers.adc import Adc


class InternalTemp(Adc):
    def __init__(self, conf, bus=None):
        if bus is None:
            from drivers import bus
        if bus.platform != "rp2":
            raise ValueError("internal_temp is the RP2040's sensor; this board is %s (on ESP32, "
                             "ADC(4) is pin GPIO4, not a thermometer)" % bus.platform)
        # RP2040 datasheet 4.9.5: T = 27 - (V - 0.706) / 0.001721, V = raw * 3.3 / 65535
        conf = dict(conf, pin=4, scale=-3.3 / 65535 / 0.001721, offset=27 + 0.706 / 0.001721,
                    digits=2)
        Adc.__init__(self, conf, bus)


Driver = InternalTemp
