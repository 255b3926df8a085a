"""The Pirit protocol family: Касса Ф, Дримкас-Ф, Старт."""

from devices.registry import Family

from .driver import PiritDriver
from .emulator import PiritFrontEnd
from .protocol import describe

FAMILY = Family(
    name="pirit",
    make_driver=PiritDriver,
    make_frontend=PiritFrontEnd,
    describe=describe,
    baudrate=57600,
    inter_byte_timeout=0.2,  # §2.3: 200 ms between bytes of one frame
)
