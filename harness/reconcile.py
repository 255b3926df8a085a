"""Fiscal operations that survive a broken link: never two documents for one intent, never a
committed document reported as failed.

A link fault (a lost answer, a garbled frame, a cut cable) in the middle of a receipt close, a
shift open or close, or a re-registration leaves the caller not knowing whether the ФН holds the
document.  Retrying blindly duplicates receipts; giving up misreports committed ones.  So every
operation that may commit a fiscal document runs through :meth:`Reconciler.run`:

1. before it, the register's fiscal position is read (:class:`Observed`: last FD number, shift
   number and state, receipts in the shift, an open document, the last registration's FD);
2. on a link fault the link is reopened if it was cut, the family's wire resynchronised, and the
   position read again, all within the operation's total deadline;
3. :func:`committed` compares the two positions: committed → the document the register holds is
   returned (read from the ФН, not from the lost answer); nothing committed → a half-built
   document is cancelled (the trace says so) and the operation retried, at most
   :data:`MAX_ATTEMPTS` times; the register unreachable until the deadline →
   :class:`~harness.errors.OutcomeUnknown` with the evidence.

After an ``OutcomeUnknown`` the intent stays pending: the next fiscal operation (or
``reconcile()``) first settles it.  The same request again — a caller that retries on every
error — gets the committed document back instead of a second one.

A link error that still comes out of a fiscal operation therefore means "nothing was committed
and no document is left open".  (Model: the idempotent-retry rule of payment APIs; the ФН's FD
counter is the idempotency record.)
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .device import DocumentKind, FiscalDocument
from .errors import DeviceError, ErrorKind, KktError, LinkDisconnected, LinkError, OutcomeUnknown, device_error

if TYPE_CHECKING:
    from .link import Deadline, Link

OPERATION_TIMEOUT = 180.0  # vendor seconds for one fiscal operation, reconciliation included (scaled)
STEP_TIMEOUT = 10.0  # vendor seconds more per item or payment of a receipt (a long receipt is not a hung one)
MAX_ATTEMPTS = 3  # tries of one operation when a fault left nothing committed
OBSERVE_PAUSE = 0.05  # real seconds between attempts to reach a register after a fault


@dataclass(frozen=True)
class Observed:
    """A register's fiscal position, as far as the protocol shows it."""

    fd: int  # last FD number in the ФН
    shift_open: bool
    shift_number: int
    receipts: int  # receipts committed in the current (or last) shift
    document_open: bool  # a document being built, not in the ФН yet
    registration_fd: int | None  # FD of the last (re-)registration report, where readable
    pending_print: bool = False  # a committed document's printout not finished
    printer_stopped: str = ""  # "no paper" / "cover open" when the printer cannot print, else ""

    def describe(self) -> str:
        shift = f"shift {self.shift_number} {'open' if self.shift_open else 'closed'}, {self.receipts} receipts"
        document = ", a document open" if self.document_open else ""
        return f"FD {self.fd}, {shift}{document}"


@dataclass(frozen=True)
class Intent:
    """One fiscal operation the caller asked for; ``request`` identifies a repeat of it."""

    kind: DocumentKind
    request: tuple[object, ...]
    steps: int = 0  # commands beyond the first (a receipt's items and payments): each adds time

    def describe(self) -> str:
        total = self.request[-1] if self.kind is DocumentKind.RECEIPT and self.request else None
        if total is not None:
            return f"the receipt of {total}"
        return {
            DocumentKind.RECEIPT: "the receipt",
            DocumentKind.SHIFT_OPEN: "the shift open",
            DocumentKind.SHIFT_CLOSE: "the shift close (Z report)",
            DocumentKind.REREGISTRATION: "the re-registration",
        }.get(self.kind, self.kind.name.lower())


def committed(kind: DocumentKind, before: Observed, after: Observed) -> bool:
    """Did the register commit a document of ``kind`` between ``before`` and ``after``?

    The FD counter must have moved, and the counter of that kind too: a shift opened implicitly
    by a receipt, or a Кабинет task applied at a shift open, moves the FD counter without
    committing the receipt or the re-registration asked for."""
    if after.fd <= before.fd:
        return False
    if kind is DocumentKind.RECEIPT:
        if after.document_open:
            return False
        if after.shift_number != before.shift_number:
            return after.receipts >= 1
        return after.receipts > before.receipts
    if kind is DocumentKind.SHIFT_OPEN:
        return after.shift_open and (not before.shift_open or after.shift_number != before.shift_number)
    if kind is DocumentKind.SHIFT_CLOSE:
        return not after.shift_open and (before.shift_open or after.shift_number != before.shift_number)
    if kind is DocumentKind.REREGISTRATION:
        return after.registration_fd is not None and after.registration_fd != before.registration_fd
    return True


PRINT_STOPS = frozenset({ErrorKind.NO_PAPER, ErrorKind.COVER_OPEN})


class Committed(Exception):
    """Carries the committed document out of an error answer's handler."""

    def __init__(self, document: FiscalDocument) -> None:
        super().__init__(document)
        self.document = document


@dataclass
class Pending:
    intent: Intent
    before: Observed


class Hooks:
    """What a family's driver supplies to the reconciler."""

    _link: Link
    # the kinds whose unfinished printout the register flags as pending (the others: a stopped
    # printer after the commit, where it was fine before, is the printout that stopped)
    pending_print_shown: frozenset[DocumentKind] = frozenset(DocumentKind)

    def _observe(self) -> Observed:
        """Read the fiscal position (reads only)."""
        raise NotImplementedError

    def _resync(self) -> None:
        """After a fault: forget partial frames, bring the wire back to a known state."""
        raise NotImplementedError

    def _cancel_open_document(self) -> None:
        """Cancel the document being built (not one in the ФН)."""
        raise NotImplementedError

    def _committed_document(self, intent: Intent, after: Observed) -> FiscalDocument:
        """The document of ``intent`` the register holds, read back from it."""
        raise NotImplementedError


class Reconciler(Hooks):
    """The retry-or-reconcile loop around a fiscal operation (mixed into each driver)."""

    _pending: Pending | None = None
    _last_settled: FiscalDocument | None = None  # what a later operation settled the last unknown outcome as
    operation_timeout: float = OPERATION_TIMEOUT  # vendor seconds; the link's timeout scale applies

    def run(self, intent: Intent, attempt: Callable[[], FiscalDocument]) -> FiscalDocument:
        deadline = self._link.deadline(self.operation_timeout + STEP_TIMEOUT * intent.steps)
        with self._link.capped(deadline):
            try:
                return self._run(intent, attempt, deadline)
            except Committed as done:
                return done.document

    def _run(self, intent: Intent, attempt: Callable[[], FiscalDocument], deadline: Deadline) -> FiscalDocument:
        settled = self._settle(intent, deadline)
        if isinstance(settled, FiscalDocument):
            return settled
        before = settled
        evidence: list[str] = [f"before: {before.describe()}"]
        for number in range(1, MAX_ATTEMPTS + 1):
            try:
                return attempt()
            except DeviceError as refusal:
                # the register's verdict — unless it answered a replayed or garbled request while
                # the ФН took the intended one: the position says which
                self._after_refusal(intent, before, deadline, evidence, refusal)
                raise
            except LinkError as fault:
                evidence.append(f"attempt {number}: {type(fault).__name__}: {fault}")
                after = self._after_fault(intent, before, deadline, evidence, fault)
                if committed(intent.kind, before, after):
                    return self._committed_after(intent, before, after, deadline, evidence, fault)
                if after.document_open:
                    self._cancel_after_fault(intent, before, deadline, evidence, fault)
                if number == MAX_ATTEMPTS or deadline.expired:
                    self._note(f"{intent.describe()}: {fault}; nothing committed after {number} attempts; giving up")
                    raise
                self._note(f"{intent.describe()}: {fault}; nothing committed ({after.describe()}); trying again")
                before = after
        raise AssertionError("unreachable")  # pragma: no cover

    def _committed_after(
        self,
        intent: Intent,
        before: Observed,
        after: Observed,
        deadline: Deadline,
        evidence: list[str],
        fault: KktError,
    ) -> FiscalDocument:
        document = self._read_committed(intent, before, after, deadline, evidence)
        self._note(f"{intent.describe()} was committed as FD {document.number} though {fault}")
        interrupted = self._interrupted_print(intent, before, after)
        if interrupted is not None:
            raise interrupted from fault
        return document

    def _after_refusal(
        self, intent: Intent, before: Observed, deadline: Deadline, evidence: list[str], refusal: DeviceError
    ) -> None:
        """After an error answer: a committed intent is returned instead (raised as
        :class:`Committed`), a document of ours left open is cancelled; the refusal stands otherwise.
        A printout that stopped after the commit (paper, cover) is the register's real answer."""
        if refusal.kind in PRINT_STOPS:
            return
        try:
            after = self._observe()
        except LinkError:
            return  # the refusal is all there is; the next fiscal operation sees the position
        if committed(intent.kind, before, after):
            evidence.append(f"refused with {refusal} but committed: {after.describe()}")
            raise Committed(self._committed_after(intent, before, after, deadline, evidence, refusal))
        if after.document_open and not before.document_open:
            self._note(f"{intent.describe()}: refused ({refusal}) with a document of ours left open; cancelled")
            self._cancel_after_fault(intent, before, deadline, evidence, None)

    def reconcile(self) -> FiscalDocument | None:
        """Settle an operation whose outcome was unknown: the document it committed, or None
        (nothing committed, or nothing pending).  OutcomeUnknown while the register stays unreachable."""
        pending = self._pending
        if pending is None:
            last, self._last_settled = self._last_settled, None
            return last  # what a later operation settled the last unknown outcome as (None: not committed)
        deadline = self._link.deadline(self.operation_timeout)
        with self._link.capped(deadline):
            settled = self._settle(pending.intent, deadline)
        return settled if isinstance(settled, FiscalDocument) else None

    # ------------------------------------------------------------------------------ steps

    def _settle(self, intent: Intent, deadline: Deadline) -> Observed | FiscalDocument:
        """The position before ``intent``; a pending intent is settled first, and when it is the
        same request and was committed, its document is the answer."""
        pending = self._pending
        if pending is None:
            return self._observe_until(intent, None, deadline, [], None)
        evidence = [f"pending: {pending.intent.describe()}, before: {pending.before.describe()}"]
        try:
            after = self._observe_until(pending.intent, pending.before, deadline, evidence, None)
        except OutcomeUnknown as unknown:
            if pending.intent == intent:
                raise
            raise _not_started(intent, pending.intent, unknown) from unknown
        self._pending = None
        if committed(pending.intent.kind, pending.before, after):
            try:
                document = self._read_committed(pending.intent, pending.before, after, deadline, evidence)
            except OutcomeUnknown as unknown:
                self._pending = pending
                if pending.intent == intent:
                    raise
                raise _not_started(intent, pending.intent, unknown) from unknown
            self._note(f"settled: {pending.intent.describe()} was committed as FD {document.number}")
            if pending.intent == intent:
                return document  # the caller's retry of the same request: nothing twice
            self._last_settled = document  # for reconcile(): what the caller committed
            return self._observe_until(intent, None, deadline, evidence, None)
        self._note(f"settled: {pending.intent.describe()} was not committed ({after.describe()})")
        self._last_settled = None
        if after.document_open:
            self._cancel_after_fault(pending.intent, pending.before, deadline, evidence, None)
            return self._observe_until(intent, None, deadline, evidence, None)
        return after

    def _read_committed(
        self, intent: Intent, before: Observed, after: Observed, deadline: Deadline, evidence: list[str]
    ) -> FiscalDocument:
        """The committed document, read back; the reads are retried on link faults until the deadline."""
        while True:
            try:
                return self._committed_document(intent, after)
            except LinkError as exc:
                evidence.append(f"reading the committed document: {type(exc).__name__}: {exc}")
                if deadline.expired:
                    self._unknown(intent, before, after, evidence, exc)
                if isinstance(exc, LinkDisconnected):
                    with contextlib.suppress(LinkError):
                        self._link.reopen(deadline)
                with contextlib.suppress(LinkError):
                    self._resync()
                time.sleep(min(OBSERVE_PAUSE, deadline.remaining))

    def _interrupted_print(self, intent: Intent, before: Observed, after: Observed) -> DeviceError | None:
        """The answer a committed document's printout would have had, from the observation that
        proved the commit: a pending printout with the printer stopped (paper out, cover open:
        R8.2, R8.3) — or, for a kind the register shows no pending printout for (a Pirit shift or
        registration report), the printer stopped where it was fine before.  The same error as
        with the answer kept; a document that printed fully is never one."""
        stopped = after.printer_stopped
        if not stopped:
            return None
        if not after.pending_print and (intent.kind in self.pending_print_shown or before.printer_stopped):
            return None
        kind = ErrorKind.COVER_OPEN if stopped == "cover open" else ErrorKind.NO_PAPER
        self._note(f"the printout stopped ({stopped}): the lost answer was this error")
        return device_error(kind, f"{stopped} (committed; the answer was lost, read from the register's state)")

    def _after_fault(
        self, intent: Intent, before: Observed, deadline: Deadline, evidence: list[str], fault: LinkError
    ) -> Observed:
        after = self._observe_until(intent, before, deadline, evidence, fault)
        evidence.append(f"after: {after.describe()}")
        return after

    def _cancel_after_fault(
        self, intent: Intent, before: Observed, deadline: Deadline, evidence: list[str], fault: LinkError | None
    ) -> None:
        """Cancel the half-built document a fault left open, until the register shows none."""
        while True:
            try:
                self._cancel_open_document()
                self._note(f"{intent.describe()}: the document a link fault left open was cancelled")
                evidence.append("open document cancelled")
            except LinkError as exc:
                evidence.append(f"cancel: {type(exc).__name__}: {exc}")
            after = self._observe_until(intent, before, deadline, evidence, fault)
            if not after.document_open:
                return
            if deadline.expired:
                self._unknown(intent, before, after, evidence, fault)

    def _observe_until(
        self, intent: Intent, before: Observed | None, deadline: Deadline, evidence: list[str], fault: LinkError | None
    ) -> Observed:
        """Read the position, reopening and resynchronising the link as needed, until ``deadline``."""
        cut = isinstance(fault, LinkDisconnected)
        while True:
            try:
                if cut:
                    self._link.reopen(deadline)
                    cut = False
                if fault is not None:
                    self._resync()
                return self._observe()
            except LinkError as exc:
                evidence.append(f"reading the register: {type(exc).__name__}: {exc}")
                cut = cut or isinstance(exc, LinkDisconnected)
                fault = fault or exc
                if deadline.expired:
                    if before is None:
                        raise
                    self._unknown(intent, before, None, evidence, fault)
                time.sleep(min(OBSERVE_PAUSE, deadline.remaining))

    def _unknown(
        self,
        intent: Intent,
        before: Observed,
        after: Observed | None,
        evidence: list[str],
        fault: LinkError | None,
    ) -> None:
        self._pending = Pending(intent, before)
        self._last_settled = None  # a new unknown outcome: an older settlement is stale
        seen = after.describe() if after is not None else "not reachable"
        message = (
            f"{intent.describe()}: outcome unknown — the register was {seen} until the deadline "
            f"({before.describe()} before); it is settled at the next fiscal operation or reconcile()"
        )
        self._note(message)
        raise OutcomeUnknown(
            message,
            intent=intent.describe(),
            fd_before=before.fd,
            fd_after=after.fd if after is not None else None,
            evidence=list(evidence),
        ) from fault

    def _note(self, text: str) -> None:
        self._link.trace.note(f"reconcile: {text}")


def _not_started(intent: Intent, earlier: Intent, unknown: OutcomeUnknown) -> OutcomeUnknown:
    """``intent`` refused because ``earlier``'s outcome is still unknown: about ``earlier``."""
    return OutcomeUnknown(
        f"{intent.describe()} was not started: {unknown}",
        intent=earlier.describe(),
        fd_before=unknown.fd_before,
        fd_after=unknown.fd_after,
        evidence=unknown.evidence,
        started=False,
    )
