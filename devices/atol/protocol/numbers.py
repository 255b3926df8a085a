"""Numbers, dates and text of the application layer (reference §3.5 "Numbers", §3.1 text encoding).

BCD big-endian fixed-width integers, binary little-endian integers, money (2 implied decimals)
and quantities (3), CP866 text, and the BCD (3Fh, 64h/4Bh) and binary (A4h) date/time helpers
the typed answers and parameters share.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal, InvalidOperation
from typing import Final

from ._base import CodecError, hex_text


def to_bcd(value: int, width: int) -> bytes:
    """Packed BCD, big-endian, exactly ``width`` bytes (``to_bcd(1234, 3)`` -> ``00 12 34``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise CodecError(f"BCD value must be an int, got {value!r}")
    if width < 0:
        raise CodecError(f"negative BCD width {width}")
    if value < 0 or value >= 10 ** (2 * width):
        raise CodecError(f"{value} does not fit in {width} BCD byte(s)")
    digits = f"{int(value):0{2 * width}d}"
    return bytes(int(digits[i : i + 2], 16) for i in range(0, len(digits), 2))


def from_bcd(data: bytes) -> int:
    """Decode packed big-endian BCD; a nibble above 9 raises :class:`CodecError`."""
    value = 0
    for byte in data:
        high, low = byte >> 4, byte & 0x0F
        if high > 9 or low > 9:
            raise CodecError(f"invalid BCD byte 0x{byte:02X} in {bytes(data).hex(' ')}")
        value = value * 100 + high * 10 + low
    return value


def to_le(value: int, width: int, *, signed: bool = False) -> bytes:
    """Little-endian binary integer of exactly ``width`` bytes."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise CodecError(f"integer expected, got {value!r}")
    try:
        return value.to_bytes(width, "little", signed=signed)
    except (OverflowError, ValueError) as exc:
        raise CodecError(f"{value} does not fit in {width} byte(s)") from exc


def from_le(data: bytes, *, signed: bool = False) -> int:
    """Little-endian binary integer."""
    return int.from_bytes(data, "little", signed=signed)


def _scaled(amount: Decimal | int | str, decimals: int) -> int:
    """``amount`` * 10**decimals as an exact non-negative int (no silent rounding)."""
    if isinstance(amount, (bool, float)) or not isinstance(amount, (Decimal, int, str)):
        raise CodecError(f"use Decimal, int or str for amounts, not {type(amount).__name__}")
    try:
        value = Decimal(amount)
    except InvalidOperation as exc:
        raise CodecError(f"not a number: {amount!r}") from exc
    if not value.is_finite():
        raise CodecError(f"not a finite amount: {amount!r}")
    scaled = value.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise CodecError(f"{amount} has more than {decimals} decimal place(s)")
    if scaled < 0:
        raise CodecError(f"negative amount {amount} cannot be BCD-encoded")
    return int(scaled)


def money_to_bcd(amount: Decimal | int | str, width: int = 5, decimals: int = 2) -> bytes:
    """Money as BCD with ``decimals`` implied decimals (100 -> ``00 00 01 00 00``)."""
    return to_bcd(_scaled(amount, decimals), width)


def money_from_bcd(data: bytes, decimals: int = 2) -> Decimal:
    """Inverse of :func:`money_to_bcd`; the result carries ``decimals`` places."""
    return Decimal(from_bcd(data)).scaleb(-decimals)


def quantity_to_bcd(quantity: Decimal | int | str, width: int = 5) -> bytes:
    """Quantity as BCD with 3 implied decimals (``1`` -> ``00 00 00 10 00``)."""
    return to_bcd(_scaled(quantity, 3), width)


def quantity_from_bcd(data: bytes) -> Decimal:
    """Inverse of :func:`quantity_to_bcd`."""
    return Decimal(from_bcd(data)).scaleb(-3)


TEXT_ENCODING: Final = "cp866"


def encode_text(text: str, width: int | None = None, *, fill: int = 0x00, truncate: bool = False) -> bytes:
    """CP866 text; with ``width`` a fixed-width field padded on the right with ``fill``.

    Text longer than ``width`` raises unless ``truncate`` is set.  Characters CP866 lacks raise.
    """
    try:
        raw = text.encode(TEXT_ENCODING)
    except UnicodeEncodeError as exc:
        raise CodecError(f"text not representable in CP866: {text!r}") from exc
    if width is None:
        return raw
    if len(raw) > width:
        if not truncate:
            raise CodecError(f"text of {len(raw)} bytes does not fit a {width}-byte field")
        raw = raw[:width]
    return raw + bytes([fill]) * (width - len(raw))


def decode_text(data: bytes, *, strip: bool = True) -> str:
    """CP866 text; with ``strip`` trailing NUL and space padding is removed."""
    text = bytes(data).decode(TEXT_ENCODING)
    return text.rstrip("\x00 ") if strip else text


# ------------------------------------------------------------------------------------------------
# Dates and times: BCD (3Fh, 64h/4Bh/EDh) and binary (A4h, FN format)
# ------------------------------------------------------------------------------------------------


def bcd_date(data: bytes) -> _dt.date:
    """BCD ``YY MM DD`` (20YY)."""
    try:
        return _dt.date(2000 + from_bcd(data[0:1]), from_bcd(data[1:2]), from_bcd(data[2:3]))
    except ValueError as exc:
        raise CodecError(f"invalid BCD date {hex_text(data)}") from exc


def bcd_time(data: bytes) -> _dt.time:
    try:
        return _dt.time(from_bcd(data[0:1]), from_bcd(data[1:2]), from_bcd(data[2:3]))
    except ValueError as exc:
        raise CodecError(f"invalid BCD time {hex_text(data)}") from exc


def year2(year: int) -> int:
    if not 2000 <= year <= 2099:
        raise CodecError(f"year {year} outside 2000..2099")
    return year - 2000


def encode_bcd_date(value: _dt.date) -> bytes:
    return to_bcd(year2(value.year), 1) + to_bcd(value.month, 1) + to_bcd(value.day, 1)


def encode_bcd_time(value: _dt.time) -> bytes:
    return to_bcd(value.hour, 1) + to_bcd(value.minute, 1) + to_bcd(value.second, 1)


def bin_date(data: bytes) -> _dt.date | None:
    """Binary ``YY MM DD``; all zeros -> None."""
    if not any(data[:3]):
        return None
    try:
        return _dt.date(2000 + data[0], data[1], data[2])
    except ValueError as exc:
        raise CodecError(f"invalid binary date {hex_text(data[:3])}") from exc


def encode_bin_date(value: _dt.date | None) -> bytes:
    if value is None:
        return bytes(3)
    return bytes([year2(value.year), value.month, value.day])


def bin_datetime(data: bytes) -> _dt.datetime | None:
    """Binary ``YY MM DD hh mm`` (FN format); all zeros -> None."""
    if not any(data[:5]):
        return None
    try:
        return _dt.datetime(2000 + data[0], data[1], data[2], data[3], data[4])
    except ValueError as exc:
        raise CodecError(f"invalid binary date-time {hex_text(data[:5])}") from exc


def encode_bin_datetime(value: _dt.datetime | None) -> bytes:
    if value is None:
        return bytes(5)
    return bytes([year2(value.year), value.month, value.day, value.hour, value.minute])
