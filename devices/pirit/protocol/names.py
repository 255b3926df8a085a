"""Pirit command names (reference ``protocols.md`` §2.5), for traces and
:attr:`~devices.pirit.protocol.framing.Request.command_name`; the vendor's per-command answer
timeouts (§2.3), for the driver's deadlines and the emulator's ``pace=device``."""

from __future__ import annotations

# --------------------------------------------------------------------------------------------
# Command names (§2.5)

COMMAND_NAMES: dict[int, str] = {
    0x00: "status",
    0x01: "shift counters",
    0x02: "device information",
    0x03: "receipt data",
    0x04: "printer state",
    0x06: "extended error info",
    0x10: "start of work",
    0x11: "read setting",
    0x12: "write setting",
    0x13: "read date/time",
    0x14: "set date/time",
    0x15: "load logo",
    0x17: "load receipt design",
    0x18: "load picture",
    0x20: "X report",
    0x21: "close shift",
    0x23: "open shift",
    0x30: "open document",
    0x31: "close document",
    0x32: "cancel document",
    0x33: "postpone document",
    0x42: "add item",
    0x44: "subtotal",
    0x47: "payment",
    0x58: "correction receipt",
    0x59: "settlement state report",
    0x60: "registration",
    0x63: "technological reset",
    0x67: "load PNG picture",
    0x71: "close FN",
    0x73: "print FN document",
    0x78: "FN query",
    0x80: "open cash drawer",
    0x81: "cash drawer state",
    0x82: "beep",
    0x91: "read memory block",
    0x93: "set serial speed",
    0x9C: "restart KKT",
    0xA0: "emergency shift close",
    0xA1: "reprint last Z report",
    0xA4: "emergency FN close",
    0xA6: "cabinet cash info",
    0xA7: "cabinet register info",
    0xA8: "set cabinet flag",
    0xA9: "read cabinet flag",
    0xAA: "Dreamkas key",
}


# --------------------------------------------------------------------------------------------
# Answer timeouts (§2.3)

#: Crystal's per-command read timeouts in seconds (§2.3, S5); every other command: DEFAULT_TIMEOUT
COMMAND_TIMEOUTS: dict[int, float] = {
    0x00: 1.5,
    0x21: 60.0,
    0x23: 60.0,
    0x31: 20.0,
    0x32: 20.0,
    0x59: 20.0,
    0x60: 60.0,
    0x78: 20.0,
    0x81: 5.0,
}
DEFAULT_TIMEOUT = 10.0
