"""The emulated printer: the tape, documents' printed form, paper running out mid-printout and
the printout left pending after the ФН commit (R8.1–R8.4)."""

from __future__ import annotations

from harness.device import DocumentKind, PaperState, ReceiptKind
from harness.errors import ErrorKind

from .records import CUT, CoreError, CoreState, Document, PendingPrint, locked

RECEIPT_TITLES = {
    ReceiptKind.SALE: "ПРИХОД",
    ReceiptKind.SALE_RETURN: "ВОЗВРАТ ПРИХОДА",
    ReceiptKind.PURCHASE: "РАСХОД",
    ReceiptKind.PURCHASE_RETURN: "ВОЗВРАТ РАСХОДА",
}
# reports without a protocol-level "repeat": they finish by themselves once the printer is ready
SELF_RESUMING = (DocumentKind.SHIFT_OPEN, DocumentKind.REREGISTRATION)


class Printing(CoreState):
    def _print(self, pending: PendingPrint) -> None:
        """Print what is left of ``pending``; on a paper fault keep it pending and raise."""
        self.pending = pending
        while pending.printed_lines < len(pending.lines):
            if self.printer.cover_open:
                raise CoreError(ErrorKind.COVER_OPEN, "cover opened while printing")
            if self.printer.paper is PaperState.OUT:
                self.log("printing interrupted", f"document {pending.document}: paper out")
                raise CoreError(ErrorKind.NO_PAPER, f"paper ran out printing document {pending.document}")
            self.tape.append(pending.lines[pending.printed_lines])
            pending.printed_lines += 1
            if self.printer.lines_left is not None:
                self.printer.lines_left -= 1
                if self.printer.lines_left <= 0:
                    self.printer.lines_left = None
                    self.printer.paper = PaperState.OUT
                    self.log("paper out", "paper ran out while printing")
        self.tape.append(CUT)
        for doc in self.fn.archive:
            if doc.number == pending.document:
                doc.printed = True
        self.pending = None

    def _print_new(self, doc: Document, lines: list[str]) -> None:
        """Print a just-committed document; its lines stay in the archive for copies."""
        if not doc.lines:
            doc.lines = list(lines)
        self._print(PendingPrint(doc.number, doc.kind, lines))

    def _document_lines(self, doc: Document, title: str, body: list[str]) -> list[str]:
        return [
            f"{self.profile.model_name}",
            f"ЗН ККТ {self.serial}  ФН {self.fn.serial}",
            title,
            *body,
            f"ФД {doc.number}  ФП {doc.fiscal_sign}",
            f"{doc.at:%d.%m.%Y %H:%M}",
        ]

    def _resume_report_printing(self) -> None:
        """Reports without a protocol-level "repeat" (shift open, re-registration) finish printing by
        themselves once paper is back and the cover closed; receipts and Z need the host (R8.2, R8.3)."""
        if self.pending is None or self.pending.kind not in SELF_RESUMING:
            return
        if self.printer.paper is PaperState.OUT or self.printer.cover_open:
            return
        try:
            self._print(self.pending)
        except CoreError:
            pass

    # ------------------------------------------------------------------ lab side

    @locked
    def set_paper(self, state: PaperState, *, after_lines: int | None = None) -> None:
        if after_lines is not None:
            if after_lines < 0:
                raise ValueError("after_lines must be >= 0")
            self.printer.paper = PaperState.OK if after_lines else PaperState.OUT
            self.printer.lines_left = after_lines or None
            self.log("paper", f"runs out after {after_lines} lines")
            return
        self.printer.paper = state
        self.printer.lines_left = None
        self.log("paper", state.value)
        self._resume_report_printing()

    @locked
    def set_cover(self, open_: bool) -> None:
        self.printer.cover_open = open_
        self.log("cover", "open" if open_ else "closed")
        self._resume_report_printing()
