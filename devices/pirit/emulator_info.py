"""The Pirit emulator's request fields and its information requests (0x01 shift counters, 0x02
device information, 0x03 receipt data, 0x78 ФН queries), answered from the fiscal core.

A mixin of :class:`~devices.pirit.emulator.PiritFrontEnd`; a parameter the device cannot parse
is a :class:`ParamError` (answered 0x03 with its extended code).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation

from harness.device import DocumentKind, ReceiptKind
from harness.fiscal import FFD_CODES

from ..emulator.core import FiscalCore
from .protocol import (
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


class ParamError(ValueError):
    """A request parameter the device cannot parse: answered 0x03 with an extended code."""

    def __init__(self, text: str, extended: int = 0) -> None:
        super().__init__(text)
        self.extended = extended


class InfoQueries:
    core: FiscalCore

    # -------------------------------------------------------------------------- helpers

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

    # -------------------------------------------------------------------------- information

    def _device_info(self, request: Request) -> list[Field]:
        core = self.core
        n = self._int(request, 0, -1)
        last = core.last_fd()
        registration = core.last_registration()
        answers: dict[int, Callable[[], list[Field]]] = {
            1: lambda: [core.serial],
            2: lambda: [core.profile.firmware_id],
            3: lambda: [core.fn.inn],
            4: lambda: [core.fn.rnm],
            5: lambda: self._date_time(last.at),
            6: lambda: self._date_time(registration.at),
            7: lambda: [format_money(core.cash.quantize(Decimal("0.01")))],
            8: lambda: [last.number + 1],
            14: lambda: [
                format_date(core.fn_valid_until()),
                max(0, (core.fn_valid_until() - core.now().date()).days),
            ],
            15: lambda: [0],
            16: lambda: [1 if core.profile.model_code in range(1, 5) else 0],
            17: lambda: self._date_time(core.shift.opened_at if core.shift.is_open else None),
            21: lambda: [core.profile.model_code],
            23: lambda: [int(core.fn.tax_systems), core.fn.work_mode, 0],
            70: lambda: [core.firmware],
        }
        if n not in answers:
            raise ParamError(f"0x02 sub-request {n} not supported")
        return [n, *answers[n]()]

    def _shift_counters(self, request: Request) -> list[Field]:
        n = self._int(request, 0, -1)
        shift = self.core.shift
        if n == 1:
            return [n, shift.number]
        if n == 2:
            return [n, shift.receipts + 1]
        raise ParamError(f"0x01 sub-request {n} not supported")

    def _receipt_data(self, request: Request) -> list[Field]:
        n = self._int(request, 0, -1)
        core = self.core
        if n == 1:
            doc = core.document
            total = doc.total if doc else Decimal(0)
            return [n, format_money(total.quantize(Decimal("0.01")))]
        if n == 2:
            receipts = [d for d in core.fn.archive if d.receipt_kind is not None]
            if not receipts:
                return [n, 0, 0, 0, 0, "0.00", "0.00", 0, "", 0]
            d = receipts[-1]
            return [
                n,
                TYPE_BY_RECEIPT.get(d.receipt_kind or ReceiptKind.SALE, 2),
                d.number,
                d.number_in_shift or 0,
                d.number,
                format_money(d.total) if d.total is not None else "0.00",
                "0.00",
                0,
                d.fiscal_sign,
                d.number,
            ]
        raise ParamError(f"0x03 sub-request {n} not supported")

    def _fn_query(self, request: Request) -> list[Field]:
        core = self.core
        n = self._int(request, 0, -1)
        last = core.last_fd()
        registration = core.last_registration()
        if n == 1:
            return [n, core.fn.serial]
        if n == 2:
            state = int(core.fn.phase) | ((1 << 5) if core.shift.is_open else 0)
            return [n, state, core.fn_current_document(), int(core.fn_warnings())]
        if n == 3:
            return [n, last.number]
        if n == 4:
            return [n, *self._date_time(registration.at)]
        if n == 5:
            return [n, registration.number]
        if n == 6:
            return [n, core.shift.number, 1 if core.shift.is_open else 0, core.shift.receipts + 1]
        if n == 7:
            queue = core.unsent()
            status = (1 if core.ofd_online else 0) | ((1 << 1) if queue else 0)
            if not queue:
                return [n, status, 0, 0, "000000", "000000"]
            return [n, status, len(queue), queue[0].number, *self._date_time(queue[0].at)]
        if n == 14:
            return [n, "fn-emulator 1.0", 1, ffd_code(core.fn.ffd), core.firmware, ffd_code(core.profile.ffd)]
        if n == 19:
            return [n, registration.number, registration.fiscal_sign, *self._date_time(registration.at)]
        if n in (20, 21):
            return [n, *self._registration_tlv(self._int(request, 1, 0))]
        if n == 22:
            return [n, ffd_code(core.fn.ffd), 4]
        raise ParamError(f"0x78 sub-request {n} not supported")

    def _registration_tlv(self, index: int) -> list[Field]:
        """0x78/20: the ``index``-th registration of this ФН (1 = the registration at activation):
        its kind (1 registration, 11 re-registration) and its FD number as a 1040 TLV, in hex.
        Beyond the registrations done: 0x03 [inferred: the manual names no code for "no such
        registration"]."""
        core = self.core
        if not 1 <= index <= core.fn.registrations_done:
            raise ParamError(f"0x78/20: no registration {index} on this ФН ({core.fn.registrations_done} done)")
        documents = [d for d in core.fn.archive if d.kind in (DocumentKind.REGISTRATION, DocumentKind.REREGISTRATION)]
        # the archive may hold only the last of them (a prepared ФН): number the known ones from the end
        known = index - (core.fn.registrations_done - len(documents)) - 1
        number = documents[known].number if 0 <= known < len(documents) else 0
        kind = 1 if index == 1 else 11
        return [
            kind,
            (1040).to_bytes(2, "little").hex() + (4).to_bytes(2, "little").hex() + number.to_bytes(4, "little").hex(),
        ]


def ffd_code(ffd: str) -> int:
    """Tag 1209 code of an FFD name; an unknown name answers as FFD 1.05, the common default."""
    return FFD_CODES.get(ffd, FFD_CODES["1.05"])
