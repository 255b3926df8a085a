"""Request parameters of the application layer (reference §3.5.5 fiscal operations).

The sale path (56h :class:`EnterMode`, 92h :class:`OpenReceipt`, E6h :class:`Position`, 99h
:class:`Payment` / :class:`PaymentResult`, 4Ah :class:`CloseReceipt`), FN requisites as TLVs
(E8h :class:`WriteRequisite`, E9h :class:`ReadRequisite`, :class:`Tag`), re-registration (A6h
:class:`Registration`) and date/time (64h / 4Bh / EDh).  The requisite, A6h and EDh layouts and
:class:`TaxType` are this project's **[inferred]** choices.  FFD version codes (tag 1209) are
the shared vocabulary's: ``harness.fiscal.FFD_CODES``.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum
from typing import Final, Self

from ._base import CodecError, check_byte, hex_text, need
from .commands import PaymentType, ReceiptType
from .numbers import (
    bcd_time,
    decode_text,
    encode_bcd_time,
    encode_text,
    from_bcd,
    from_le,
    money_from_bcd,
    money_to_bcd,
    quantity_from_bcd,
    quantity_to_bcd,
    to_bcd,
    to_le,
    year2,
)

# --- request parameters of the sale path ---------------------------------------------------------


@dataclass(frozen=True)
class EnterMode:
    """56h parameters: mode(1), mode password (4 bytes BCD)."""

    mode: int
    password: int = 0

    def encode(self) -> bytes:
        return bytes([check_byte(self.mode, "mode")]) + to_bcd(self.password, 4)

    @classmethod
    def decode(cls, params: bytes) -> EnterMode:
        params = bytes(params)
        need(params, 5, "56h enter mode")
        return cls(params[0], from_bcd(params[1:5]))


@dataclass(frozen=True)
class OpenReceipt:
    """92h parameters: flags(1) (bit0 test mode), receipt type(1)."""

    receipt_type: int = ReceiptType.SALE
    flags: int = 0

    def encode(self) -> bytes:
        return bytes([check_byte(self.flags, "flags"), check_byte(self.receipt_type, "receipt type")])

    @classmethod
    def decode(cls, params: bytes) -> OpenReceipt:
        params = bytes(params)
        need(params, 2, "92h open receipt")
        return cls(params[1], params[0])


POSITION_NAME_WIDTH: Final = 64
POSITION_TEXT_WIDTH: Final = 16
POSITION_PARAMS_SIZE: Final = 103


@dataclass(frozen=True)
class Position:
    """E6h parameters (FFD 1.05 register position, 103 bytes, layout per S7/atol4j).

    ``flags``: bit0 check only, bit1 do not check cash.  ``discount_type``: 0 percent, 1 sum;
    ``discount_sign``: 0 discount, 1 markup.  The name is CP866, zero-padded to 64 bytes.
    """

    name: str
    price: Decimal
    quantity: Decimal = Decimal(1)
    flags: int = 0
    discount_type: int = 1
    discount_sign: int = 0
    discount: Decimal = Decimal(0)
    tax: int = 0
    section: int = 0
    text: bytes = bytes(POSITION_TEXT_WIDTH)

    @property
    def amount(self) -> Decimal:
        """price x quantity, rounded to kopecks (half-up)."""
        return (self.price * self.quantity).quantize(Decimal("0.01"), "ROUND_HALF_UP")

    def encode(self) -> bytes:
        if len(self.text) > POSITION_TEXT_WIDTH:
            raise CodecError(f"position text longer than {POSITION_TEXT_WIDTH} bytes")
        return (
            bytes([check_byte(self.flags, "flags")])
            + encode_text(self.name, POSITION_NAME_WIDTH)
            + money_to_bcd(self.price, 6)
            + quantity_to_bcd(self.quantity, 5)
            + bytes([check_byte(self.discount_type, "discount type"), check_byte(self.discount_sign, "discount sign")])
            + money_to_bcd(self.discount, 6)
            + bytes([check_byte(self.tax, "tax"), check_byte(self.section, "section")])
            + bytes(self.text).ljust(POSITION_TEXT_WIDTH, b"\x00")
            + b"\x00"
        )

    @classmethod
    def decode(cls, params: bytes) -> Position:
        p = bytes(params)
        need(p, POSITION_PARAMS_SIZE, "E6h register position")
        return cls(
            name=decode_text(p[1:65]),
            price=money_from_bcd(p[65:71]),
            quantity=quantity_from_bcd(p[71:76]),
            flags=p[0],
            discount_type=p[76],
            discount_sign=p[77],
            discount=money_from_bcd(p[78:84]),
            tax=p[84],
            section=p[85],
            text=p[86:102],
        )


@dataclass(frozen=True)
class _TypedSum:
    """flags(1), payment type(1), sum (5 bytes BCD): the layout 99h and 4Ah share."""

    payment_type: int = PaymentType.CASH
    amount: Decimal = Decimal(0)
    flags: int = 0
    _what = ""

    def encode(self) -> bytes:
        return bytes([check_byte(self.flags, "flags"), check_byte(self.payment_type, "payment type")]) + money_to_bcd(
            self.amount, 5
        )

    @classmethod
    def decode(cls, params: bytes) -> Self:
        params = bytes(params)
        need(params, 7, cls._what)
        return cls(params[1], money_from_bcd(params[2:7]), params[0])


@dataclass(frozen=True)
class Payment(_TypedSum):
    """99h parameters: flags(1), payment type(1), sum (5 bytes BCD)."""

    _what = "99h payment"


@dataclass(frozen=True)
class PaymentResult:
    """99h answer data (after ``'U' err``): remainder to pay, change (5 bytes BCD each)."""

    remainder: Decimal = Decimal(0)
    change: Decimal = Decimal(0)

    def encode(self) -> bytes:
        return money_to_bcd(self.remainder, 5) + money_to_bcd(self.change, 5)

    @classmethod
    def decode(cls, data: bytes) -> PaymentResult:
        data = bytes(data)
        need(data, 10, "99h payment answer")
        return cls(money_from_bcd(data[0:5]), money_from_bcd(data[5:10]))


@dataclass(frozen=True)
class CloseReceipt(_TypedSum):
    """4Ah parameters: flags(1), payment type(1), sum (5 bytes BCD)."""

    _what = "4Ah close receipt"


# --- requisites (E8h / E9h), re-registration (A6h), date and time (64h / 4Bh / EDh) ----------------
#
# The reference gives E8h/E9h parameters only in outline and no A6h layout at all (§3.5.5:
# "parameters for FFD 1.05+ are written as requisites before the call [inferred]").  The layouts
# below are this project's [inferred] choices; the emulator and the driver share them.


class Tag(IntEnum):
    """FFD requisite tags the stand writes (E8h) or reads (E9h)."""

    KKT_SERIAL = 1013
    INN = 1018
    CASHIER = 1021
    RNM = 1037
    FN_SERIAL = 1041
    RECEIPT_TAX_SYSTEM = 1055
    TAX_SYSTEMS = 1062
    REREG_REASON = 1101
    """FFD 1.05 single reason code (4 = change of ККТ settings)."""
    REREG_REASONS = 1205
    """FFD 1.1/1.2 reason bit mask (bit 7 = change of the tax-system list)."""
    FFD_VERSION = 1209
    """1 = 1.0, 2 = 1.05, 3 = 1.1, 4 = 1.2."""


def encode_tlv(tag: int, value: bytes) -> bytes:
    """FN-style TLV: tag (2 bytes LE), length (2 bytes LE), value."""
    value = bytes(value)
    if not 0 <= int(tag) <= 0xFFFF:
        raise CodecError(f"TLV tag {tag} out of range")
    return to_le(int(tag), 2) + to_le(len(value), 2) + value


def decode_tlvs(data: bytes) -> list[tuple[int, bytes]]:
    """All TLVs in ``data``; a truncated header or value raises :class:`CodecError`."""
    data = bytes(data)
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 4:
            raise CodecError(f"truncated TLV header at offset {pos}: {hex_text(data[pos:])}")
        tag, size = from_le(data[pos : pos + 2]), from_le(data[pos + 2 : pos + 4])
        if len(data) - pos - 4 < size:
            raise CodecError(f"TLV {tag} claims {size} bytes, {len(data) - pos - 4} left")
        out.append((tag, data[pos + 4 : pos + 4 + size]))
        pos += 4 + size
    return out


@dataclass(frozen=True)
class WriteRequisite:
    """E8h parameters: flags(1), block count(1), block number(1), data (TLVs) [inferred]."""

    data: bytes
    flags: int = 0
    blocks: int = 1
    block: int = 0

    def encode(self) -> bytes:
        return bytes(
            [
                check_byte(self.flags, "flags"),
                check_byte(self.blocks, "block count"),
                check_byte(self.block, "block number"),
            ]
        ) + bytes(self.data)

    @classmethod
    def decode(cls, params: bytes) -> WriteRequisite:
        params = bytes(params)
        need(params, 3, "E8h write requisite")
        return cls(params[3:], params[0], params[1], params[2])


@dataclass(frozen=True)
class ReadRequisite:
    """E9h parameters: tag (2 bytes LE), block number(1) [inferred byte order]."""

    tag: int
    block: int = 0

    def encode(self) -> bytes:
        return to_le(int(self.tag), 2) + bytes([check_byte(self.block, "block number")])

    @classmethod
    def decode(cls, params: bytes) -> ReadRequisite:
        params = bytes(params)
        need(params, 2, "E9h read requisite")
        return cls(from_le(params[0:2]), params[2] if len(params) > 2 else 0)


class TaxType(IntEnum):
    """E6h tax byte.  [inferred]: libfptr's LIBFPTR_TAX_* numbering (S11-style constant tables)."""

    DEPARTMENT = 0
    VAT18 = 1
    VAT10 = 2
    VAT118 = 3
    VAT110 = 4
    VAT0 = 5
    NONE = 6
    VAT20 = 7
    VAT120 = 8


class RegistrationKind(IntEnum):
    """First A6h parameter byte [inferred]."""

    REGISTRATION = 1
    CHANGE_PARAMETERS = 2
    """Re-registration without ФН replacement (e.g. a new tax-system list)."""
    FN_REPLACEMENT = 3


@dataclass(frozen=True)
class Registration:
    """A6h parameters [inferred]: kind(1), then optionally the tax-system mask (1062) directly.

    Without the mask the register takes 1062 as last written with E8h (and keeps the registered
    list when none was written).  The reason (1205 / 1101) is written with E8h beforehand.
    """

    kind: int = RegistrationKind.CHANGE_PARAMETERS
    tax_systems: int | None = None

    def encode(self) -> bytes:
        out = bytes([check_byte(self.kind, "registration kind")])
        if self.tax_systems is not None:
            out += bytes([check_byte(self.tax_systems, "tax systems")])
        return out

    @classmethod
    def decode(cls, params: bytes) -> Registration:
        params = bytes(params)
        need(params, 1, "A6h registration")
        return cls(params[0], params[1] if len(params) > 1 else None)


def encode_date_params(value: _dt.date) -> bytes:
    """64h parameters: DD MM YY (BCD)."""
    return to_bcd(value.day, 1) + to_bcd(value.month, 1) + to_bcd(year2(value.year), 1)


def decode_date_params(params: bytes) -> _dt.date:
    params = bytes(params)
    need(params, 3, "64h date")
    try:
        return _dt.date(2000 + from_bcd(params[2:3]), from_bcd(params[1:2]), from_bcd(params[0:1]))
    except ValueError as exc:
        raise CodecError(f"invalid date {hex_text(params[:3])}") from exc


def encode_time_params(value: _dt.time) -> bytes:
    """4Bh parameters: hh mm ss (BCD)."""
    return encode_bcd_time(value)


def decode_time_params(params: bytes) -> _dt.time:
    params = bytes(params)
    need(params, 3, "4Bh time")
    return bcd_time(params[:3])


def encode_datetime_params(value: _dt.datetime) -> bytes:
    """EDh parameters: DD MM YY hh mm ss, one BCD byte each [inferred: BCD like 64h/4Bh]."""
    return encode_date_params(value.date()) + encode_time_params(value.time())


def decode_datetime_params(params: bytes) -> _dt.datetime:
    params = bytes(params)
    need(params, 6, "EDh date and time")
    return _dt.datetime.combine(decode_date_params(params[:3]), decode_time_params(params[3:6]))
