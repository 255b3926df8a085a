"""Pirit data types (reference ``protocols.md`` §2.4): dates, times, money, quantities and
numeric answer fields, to and from the text of one field.

:func:`format_money` writes exactly two decimals and :func:`format_quantity` the shortest form
with at most three decimals (``1``, ``1.5``, ``0.125``).  Both refuse values that would need
rounding: a harness must not silently change the amounts it sends.  ``float`` is refused.
"""

from __future__ import annotations

import decimal
import re
from datetime import date, time
from decimal import Decimal

# --------------------------------------------------------------------------------------------
# Data types (§2.4)

_DIGITS = re.compile(r"[0-9]+")


def format_date(d: date) -> str:
    """``ddmmyy``."""
    return d.strftime("%d%m") + f"{d.year % 100:02d}"


def parse_date(s: str) -> date:
    """``ddmmyy`` (years 2000-2099) or ``ddmmyyyy`` (the manual's Date8)."""
    if not _DIGITS.fullmatch(s) or len(s) not in (6, 8):
        raise ValueError(f"not a ddmmyy / ddmmyyyy date: {s!r}")
    year = 2000 + int(s[4:6]) if len(s) == 6 else int(s[4:8])
    return date(year, int(s[2:4]), int(s[0:2]))


def format_time(t: time) -> str:
    """``hhmmss``."""
    return t.strftime("%H%M%S")


def parse_time(s: str) -> time:
    """``hhmmss``."""
    if not _DIGITS.fullmatch(s) or len(s) != 6:
        raise ValueError(f"not an hhmmss time: {s!r}")
    return time(int(s[0:2]), int(s[2:4]), int(s[4:6]))


def _exact(value: Decimal | int, places: int, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise TypeError(f"{what} must be a Decimal or int, got {type(value).__name__}")
    value = Decimal(value)
    if not value.is_finite():
        raise ValueError(f"{what} must be finite, got {value}")
    quantum = Decimal(1).scaleb(-places)
    try:
        quantized = value.quantize(quantum)
    except decimal.InvalidOperation as exc:
        raise ValueError(f"{what} out of range: {value}") from exc
    if quantized != value:
        raise ValueError(f"{what} {value} has more than {places} decimals; round it first")
    return quantized


def format_money(value: Decimal) -> str:
    """Exactly two decimals: ``Decimal("100")`` → ``"100.00"``.  Refuses values that would
    need rounding (``1.005``)."""
    return format(_exact(value, 2, "money"), "f")


def format_quantity(value: Decimal) -> str:
    """Shortest form with at most three decimals: ``1``, ``1.5``, ``0.125``.  Refuses values
    that would need rounding (``0.0001``)."""
    text = format(_exact(value, 3, "quantity"), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def parse_int(s: str) -> int:
    """A Pirit integer field: decimal digits, empty = 0."""
    return int(s) if s.strip() else 0


def parse_decimal(s: str) -> Decimal:
    """A Pirit fractional field: ``-``, digits, ``.``; empty = 0."""
    s = s.strip()
    if not s:
        return Decimal(0)
    if not re.fullmatch(r"-?[0-9]*\.?[0-9]+|-?[0-9]+\.", s):
        raise ValueError(f"not a decimal number: {s!r}")
    return Decimal(s)
