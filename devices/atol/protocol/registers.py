"""Diagnostic reads of the application layer: 58h last shift totals, B3h last error, 91h registers.

Reference §3.5.3 gives 58h byte-exact (``'U' err income(7 BCD) expense(7 BCD)``, S6 and S8
agree) and 91h's request (``register(1) param1(1) param2(1)``; S6 sends two zero parameters
when none are given) with "register 55 = extended error code (read it after error 238)".  The
rest is thin, so the layouts below are fixed for driver and emulator alike:

* 91h answer: ``'U' err`` and the register's value right after the error byte, no reserved byte
  (S6 takes the value from byte 2 on; S8 reads its registers the same way).
* Registers S8 reads, with S8's field widths, all BCD: 10 cash in the drawer (7, money),
  17 date and time (3 + 3; YY MM DD like 3Fh **[inferred]** -- S8 only gives the widths),
  19 receipt state (1 + 1 + 2 + 4: S8 uses the third field as the receipt number; the others
  here are receipt state (0 closed / 92h type of the open one), shift state (0 closed, 1 open,
  2 expired), next receipt number, current shift number -- **[inferred]**), 22 device serial
  number (4, like 3Fh offset 10).
* Register 3, the shift's payments in receipts: param1 the receipt type (92h: 1 приход,
  2 возврат прихода, 4 расход, 5 возврат расхода), param2 the payment type; 7 BCD money.  The
  register and its two parameters are a cash application's (libfptr 8 ``RegisterNumber 3``,
  "сумма платежей": receipt type and payment type, Unact/kkm); the payment type codes are 99h's
  (1 cash .. 5 other) and the width is register 10's **[inferred]**.
* Register 6, the shift's receipts of a type: param1 the receipt type as for register 3, param2
  0; 5 BCD.  **[inferred]** -- number, meaning and width: the reference names no register of
  receipt counts; this one is fixed here for driver and emulator alike.
* Register 55 **[inferred]**: ``error(1) extended(2 LE)`` -- the ATOL code of the last command
  and its extended code (0: none).
* B3h **[inferred]**: ``'U' 00 error(1) command(1)`` -- the last command's ATOL error code and
  the command byte it answered.
* An unknown register is error 108 "wrong register number" (S6's error table).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum
from typing import Final

from ._base import CodecError, check_byte, need
from .numbers import (
    bcd_date,
    bcd_time,
    encode_bcd_date,
    encode_bcd_time,
    from_bcd,
    from_le,
    money_from_bcd,
    money_to_bcd,
    to_bcd,
    to_le,
)


class Register(IntEnum):
    """91h register numbers the codec knows."""

    PAYMENTS = 3
    """Shift payments by receipt type (param1) and payment type (param2), 7 BCD (see module doc)."""
    RECEIPT_COUNT = 6
    """Shift receipts of a receipt type (param1), 5 BCD ([inferred], see module doc)."""
    CASH = 10
    """Cash in the drawer, 7 BCD (S8)."""
    DATETIME = 17
    """Date YY MM DD + time hh mm ss, BCD (S8 widths; field order [inferred])."""
    RECEIPT_STATE = 19
    """Receipt/shift state, 1 + 1 + 2 + 4 BCD (S8 widths; fields beyond the receipt number [inferred])."""
    SERIAL = 22
    """Device serial number, 4 BCD (S8)."""
    EXTENDED_ERROR = 55
    """The extended error of the last command (§3.5.3; layout [inferred])."""


REGISTER_PARAMS: Final = frozenset({Register.PAYMENTS, Register.RECEIPT_COUNT})
"""The registers that take parameters (the others: param1 = param2 = 0)."""
PAYMENTS_WIDTH: Final = 7
RECEIPT_COUNT_WIDTH: Final = 5

WRONG_REGISTER: Final = 108
"""S6: "wrong register number" -- the answer to a register the device does not have."""


def encode_read_register(register: int, param1: int = 0, param2: int = 0) -> bytes:
    """91h parameters: ``register param1 param2``."""
    return bytes(
        [check_byte(int(register), "register"), check_byte(param1, "register param1"), check_byte(param2, "param2")]
    )


@dataclass(frozen=True)
class ReadRegister:
    """A decoded 91h request (what the emulator receives)."""

    register: int
    param1: int = 0
    param2: int = 0

    @classmethod
    def decode(cls, params: bytes) -> ReadRegister:
        params = bytes(params)
        need(params, 1, "91h register")
        if len(params) > 3:
            raise CodecError(f"91h takes register(1) param1(1) param2(1), got {len(params)} bytes")
        padded = params + bytes(3 - len(params))
        return cls(padded[0], padded[1], padded[2])


@dataclass(frozen=True)
class LastShiftTotals:
    """58h answer data: the shift totals of income (приход) and expense (расход), 7 BCD each."""

    income: Decimal = Decimal("0.00")
    expense: Decimal = Decimal("0.00")

    def encode(self) -> bytes:
        return money_to_bcd(self.income, 7) + money_to_bcd(self.expense, 7)

    @classmethod
    def decode(cls, data: bytes) -> LastShiftTotals:
        data = bytes(data)
        need(data, 14, "58h last shift totals")
        return cls(money_from_bcd(data[0:7]), money_from_bcd(data[7:14]))


@dataclass(frozen=True)
class LastError:
    """B3h answer data [inferred]: the last command's error code and its command byte."""

    error: int = 0
    command: int = 0

    def encode(self) -> bytes:
        return bytes([check_byte(self.error, "error"), check_byte(self.command, "command")])

    @classmethod
    def decode(cls, data: bytes) -> LastError:
        data = bytes(data)
        need(data, 2, "B3h last error")
        return cls(data[0], data[1])


@dataclass(frozen=True)
class ExtendedError:
    """Register 55 [inferred]: the last command's ATOL error code and its extended code."""

    error: int = 0
    extended: int = 0

    def encode(self) -> bytes:
        return bytes([check_byte(self.error, "error")]) + to_le(self.extended, 2)

    @classmethod
    def decode(cls, data: bytes) -> ExtendedError:
        data = bytes(data)
        need(data, 3, "register 55")
        return cls(data[0], from_le(data[1:3]))


@dataclass(frozen=True)
class ReceiptStateRegister:
    """Register 19: receipt state, shift state, next receipt number, shift number (see module doc)."""

    receipt_state: int = 0
    shift_state: int = 0
    receipt_number: int = 0
    shift_number: int = 0

    def encode(self) -> bytes:
        return (
            to_bcd(self.receipt_state, 1)
            + to_bcd(self.shift_state, 1)
            + to_bcd(self.receipt_number, 2)
            + to_bcd(self.shift_number, 4)
        )

    @classmethod
    def decode(cls, data: bytes) -> ReceiptStateRegister:
        data = bytes(data)
        need(data, 8, "register 19")
        return cls(from_bcd(data[0:1]), from_bcd(data[1:2]), from_bcd(data[2:4]), from_bcd(data[4:8]))


def encode_datetime_register(value: _dt.datetime) -> bytes:
    """Register 17: ``YY MM DD hh mm ss`` BCD."""
    return encode_bcd_date(value.date()) + encode_bcd_time(value.time().replace(microsecond=0))


def decode_datetime_register(data: bytes) -> _dt.datetime:
    data = bytes(data)
    need(data, 6, "register 17")
    return _dt.datetime.combine(bcd_date(data[0:3]), bcd_time(data[3:6]))
