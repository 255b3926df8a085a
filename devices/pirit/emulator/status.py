"""Status requests: 0x00 status flags, 0x04 printer state, 0x06 extended error (reference §2.5.1,
§2.5.2, §2.5.6)."""

from __future__ import annotations

from harness.device import DocumentKind, FnPhase, PaperState, ReceiptKind

from ...emulator.records import DocumentForm, ReceiptStep
from ..protocol import ENCODING, Field, Request
from .fields import TYPE_BY_RECEIPT, Fields, UnknownSub, handles

# the document state nibble of 0x00 (§2.5.1) for each step of an open receipt
DOCUMENT_STATE = {ReceiptStep.OPENED: 1, ReceiptStep.SUBTOTAL: 2, ReceiptStep.PAYING: 3, ReceiptStep.PAID: 4}
PRINT_PENDING_STATE = 8
# the document type nibble of a non-fiscal open document; corrections: 9..12 (FFD 1.2)
NONFISCAL_TYPE = {DocumentForm.SERVICE: 1, DocumentForm.CASH_IN: 4, DocumentForm.CASH_OUT: 5}
CORRECTION_TYPE = {
    ReceiptKind.SALE: 9,
    ReceiptKind.SALE_RETURN: 10,
    ReceiptKind.PURCHASE: 11,
    ReceiptKind.PURCHASE_RETURN: 12,
}


class StatusCommands(Fields):
    def _current_flags(self) -> int:
        core = self.core
        flags = 0
        if not core.initialised:
            flags |= 1 << 0
        if core.shift.is_open:
            flags |= 1 << 2
        if core.shift_expired():
            flags |= 1 << 3
        if core.fn.phase != FnPhase.FISCAL:
            flags |= 1 << 5
        if core.shift.close_interrupted:
            flags |= 1 << 8
        return flags

    def _document_status(self) -> int:
        core = self.core
        if core.pending is not None and core.pending.kind == DocumentKind.RECEIPT:
            doc = core.document_by_number(core.pending.document)
            return (PRINT_PENDING_STATE << 4) | TYPE_BY_RECEIPT.get(doc.receipt_kind or ReceiptKind.SALE, 2)
        document = core.document
        if document is None:
            return 0
        if document.form in NONFISCAL_TYPE:
            return (1 << 4) | NONFISCAL_TYPE[document.form]
        kind = CORRECTION_TYPE if document.form is DocumentForm.CORRECTION else TYPE_BY_RECEIPT
        return (DOCUMENT_STATE[document.state] << 4) | kind.get(document.kind, 2)

    @handles(0x00)
    def _status(self, _: Request) -> list[Field]:
        self.core.require_power()
        return [0, self._current_flags(), self._document_status()]

    @handles(0x04)
    def _printer_state(self, _: Request) -> list[Field]:
        printer = self.core.printer
        mask = 0
        if printer.paper is PaperState.OUT:
            mask |= 1 << 1
        if printer.cover_open:
            mask |= (1 << 2) | (1 << 0)
        return [mask]

    @handles(0x06)
    def _extended_error(self, request: Request) -> list[Field]:
        which = self._int(request, 0, 1)
        if which == 1:
            code, text = self.core.wire_memory["pirit_extended"]
            return [which, code, text.encode(ENCODING, "replace").decode(ENCODING)]
        if which == 2:
            mask = 0
            if self.core.shift.close_interrupted:
                mask |= 1 << 5
            return [which, mask]
        raise UnknownSub(0x06, which)
