"""Document commands: 0x30 open (receipts, service, cash in/out), 0x31 close, 0x32 annul,
0x33 postpone, 0x42 item, 0x44 subtotal, 0x47 payment, 0x48 cash in/out, 0x54 zero the drawer,
0x58 correction receipt (reference §2.5.10; the manual's 0x30, 0x48, 0x58 sections)."""

from __future__ import annotations

from decimal import Decimal

from harness.device import PaymentKind, ReceiptKind, TaxSystem, Vat

from ...emulator.records import DocumentForm
from ..protocol import Field, Request
from .fields import RECEIPT_BY_TYPE, Fields, ParamError, handles

VAT_BY_INDEX = {0: Vat.VAT20, 1: Vat.VAT10, 2: Vat.VAT0, 3: Vat.NONE}
# payment type index (0x47 field 1); 2..12 are types the settings table may name, not emulated
PAYMENT_BY_INDEX = {
    0: PaymentKind.CASH,
    1: PaymentKind.ELECTRONIC,
    13: PaymentKind.PREPAID,
    14: PaymentKind.CREDIT,
    15: PaymentKind.OTHER,
}
NONFISCAL_BY_TYPE = {1: DocumentForm.SERVICE, 4: DocumentForm.CASH_IN, 5: DocumentForm.CASH_OUT}
# FFD 1.05 0x58: the sums by payment form, in field order 2..6
CORRECTION_PAYMENTS = (
    PaymentKind.CASH,
    PaymentKind.ELECTRONIC,
    PaymentKind.PREPAID,
    PaymentKind.CREDIT,
    PaymentKind.OTHER,
)


class DocumentCommands(Fields):
    def _set_batch(self, on: bool, failed: bool = False) -> None:
        raise NotImplementedError  # PiritFrontEnd

    def _tax_system(self, request: Request, index: int) -> TaxSystem | None:
        if not self._field(request, index).strip():
            return None
        number = self._int(request, index, 0, 43)
        if not 0 <= number <= 5:
            raise ParamError(f"bad tax system index {number}", 43)
        return TaxSystem.from_index(number)

    @handles(0x30)
    def _open_document(self, request: Request) -> list[Field]:
        mode = self._int(request, 0, 2)
        doc_type = mode & 0x0F
        cashier = self._field(request, 2)
        if doc_type in NONFISCAL_BY_TYPE:
            self.core.open_nonfiscal(NONFISCAL_BY_TYPE[doc_type], cashier)
        elif doc_type in RECEIPT_BY_TYPE:
            self.core.open_receipt(RECEIPT_BY_TYPE[doc_type], self._tax_system(request, 4), cashier)
        else:
            raise ParamError(f"bad document type {doc_type}", 11)
        self._set_batch(bool(mode & 0x10))
        return []

    @handles(0x42)
    def _add_item(self, request: Request) -> list[Field]:
        quantity = self._decimal(request, 2, 46)
        price = self._decimal(request, 3, 47)
        vat_index = self._int(request, 4, 3, 48)
        if vat_index not in VAT_BY_INDEX:
            raise ParamError(f"bad tax rate index {vat_index}", 48)
        tax = self.core.add_item(self._field(request, 0), quantity, price, VAT_BY_INDEX[vat_index])
        return [f"{tax:.4f}"]

    @handles(0x44)
    def _subtotal(self, _: Request) -> list[Field]:
        self.core.subtotal()
        return []

    @handles(0x47)
    def _payment(self, request: Request) -> list[Field]:
        index = self._int(request, 0, 0, 55)
        if index not in PAYMENT_BY_INDEX:
            raise ParamError(f"payment type {index} not supported by the emulator", 55)
        amount = self._decimal(request, 1, 55)
        self.core.pay(PAYMENT_BY_INDEX[index], amount)
        return []

    @handles(0x48)
    def _cash_in_out(self, request: Request) -> list[Field]:
        self.core.cash_move(self._decimal(request, 1, 26), self._field(request, 0))
        return []

    @handles(0x31)
    def _close_document(self, _: Request) -> list[Field]:
        doc = self.core.close_document()
        operations = self.core.counters.operations
        if doc is None:  # a non-fiscal document: the through number and the operation counter only
            return [operations, str(operations)]
        return [
            operations,
            str(operations),
            f"{doc.number} {doc.fiscal_sign}",
            doc.number,
            doc.fiscal_sign,
            doc.shift_number or 0,
            doc.number_in_shift or 0,
            *self._date_time(doc.at),
        ]

    @handles(0x32)
    def _cancel_document(self, _: Request) -> list[Field]:
        self.core.cancel_receipt()
        return []

    @handles(0x33)
    def _postpone_document(self, request: Request) -> list[Field]:
        self.core.cancel_receipt(postpone=True, reason=self._field(request, 0))
        return []

    @handles(0x54)
    def _zero_cash(self, _: Request) -> list[Field]:
        self.core.zero_cash()
        return []

    @handles(0x58)
    def _correction(self, request: Request) -> list[Field]:
        """FFD 1.2: opens a correction receipt made like a receipt (0x42, 0x47, 0x31).  FFD 1.05:
        makes it at once from the sums by payment form, unless bit 7 asks to open it."""
        cashier = self._field(request, 0)
        kind_bits = self._int(request, 6, 0)
        purchase, refund = bool(kind_bits & 0b10), bool(kind_bits & 0x40)
        kind = {
            (False, False): ReceiptKind.SALE,
            (False, True): ReceiptKind.SALE_RETURN,
            (True, False): ReceiptKind.PURCHASE,
            (True, True): ReceiptKind.PURCHASE_RETURN,
        }[(purchase, refund and self.ffd12)]  # FFD 1.05: bit 6 is reserved
        tax_index = (kind_bits >> 2) & 0b111
        if tax_index > 5:
            raise ParamError(f"bad tax system index {tax_index}", 43)
        tax = TaxSystem.from_index(tax_index)
        if self.ffd12 or kind_bits & 0x80:
            self.core.open_receipt(kind, tax, cashier, form=DocumentForm.CORRECTION)
            return []
        sums: dict[PaymentKind, Decimal] = {}
        for offset, payment in enumerate(CORRECTION_PAYMENTS):
            sums[payment] = self._decimal(request, 1 + offset, 55)
        self.core.correction_receipt(kind, tax, sums, cashier)
        return []
