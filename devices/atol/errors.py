"""The one ATOL error table: protocol error codes (reference §3.7, §4) ↔ kinds and texts.

The driver reads the error byte of an answer and raises the matching
:class:`harness.errors.DeviceError`; the emulator goes the other way; the codec
(:mod:`devices.atol.protocol`) takes its texts from here for :func:`error_text`, the trace and
:data:`ATOL_ERRORS`.  Codes are decimal, as the answer byte carries them (``55 67 00`` is error
103, no paper).

Sources: the §3.7 table (S6, atol4j ``error-messages.properties``).  A few codes that the
reference table leaves out but the same S6 file lists (:data:`NOT_IN_REFERENCE_TABLE`) are used
where the reference has no dedicated code: 26 "report with clearing interrupted", 108 "wrong
register number" (91h), 114 "payments
less than the receipt total", 118 "previous operation not completed", 126 "bad payment type",
152 "no cash for the payout", 163 "bad report type".  Code 0 ("OK") is no error and has no kind,
so it is not in :data:`CODES`; :func:`error_text` and :data:`ATOL_ERRORS` still name it.

Choices on the reference's open points (all **[inferred]**, recorded here once):

* **shift closed** -- the protocol has no dedicated code (§3.7 note).  143 "register already
  cleared (repeat Z impossible)" is what a Z on a closed shift gets; the emulator answers 143 for
  every "shift must be open" refusal and the driver reads 143 as ``SHIFT_CLOSED``.
* **cover open** -- no dedicated code either (§4: "104 no link, 105 mechanical; 3Fh bit5
  cover").  The emulator answers 105; the driver reads the 3Fh cover bit after a 104/105 and
  reports ``COVER_OPEN`` when it is set (as the Pirit driver does after 0x09).
* **printout pending after the ФН commit** -- 118 "previous operation not completed"; 26 while
  the pending printout is an interrupted Z report.
* **wrong step inside a receipt** -- 114 on close (4Ah) when not fully paid; elsewhere 102 (the
  receipt's sub-mode does not take the command).  102 to E6h/99h/9Bh, which the driver sends only
  after entering mode 1 itself, is read as ``DOCUMENT_STATE``.
* **tax system not registered** -- the reference marks it [unclear] ("FN error 231 / receipt
  refused"): 231 "bad FN command parameters" on 92h.  **Nothing changed for re-registration**:
  231 on A6h.  Elsewhere 231 is ``BAD_PARAMETER``.
* **unknown command** -- 122 "model cannot do this" (the closest code, §4).
* **link-level faults** are not application codes in ATOL: a corrupted frame is answered with an
  empty v3 frame (retransmission request), and buffer statuses B1..B4 come before any code.  The
  driver raises :class:`~harness.errors.LinkError` for those; :data:`LINK_CODES` stays empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from harness.errors import ErrorKind as K

# code → (kind, vendor text); texts paraphrase S6 in English
CODES: dict[int, tuple[K, str]] = {
    8: (K.BAD_PARAMETER, "bad price"),
    10: (K.BAD_PARAMETER, "bad quantity"),
    19: (K.BAD_PARAMETER, "bad format"),
    20: (K.BAD_PARAMETER, "bad length"),
    22: (K.CLOCK_CONFIRM_REQUIRED, "date entry must be confirmed"),
    26: (K.PENDING_PRINT, "report with clearing (Z) interrupted"),
    30: (K.WRONG_MODE, "mode entry blocked"),
    31: (K.CLOCK_MISMATCH, "check date and time"),
    32: (K.CLOCK_BEHIND_LAST_DOCUMENT, "register date/time earlier than in the FN"),
    102: (K.WRONG_MODE, "not allowed in this mode"),
    103: (K.NO_PAPER, "no paper"),
    104: (K.PRINTER_NOT_READY, "no link with the receipt printer"),
    105: (K.PRINTER_NOT_READY, "printer mechanical error"),
    106: (K.BAD_PARAMETER, "bad receipt type"),
    108: (K.BAD_PARAMETER, "wrong register number"),
    114: (K.DOCUMENT_STATE, "payments less than the receipt total"),
    118: (K.PENDING_PRINT, "previous operation not completed"),
    122: (K.UNSUPPORTED, "model cannot do this"),
    126: (K.BAD_PARAMETER, "bad payment type"),
    128: (K.UNSUPPORTED, "forbidden by the settings table"),
    129: (K.BAD_PARAMETER, "receipt total overflow"),
    136: (K.SHIFT_EXPIRED, "shift exceeded 24 hours"),
    140: (K.WRONG_PASSWORD, "wrong password"),
    143: (K.SHIFT_CLOSED, "register already cleared (repeated Z impossible)"),
    152: (K.NOT_ENOUGH_CASH, "no cash in the register for the payout"),
    154: (K.DOCUMENT_NOT_OPEN, "receipt closed - operation impossible"),
    155: (K.DOCUMENT_OPEN, "receipt open - operation impossible"),
    156: (K.SHIFT_OPEN, "shift open - operation impossible"),
    159: (K.REGISTRATION_LIMIT, "re-registration limit exhausted"),
    163: (K.BAD_PARAMETER, "bad report type"),
    164: (K.WRONG_PASSWORD, "invalid (mode) password"),
    168: (K.NOT_REGISTERED, "register not fiscalised"),
    191: (K.FN_FAILURE, "shift numbers differ between register and FN"),
    208: (K.ALREADY_REGISTERED, "FN activation impossible in this register"),
    209: (K.PRINTER_NOT_READY, "print-head overheat"),
    210: (K.FN_MISSING, "FN exchange error (I2C) - FN missing or unreachable"),
    211: (K.FN_FAILURE, "FN transfer format error"),
    212: (K.FN_FAILURE, "wrong FN state"),
    213: (K.FN_FAILURE, "FN fatal error"),
    214: (K.FN_FAILURE, "FN crypto error"),
    215: (K.FN_EXPIRED, "FN lifetime expired"),
    216: (K.FN_FULL, "FN archive full"),
    217: (K.CLOCK_BEHIND_LAST_DOCUMENT, "wrong date/time sent to the FN"),
    218: (K.OTHER, "no requested data in the FN"),
    219: (K.BAD_PARAMETER, "FN total overflow"),
    231: (K.BAD_PARAMETER, "bad FN command parameters"),
    232: (K.BAD_PARAMETER, "TLV too large"),
    233: (K.OTHER, "no transport connection"),
    234: (K.FN_CRYPTO_EXHAUSTED, "FN crypto resource exhausted"),
    235: (K.OFD_STORAGE_FULL, "OFD document storage exhausted"),
    236: (K.OTHER, "OFD message rejected by the FN"),
    237: (K.UNSENT_DOCUMENTS, "unsent fiscal documents in the FN"),
    238: (K.OTHER, "read the extended error code from register 55"),
    239: (K.OFD_TIMEOUT, "OFD wait resource exhausted (30 days)"),
    240: (K.SHIFT_EXPIRED, "FN shift exceeded 24 hours"),
    241: (K.FN_TIMER_MISMATCH, "bad time difference between FN operations"),
    243: (K.BAD_PARAMETER, "too many positions"),
}

# application codes that mean "the link is broken" (none in ATOL: see the module docstring)
LINK_CODES: frozenset[int] = frozenset()

# (command, code) → kind, where the meaning depends on the command
COMMAND_OVERRIDES: dict[tuple[int, int], K] = {
    (0x92, 231): K.TAX_SYSTEM_NOT_REGISTERED,  # 1055 (written before 92h) not in the registration
    (0xA6, 231): K.NO_CHANGES,  # re-registration with the parameters already in force
    (0xE6, 102): K.DOCUMENT_STATE,  # item after payment: the receipt's sub-mode refuses
    (0x99, 102): K.DOCUMENT_STATE,
    (0x9B, 102): K.DOCUMENT_STATE,
}


# codes of CODES that the S6 file lists but the §3.7 reference table leaves out
NOT_IN_REFERENCE_TABLE: frozenset[int] = frozenset({26, 108, 114, 118, 126, 152, 163})

NO_ERROR_TEXT = "OK"  # code 0 (§3.7)


def error_text(code: int) -> str:
    """English text of an ATOL error code (``'unknown error N'`` if not in the table)."""
    if code == 0:
        return NO_ERROR_TEXT
    entry = CODES.get(code)
    return entry[1] if entry is not None else f"unknown error {code}"


text_of = error_text  # the name the driver and the emulator use

# the §3.7 reference table as code → text (0 "OK" included), derived from CODES
ATOL_ERRORS: Mapping[int, str] = MappingProxyType(
    {0: NO_ERROR_TEXT} | {code: text for code, (_, text) in CODES.items() if code not in NOT_IN_REFERENCE_TABLE}
)


def kind_of(command: int, code: int) -> tuple[K, str]:
    """Normalized kind and vendor text for an error answer to ``command``."""
    kind = CODES[code][0] if code in CODES else K.OTHER
    return COMMAND_OVERRIDES.get((command, code), kind), error_text(code)


# ------------------------------------------------------------------------- emulator direction

_EMULATOR: dict[K, int] = {
    K.NO_PAPER: 103,
    K.COVER_OPEN: 105,
    K.PRINTER_NOT_READY: 104,
    K.SHIFT_EXPIRED: 136,
    K.SHIFT_OPEN: 156,
    K.SHIFT_CLOSED: 143,
    K.DOCUMENT_OPEN: 155,
    K.DOCUMENT_NOT_OPEN: 154,
    K.DOCUMENT_STATE: 102,
    K.PENDING_PRINT: 118,
    K.FN_EXPIRED: 215,
    K.FN_FULL: 216,
    K.FN_MISSING: 210,
    K.FN_FAILURE: 213,
    K.FN_CRYPTO_EXHAUSTED: 234,
    K.FN_TIMER_MISMATCH: 241,
    K.OFD_TIMEOUT: 239,
    K.OFD_STORAGE_FULL: 235,
    K.UNSENT_DOCUMENTS: 237,
    K.TAX_SYSTEM_NOT_REGISTERED: 231,
    K.REGISTRATION_LIMIT: 159,
    K.NO_CHANGES: 231,
    K.NOT_REGISTERED: 168,
    K.ALREADY_REGISTERED: 208,
    K.CLOCK_BEHIND_LAST_DOCUMENT: 32,
    K.CLOCK_CONFIRM_REQUIRED: 22,
    K.CLOCK_MISMATCH: 31,
    K.NOT_INITIALISED: 102,
    K.NOT_ENOUGH_CASH: 152,
    K.WRONG_MODE: 102,
    K.WRONG_PASSWORD: 140,
    K.BAD_PARAMETER: 19,
    K.UNKNOWN_COMMAND: 122,
    K.DEVICE_BUSY: 102,
    K.FATAL: 213,
    K.UNSUPPORTED: 122,
    K.OTHER: 122,
}
# the ФН's own refusal where it has a code of its own (§3.6: 136 ККТ / 240 ФН, 32 ККТ / 217 ФН)
_EMULATOR_FN: dict[K, int] = {
    K.SHIFT_EXPIRED: 240,
    K.CLOCK_BEHIND_LAST_DOCUMENT: 217,
}
# (command, kind) → code where the command decides
_EMULATOR_COMMAND: dict[tuple[int, K], int] = {
    (0x4A, K.DOCUMENT_STATE): 114,  # close when not fully paid
}


def code_for(kind: K, *, source: str = "kkt", command: int | None = None, z_interrupted: bool = False) -> int:
    """The ATOL error code an emulated register answers for ``kind``.

    ``source`` is "fn" when the ФН itself refused; ``z_interrupted`` picks 26 for a pending
    printout that is an interrupted Z report.
    """
    if kind is K.PENDING_PRINT and z_interrupted:
        return 26
    if command is not None and (command, kind) in _EMULATOR_COMMAND:
        return _EMULATOR_COMMAND[(command, kind)]
    if source == "fn" and kind in _EMULATOR_FN:
        return _EMULATOR_FN[kind]
    return _EMULATOR[kind]
