"""0x01, the shift's counters and registers (reference §2.5.4; the manual's table of 0x01), read
from the fiscal core, and the sums by payment type and tax rate that 0x78/23 shares.

What a shift counts is the core's (:meth:`~devices.emulator.cashdesk.CashDesk.shift_totals`):
the receipts of the current shift, or of the last closed one until a new shift opens — a Z
report leaves them readable, the next shift starts from zero.  Annulled and postponed receipts
and cash in/out are the core's :class:`~devices.emulator.records.Shift` counts; the last X/Z
report's data is ``counters.last_report``.

Layouts, after the echoed sub-request number:

* 3, 5, 16, 17: 16 sums by payment type (0x47 field 1: 0 cash, 1 electronic, 13 prepaid,
  14 credit, 15 other; 2..12 are types the emulator does not take: always 0);
* 4, 6: 16 counts of receipts paid with each type;
* 10, 11: 6 tax sums by rate, in the settings table 40 order 0 НДС 20%, 1 НДС 10%, 2 НДС 0%,
  3 без НДС, 4 20/120, 5 10/110 (the 0x42 field 5 index); the core's rates are 0..3, so 4 and 5
  are always 0;
* 13, 14: 16 sums by department (section 1..16).  The core keeps no departments: the whole
  turnover is department 1's (the first value), the rest 0 [inferred: a register whose items
  name no section books them to the first one];
* 9: discounts on sales, 0, discounts on returns, 0: always 0 [inferred: the core's archive
  keeps no discount, and the emulator takes none (0x45 is not emulated)];
* 18: FFD 1.05 editions count + 2 sums (cash, electronic), FFD 1.2 count + 5 sums (cash,
  electronic, prepaid, credit, other): the corrections of every settlement sign together
  [inferred: the manual does not split them by sign].
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from enum import Enum

from harness.device import ReceiptKind

from ...emulator.cashdesk import KindTotals, Totals
from ...emulator.records import Document
from ..protocol import Field, Request
from .documents import PAYMENT_BY_INDEX, VAT_BY_INDEX
from .fields import Fields, UnknownSub, handles, money

PAYMENT_TYPES = 16
TAX_RATES = 6
DEPARTMENTS = 16
ZERO = Decimal(0)
# 0x01/12: the last X or Z report's figures, in the manual's order (keys of report_figures)
REPORT_FIELDS = (
    ("operations", str),
    ("document", int),
    ("cash", Decimal),
    ("sales", int),
    ("sales_sum", Decimal),
    ("returns", int),
    ("returns_sum", Decimal),
    ("cancelled", int),
    ("cancelled_sum", Decimal),
    ("cash_in", int),
    ("cash_in_sum", Decimal),
    ("cash_out", int),
    ("cash_out_sum", Decimal),
)


def _by_index(values: dict[str, Decimal], table: dict[int, Enum], size: int) -> list[Field]:
    return [money(values.get(table[i].value, ZERO)) if i in table else "0.00" for i in range(size)]


def payment_sums(totals: KindTotals) -> list[Field]:
    """16 sums by payment type index."""
    return _by_index(totals.payments, dict(PAYMENT_BY_INDEX), PAYMENT_TYPES)


def payment_counts(totals: KindTotals) -> list[Field]:
    """16 counts of receipts paid with each payment type index."""
    counts = totals.payment_counts
    return [counts.get(PAYMENT_BY_INDEX[i].value, 0) if i in PAYMENT_BY_INDEX else 0 for i in range(PAYMENT_TYPES)]


def tax_sums(totals: KindTotals) -> list[Field]:
    """6 tax sums by the settings table 40 rate index."""
    return _by_index(totals.taxes, dict(VAT_BY_INDEX), TAX_RATES)


def department_sums(totals: KindTotals) -> list[Field]:
    """16 sums by department: everything in department 1 (the core has no departments)."""
    return [money(totals.total), *["0.00"] * (DEPARTMENTS - 1)]


def kind_totals(documents: Iterable[Document]) -> KindTotals:
    result = KindTotals()
    for doc in documents:
        result.add(doc)
    return result


def report_data(figures: dict[str, str]) -> list[Field]:
    """0x01/12 from ``counters.last_report`` (zeros before the first X or Z report)."""
    values: list[Field] = []
    for key, kind in REPORT_FIELDS:
        raw = figures.get(key, "0")
        if kind is Decimal:
            values.append(money(Decimal(raw)))
        elif kind is int:
            values.append(int(raw))
        else:
            values.append(raw)
    return values


class CounterQueries(Fields):
    @handles(0x01)
    def _shift_counters(self, request: Request) -> list[Field]:
        n = self._int(request, 0, -1)
        core = self.core
        shift = core.shift
        totals: Totals = core.shift_totals()
        sales = totals.receipts[ReceiptKind.SALE]
        returns = totals.receipts[ReceiptKind.SALE_RETURN]
        purchases = totals.receipts[ReceiptKind.PURCHASE]
        purchase_returns = totals.receipts[ReceiptKind.PURCHASE_RETURN]
        answers: dict[int, Callable[[], list[Field]]] = {
            1: lambda: [shift.number],
            2: lambda: [shift.receipts + 1],
            3: lambda: payment_sums(sales),
            4: lambda: payment_counts(sales),
            5: lambda: payment_sums(returns),
            6: lambda: payment_counts(returns),
            7: lambda: [sales.count, returns.count, shift.cancelled, shift.postponed, shift.cash_in, shift.cash_out],
            8: lambda: [
                money(shift.cancelled_sum),
                money(shift.postponed_sum),
                money(shift.cash_in_sum),
                money(shift.cash_out_sum),
            ],
            9: lambda: ["0.00", "0.00", "0.00", "0.00"],
            10: lambda: tax_sums(sales),
            11: lambda: tax_sums(returns),
            12: lambda: report_data(core.counters.last_report),
            13: lambda: department_sums(sales),
            14: lambda: department_sums(returns),
            15: lambda: [purchases.count, purchase_returns.count],
            16: lambda: payment_sums(purchases),
            17: lambda: payment_sums(purchase_returns),
            18: lambda: self._corrections(totals.corrections),
        }
        if n not in answers:
            raise UnknownSub(0x01, n)
        return [n, *answers[n]()]

    def _corrections(self, corrections: KindTotals) -> list[Field]:
        """0x01/18: the count, then the sums by payment form (2 in FFD 1.05, 5 in FFD 1.2)."""
        sums = payment_sums(corrections)
        return [corrections.count, *(sums[0], sums[1], *sums[13:16])] if self.ffd12 else [corrections.count, *sums[:2]]
