"""The vendor-neutral fiscal core: one state machine that is the emulator's fiscal truth.

Wire front-ends (Pirit, АТОЛ) translate frames into calls on :class:`FiscalCore` and translate
:class:`CoreError` kinds back into their own error codes.  The rules come from
``reference/domain-rules.md`` (rule ids in comments); where a rule is model-specific, the
:class:`~devices.emulator.profiles.ModelProfile` decides.

Thread safety: one re-entrant lock guards everything (the wire, the control channel and the
hub poller run in different threads); every public method takes it.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from harness.device import (
    DocumentKind,
    FnPhase,
    FnWarning,
    JournalEntry,
    PaperState,
    PaymentKind,
    ReceiptKind,
    TaxSystem,
    Vat,
)
from harness.errors import ErrorKind

from .clock import VirtualClock
from .defects import check_defects
from .profiles import ModelProfile, fn_kind, parse_version

SHIFT_LIMIT = timedelta(hours=24)
OFD_BLOCK_AGE = timedelta(days=30)
FN_TIMER_TOLERANCE = 300.0  # seconds (R3.5)
CLOCK_SYNC_WINDOW = timedelta(minutes=8)  # Pirit "start of work" (R3.4)
REREG_REASON_TAX_SYSTEMS = 1 << 7  # tag 1205 bit 7
ENVD_ABOLISHED = date(2021, 1, 1)
VAT_RATES = {Vat.VAT20: Decimal("0.20"), Vat.VAT10: Decimal("0.10"), Vat.VAT0: Decimal(0), Vat.NONE: Decimal(0)}


class CoreError(Exception):
    """The emulated register refuses; ``kind`` is normalized, ``source`` says who checked."""

    def __init__(self, kind: ErrorKind, text: str = "", *, source: str = "kkt") -> None:
        self.kind = kind
        self.text = text or kind.value
        self.source = source  # "kkt" (firmware check) or "fn" (the ФН refused)
        super().__init__(f"{kind.value}: {self.text}")


class PoweredOff(Exception):
    """The emulated register is off: the wire gets no answer at all."""


F = TypeVar("F", bound=Callable[..., Any])


def locked(method: F) -> F:
    @functools.wraps(method)
    def wrapper(self: FiscalCore, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


# --------------------------------------------------------------------------------------- state


@dataclass
class Document:
    """A fiscal document as the ФН archive holds it."""

    number: int
    kind: DocumentKind
    at: datetime
    fn_seconds: float
    fiscal_sign: str
    shift_number: int | None = None
    number_in_shift: int | None = None
    tax_system: int | None = None  # 1055 for receipts
    tax_systems: int | None = None  # 1062 for registration documents
    reason: int | None = None  # 1205 for re-registration
    total: str | None = None
    receipt_kind: int | None = None
    delivered: bool = False
    printed: bool = False
    lines: list[str] = field(default_factory=list)


@dataclass
class Fn:
    serial: str
    kind: str
    phase: int
    activated_at: datetime
    tax_systems: int
    work_mode: int
    registrations_done: int
    ffd: str
    inn: str
    rnm: str
    archive: list[Document] = field(default_factory=list)

    @property
    def last(self) -> Document | None:
        return self.archive[-1] if self.archive else None


@dataclass
class Shift:
    number: int = 0  # last shift number (the current one while open)
    is_open: bool = False
    opened_at: datetime | None = None
    opened_fn: float | None = None
    opened_rtc_fn_delta: float | None = None  # RTC − ФН timer at open (R3.5 cross-check)
    receipts: int = 0  # receipts in the current shift
    close_interrupted: bool = False  # Z committed in the ФН, printout unfinished


@dataclass
class OpenDocument:
    kind: int
    tax_system: int
    cashier: str
    state: int = 1  # 1 opened, 2 subtotal, 3 payments only, 4 settled (Pirit document states)
    items: list[dict[str, str]] = field(default_factory=list)
    total: Decimal = Decimal(0)
    paid: Decimal = Decimal(0)
    cash_paid: Decimal = Decimal(0)


@dataclass
class PendingPrint:
    """A document committed in the ФН whose printout did not finish (R8.2–R8.4)."""

    document: int  # FD number
    kind: str  # "receipt" | "shift_close" | "shift_open" | "reregistration"
    lines: list[str]
    printed_lines: int = 0


@dataclass
class Printer:
    paper: str = PaperState.OK.value
    cover_open: bool = False
    lines_left: int | None = None  # paper runs out after this many more lines


# ---------------------------------------------------------------------------------------- core


class FiscalCore:
    """State and rules of one emulated register."""

    def __init__(
        self,
        profile: ModelProfile,
        *,
        clock: VirtualClock | None = None,
        serial: str | None = None,
        defects: frozenset[str] | set[str] = frozenset(),
        tax_systems: TaxSystem = TaxSystem.USN_INCOME,
        fn_activated: datetime | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.profile = profile
        self.clock = clock or VirtualClock(datetime(2020, 12, 1, 9, 0, 0))
        self.defects: set[str] = set(check_defects(defects))
        self.firmware = profile.firmware
        self.serial = serial or (profile.serial_prefix + "123456")[:10]
        self.powered = True
        self.initialised = not profile.needs_start_of_work  # "start of work" needed after power-up
        self.boot_count = 1  # front-ends reset their per-boot state when it changes
        self.ofd_online = False
        self.printer = Printer()
        self.shift = Shift()
        self.document: OpenDocument | None = None
        self.pending: PendingPrint | None = None
        self.journal: list[JournalEntry] = []
        self.tape: list[str] = []
        self.cash = Decimal(0)
        self._clock_confirm: datetime | None = None
        self.wire_memory: dict[str, Any] = {}  # per-device state a wire front-end keeps (e.g. 0x06/1)
        self.before_shift_open: list[Callable[[FiscalCore], None]] = []  # fisGo hooks (R6.3)
        self.after_change: list[Callable[[FiscalCore], None]] = []
        activated = fn_activated or (self.clock.now() - timedelta(days=30))
        self.fn = Fn(
            serial="9999078900" + self.serial[-6:],
            kind=fn_kind(profile.fn_kind).id,
            phase=FnPhase.FISCAL,
            activated_at=activated,
            tax_systems=int(tax_systems),
            work_mode=0,
            registrations_done=1,
            ffd=profile.ffd,
            inn="7701234567",
            rnm="0000000001012345",
        )
        # the registration report (form 1) made when the ФН was activated, long delivered
        reg = self._make_document(DocumentKind.REGISTRATION, at=activated)
        reg.tax_systems = int(tax_systems)
        reg.delivered = True
        reg.printed = True
        self.fn.archive.append(reg)
        self.log("power on", f"{profile.title} s/n {self.serial}, firmware {self.firmware}")

    # ------------------------------------------------------------------ helpers and derived state

    def now(self) -> datetime:
        return self.clock.now()

    def has_defect(self, name: str) -> bool:
        return name in self.defects

    def log(self, event: str, detail: str = "") -> None:
        self.journal.append(JournalEntry(self.clock.now(), event, detail))

    def _changed(self) -> None:
        self._drain_ofd()
        for hook in list(self.after_change):
            hook(self)

    @property
    def fn_kind(self):  # type: ignore[no-untyped-def]
        return fn_kind(self.fn.kind)

    def fn_valid_until(self) -> date:
        return self.valid_until_for(TaxSystem(self.fn.tax_systems), self.fn.work_mode)

    def valid_until_for(self, tax_systems: TaxSystem, work_mode: int) -> date:
        """The ФН key end date a registration with these parameters would give (R2.4)."""
        return self.fn_kind.valid_until(self.fn.activated_at.date(), tax_systems, autonomous=bool(work_mode & 0b10))

    def fn_expired(self) -> bool:
        return self.clock.now().date() > self.fn_valid_until()

    def registrations_left(self) -> int:
        return max(0, self.fn_kind.max_registrations - self.fn.registrations_done)

    def unsent(self) -> list[Document]:
        return [d for d in self.fn.archive if not d.delivered]

    def first_unsent_age(self) -> timedelta | None:
        queue = self.unsent()
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
        if days_left <= 30:
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

    def fiscal_sign(self, number: int, at: datetime) -> str:
        digest = hashlib.sha256(f"{self.fn.serial}:{number}:{at.isoformat()}".encode()).digest()
        return str(int.from_bytes(digest[:4], "big"))

    def _make_document(self, kind: DocumentKind, *, at: datetime | None = None) -> Document:
        number = (self.fn.last.number + 1) if self.fn.last else 1
        when = at or self.clock.now()
        return Document(
            number=number,
            kind=kind,
            at=when,
            fn_seconds=self.clock.fn_seconds(),
            fiscal_sign=self.fiscal_sign(number, when),
        )

    # ----------------------------------------------------------------------------- checks

    def require_power(self) -> None:
        if not self.powered:
            raise PoweredOff()

    def _require_ready(self) -> None:
        self.require_power()
        if not self.initialised:
            raise CoreError(ErrorKind.NOT_INITIALISED, "start of work (0x10) not done after power-up")
        if self.fn.phase != FnPhase.FISCAL:
            raise CoreError(ErrorKind.NOT_REGISTERED, f"ФН phase {self.fn.phase}, not fiscal mode")

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

    def _require_fn_timer_consistent(self) -> None:
        """R3.5: inside a shift, an RTC jump against the ФН timer of more than 5 min is refused."""
        if not self.shift.is_open or self.shift.opened_rtc_fn_delta is None:
            return
        delta = (self.clock.now() - datetime(2000, 1, 1)).total_seconds() - self.clock.fn_seconds()
        if abs(delta - self.shift.opened_rtc_fn_delta) > FN_TIMER_TOLERANCE:
            raise CoreError(ErrorKind.FN_TIMER_MISMATCH, "RTC and ФН timer disagree by more than 5 min", source="fn")

    def _require_paper(self) -> None:
        if not self.profile.paper_check_before_commit:
            return
        if self.printer.cover_open:
            raise CoreError(ErrorKind.COVER_OPEN, "cover open")
        if self.printer.paper == PaperState.OUT.value:
            raise CoreError(ErrorKind.NO_PAPER, "no paper")

    # ----------------------------------------------------------------------------- printing

    def _print(self, pending: PendingPrint) -> None:
        """Print what is left of ``pending``; on a paper fault keep it pending and raise."""
        self.pending = pending
        while pending.printed_lines < len(pending.lines):
            if self.printer.cover_open:
                raise CoreError(ErrorKind.COVER_OPEN, "cover opened while printing")
            if self.printer.paper == PaperState.OUT.value:
                self.log("printing interrupted", f"document {pending.document}: paper out")
                raise CoreError(ErrorKind.NO_PAPER, f"paper ran out printing document {pending.document}")
            self.tape.append(pending.lines[pending.printed_lines])
            pending.printed_lines += 1
            if self.printer.lines_left is not None:
                self.printer.lines_left -= 1
                if self.printer.lines_left <= 0:
                    self.printer.lines_left = None
                    self.printer.paper = PaperState.OUT.value
                    self.log("paper out", "paper ran out while printing")
        self.tape.append("-" * 32 + " ✂")
        for doc in self.fn.archive:
            if doc.number == pending.document:
                doc.printed = True
        self.pending = None

    def _document_lines(self, doc: Document, title: str, body: list[str]) -> list[str]:
        return [
            f"{self.profile.model_name}",
            f"ЗН ККТ {self.serial}  ФН {self.fn.serial}",
            title,
            *body,
            f"ФД {doc.number}  ФП {doc.fiscal_sign}",
            f"{doc.at:%d.%m.%Y %H:%M}",
        ]

    # ----------------------------------------------------------------------------- power, start

    @locked
    def start_work(self, host_time: datetime) -> None:
        """Pirit 0x10 semantics (R3.4): sync within 8 min, refuse a date before the last FD."""
        self.require_power()
        if host_time < self.last_fd().at:
            raise CoreError(ErrorKind.CLOCK_BEHIND_LAST_DOCUMENT, "host date earlier than the last fiscal document")
        self.initialised = True
        self.log("start of work", f"host {host_time:%d.%m.%Y %H:%M:%S}")
        diff = abs(host_time - self.clock.now())
        if diff <= CLOCK_SYNC_WINDOW:
            if not self.shift.is_open:
                self.clock.set(host_time, rtc_only=True)
            return
        raise CoreError(ErrorKind.CLOCK_MISMATCH, f"device clock differs from host by {diff}")

    @locked
    def set_power(self, on: bool) -> None:
        if on == self.powered:
            return
        if not on:
            self.powered = False
            if self.document is not None:
                self.log("document lost", "open document discarded at power-off (not committed in the ФН)")
                self.document = None
            self._clock_confirm = None
            self.log("power off")
            return
        self.powered = True
        self.initialised = not self.profile.needs_start_of_work
        self.boot_count += 1
        if self.pending is not None and self.has_defect("lose_pending_print_on_power_cycle"):
            self.pending = None
            self.shift.close_interrupted = False
        self.log("power on", f"firmware {self.firmware}")
        self._changed()

    # ----------------------------------------------------------------------------- clock

    @locked
    def set_rtc(self, value: datetime) -> None:
        """The register's own clock setting (Pirit 0x14): shift closed, not before the last FD,
        a jump of more than 24 h ahead must be repeated to confirm (R3.4)."""
        self.require_power()
        if self.shift.is_open:
            raise CoreError(ErrorKind.SHIFT_OPEN, "the clock can be set only with the shift closed")
        if value < self.last_fd().at:
            raise CoreError(ErrorKind.CLOCK_BEHIND_LAST_DOCUMENT, "date earlier than the last fiscal document")
        if value - self.clock.now() > SHIFT_LIMIT and self._clock_confirm != value:
            self._clock_confirm = value
            raise CoreError(ErrorKind.CLOCK_CONFIRM_REQUIRED, "more than 24 h ahead: repeat to confirm")
        self._clock_confirm = None
        self.clock.set(value, rtc_only=True)
        self.log("clock set", f"{value:%d.%m.%Y %H:%M:%S}")
        self._changed()

    # ----------------------------------------------------------------------------- shift

    @locked
    def open_shift(self, cashier: str = "") -> Document:
        self._require_ready()
        if self.shift.is_open:
            raise CoreError(ErrorKind.SHIFT_OPEN, "shift already open")
        if self.document is not None:
            raise CoreError(ErrorKind.DOCUMENT_OPEN, "a document is open")
        self._require_no_pending()
        for hook in list(self.before_shift_open):  # deferred re-registration fires here (R6.3)
            hook(self)
        if self.pending is not None:  # a hook's printout (form 11) must finish before the shift opens
            if self.printer.paper == PaperState.OUT.value:
                raise CoreError(ErrorKind.NO_PAPER, f"paper ran out printing document {self.pending.document}")
            self._require_no_pending()
        self._require_fn_usable(for_shift_open=True)
        self._require_paper()
        self.shift.number += 1
        self.shift.is_open = True
        self.shift.opened_at = self.clock.now()
        self.shift.opened_fn = self.clock.fn_seconds()
        self.shift.opened_rtc_fn_delta = (self.clock.now() - datetime(2000, 1, 1)).total_seconds() - (
            self.clock.fn_seconds()
        )
        self.shift.receipts = 0
        doc = self._commit(DocumentKind.SHIFT_OPEN)
        doc.shift_number = self.shift.number
        self.log("shift opened", f"shift {self.shift.number}, FD {doc.number}, cashier {cashier}")
        lines = self._document_lines(doc, f"ОТЧЁТ ОБ ОТКРЫТИИ СМЕНЫ {self.shift.number}", [f"Кассир {cashier}"])
        self._print_or_raise(PendingPrint(doc.number, "shift_open", lines))
        return doc

    @locked
    def close_shift(self, cashier: str = "") -> Document:
        self._require_ready()
        if self.shift.close_interrupted:  # repeat of an interrupted Z: print only (R8.3)
            if self.pending is None:
                raise CoreError(ErrorKind.FATAL, "interrupted Z report lost its printout")
            doc = self.document_by_number(self.pending.document)
            self._print_or_raise(self.pending)
            self.shift.close_interrupted = False
            return doc
        if not self.shift.is_open:
            raise CoreError(ErrorKind.SHIFT_CLOSED, "shift is not open")
        if self.document is not None:
            raise CoreError(ErrorKind.DOCUMENT_OPEN, "a document is open")
        self._require_no_pending()
        self._require_fn_usable(for_shift_close=True)
        self._require_paper()
        doc = self._commit(DocumentKind.SHIFT_CLOSE)
        doc.shift_number = self.shift.number
        unsent = len(self.unsent())
        self.shift.is_open = False
        self.log("shift closed", f"shift {self.shift.number}, FD {doc.number}, unsent {unsent}")
        lines = self._document_lines(
            doc,
            f"ОТЧЁТ О ЗАКРЫТИИ СМЕНЫ {self.shift.number}",
            [f"Кассир {cashier}", f"Чеков за смену {self.shift.receipts}", f"Непереданных ФД {unsent}"],
        )
        self.shift.close_interrupted = True
        self._print_or_raise(PendingPrint(doc.number, "shift_close", lines))
        self.shift.close_interrupted = False
        return doc

    @locked
    def x_report(self, cashier: str = "") -> None:
        """X report: printed only, never touches the ФН (scenario A edge case)."""
        self._require_ready()
        if self.profile.x_report_needs_open_shift and not self.shift.is_open:
            raise CoreError(ErrorKind.SHIFT_CLOSED, "shift is not open")
        if self.document is not None:
            raise CoreError(ErrorKind.DOCUMENT_OPEN, "a document is open")
        self._require_no_pending()
        if self.printer.cover_open:
            raise CoreError(ErrorKind.COVER_OPEN, "cover open")
        if self.printer.paper == PaperState.OUT.value:
            raise CoreError(ErrorKind.NO_PAPER, "no paper")
        self.tape.extend([f"X-ОТЧЁТ  смена {self.shift.number}", f"Кассир {cashier}", "-" * 32 + " ✂"])
        self.log("X report", f"shift {self.shift.number}")

    # ----------------------------------------------------------------------------- receipts

    @locked
    def open_receipt(self, kind: ReceiptKind, tax_system: TaxSystem | None, cashier: str = "") -> None:
        self._require_ready()
        if self.document is not None:
            raise CoreError(ErrorKind.DOCUMENT_OPEN, "a document is already open")
        self._require_no_pending()
        if not self.shift.is_open:
            if not self.profile.auto_open_shift:
                raise CoreError(ErrorKind.SHIFT_CLOSED, "shift is not open")
            self.open_shift(cashier)  # R3.8: implicit open fires the same hooks
        if self.shift_expired():
            raise CoreError(ErrorKind.SHIFT_EXPIRED, "shift longer than 24 h")
        self._require_fn_timer_consistent()
        self._require_fn_usable()
        registered = TaxSystem(self.fn.tax_systems)
        chosen = tax_system if tax_system is not None else registered.lowest
        if chosen not in registered and not self.has_defect("accept_unregistered_tax_system"):
            raise CoreError(
                ErrorKind.TAX_SYSTEM_NOT_REGISTERED,
                f"tax system {chosen.title} not registered (registered: {registered.title})",
                source="fn" if self.profile.tax_mismatch_code == "fn" else "kkt",
            )
        self._require_paper()
        self.document = OpenDocument(kind=int(kind), tax_system=int(chosen), cashier=cashier)
        self.log("receipt opened", f"{ReceiptKind(kind).name.lower()}, {chosen.title}")

    def current_document(self) -> OpenDocument:
        if self.document is None:
            raise CoreError(ErrorKind.DOCUMENT_NOT_OPEN, "no document open")
        return self.document

    @locked
    def add_item(self, name: str, quantity: Decimal, price: Decimal, vat: Vat = Vat.NONE) -> Decimal:
        self._require_ready()
        doc = self.current_document()
        if doc.state not in (1, 2):
            raise CoreError(ErrorKind.DOCUMENT_STATE, f"cannot add an item in document state {doc.state}")
        if quantity <= 0:
            raise CoreError(ErrorKind.BAD_PARAMETER, f"bad quantity {quantity}")
        if price < 0:
            raise CoreError(ErrorKind.BAD_PARAMETER, f"bad price {price}")
        amount = (price * quantity).quantize(Decimal("0.01"))
        rate = VAT_RATES[vat]
        tax = (amount * rate / (1 + rate)).quantize(Decimal("0.0001"))
        doc.items.append({"name": name or "Товар", "quantity": str(quantity), "price": str(price), "vat": vat.value})
        doc.total += amount
        doc.state = 1
        return tax

    @locked
    def subtotal(self) -> Decimal:
        self._require_ready()
        doc = self.current_document()
        if doc.state == 1:
            doc.state = 2
        elif doc.state == 2:
            doc.state = 3
        return doc.total

    @locked
    def pay(self, kind: PaymentKind, amount: Decimal) -> Decimal:
        """Returns the change due."""
        self._require_ready()
        doc = self.current_document()
        if doc.state == 4:
            raise CoreError(ErrorKind.DOCUMENT_STATE, "already fully paid")
        if amount <= 0:
            raise CoreError(ErrorKind.BAD_PARAMETER, f"bad payment amount {amount}")
        remaining = doc.total - doc.paid
        if kind is not PaymentKind.CASH and amount > remaining:
            raise CoreError(ErrorKind.BAD_PARAMETER, "non-cash payment exceeds the total")
        doc.paid += amount
        if kind is PaymentKind.CASH:
            doc.cash_paid += amount
        doc.state = 4 if doc.paid >= doc.total else 3
        return max(Decimal(0), doc.paid - doc.total)

    @locked
    def close_receipt(self) -> Document:
        self._require_ready()
        if self.pending is not None and self.pending.kind == "receipt":
            # repeat of the close after a paper fault: print only, no new document (R8.2)
            doc = self.document_by_number(self.pending.document)
            self._print_or_raise(self.pending)
            if self.has_defect("reprint_creates_new_document"):
                return self._duplicate_receipt(doc)
            return doc
        doc_state = self.current_document()
        if doc_state.state != 4 and doc_state.total > 0:
            raise CoreError(ErrorKind.DOCUMENT_STATE, "receipt not fully paid")
        if self.shift_expired():
            raise CoreError(ErrorKind.SHIFT_EXPIRED, "ФН shift longer than 24 h", source="fn")
        self._require_fn_usable()
        change = doc_state.paid - doc_state.total
        doc = self._commit(DocumentKind.RECEIPT)
        doc.shift_number = self.shift.number
        self.shift.receipts += 1
        doc.number_in_shift = self.shift.receipts
        doc.tax_system = doc_state.tax_system
        doc.total = str(doc_state.total)
        doc.receipt_kind = doc_state.kind
        self.cash += doc_state.cash_paid - max(Decimal(0), change)
        self.document = None
        self.log("receipt closed", f"FD {doc.number}, total {doc_state.total}, {TaxSystem(doc_state.tax_system).title}")
        body = [f"Кассир {doc_state.cashier}"]
        body += [f"{i['name']}  {i['quantity']} x {i['price']}" for i in doc_state.items]
        body += [f"ИТОГ ={doc_state.total}", f"СНО {TaxSystem(doc_state.tax_system).title}"]
        self._print_or_raise(PendingPrint(doc.number, "receipt", self._document_lines(doc, f"КАССОВЫЙ ЧЕК / {_receipt_title(doc_state.kind)}", body)))
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
    def cancel_receipt(self) -> None:
        self._require_ready()
        if self.pending is not None and self.pending.kind == "receipt":
            raise CoreError(ErrorKind.PENDING_PRINT, "document closed in the ФН: cannot cancel, repeat the close")
        self.current_document()
        self.document = None
        if self.printer.paper != PaperState.OUT.value and not self.printer.cover_open:
            self.tape.extend(["ЧЕК АННУЛИРОВАН", "-" * 32 + " ✂"])
        self.log("receipt cancelled")

    # ----------------------------------------------------------------------------- registration

    @locked
    def reregister(
        self, tax_systems: TaxSystem, *, cashier: str = "", work_mode: int | None = None, force: bool = False
    ) -> Document:
        """Registration change (form 11) with a new СНО list (R5.*)."""
        self._require_ready()
        if self.shift.is_open:
            raise CoreError(ErrorKind.SHIFT_OPEN, "the shift must be closed for re-registration")
        if self.document is not None:
            raise CoreError(ErrorKind.DOCUMENT_OPEN, "a document is open")
        self._require_no_pending()
        self.validate_tax_systems(tax_systems)
        mode = self.fn.work_mode if work_mode is None else work_mode
        if int(tax_systems) == self.fn.tax_systems and mode == self.fn.work_mode and not force:
            raise CoreError(ErrorKind.NO_CHANGES, "nothing changed for re-registration")
        if self.registrations_left() <= 0:
            raise CoreError(ErrorKind.REGISTRATION_LIMIT, "no re-registrations left on this ФН", source="fn")
        self._require_fn_usable()
        if self.profile.rereg_requires_empty_queue and self.unsent():
            raise CoreError(ErrorKind.UNSENT_DOCUMENTS, f"{len(self.unsent())} documents not sent to the OFD")
        self._require_paper()
        old = TaxSystem(self.fn.tax_systems)
        self.fn.tax_systems = int(tax_systems)
        self.fn.work_mode = mode
        self.fn.registrations_done += 1
        doc = self._commit(DocumentKind.REREGISTRATION)
        doc.tax_systems = int(tax_systems)
        doc.reason = REREG_REASON_TAX_SYSTEMS
        self.log(
            "re-registered",
            f"FD {doc.number}: {old.title} → {tax_systems.title}; valid until {self.fn_valid_until():%d.%m.%Y}; "
            f"registrations left {self.registrations_left()}",
        )
        body = [f"Кассир {cashier}", f"СНО {tax_systems.title}", "Причина: изменение СНО (1205 бит 7)"]
        lines = self._document_lines(doc, "ОТЧЁТ ОБ ИЗМЕНЕНИИ ПАРАМЕТРОВ РЕГИСТРАЦИИ", body)
        self._print_or_raise(PendingPrint(doc.number, "reregistration", lines))
        return doc

    def validate_tax_systems(self, tax_systems: TaxSystem) -> None:
        if int(tax_systems) <= 0 or int(tax_systems) >= 64:
            raise CoreError(ErrorKind.BAD_PARAMETER, f"bad tax system mask {int(tax_systems)}")
        if (
            TaxSystem.ENVD in tax_systems
            and self.profile.envd_rejected_from_2021
            and self.clock.now().date() >= ENVD_ABOLISHED
        ):
            raise CoreError(ErrorKind.BAD_PARAMETER, "ЕНВД is not used since 01.01.2021")

    # ----------------------------------------------------------------------------- reprint

    @locked
    def continue_print(self) -> Document | None:
        """Finish a pending printout (any kind); returns the document or None if nothing pends."""
        self._require_ready()
        if self.pending is None:
            return None
        doc = self.document_by_number(self.pending.document)
        self._print_or_raise(self.pending)
        if doc.kind == DocumentKind.SHIFT_CLOSE:
            self.shift.close_interrupted = False
        return doc

    @locked
    def print_document(self, number: int) -> Document:
        """Print a copy of a document from the ФН archive (completes its pending printout)."""
        self._require_ready()
        doc = self.document_by_number(number)
        if self.pending is not None and self.pending.document == number:
            self.continue_print()
            return doc
        self._require_no_pending()
        if self.printer.paper == PaperState.OUT.value:
            raise CoreError(ErrorKind.NO_PAPER, "no paper")
        if self.printer.cover_open:
            raise CoreError(ErrorKind.COVER_OPEN, "cover open")
        self.tape.extend(["КОПИЯ", *doc.lines, "-" * 32 + " ✂"])
        return doc

    def document_by_number(self, number: int) -> Document:
        for doc in self.fn.archive:
            if doc.number == number:
                return doc
        raise CoreError(ErrorKind.BAD_PARAMETER, f"no document {number} in the ФН", source="fn")

    # ----------------------------------------------------------------------------- commit

    def _commit(self, kind: DocumentKind) -> Document:
        doc = self._make_document(kind)
        self.fn.archive.append(doc)
        if self.has_defect("report_undelivered_as_sent"):
            doc.delivered = True
        self._drain_ofd()
        return doc

    def _print_or_raise(self, pending: PendingPrint) -> None:
        doc = self.document_by_number(pending.document)
        if not doc.lines:
            doc.lines = list(pending.lines)
        self._print(pending)

    # ----------------------------------------------------------------------------- OFD

    def _drain_ofd(self) -> None:
        if not self.ofd_online or not self.powered:
            return
        for doc in self.unsent():
            doc.delivered = True
            self.log("OFD receipt", f"FD {doc.number} delivered")

    # ----------------------------------------------------------------------------- lab side

    @locked
    def set_paper(self, state: PaperState, *, after_lines: int | None = None) -> None:
        if after_lines is not None:
            if after_lines < 0:
                raise ValueError("after_lines must be >= 0")
            self.printer.paper = PaperState.OK.value if after_lines else PaperState.OUT.value
            self.printer.lines_left = after_lines or None
            self.log("paper", f"runs out after {after_lines} lines")
            return
        self.printer.paper = state.value
        self.printer.lines_left = None
        self.log("paper", state.value)
        self._resume_report_printing()

    def _resume_report_printing(self) -> None:
        """Reports without a protocol-level "repeat" (shift open, re-registration) finish printing by
        themselves once paper is back and the cover closed; receipts and Z need the host (R8.2, R8.3)."""
        if self.pending is None or self.pending.kind not in ("shift_open", "reregistration"):
            return
        if self.printer.paper == PaperState.OUT.value or self.printer.cover_open:
            return
        try:
            self._print(self.pending)
        except CoreError:
            pass

    @locked
    def set_cover(self, open_: bool) -> None:
        self.printer.cover_open = open_
        self.log("cover", "open" if open_ else "closed")
        self._resume_report_printing()

    @locked
    def set_ofd(self, online: bool) -> None:
        self.ofd_online = online
        self.log("OFD link", "up" if online else "down")
        self._changed()

    @locked
    def lab_clock_set(self, value: datetime, *, rtc_only: bool = False) -> None:
        self.clock.set(value, rtc_only=rtc_only)
        self.log("lab clock set", f"{value:%d.%m.%Y %H:%M:%S}" + (" (RTC only)" if rtc_only else ""))
        self._changed()

    @locked
    def lab_clock_advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self._changed()

    @locked
    def lab_fn(self, *, activated: datetime | None = None, registrations_done: int | None = None) -> None:
        if activated is not None:
            if activated > self.clock.now():
                raise ValueError("the ФН cannot be activated in the future")
            self.fn.activated_at = activated
            self.log("lab ФН", f"activated {activated:%d.%m.%Y}, valid until {self.fn_valid_until():%d.%m.%Y}")
        if registrations_done is not None:
            if registrations_done > self.fn_kind.max_registrations:
                raise ValueError(f"this ФН allows {self.fn_kind.max_registrations} registrations")
            self.fn.registrations_done = registrations_done
            self.log("lab ФН", f"registrations done {registrations_done}")

    @locked
    def set_firmware(self, version: str) -> None:
        parse_version(version)
        self.firmware = version
        self.log("firmware", version)
        self._changed()

    @locked
    def set_defects(self, enable: set[str] | frozenset[str] = frozenset(), disable: set[str] | frozenset[str] = frozenset()) -> None:
        self.defects |= set(check_defects(enable))
        self.defects -= set(check_defects(disable))
        self.log("defects", ",".join(sorted(self.defects)) or "none")

    @locked
    def snapshot(self) -> dict[str, Any]:
        """Everything, JSON-ready: the control channel's ``state`` op and ``--state FILE``."""
        return _jsonable(
            {
                "model": self.profile.id,
                "serial": self.serial,
                "firmware": self.firmware,
                "powered": self.powered,
                "initialised": self.initialised,
                "clock": self.clock.snapshot(),
                "ofd_online": self.ofd_online,
                "defects": sorted(self.defects),
                "printer": asdict(self.printer),
                "shift": {
                    **asdict(self.shift),
                    "expired": self.shift_expired(),
                    "elapsed_seconds": (self.shift_elapsed() or timedelta()).total_seconds(),
                },
                "document": asdict(self.document) if self.document else None,
                "pending_print": asdict(self.pending) if self.pending else None,
                "fn": {
                    **{k: v for k, v in asdict(self.fn).items() if k != "archive"},
                    "valid_until": self.fn_valid_until(),
                    "expired": self.fn_expired(),
                    "registrations_left": self.registrations_left(),
                    "warnings": int(self.fn_warnings()),
                    "last_fd": self.last_fd().number,
                    "documents": [asdict(d) for d in self.fn.archive],
                },
                "ofd_queue": {
                    "count": len(self.unsent()),
                    "first_number": self.unsent()[0].number if self.unsent() else None,
                    "first_datetime": self.unsent()[0].at if self.unsent() else None,
                    "blocked": self.ofd_blocked(),
                },
                "cash": self.cash,
            }
        )


def restore_core(core: FiscalCore, snapshot: dict[str, Any]) -> None:
    """Load a :meth:`FiscalCore.snapshot` into a core built for the same model (``--state FILE``)."""
    if not isinstance(snapshot, dict):
        raise ValueError("state file does not hold a register snapshot (a JSON object)")
    if snapshot.get("model") != core.profile.id:
        raise ValueError(f"state file is for model {snapshot.get('model')!r}, not {core.profile.id!r}")
    try:
        with core.lock:
            core.serial = snapshot["serial"]
            core.firmware = snapshot["firmware"]
            core.clock = VirtualClock.restore(snapshot["clock"])
            core.ofd_online = bool(snapshot["ofd_online"])
            core.defects = set(check_defects(snapshot.get("defects", [])))
            core.printer = Printer(**snapshot["printer"])
            shift = {k: v for k, v in snapshot["shift"].items() if k in Shift.__dataclass_fields__}
            for key in ("opened_at",):
                shift[key] = _dt(shift.get(key))
            core.shift = Shift(**shift)
            doc = snapshot.get("document")
            if doc:
                doc = dict(doc)
                for key in ("total", "paid", "cash_paid"):
                    doc[key] = Decimal(doc[key])
                core.document = OpenDocument(**doc)
            else:
                core.document = None
            core.pending = PendingPrint(**snapshot["pending_print"]) if snapshot.get("pending_print") else None
            fn = snapshot["fn"]
            fields = {k: fn[k] for k in Fn.__dataclass_fields__ if k not in ("archive", "activated_at")}
            archive = []
            for raw in fn["documents"]:
                entry = dict(raw)
                entry["at"] = _dt(entry["at"])
                entry["kind"] = DocumentKind(entry["kind"])
                archive.append(Document(**entry))
            core.fn = Fn(**fields, activated_at=_dt(fn["activated_at"]), archive=archive)  # type: ignore[arg-type]
            core.cash = Decimal(snapshot.get("cash", "0"))
            core.powered = True
            core.initialised = not core.profile.needs_start_of_work
            core.log("state restored", f"{len(archive)} documents, last FD {core.last_fd().number}")
    except (KeyError, TypeError, AttributeError, ArithmeticError, ValueError) as exc:
        raise ValueError(f"state file is incomplete or from another version: {exc}") from None


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _receipt_title(kind: int) -> str:
    return {1: "ПРИХОД", 2: "ВОЗВРАТ ПРИХОДА", 3: "РАСХОД", 4: "ВОЗВРАТ РАСХОДА"}.get(kind, str(kind))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value
