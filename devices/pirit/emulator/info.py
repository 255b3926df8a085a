"""Information requests answered from the fiscal core: 0x01 shift counters and registers, 0x02
device information, 0x03 receipt data, 0x05 service information (reference §2.5.3–§2.5.5; the
manual's tables for each edition)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from harness.device import ReceiptKind

from ..protocol import Field, Request, format_date, format_money
from .fields import TYPE_BY_RECEIPT, Fields, ParamError, handles


class InfoQueries(Fields):
    # -------------------------------------------------------------------------- information

    @handles(0x02)
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
            6: lambda: self._date(registration.at),  # a date only (every edition's table)
            7: lambda: [format_money(core.cash.quantize(Decimal("0.01")))],
            8: lambda: [last.number + 1],
            14: lambda: [  # FFD 1.2 editions add the days left
                format_date(core.fn_valid_until()),
                *([max(0, (core.fn_valid_until() - core.now().date()).days)] if self.ffd12 else []),
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

    @handles(0x01)
    def _shift_counters(self, request: Request) -> list[Field]:
        n = self._int(request, 0, -1)
        shift = self.core.shift
        if n == 1:
            return [n, shift.number]
        if n == 2:
            return [n, shift.receipts + 1]
        raise ParamError(f"0x01 sub-request {n} not supported")

    @handles(0x03)
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
