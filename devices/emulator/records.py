"""The fiscal core's state: typed records for the ФН and its archive, the shift, the open
receipt, the printer and a printout pending after the ФН commit, plus the error the core raises.

Values are enums and decimals here; they become the plain JSON of the control channel's
``state`` op and of ``--state FILE`` only at the snapshot boundary (:mod:`.snapshot`).
"""

from __future__ import annotations

import enum
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from harness.device import DocumentKind, FnPhase, JournalEntry, PaperState, ReceiptKind, TaxSystem, Vat
from harness.errors import ErrorKind

if TYPE_CHECKING:
    from .clock import VirtualClock
    from .profiles import ModelProfile

SHIFT_LIMIT = timedelta(hours=24)
OFD_BLOCK_AGE = timedelta(days=30)
FN_TIMER_TOLERANCE = 300.0  # seconds (R3.5)
CLOCK_SYNC_WINDOW = timedelta(minutes=8)  # "start of work" host/device clock agreement (R3.4)
VAT_RATES = {Vat.VAT20: Decimal("0.20"), Vat.VAT10: Decimal("0.10"), Vat.VAT0: Decimal(0), Vat.NONE: Decimal(0)}
CUT = "-" * 32 + " ✂"  # the tape's paper cut


class CoreError(Exception):
    """The emulated register refuses; ``kind`` is normalized, ``source`` says who checked."""

    def __init__(self, kind: ErrorKind, text: str = "", *, source: str = "kkt") -> None:
        self.kind = kind
        self.text = text or kind.value
        self.source = source  # "kkt" (firmware check) or "fn" (the ФН refused)
        super().__init__(f"{kind.value}: {self.text}")


class PoweredOff(Exception):
    """The emulated register is off: the wire gets no answer at all."""


class ReceiptStep(enum.IntEnum):
    """Where an open receipt stands (R7.1): items may be added until payments begin."""

    OPENED = 1  # items being added
    SUBTOTAL = 2  # subtotal taken, still open for items
    PAYING = 3  # payments under way (a second subtotal, or a partial payment)
    PAID = 4  # fully paid: only the close is left


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
    tax_system: TaxSystem | None = None  # 1055 for receipts
    tax_systems: TaxSystem | None = None  # 1062 for registration documents
    reason: int | None = None  # 1205 for re-registration
    total: Decimal | None = None
    receipt_kind: ReceiptKind | None = None
    payments: dict[str, Decimal] = field(default_factory=dict)  # PaymentKind value → amount (receipts)
    taxes: dict[str, Decimal] = field(default_factory=dict)  # Vat value → tax amount (receipts)
    correction: bool = False  # a correction receipt (form 31): receipt_kind says which operation
    delivered: bool = False
    printed: bool = False
    lines: list[str] = field(default_factory=list)


@dataclass
class Fn:
    serial: str
    kind: str  # a key of profiles.FN_KINDS
    phase: FnPhase
    activated_at: datetime
    tax_systems: TaxSystem
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
    # what the ФН does not hold but a shift report counts (non-fiscal documents, annulled receipts)
    cancelled: int = 0
    cancelled_sum: Decimal = Decimal(0)
    postponed: int = 0
    postponed_sum: Decimal = Decimal(0)
    cash_in: int = 0
    cash_in_sum: Decimal = Decimal(0)
    cash_out: int = 0
    cash_out_sum: Decimal = Decimal(0)


SHIFT_SUMS = ("cancelled_sum", "postponed_sum", "cash_in_sum", "cash_out_sum")


class DocumentForm(enum.Enum):
    """What an open document is: a receipt, a correction receipt, or a non-fiscal document."""

    RECEIPT = "receipt"
    CORRECTION = "correction"
    SERVICE = "service"  # text only, never in the ФН
    CASH_IN = "cash_in"  # внесение: non-fiscal, counted by the shift and the drawer
    CASH_OUT = "cash_out"  # изъятие (инкассация)

    @property
    def fiscal(self) -> bool:
        return self in (DocumentForm.RECEIPT, DocumentForm.CORRECTION)


@dataclass
class Counters:
    """Device-lifetime counters beyond the ФН: X reports made, the operation counter (every
    document, fiscal or not) and what the last X or Z report counted."""

    x_reports: int = 0
    operations: int = 0
    last_report: dict[str, str] = field(default_factory=dict)
    annulled_after: int = -1  # the last FD number when a receipt was last annulled (-1: never)
    annulled_total: str = "0"


@dataclass
class OpenDocument:
    kind: ReceiptKind
    tax_system: TaxSystem
    cashier: str
    state: ReceiptStep = ReceiptStep.OPENED
    items: list[dict[str, str]] = field(default_factory=list)
    total: Decimal = Decimal(0)
    paid: Decimal = Decimal(0)
    cash_paid: Decimal = Decimal(0)
    form: DocumentForm = DocumentForm.RECEIPT
    payments: dict[str, Decimal] = field(default_factory=dict)  # PaymentKind value → amount
    taxes: dict[str, Decimal] = field(default_factory=dict)  # Vat value → tax amount
    discount: Decimal = Decimal(0)
    text: list[str] = field(default_factory=list)  # printed lines added to the document (0x40 …)


@dataclass
class PendingPrint:
    """A document committed in the ФН whose printout did not finish (R8.2–R8.4)."""

    document: int  # FD number
    kind: DocumentKind  # RECEIPT, SHIFT_CLOSE, SHIFT_OPEN or REREGISTRATION
    lines: list[str]
    printed_lines: int = 0


@dataclass
class Printer:
    paper: PaperState = PaperState.OK
    cover_open: bool = False
    lines_left: int | None = None  # paper runs out after this many more lines


F = TypeVar("F", bound=Callable[..., Any])


def locked(method: F) -> F:
    """Run a core method under the core's one re-entrant lock.

    When the outermost such call ends (normally or with a CoreError: a receipt whose printout ran
    out of paper is committed all the same), the documents it committed go to ``on_commit``
    before the caller gets control back, so a wire front-end answers only after the hook (the
    ``--state`` journal, :mod:`.durable`) has made them durable.  Every way into the core that
    can commit is such a call; the hook sees each document once, complete (number in shift,
    totals and printout lines are filled in after ``_commit`` but inside the same call)."""

    @functools.wraps(method)
    def wrapper(self: CoreState, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.call_depth += 1
            try:
                return method(self, *args, **kwargs)
            finally:
                self.call_depth -= 1
                if not self.call_depth and self.new_documents:
                    self.publish_commits()

    return wrapper  # type: ignore[return-value]  # functools.wraps keeps the signature F promises


class CoreState:
    """What one emulated register holds; the rule and printing mixins and the core share it."""

    lock: threading.RLock
    profile: ModelProfile
    clock: VirtualClock
    defects: set[str]
    firmware: str
    serial: str
    powered: bool
    initialised: bool
    boot_count: int
    ofd_online: bool
    printer: Printer
    shift: Shift
    document: OpenDocument | None
    pending: PendingPrint | None
    journal: list[JournalEntry]
    tape: list[str]
    cash: Decimal
    counters: Counters
    fn: Fn
    wire_memory: dict[str, Any]  # per-device state a wire front-end keeps (e.g. Pirit 0x06/1)
    call_depth: int  # nesting of @locked calls in the thread holding the lock
    new_documents: list[Document]  # committed in the ФН, not yet handed to on_commit
    on_commit: Callable[[list[Document]], None] | None  # the --state journal; no file I/O in the core

    def publish_commits(self) -> None:
        """Hand what was committed to ``on_commit`` (called with the lock held, see :func:`locked`)."""
        documents, self.new_documents = self.new_documents, []
        if self.on_commit is not None:
            self.on_commit(documents)

    def now(self) -> datetime:
        return self.clock.now()

    def has_defect(self, name: str) -> bool:
        return name in self.defects

    def log(self, event: str, detail: str = "") -> None:
        self.journal.append(JournalEntry(self.clock.now(), event, detail))
