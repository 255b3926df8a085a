"""A receipt's life in the fiscal core: open, items, subtotal, payments, close into the ФН
(or cancel), and the repeat of a close whose printout was cut (R3.8, R7.1, R8.2)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from harness.device import DocumentKind, PaperState, PaymentKind, ReceiptKind, TaxSystem, Vat
from harness.errors import ErrorKind

from .printing import RECEIPT_TITLES, Printing
from .records import CUT, VAT_RATES, CoreError, Document, DocumentForm, OpenDocument, ReceiptStep, locked
from .rules import FiscalRules


class Receipts(FiscalRules, Printing):
    # provided by FiscalCore
    def open_shift(self, cashier: str = "", *, implicit: bool = False) -> Document:
        raise NotImplementedError

    def _commit(self, kind: DocumentKind) -> Document:
        raise NotImplementedError

    @locked
    def open_receipt(
        self,
        kind: ReceiptKind,
        tax_system: TaxSystem | None,
        cashier: str = "",
        *,
        form: DocumentForm = DocumentForm.RECEIPT,
    ) -> None:
        """Open a receipt (or, ``form=CORRECTION``, a correction receipt of the same kinds)."""
        self._require_ready()
        if self.document is not None:
            raise CoreError(ErrorKind.DOCUMENT_OPEN, "a document is already open")
        self._require_no_pending()
        if not self.shift.is_open:
            if not self.profile.auto_open_shift:
                raise CoreError(ErrorKind.SHIFT_CLOSED, "shift is not open")
            self.open_shift(cashier, implicit=True)  # R3.8: implicit open fires the same hooks
        if self.shift_expired():
            raise CoreError(ErrorKind.SHIFT_EXPIRED, "shift longer than 24 h")
        self._require_fn_timer_consistent()
        self._require_fn_usable()
        registered = self.fn.tax_systems
        chosen = tax_system if tax_system is not None else registered.lowest
        if chosen not in registered and not self.has_defect("accept_unregistered_tax_system"):
            raise CoreError(
                ErrorKind.TAX_SYSTEM_NOT_REGISTERED,
                f"tax system {chosen.title} not registered (registered: {registered.title})",
                source="fn",  # the ФН checks 1055 against the registration; a front-end may answer otherwise
            )
        self._require_paper()
        self.document = OpenDocument(kind=ReceiptKind(kind), tax_system=chosen, cashier=cashier, form=form)
        self.log(f"{form.value} opened", f"{ReceiptKind(kind).name.lower()}, {chosen.title}")

    @locked
    def add_item(self, name: str, quantity: Decimal, price: Decimal, vat: Vat = Vat.NONE) -> Decimal:
        self._require_ready()
        doc = self.current_document()
        if not doc.form.fiscal:
            raise CoreError(ErrorKind.DOCUMENT_STATE, f"no items in a {doc.form.value} document")
        if doc.state not in (ReceiptStep.OPENED, ReceiptStep.SUBTOTAL):
            raise CoreError(ErrorKind.DOCUMENT_STATE, f"cannot add an item in document state {doc.state}")
        if quantity <= 0:
            raise CoreError(ErrorKind.BAD_PARAMETER, f"bad quantity {quantity}")
        if price < 0:
            raise CoreError(ErrorKind.BAD_PARAMETER, f"bad price {price}")
        amount = (price * quantity).quantize(Decimal("0.01"), ROUND_HALF_UP)
        rate = VAT_RATES[vat]
        tax = (amount * rate / (1 + rate)).quantize(Decimal("0.0001"))
        doc.items.append({"name": name or "Товар", "quantity": str(quantity), "price": str(price), "vat": vat.value})
        doc.total += amount
        doc.taxes[vat.value] = doc.taxes.get(vat.value, Decimal(0)) + tax
        doc.state = ReceiptStep.OPENED
        return tax

    @locked
    def subtotal(self) -> Decimal:
        self._require_ready()
        doc = self.current_document()
        if not doc.form.fiscal:
            raise CoreError(ErrorKind.DOCUMENT_STATE, f"no subtotal in a {doc.form.value} document")
        if doc.state == ReceiptStep.OPENED:
            doc.state = ReceiptStep.SUBTOTAL
        elif doc.state == ReceiptStep.SUBTOTAL:
            doc.state = ReceiptStep.PAYING
        return doc.total

    @locked
    def pay(self, kind: PaymentKind, amount: Decimal) -> Decimal:
        """Returns the change due."""
        self._require_ready()
        doc = self.current_document()
        if not doc.form.fiscal:
            raise CoreError(ErrorKind.DOCUMENT_STATE, f"no payments in a {doc.form.value} document")
        if not doc.items:
            raise CoreError(ErrorKind.DOCUMENT_STATE, "no items to pay for")
        if doc.state == ReceiptStep.PAID:
            raise CoreError(ErrorKind.DOCUMENT_STATE, "already fully paid")
        if amount <= 0:
            raise CoreError(ErrorKind.BAD_PARAMETER, f"bad payment amount {amount}")
        remaining = doc.total - doc.paid
        if kind is not PaymentKind.CASH and amount > remaining:
            raise CoreError(ErrorKind.BAD_PARAMETER, "non-cash payment exceeds the total")
        doc.paid += amount
        doc.payments[kind.value] = doc.payments.get(kind.value, Decimal(0)) + amount
        if kind is PaymentKind.CASH:
            doc.cash_paid += amount
        doc.state = ReceiptStep.PAID if doc.paid >= doc.total else ReceiptStep.PAYING
        return max(Decimal(0), doc.paid - doc.total)

    @locked
    def close_receipt(self) -> Document:
        self._require_ready()
        if self.pending is not None and self.pending.kind == DocumentKind.RECEIPT:
            # repeat of the close after a paper fault: print only, no new document (R8.2)
            doc = self.document_by_number(self.pending.document)
            self._print(self.pending)
            if self.has_defect("reprint_creates_new_document"):
                return self._duplicate_receipt(doc)
            return doc
        doc_state = self.current_document()
        if not doc_state.form.fiscal:
            raise CoreError(ErrorKind.DOCUMENT_STATE, f"a {doc_state.form.value} document is open, not a receipt")
        if not doc_state.items:  # a real register refuses an empty receipt (extended 26 on Pirit)
            raise CoreError(ErrorKind.BAD_PARAMETER, "zero receipt total: the receipt has no items")
        if doc_state.state != ReceiptStep.PAID and doc_state.total > 0:
            raise CoreError(ErrorKind.DOCUMENT_STATE, "receipt not fully paid")
        if self.shift_expired():
            raise CoreError(ErrorKind.SHIFT_EXPIRED, "ФН shift longer than 24 h", source="fn")
        self._require_fn_usable()
        change = doc_state.paid - doc_state.total
        correction = doc_state.form is DocumentForm.CORRECTION
        doc = self._commit(DocumentKind.CORRECTION if correction else DocumentKind.RECEIPT)
        doc.shift_number = self.shift.number
        self.shift.receipts += 1
        doc.number_in_shift = self.shift.receipts
        doc.tax_system = doc_state.tax_system
        doc.total = doc_state.total
        doc.receipt_kind = doc_state.kind
        doc.correction = correction
        doc.taxes = dict(doc_state.taxes)
        doc.payments = dict(doc_state.payments)
        if change > 0:  # the change comes out of the cash handed over
            doc.payments[PaymentKind.CASH.value] -= change
        cash = doc_state.cash_paid - max(Decimal(0), change)
        self.cash += -cash if doc_state.kind in (ReceiptKind.SALE_RETURN, ReceiptKind.PURCHASE) else cash
        self.document = None
        self.log("receipt closed", f"FD {doc.number}, total {doc_state.total}, {doc_state.tax_system.title}")
        body = [f"Кассир {doc_state.cashier}"]
        body += [f"{i['name']}  {i['quantity']} x {i['price']}" for i in doc_state.items]
        body += [*doc_state.text, f"ИТОГ ={doc_state.total}", f"СНО {doc_state.tax_system.title}"]
        heading = "КАССОВЫЙ ЧЕК КОРРЕКЦИИ" if correction else "КАССОВЫЙ ЧЕК"
        title = f"{heading} / {RECEIPT_TITLES.get(doc_state.kind, str(int(doc_state.kind)))}"
        self._print_new(doc, self._document_lines(doc, title, body))
        return doc

    def _duplicate_receipt(self, original: Document) -> Document:
        """Seeded defect: finishing a printout commits a second fiscal document."""
        copy = self._commit(DocumentKind.RECEIPT)
        for key in ("shift_number", "tax_system", "total", "receipt_kind", "lines"):
            setattr(copy, key, getattr(original, key))
        self.shift.receipts += 1
        copy.number_in_shift = self.shift.receipts
        copy.printed = True
        return copy

    @locked
    def cancel_receipt(self, *, postpone: bool = False, reason: str = "") -> None:
        """Annul the open document (nothing reaches the ФН); ``postpone``: the Pirit "postpone"
        (0x33), counted apart — the document is to be made again in this shift."""
        self._require_ready()
        if self.pending is not None and self.pending.kind == DocumentKind.RECEIPT:
            raise CoreError(ErrorKind.PENDING_PRINT, "document closed in the ФН: cannot cancel, repeat the close")
        doc = self.current_document()
        self.document = None
        if doc.form.fiscal:
            if postpone:
                self.shift.postponed += 1
                self.shift.postponed_sum += doc.total
            else:
                self.shift.cancelled += 1
                self.shift.cancelled_sum += doc.total
                self.counters.annulled_after = self.last_fd().number
                self.counters.annulled_total = str(doc.total)
        if self.printer.paper is not PaperState.OUT and not self.printer.cover_open:
            self.tape.extend(["ЧЕК ОТЛОЖЕН" if postpone else "ЧЕК АННУЛИРОВАН", *([reason] if reason else []), CUT])
        self.log("receipt postponed" if postpone else "receipt cancelled", reason)
