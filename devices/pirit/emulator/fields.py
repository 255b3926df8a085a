"""What every Pirit command handler shares: reading request fields, writing answer values, the
:class:`ParamError` a field the device cannot parse raises (answered 0x03 with its extended
code), and :func:`handles`, which binds a handler method to its command code.

The front-end (:mod:`.frontend`) is one class made of mixins, one per group of commands
(:mod:`.status`, :mod:`.info`, :mod:`.fn_queries`, :mod:`.shift`, :mod:`.documents`,
:mod:`.registration`, :mod:`.service`, :mod:`.marking`); each handler is marked
``@handles(0xNN)`` and the front-end finds them all.  A handler takes the :class:`Request` and
returns the answer fields (after the error code); it raises :class:`ParamError` or the core's
``CoreError`` to refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from harness.device import ReceiptKind
from harness.fiscal import FFD_CODES

from ...emulator.core import FiscalCore
from ..protocol import (
    Field,
    Request,
    format_date,
    format_money,
    format_time,
    parse_date,
    parse_decimal,
    parse_int,
    parse_time,
)

RECEIPT_BY_TYPE = {
    2: ReceiptKind.SALE,
    3: ReceiptKind.SALE_RETURN,
    6: ReceiptKind.PURCHASE,
    7: ReceiptKind.PURCHASE_RETURN,
}
TYPE_BY_RECEIPT = {v: k for k, v in RECEIPT_BY_TYPE.items()}

H = TypeVar("H", bound=Callable[..., Any])


def handles(code: int) -> Callable[[H], H]:
    """Mark a front-end method as the handler of Pirit command ``code``."""

    def mark(method: H) -> H:
        method.pirit_command = code  # type: ignore[attr-defined]
        return method

    return mark


def handlers_of(cls: type) -> dict[int, str]:
    """Command code → method name, for every ``@handles`` method of ``cls`` and its bases."""
    found: dict[int, str] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            code = getattr(value, "pirit_command", None)
            if code is not None:
                found[code] = name
    return found


class ParamError(ValueError):
    """A request parameter the device cannot parse: answered 0x03 with an extended code."""

    def __init__(self, text: str, extended: int = 0) -> None:
        super().__init__(text)
        self.extended = extended


class UnknownSub(ParamError):
    """A sub-request number the handler does not serve (answered 0x03 like any bad parameter).
    Every handler of a command with sub-requests raises it, and only it, for a number it does
    not know: the conformance table (devices/conformance.py) finds the served ones by it."""

    def __init__(self, command: int, number: int) -> None:
        super().__init__(f"0x{command:02X} sub-request {number} not supported")
        self.command = command
        self.number = number


def money(value: Decimal) -> str:
    """An answer's money field: two decimals."""
    return format_money(value.quantize(Decimal("0.01")))


def ffd_code(ffd: str) -> int:
    """Tag 1209 code of an FFD name; an unknown name answers as FFD 1.05, the common default."""
    return FFD_CODES.get(ffd, FFD_CODES["1.05"])


class Fields:
    """Request-field readers and answer-value writers of the handler mixins."""

    core: FiscalCore

    @property
    def ffd12(self) -> bool:
        """The firmware works in FFD 1.2 (answer layouts and commands differ, see the catalogue)."""
        return self.core.profile.ffd == "1.2"

    @staticmethod
    def _field(request: Request, index: int, default: str = "") -> str:
        return request.fields[index] if index < len(request.fields) else default

    def _int(self, request: Request, index: int, default: int = 0, extended: int = 0) -> int:
        raw = self._field(request, index)
        if raw.strip() == "":
            return default
        try:
            return parse_int(raw)
        except ValueError:
            raise ParamError(f"field {index + 1}: not an integer: {raw!r}", extended) from None

    def _decimal(self, request: Request, index: int, extended: int = 0) -> Decimal:
        raw = self._field(request, index)
        try:
            return parse_decimal(raw)
        except (ValueError, InvalidOperation):
            raise ParamError(f"field {index + 1}: not a number: {raw!r}", extended) from None

    def _datetime(self, request: Request, first: int) -> datetime:
        try:
            day = parse_date(self._field(request, first))
            moment = parse_time(self._field(request, first + 1))
        except ValueError:
            raise ParamError("bad date/time", 39) from None
        return datetime.combine(day, moment)

    @staticmethod
    def _date_time(value: datetime | None) -> list[Field]:
        if value is None:
            return ["000000", "000000"]
        return [format_date(value.date()), format_time(value.time())]

    @staticmethod
    def _date(value: datetime | None) -> list[Field]:
        return ["000000" if value is None else format_date(value.date())]
