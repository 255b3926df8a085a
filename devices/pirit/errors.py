"""Pirit error codes (reference §2.7) and extended codes (§2.5.6) ↔ normalized error kinds.

The driver reads a code (and, for 0x01/0x03, the extended code from 0x06/1) and raises the
matching :class:`harness.errors.DeviceError`; the emulator goes the other way.  A few codes mean
different things for different commands (0x0A on 0x14 is "repeat to confirm", elsewhere "shift
longer than 24 h"): :data:`COMMAND_OVERRIDES` holds those.
"""

from __future__ import annotations

from harness.errors import ErrorKind as K

# code → (kind, vendor text); texts paraphrase the manual in English
CODES: dict[int, tuple[K, str]] = {
    0x01: (K.OTHER, "function impossible in the current state"),
    0x02: (K.UNKNOWN_COMMAND, "unknown command code"),
    0x03: (K.BAD_PARAMETER, "bad format or parameter"),
    0x04: (K.OTHER, "communication buffer overflow"),
    0x05: (K.OTHER, "inter-byte timeout"),
    0x06: (K.WRONG_PASSWORD, "wrong protocol password"),
    0x07: (K.OTHER, "CRC error in the command"),
    0x08: (K.NO_PAPER, "end of paper"),
    0x09: (K.PRINTER_NOT_READY, "printer not ready"),
    0x0A: (K.SHIFT_EXPIRED, "shift longer than 24 h"),
    0x0B: (K.CLOCK_MISMATCH, "clock differs from host by more than 8 min"),
    0x0C: (K.CLOCK_BEHIND_LAST_DOCUMENT, "date earlier than the last fiscal operation"),
    0x0D: (K.WRONG_PASSWORD, "wrong fiscal memory access password"),
    0x0E: (K.NOT_ENOUGH_CASH, "negative result"),
    0x0F: (K.SHIFT_OPEN, "shift must be closed for this command"),
    0x10: (K.OTHER, "no data in journal"),
    0x11: (K.PRINTER_NOT_READY, "control tape error"),
    0x12: (K.OTHER, "error sending data to the OFD"),
    0x13: (K.FATAL, "critical update error"),
    0x20: (K.FATAL, "fatal KKT error"),
    0x41: (K.BAD_PARAMETER, "bad FN command format or parameter"),
    0x42: (K.FN_FAILURE, "wrong FN state"),
    0x43: (K.FN_FAILURE, "FN error: replace the FN"),
    0x44: (K.FN_FAILURE, "FN crypto-coprocessor error"),
    0x45: (K.FN_EXPIRED, "FN validity period expired"),
    0x46: (K.FN_FULL, "FN full"),
    0x47: (K.FN_TIMER_MISMATCH, "wrong date/time in FN"),
    0x48: (K.OTHER, "requested data not in FN"),
    0x49: (K.BAD_PARAMETER, "bad FN command parameter values"),
    0x4A: (K.UNKNOWN_COMMAND, "bad FN command"),
    0x4B: (K.BAD_PARAMETER, "KKT sent data the FN must generate itself"),
    0x4C: (K.BAD_PARAMETER, "KKT sent data already present in the document"),
    0x4D: (K.BAD_PARAMETER, "data required for FN accounting missing"),
    0x4E: (K.BAD_PARAMETER, "too many positions in the document"),
    0x50: (K.BAD_PARAMETER, "TLV too large"),
    0x51: (K.OTHER, "no transport connection"),
    0x52: (K.FN_CRYPTO_EXHAUSTED, "crypto resource exhausted"),
    0x54: (K.OFD_STORAGE_FULL, "30-day storage for OFD documents exhausted"),
    0x55: (K.OFD_TIMEOUT, "oldest unsent message waits more than 30 days"),
    0x56: (K.SHIFT_EXPIRED, "FN shift longer than 24 h"),
    0x57: (K.FN_TIMER_MISMATCH, "time difference inconsistent with the FN timer"),
    0x58: (K.BAD_PARAMETER, "bad requisite passed to FN"),
    0x59: (K.TAX_SYSTEM_NOT_REGISTERED, "requisite does not match registration settings"),
    0x60: (K.OTHER, "bad message from the OFD"),
    0x61: (K.FN_MISSING, "no connection with FN"),
    0x62: (K.FN_FAILURE, "FN exchange error"),
    0x63: (K.BAD_PARAMETER, "command too long for FN"),
    0x64: (K.OTHER, "marking: key update service error"),
    0x72: (K.OTHER, "marking forbidden"),
    0x73: (K.OTHER, "marking: order violated"),
    0x74: (K.DEVICE_BUSY, "marking: temporarily blocked"),
    0x75: (K.OTHER, "marking code table full"),
    0x7C: (K.BAD_PARAMETER, "missing TLV requisites"),
    0x7E: (K.OTHER, "unverified marking code"),
}

# codes that are about the link, not the product: the driver raises LinkError for them
LINK_CODES = frozenset({0x04, 0x05, 0x07})

# extended code (0x06/1) → (kind, vendor text)
EXTENDED: dict[int, tuple[K, str]] = {
    1: (K.NOT_INITIALISED, "start of work not called"),
    2: (K.WRONG_MODE, "non-fiscal mode"),
    3: (K.FN_FAILURE, "FN archive closed"),
    4: (K.NOT_REGISTERED, "FN not registered"),
    5: (K.ALREADY_REGISTERED, "FN already registered"),
    7: (K.NO_CHANGES, "nothing changed for re-registration"),
    8: (K.DOCUMENT_NOT_OPEN, "document not open"),
    9: (K.DOCUMENT_OPEN, "previous document not closed"),
    11: (K.DOCUMENT_STATE, "wrong document state"),
    12: (K.DOCUMENT_STATE, "wrong document state"),
    13: (K.DOCUMENT_STATE, "wrong document state"),
    14: (K.DOCUMENT_STATE, "wrong document state"),
    15: (K.PENDING_PRINT, "document closed in FN"),
    20: (K.SHIFT_CLOSED, "shift not open"),
    21: (K.FATAL, "FN fatal error"),
    26: (K.BAD_PARAMETER, "zero receipt total"),
    33: (K.BAD_PARAMETER, "operator name missing"),
    34: (K.UNSENT_DOCUMENTS, "there are documents not sent to the OFD"),
    37: (K.BAD_PARAMETER, "wrong registration number"),
    38: (K.REGISTRATION_LIMIT, "registration data cannot be changed"),
    39: (K.BAD_PARAMETER, "bad date/time"),
    43: (K.TAX_SYSTEM_NOT_REGISTERED, "bad tax system parameter"),
    46: (K.BAD_PARAMETER, "bad quantity"),
    47: (K.BAD_PARAMETER, "bad price"),
    48: (K.BAD_PARAMETER, "bad tax rate number"),
    55: (K.BAD_PARAMETER, "bad payment type"),
    60: (K.BAD_PARAMETER, "bad INN"),
    61: (K.BAD_PARAMETER, "bad work mode"),
    63: (K.BAD_PARAMETER, "bad FFD version"),
    88: (K.UNSUPPORTED, "firmware must be updated for FFD 1.2"),
}

# (command, code) or (command, 0x100 + extended) → kind, where the meaning depends on the command
COMMAND_OVERRIDES: dict[tuple[int, int], K] = {
    (0x14, 0x0A): K.CLOCK_CONFIRM_REQUIRED,  # date more than 24 h ahead: repeat to confirm
    (0x60, 0x100 + 43): K.BAD_PARAMETER,  # a bad tax-system mask in a registration
}


def kind_of(command: int, code: int, extended: int | None = None) -> tuple[K, str]:
    """Normalized kind and vendor text for an error answer."""
    if extended is not None and code in (0x01, 0x03):
        override = COMMAND_OVERRIDES.get((command, 0x100 + extended))
        kind, text = EXTENDED.get(extended, CODES[code])
        return (override or kind), text
    override = COMMAND_OVERRIDES.get((command, code))
    kind, text = CODES.get(code, (K.OTHER, f"unknown error code {code:#04x}"))
    return (override or kind), text


# ------------------------------------------------------------------------- emulator direction

# kind → (code, extended or None); source "fn" picks the ФН-side code where one exists
_EMULATOR: dict[K, tuple[int, int | None]] = {
    K.NO_PAPER: (0x08, None),
    K.COVER_OPEN: (0x09, None),
    K.PRINTER_NOT_READY: (0x09, None),
    K.SHIFT_EXPIRED: (0x0A, None),
    K.SHIFT_OPEN: (0x0F, None),
    K.SHIFT_CLOSED: (0x01, 20),
    K.DOCUMENT_OPEN: (0x01, 9),
    K.DOCUMENT_NOT_OPEN: (0x01, 8),
    K.DOCUMENT_STATE: (0x01, 11),
    K.PENDING_PRINT: (0x01, 15),
    K.FN_EXPIRED: (0x45, None),
    K.FN_FULL: (0x46, None),
    K.FN_MISSING: (0x61, None),
    K.FN_FAILURE: (0x43, None),
    K.FN_CRYPTO_EXHAUSTED: (0x52, None),
    K.FN_TIMER_MISMATCH: (0x57, None),
    K.OFD_TIMEOUT: (0x55, None),
    K.OFD_STORAGE_FULL: (0x54, None),
    K.UNSENT_DOCUMENTS: (0x01, 34),
    K.TAX_SYSTEM_NOT_REGISTERED: (0x03, 43),
    K.REGISTRATION_LIMIT: (0x01, 38),
    K.NO_CHANGES: (0x01, 7),
    K.NOT_REGISTERED: (0x01, 4),
    K.ALREADY_REGISTERED: (0x01, 5),
    K.CLOCK_BEHIND_LAST_DOCUMENT: (0x0C, None),
    K.CLOCK_CONFIRM_REQUIRED: (0x0A, None),
    K.CLOCK_MISMATCH: (0x0B, None),
    K.NOT_INITIALISED: (0x01, 1),
    K.NOT_ENOUGH_CASH: (0x0E, None),
    K.WRONG_MODE: (0x01, 2),
    K.WRONG_PASSWORD: (0x06, None),
    K.BAD_PARAMETER: (0x03, None),
    K.UNKNOWN_COMMAND: (0x02, None),
    K.DEVICE_BUSY: (0x01, None),
    K.FATAL: (0x20, None),
    K.UNSUPPORTED: (0x02, None),
    K.OTHER: (0x01, None),
}
_EMULATOR_FN: dict[K, tuple[int, int | None]] = {
    K.SHIFT_EXPIRED: (0x56, None),
    K.TAX_SYSTEM_NOT_REGISTERED: (0x59, None),
}


def code_for(kind: K, *, source: str = "kkt") -> tuple[int, int | None]:
    """The Pirit (code, extended code) an emulated device answers for ``kind``."""
    if source == "fn" and kind in _EMULATOR_FN:
        return _EMULATOR_FN[kind]
    return _EMULATOR[kind]
