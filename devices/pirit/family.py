"""The Pirit protocol family: Касса Ф, Дримкас-Ф, Старт (registered as entry point ``pirit``)."""

from devices.models import models_of
from harness.families import Family, Setting

FAMILY = Family(
    name="pirit",
    title="Pirit",
    models=models_of("pirit"),
    driver="devices.pirit.driver:PiritDriver",
    describe="devices.pirit.protocol:describe",
    detect="devices.pirit.wire:detect",
    safety="devices.pirit.safety:scan",
    frontend="devices.pirit.emulator:PiritFrontEnd",
    emulator="devices.emulator.build:build_emulator",
    cloud="dreamkas",  # Dreamkas registers take deferred re-registration tasks from the Кабинет
    inter_byte_timeout=0.2,  # §2.3: 200 ms between bytes of one frame
    settings=(
        Setting(
            "tax_mismatch_code",
            default="fn",
            choices=("fn", "param"),
            help="a receipt on an unregistered СНО: fn → 0x59 (the ФН refuses), param → 0x03 + extended 43 (R1.3)",
        ),
        Setting(
            "batch_scope",
            default="document",
            choices=("document", "connection"),
            help="batch mode (0x30 bit 4) lasts while its document is open (document), or a new link starts "
            "outside it (connection)",
        ),
    ),
)
