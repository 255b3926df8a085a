"""The АТОЛ protocol family: 30Ф, 55Ф, 90Ф ("Протокол ККТ 3.x"; registered as entry point ``atol``)."""

from devices.models import models_of
from harness.families import Family, Setting

FAMILY = Family(
    name="atol",
    title="АТОЛ",
    models=models_of("atol"),
    driver="devices.atol.driver:AtolDriver",
    describe="devices.atol.protocol:describe",
    detect="devices.atol.wire:detect",
    safety="devices.atol.safety:scan",
    frontend="devices.atol.emulator:AtolFrontEnd",
    emulator="devices.emulator.build:build_emulator",
    inter_byte_timeout=0.5,  # v2 T6 (§3.4); v3 states none
    settings=(
        Setting(
            "atol_sync_result",
            default="pending",
            choices=("pending", "result"),
            help="the synchronous answer to ADD with NeedResult: pending → A1 then the async result, "
            "result → A3/A4 with the result at once (§3.3)",
        ),
        Setting(
            "atol_a4_10_encoding",
            default="binary",
            choices=("binary", "bcd"),
            help="the 2-byte shift and receipt numbers of A4h/10h: binary → little-endian binary (S7, like "
            "every other A4h counter, §3.5), bcd → BCD low byte first (atol4j); the sources conflict (§3.5.4, §7)",
        ),
    ),
)
