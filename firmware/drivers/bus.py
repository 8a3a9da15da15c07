"""The board's buses, as the sensor drivers reach them: pins, I2C, ADC, OneWire. A driver takes
this module as its ``bus`` unless given another object with the same names (the tests give
one that answers with recorded register bytes), and imports it only then, so a board without
bus sensors does not load it."""
import sys

from board import hw

platform = sys.platform


def pin(number):
    return hw.Pin(number)


def i2c(conf):
    """I2C bus ``bus`` (default 0) on pins ``scl``/``sda`` at ``freq`` Hz (default 100 kHz)."""
    return hw.I2C(conf.get("bus", 0), scl=hw.Pin(conf["scl"]), sda=hw.Pin(conf["sda"]),
                  freq=conf.get("freq", 100000))


def adc(number):
    """The ADC of pin ``number`` (on RP2040, 4 is the temperature sensor's channel)."""
    return hw.ADC(number if number == 4 and platform == "rp2" else hw.Pin(number))


def onewire(number):
    import onewire
    return onewire.OneWire(hw.Pin(number))
