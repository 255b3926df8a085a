"""Application layer, requests and answer envelopes (reference §3.5; T5 timeouts §3.4).

Command bytes and the enums of their fields (:class:`Cmd`, :class:`FnQuery`, :class:`Mode` ...),
per-command answer timeouts, the request ``password | code | params``
(:func:`encode_command` / :func:`decode_command`) and the answer forms 'U' / 'D' / 'M' / A5h
(:func:`parse_answer`).  The typed contents live in :mod:`.answers` and :mod:`.params`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Final

from ..errors import error_text
from ._base import CodecError, check_byte, hex_text, need
from .numbers import from_bcd, to_bcd


class Cmd(IntEnum):
    """Application-layer command bytes."""

    STATUS = 0x3F
    DISCOUNT = 0x43
    STATE = 0x45
    EXIT_MODE = 0x48
    CASH_IN = 0x49
    CLOSE_RECEIPT = 0x4A
    SET_TIME = 0x4B
    CASH_IN_DRAWER = 0x4D
    CASH_OUT = 0x4F
    ENTER_MODE = 0x56
    LAST_SHIFT_TOTALS = 0x58
    CANCEL_RECEIPT = 0x59
    Z_REPORT = 0x5A
    SET_DATE = 0x64
    X_REPORT = 0x67
    TECH_RESET = 0x6B
    INIT_TABLES = 0x71
    GENERAL_RESET = 0x77
    READ_REGISTER = 0x91
    OPEN_RECEIPT = 0x92
    REPRINT_LAST = 0x95
    CLEAR_LAST_DOCUMENT = 0x97
    PAYMENT = 0x99
    OPEN_SHIFT = 0x9A
    PAYMENT_STORNO = 0x9B
    FIRMWARE = 0x9D
    FN = 0xA4
    DEVICE_TYPE = 0xA5
    REGISTRATION = 0xA6
    CLOSE_ARCHIVE = 0xA7
    PRINT_REGISTRATION_TOTALS = 0xA8
    PRINT_FN_DOCUMENT = 0xAB
    LAST_ERROR = 0xB3
    RECEIPT_TAX = 0xB8
    POWER = 0xCE
    """Sub-command 41h reboots, 00h powers off."""
    REGISTER_POSITION = 0xE6
    WRITE_REQUISITE = 0xE8
    READ_REQUISITE = 0xE9
    SET_DATETIME = 0xED
    REPRINT_REPORT = 0xEE


class FnQuery(IntEnum):
    """Sub-commands of A4h (first parameter byte)."""

    SHIFT = 0x10
    OFD_EXCHANGE = 0x20
    STATUS = 0x30
    NUMBER = 0x31
    VALIDITY = 0x32
    VERSION = 0x33
    ERRORS = 0x35
    REGISTRATION = 0x43
    """[inferred] registration totals, see :class:`RegistrationTotals`."""
    UNCONFIRMED_COUNT = 0x42


class Mode(IntEnum):
    """Low nibble of the mode byte (high nibble = sub-mode)."""

    SELECT = 0
    REGISTRATION = 1
    X_REPORT = 2
    Z_REPORT = 3
    PROGRAMMING = 4
    FISCAL_MEMORY = 5
    FN = 6


class ReceiptType(IntEnum):
    """92h receipt types; also the 3Fh receipt-state byte (0 = no receipt open)."""

    SALE = 1
    SALE_RETURN = 2
    EXPENSE = 4
    EXPENSE_RETURN = 5
    CORRECTION_SALE = 7
    CORRECTION_EXPENSE = 9
    CORRECTION_OTHER = 10
    """Listed among the correction types by the reference; which correction it is is [not found]."""


class PaymentType(IntEnum):
    """99h / 4Ah payment type byte."""

    CASH = 1
    ELECTRONIC = 2
    PREPAID = 3
    CREDIT = 4
    OTHER = 5


class Interface(IntEnum):
    """3Fh offset 29."""

    RS232 = 1
    USB = 4
    BLUETOOTH = 5
    ETHERNET = 6
    WIFI = 7


class ShiftState(IntEnum):
    """A4h/10h shift state; EXPIRED is plausible but [not confirmed]."""

    CLOSED = 0
    OPEN = 1
    EXPIRED = 2


class FnPhase(IntEnum):
    """A4h/30h FN life phase."""

    SETUP = 0x00
    READY = 0x01
    FISCAL = 0x03
    POST_FISCAL = 0x07
    ARCHIVE = 0x0F


class NumberEncoding(StrEnum):
    """How A4h/10h encodes its 2-byte numbers ([conflict] in the reference)."""

    BINARY_LE = "binary-le"  # S7
    BCD_LE = "bcd-le"  # atol4j: BCD digits, low byte first
    BCD_BE = "bcd-be"


NUMBER_ENCODINGS: Final[dict[str, NumberEncoding]] = {
    "binary": NumberEncoding.BINARY_LE,
    "bcd": NumberEncoding.BCD_LE,
}
"""The A4h/10h encodings by their setting names (``atol_a4_10_encoding``): S7's binary LE and
atol4j's BCD (low byte first)."""


DEFAULT_TIMEOUT: Final = 10.0
COMMAND_TIMEOUTS: Final[dict[int, float]] = {
    0x6B: 10.0,
    0x8D: 20.0,
    0x8E: 20.0,
    Cmd.CLOSE_ARCHIVE: 20.0,
    Cmd.CLOSE_RECEIPT: 20.0,
    Cmd.Z_REPORT: 40.0,
    Cmd.READ_REGISTER: 45.0,
    Cmd.REGISTRATION: 50.0,
    Cmd.REGISTER_POSITION: 50.0,
    0xEA: 50.0,
    0xEB: 50.0,
    Cmd.PRINT_REGISTRATION_TOTALS: 120.0,
    Cmd.PRINT_FN_DOCUMENT: 120.0,
}
"""Per-command answer timeout T5 in seconds (§3.4); others use :data:`DEFAULT_TIMEOUT`."""


def answer_timeout(code: int) -> float:
    """T5 for a command byte, in seconds (unscaled)."""
    return COMMAND_TIMEOUTS.get(int(code), DEFAULT_TIMEOUT)


# ------------------------------------------------------------------------------------------------
# Application layer: requests and answers
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandRequest:
    """A decoded task: access password, command byte, raw parameters."""

    password: int
    code: int
    params: bytes = b""

    def encode(self) -> bytes:
        return encode_command(self.code, self.params, self.password)


def encode_command(code: int, params: bytes = b"", password: int = 0) -> bytes:
    """``password (2 BCD) | code | params`` -- the task carried by ADD or a v2 frame."""
    return to_bcd(password, 2) + bytes([check_byte(int(code), "command code")]) + bytes(params)


def decode_command(task: bytes) -> CommandRequest:
    """Inverse of :func:`encode_command` (what an emulator receives)."""
    task = bytes(task)
    need(task, 3, "command")
    return CommandRequest(from_bcd(task[:2]), task[2], task[3:])


class AnswerForm(StrEnum):
    """Layout of an answer payload."""

    U = "U"  # 'U' err data...
    D = "D"  # 'D' + status block (3Fh)
    M = "M"  # 'M' + cash sum (4Dh)
    A5 = "A5"  # err data... (A5h)


NO_ERROR_BYTE_COMMANDS: Final = frozenset({Cmd.STATE})
"""Commands whose 'U' answer has no error byte (45h answers ``'U' mode flags``)."""

_FORM_LEAD: Final = {AnswerForm.U: 0x55, AnswerForm.D: 0x44, AnswerForm.M: 0x4D}


@dataclass(frozen=True)
class Answer:
    """An application-layer answer.  ``data`` is what follows the error byte (or the lead byte)."""

    form: AnswerForm
    error: int = 0
    data: bytes = b""

    @property
    def ok(self) -> bool:
        return self.error == 0

    @property
    def error_text(self) -> str:
        return error_text(self.error)

    def encode(self, command: int | None = None) -> bytes:
        """Bytes of this answer to ``command`` (needed only to drop 45h's missing error byte)."""
        if self.form == AnswerForm.A5:
            return bytes([check_byte(self.error, "error")]) + self.data
        lead = bytes([_FORM_LEAD[AnswerForm(self.form)]])
        if self.form == AnswerForm.U and command not in NO_ERROR_BYTE_COMMANDS:
            return lead + bytes([check_byte(self.error, "error")]) + self.data
        if self.error:
            raise CodecError(f"a {self.form} answer to {command!r} has no error byte")
        return lead + self.data


def parse_answer(payload: bytes, command: int | None = None) -> Answer:
    """Split an answer payload into form, error and data.

    ``command`` is the command byte that was sent: A5h answers start with the error code, 45h's
    'U' answer has no error byte, 3Fh answers 'D' (or 'U' err on failure), 4Dh answers 'M'.
    """
    payload = bytes(payload)
    if not payload:
        raise CodecError("empty answer")
    if command == Cmd.DEVICE_TYPE:
        return Answer(AnswerForm.A5, payload[0], payload[1:])
    lead = payload[0]
    if lead == 0x55:
        if command in NO_ERROR_BYTE_COMMANDS:
            return Answer(AnswerForm.U, 0, payload[1:])
        need(payload, 2, "'U' answer")
        return Answer(AnswerForm.U, payload[1], payload[2:])
    if lead == 0x44 and command in (None, Cmd.STATUS):
        return Answer(AnswerForm.D, 0, payload[1:])
    if lead == 0x4D and command in (None, Cmd.CASH_IN_DRAWER):
        return Answer(AnswerForm.M, 0, payload[1:])
    raise CodecError(f"unexpected answer to {cmd_name(command)}: {hex_text(payload)}")


def mode_byte(mode: int, submode: int) -> int:
    """Mode byte: low nibble mode, high nibble sub-mode (3Fh, 45h)."""
    if not (0 <= mode <= 0x0F and 0 <= submode <= 0x0F):
        raise CodecError(f"mode {mode} / sub-mode {submode} must be nibbles")
    return (submode << 4) | mode


def cmd_name(code: int | None) -> str:
    """``"3Fh STATUS"`` for a known command byte, ``"D1h"`` otherwise (errors and trace)."""
    if code is None:
        return "unknown command"
    try:
        return f"{code:02X}h {Cmd(code).name}"
    except ValueError:
        return f"{code:02X}h"
