"""The fiscal rules of ``reference/domain-rules.md`` as the core checks them: derived state (ФН
term, the 24-hour shift, the OFD queue and its 30-day block, warnings) and the refusals every
operation runs through before it touches the ФН.  Rule ids in comments."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from harness.device import DocumentKind, FnPhase, FnWarning, PaperState, TaxSystem
from harness.errors import ErrorKind
from harness.fiscal import ENVD_ABOLISHED

from .profiles import FnKind, fn_kind
from .records import (
    FN_TIMER_TOLERANCE,
    OFD_BLOCK_AGE,
    SHIFT_LIMIT,
    CoreError,
    CoreState,
    Document,
    OpenDocument,
    PoweredOff,
)

REGISTRATION_KINDS = (DocumentKind.REGISTRATION, DocumentKind.REREGISTRATION)
# the ФН's "current document" code for a document it holds unfinished (FN status, both protocols)
FN_CURRENT_DOCUMENT = {
    DocumentKind.RECEIPT: 0x04,
    DocumentKind.SHIFT_OPEN: 0x02,
    DocumentKind.SHIFT_CLOSE: 0x08,
    DocumentKind.REREGISTRATION: 0x13,
}


class FiscalRules(CoreState):
    # ------------------------------------------------------------------ derived state

    @property
    def fn_kind(self) -> FnKind:
        return fn_kind(self.fn.kind)

    def fn_valid_until(self) -> date:
        return self.valid_until_for(self.fn.tax_systems, self.fn.work_mode)

    def valid_until_for(self, tax_systems: TaxSystem, work_mode: int) -> date:
        """The ФН key end date a registration with these parameters would give (R2.4)."""
        return self.fn_kind.valid_until(self.fn.activated_at.date(), tax_systems, autonomous=bool(work_mode & 0b10))

    def fn_expired(self) -> bool:
        return self.clock.now().date() > self.fn_valid_until()

    def registrations_left(self) -> int:
        return max(0, self.fn_kind.max_registrations - self.fn.registrations_done)

    def undelivered(self) -> list[Document]:
        """The ФН's OFD queue as it is: every document the OFD has not acknowledged (R4.1); what
        is sent, what blocks (R4.2) and what refuses a re-registration or the ФН close (R4.5, R4.6)."""
        return [d for d in self.fn.archive if not d.delivered]

    def unsent(self) -> list[Document]:
        """The OFD queue as the ФН reports it (count, first unsent number and date: the ФН queries,
        form 21); the seeded defect ``queue_counts_receipts_only`` leaves the reports out."""
        queue = self.undelivered()
        if self.has_defect("queue_counts_receipts_only"):
            return [d for d in queue if d.kind in (DocumentKind.RECEIPT, DocumentKind.CORRECTION)]
        return queue

    def first_unsent_age(self) -> timedelta | None:
        queue = self.undelivered()
        if not queue:
            return None
        return timedelta(seconds=self.clock.fn_seconds() - queue[0].fn_seconds)

    def ofd_blocked(self) -> bool:
        """R4.2: the oldest unsent document waits more than 30 days."""
        age = self.first_unsent_age()
        return age is not None and age > OFD_BLOCK_AGE

    def fn_warnings(self) -> FnWarning:
        flags = FnWarning(0)
        days_left = (self.fn_valid_until() - self.clock.now().date()).days
        if days_left <= 3:
            flags |= FnWarning.URGENT_REPLACEMENT
        if days_left <= 30 and not self.has_defect("no_fn_30_day_warning"):
            flags |= FnWarning.RESOURCE_30_DAYS
        if self.ofd_blocked():
            flags |= FnWarning.OFD_TIMEOUT
        return flags

    def shift_elapsed(self) -> timedelta | None:
        if not self.shift.is_open or self.shift.opened_fn is None:
            return None
        return timedelta(seconds=self.clock.fn_seconds() - self.shift.opened_fn)

    def shift_expired(self) -> bool:
        """R3.1: measured on the ФН's own timer, not on the settable RTC."""
        elapsed = self.shift_elapsed()
        if elapsed is None or self.has_defect("ignore_24h_rule"):
            return False
        return elapsed >= SHIFT_LIMIT if self.profile.shift_limit_inclusive else elapsed > SHIFT_LIMIT

    def last_fd(self) -> Document:
        last = self.fn.last
        assert last is not None  # the registration document always exists
        return last

    def last_registration(self) -> Document:
        """The last registration or re-registration report (forms 1 and 11)."""
        return [d for d in self.fn.archive if d.kind in REGISTRATION_KINDS][-1]

    def fn_current_document(self) -> int:
        """What the ФН reports as its current document: a receipt being formed, else the
        document whose printout is pending, else 0."""
        if self.document is not None:
            return FN_CURRENT_DOCUMENT[DocumentKind.RECEIPT]
        if self.pending is not None:
            return FN_CURRENT_DOCUMENT.get(self.pending.kind, 0)
        return 0

    def document_by_number(self, number: int) -> Document:
        for doc in self.fn.archive:
            if doc.number == number:
                return doc
        raise CoreError(ErrorKind.BAD_PARAMETER, f"no document {number} in the ФН", source="fn")

    def current_document(self) -> OpenDocument:
        if self.document is None:
            raise CoreError(ErrorKind.DOCUMENT_NOT_OPEN, "no document open")
        return self.document

    # ------------------------------------------------------------------ refusals

    def require_power(self) -> None:
        if not self.powered:
            raise PoweredOff()

    def _require_ready(self) -> None:
        self.require_power()
        if not self.initialised:
            raise CoreError(ErrorKind.NOT_INITIALISED, "start of work not done after power-up")
        if self.fn.phase != FnPhase.FISCAL:
            raise CoreError(ErrorKind.NOT_REGISTERED, f"ФН phase {self.fn.phase}, not fiscal mode")

    def _require_idle(self) -> None:
        """No receipt open and no printout pending: what shift and registration operations need."""
        if self.document is not None:
            raise CoreError(ErrorKind.DOCUMENT_OPEN, "a document is open")
        self._require_no_pending()

    def _require_no_pending(self) -> None:
        if self.pending is not None:
            raise CoreError(
                ErrorKind.PENDING_PRINT, f"document {self.pending.document} closed in the ФН but not printed"
            )
        if self.shift.close_interrupted:
            raise CoreError(ErrorKind.PENDING_PRINT, "shift closing not finished: repeat the Z report")

    def _require_fn_usable(self, *, for_shift_close: bool = False, for_shift_open: bool = False) -> None:
        if self.fn_expired():
            raise CoreError(ErrorKind.FN_EXPIRED, f"ФН key expired on {self.fn_valid_until():%d.%m.%Y}", source="fn")
        if self.ofd_blocked():
            allowed = (for_shift_close and self.profile.ofd_block_allows_shift_close) or (
                for_shift_open and self.profile.ofd_block_allows_shift_open
            )
            if not allowed:
                raise CoreError(ErrorKind.OFD_TIMEOUT, "oldest unsent document waits more than 30 days", source="fn")

    def _rtc_minus_fn_timer(self) -> float:
        return (self.clock.now() - datetime(2000, 1, 1)).total_seconds() - self.clock.fn_seconds()

    def _require_fn_timer_consistent(self) -> None:
        """R3.5: inside a shift, an RTC jump against the ФН timer of more than 5 min is refused."""
        if not self.shift.is_open or self.shift.opened_rtc_fn_delta is None:
            return
        if abs(self._rtc_minus_fn_timer() - self.shift.opened_rtc_fn_delta) > FN_TIMER_TOLERANCE:
            raise CoreError(ErrorKind.FN_TIMER_MISMATCH, "RTC and ФН timer disagree by more than 5 min", source="fn")

    def _require_printer(self) -> None:
        """The printer must be able to print right now (paper in, cover closed)."""
        if self.printer.cover_open:
            raise CoreError(ErrorKind.COVER_OPEN, "cover open")
        if self.printer.paper is PaperState.OUT:
            raise CoreError(ErrorKind.NO_PAPER, "no paper")

    def _require_paper(self) -> None:
        """Before a new document: refuse it without paper, unless the model commits first (profile)."""
        if self.profile.paper_check_before_commit:
            self._require_printer()

    def validate_tax_systems(self, tax_systems: TaxSystem) -> None:
        if int(tax_systems) <= 0 or int(tax_systems) >= 64:
            raise CoreError(ErrorKind.BAD_PARAMETER, f"bad tax system mask {int(tax_systems)}")
        if (
            TaxSystem.ENVD in tax_systems
            and self.profile.envd_rejected_from_2021
            and self.clock.now().date() >= ENVD_ABOLISHED
        ):
            raise CoreError(ErrorKind.BAD_PARAMETER, "ЕНВД is not used since 01.01.2021")
