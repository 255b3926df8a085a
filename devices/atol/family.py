"""The АТОЛ protocol family: 30Ф, 55Ф, 90Ф ("Протокол ККТ 3.x", v3 transport)."""

from devices.registry import Family

from .driver import AtolDriver
from .emulator import AtolFrontEnd
from .protocol import describe

FAMILY = Family(
    name="atol",
    make_driver=AtolDriver,
    make_frontend=AtolFrontEnd,
    describe=describe,
    baudrate=115200,  # §3.1: 115200 8N1
    inter_byte_timeout=0.5,  # v2 T6 (§3.4); v3 states none
)
