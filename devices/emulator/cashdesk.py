"""The cash desk beyond the receipt: non-fiscal documents (service text, cash in, cash out), the
drawer's cash, the report on the current state of settlements (form 21), and the counters and
totals a shift report and the information requests read.

Counters are derived wherever the ФН archive holds the truth (receipts and corrections of a
shift by kind, payment form and tax rate; grand totals), and kept in :class:`~.records.Shift`
where it does not (annulled and postponed receipts, cash in and out: nothing of them reaches the
ФН).  A shift opening resets the kept ones; a Z report leaves them to be read until then
(domain-rules R3: a shift's counters are the shift's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from harness.device import DocumentKind, PaymentKind, ReceiptKind, TaxSystem
from harness.errors import ErrorKind

from .printing import Printing
from .records import CUT, CoreError, Document, DocumentForm, OpenDocument, locked
from .rules import FiscalRules

RECEIPT_FORMS = (DocumentKind.RECEIPT, DocumentKind.CORRECTION)
NONFISCAL_TITLES = {DocumentForm.SERVICE: "", DocumentForm.CASH_IN: "ВНЕСЕНИЕ", DocumentForm.CASH_OUT: "ИЗЪЯТИЕ"}


@dataclass
class KindTotals:
    """One kind of receipt over a span (a shift, or the ФН's life)."""

    count: int = 0
    total: Decimal = Decimal(0)
    payments: dict[str, Decimal] = field(default_factory=dict)  # PaymentKind value → amount
    payment_counts: dict[str, int] = field(default_factory=dict)  # PaymentKind value → receipts paid so
    taxes: dict[str, Decimal] = field(default_factory=dict)  # Vat value → tax

    def add(self, doc: Document) -> None:
        self.count += 1
        self.total += doc.total or Decimal(0)
        for kind, amount in doc.payments.items():
            self.payments[kind] = self.payments.get(kind, Decimal(0)) + amount
            self.payment_counts[kind] = self.payment_counts.get(kind, 0) + 1
        for vat, tax in doc.taxes.items():
            self.taxes[vat] = self.taxes.get(vat, Decimal(0)) + tax


@dataclass
class Totals:
    """Receipts by kind and corrections, as a shift report or the grand totals count them."""

    receipts: dict[ReceiptKind, KindTotals] = field(default_factory=lambda: {k: KindTotals() for k in ReceiptKind})
    corrections: KindTotals = field(default_factory=KindTotals)


class CashDesk(FiscalRules, Printing):
    # provided by FiscalCore (Receipts comes first in its bases, so these never run)
    def _commit(self, kind: DocumentKind) -> Document:
        raise NotImplementedError

    def close_receipt(self) -> Document:
        raise NotImplementedError

    # ------------------------------------------------------------------ counters

    def totals(self, *, shift: int | None = None) -> Totals:
        """Receipts and corrections of shift ``shift`` (None: of the whole ФН archive).

        Seeded defects on a shift's totals: ``shift_counters_not_reset`` (the shift's totals go on
        from the earlier shifts: counted from the first shift) and ``return_adds_to_shift_total``
        (a return receipt lands in the sales)."""
        result = Totals()
        carry_on = shift is not None and self.has_defect("shift_counters_not_reset")
        returns_as_sales = shift is not None and self.has_defect("return_adds_to_shift_total")
        for doc in self.fn.archive:
            if doc.kind not in RECEIPT_FORMS or doc.receipt_kind is None:
                continue
            if shift is not None and doc.shift_number != shift and not (carry_on and (doc.shift_number or 0) < shift):
                continue
            kind = doc.receipt_kind
            if returns_as_sales and kind == ReceiptKind.SALE_RETURN:
                kind = ReceiptKind.SALE
            (result.corrections if doc.correction else result.receipts[kind]).add(doc)
        return result

    def shift_totals(self) -> Totals:
        """The current (or last closed) shift's receipts and corrections."""
        return self.totals(shift=self.shift.number)

    # ------------------------------------------------------------------ non-fiscal documents

    @locked
    def open_nonfiscal(self, form: DocumentForm, cashier: str = "") -> None:
        """A service document (text only) or a cash in/out document: never in the ФН."""
        if form.fiscal:
            raise ValueError(f"{form.value} is a fiscal form: open_receipt opens it")
        self._require_ready()
        if self.document is not None:
            raise CoreError(ErrorKind.DOCUMENT_OPEN, "a document is already open")
        self._require_no_pending()
        if form is not DocumentForm.SERVICE and not self.shift.is_open:
            raise CoreError(ErrorKind.SHIFT_CLOSED, "cash in/out needs an open shift")
        self._require_printer()
        self.document = OpenDocument(kind=ReceiptKind.SALE, tax_system=TaxSystem(0), cashier=cashier, form=form)
        self.log(f"{form.value} opened", cashier)

    @locked
    def add_text(self, line: str) -> None:
        """A line of text printed inside the open document (service text, a receipt's free text)."""
        self._require_ready()
        doc = self.current_document()
        doc.text.append(line)

    @locked
    def cash_move(self, amount: Decimal, note: str = "") -> None:
        """An amount put into (cash-in document) or taken out of (cash-out document) the drawer."""
        self._require_ready()
        doc = self.current_document()
        if doc.form not in (DocumentForm.CASH_IN, DocumentForm.CASH_OUT):
            raise CoreError(ErrorKind.DOCUMENT_STATE, f"no cash in/out in a {doc.form.value} document")
        if amount <= 0:
            raise CoreError(ErrorKind.BAD_PARAMETER, f"bad amount {amount}")
        if doc.form is DocumentForm.CASH_OUT and doc.total + amount > self.cash:
            raise CoreError(ErrorKind.NOT_ENOUGH_CASH, f"the drawer holds {self.cash}, not {doc.total + amount}")
        doc.total += amount
        doc.text.append(f"{note}  {amount}" if note else f"{amount}")

    @locked
    def close_document(self) -> Document | None:
        """Close the open document: a receipt goes into the ФН (returned); a non-fiscal one
        (service, cash in/out) is only printed and counted (None)."""
        if self.pending is None and self.document is not None and not self.document.form.fiscal:
            self._require_ready()
            self.close_nonfiscal()
            return None
        return self.close_receipt()

    def close_nonfiscal(self) -> None:
        """Close a non-fiscal document (called by ``close_document`` with the lock held)."""
        doc = self.current_document()
        self._require_printer()
        if doc.form is DocumentForm.CASH_IN:
            self.cash += doc.total
            self.shift.cash_in += 1
            self.shift.cash_in_sum += doc.total
        elif doc.form is DocumentForm.CASH_OUT:
            self.cash -= doc.total
            self.shift.cash_out += 1
            self.shift.cash_out_sum += doc.total
        self.counters.operations += 1
        self.document = None
        title = NONFISCAL_TITLES[doc.form]
        total = [f"СУММА {doc.total}"] if doc.form is not DocumentForm.SERVICE else []
        self.tape.extend([*([title] if title else []), *doc.text, *total, "НЕФИСКАЛЬНЫЙ ДОКУМЕНТ", CUT])
        self.log(f"{doc.form.value} closed", f"{doc.total}" if total else f"{len(doc.text)} lines")

    @locked
    def zero_cash(self) -> None:
        """Set the drawer's cash to zero (Pirit 0x54): outside a document."""
        self._require_ready()
        self._require_idle()
        self.cash = Decimal(0)
        self.log("cash zeroed")

    # ------------------------------------------------------------------ reports

    @locked
    def state_report(self, cashier: str = "") -> Document:
        """Report on the current state of settlements (form 21): a fiscal document of its own that
        counts what has not reached the OFD; it changes no shift or receipt state."""
        self._require_ready()
        self._require_idle()
        self._require_fn_usable(for_shift_close=True)
        self._require_paper()
        unsent = self.unsent()
        doc = self._commit(DocumentKind.STATE_REPORT)
        doc.shift_number = self.shift.number if self.shift.is_open else None
        first = unsent[0] if unsent else None
        self.log("state report", f"FD {doc.number}, unsent {len(unsent)}")
        body = [
            f"Кассир {cashier}",
            f"Непереданных ФД {len(unsent)}",
            *([f"Первый непереданный ФД {first.number} от {first.at:%d.%m.%Y}"] if first else []),
        ]
        self._print_new(doc, self._document_lines(doc, "ОТЧЁТ О ТЕКУЩЕМ СОСТОЯНИИ РАСЧЁТОВ", body))
        return doc

    def report_figures(self) -> dict[str, str]:
        """What an X or Z report counts, remembered as the last report's data (Pirit 0x01/12)."""
        totals = self.shift_totals()
        sales, returns = totals.receipts[ReceiptKind.SALE], totals.receipts[ReceiptKind.SALE_RETURN]
        return {
            "operations": str(self.counters.operations),
            "document": str(self.last_fd().number),
            "cash": str(self.cash),
            "sales": str(sales.count),
            "sales_sum": str(sales.total),
            "returns": str(returns.count),
            "returns_sum": str(returns.total),
            "cancelled": str(self.shift.cancelled),
            "cancelled_sum": str(self.shift.cancelled_sum),
            "cash_in": str(self.shift.cash_in),
            "cash_in_sum": str(self.shift.cash_in_sum),
            "cash_out": str(self.shift.cash_out),
            "cash_out_sum": str(self.shift.cash_out_sum),
        }


def payment_sum(totals: KindTotals, kind: PaymentKind) -> Decimal:
    return totals.payments.get(kind.value, Decimal(0))


class Corrections(CashDesk):
    """A correction receipt made in one step (FFD 1.05 style: the sums, no items)."""

    def open_receipt(
        self, kind: ReceiptKind, tax_system: TaxSystem | None, cashier: str = "", *, form: DocumentForm = ...
    ) -> None:
        raise NotImplementedError

    @locked
    def correction_receipt(
        self, kind: ReceiptKind, tax_system: TaxSystem | None, payments: dict[PaymentKind, Decimal], cashier: str = ""
    ) -> Document:
        """Form 31 with the corrected sums by payment form: opened, paid and closed as one receipt,
        so it meets every rule a receipt meets (open shift, registered СНО, the ФН usable)."""
        amounts = {k: v for k, v in payments.items() if v}
        if any(v < 0 for v in amounts.values()):
            raise CoreError(ErrorKind.BAD_PARAMETER, "a negative correction sum")
        if not amounts:
            raise CoreError(ErrorKind.BAD_PARAMETER, "zero receipt total: a correction of nothing")
        self.open_receipt(kind, tax_system, cashier, form=DocumentForm.CORRECTION)
        doc = self.current_document()
        total = sum(amounts.values(), Decimal(0))
        doc.items.append({"name": "Коррекция", "quantity": "1", "price": str(total), "vat": "none"})
        doc.total = total
        for payment, amount in amounts.items():
            doc.paid += amount
            doc.payments[payment.value] = amount
            if payment is PaymentKind.CASH:
                doc.cash_paid += amount
        doc.state = doc.state.PAID
        return self.close_receipt()
