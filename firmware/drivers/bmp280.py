"""``bmp280``: the BME280 driver, which tells the two apart by the chip id."""
from drivers.bme280 import BME280

Driver = BME280
