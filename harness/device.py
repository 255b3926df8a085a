"""THE device interface: what every register driver offers to the scenarios.

Scenarios speak only this vocabulary (plus :mod:`harness.lab`), so one scenario source runs on
a real Касса Ф over a serial cable, on an АТОЛ over TCP, and on the emulators of both.  Drivers
read limits from the device (ФН expiry, registrations left, the OFD queue) instead of
hard-coding them.  All times are **device local time** (naive ``datetime``), as the register
itself counts them (tag 1012 is a zone-less local timestamp).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol, runtime_checkable

from .fiscal import TaxSystem

__all__ = [
    "DEFAULT_CASHIER",
    "Capability",
    "DeviceInfo",
    "DocumentKind",
    "FiscalDocument",
    "FnPhase",
    "FnStatus",
    "FnWarning",
    "Item",
    "JournalEntry",
    "Kkt",
    "OfdQueue",
    "PaperState",
    "Payment",
    "PaymentKind",
    "ReceiptKind",
    "ShiftCounters",
    "ShiftState",
    "Status",
    "TaxSystem",
    "Vat",
]


class ShiftState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    EXPIRED = "expired"  # open for more than 24 h: only closing is allowed


class PaperState(enum.Enum):
    OK = "ok"
    NEAR_END = "near_end"  # warning only, never blocks
    OUT = "out"


class FnPhase(enum.IntEnum):
    SETUP = 0
    READY = 1
    FISCAL = 3
    POST_FISCAL = 7
    ARCHIVE = 15


class FnWarning(enum.IntFlag):
    URGENT_REPLACEMENT = 1  # ≤ 3 days (1051)
    RESOURCE_30_DAYS = 2  # key resource ends within 30 days (1050)
    MEMORY_90 = 4  # archive 90 % full (1052)
    OFD_TIMEOUT = 8  # OFD answer timeout exceeded (1053)
    CRITICAL = 128


class DocumentKind(enum.IntEnum):
    """Fiscal document form codes (R7.4)."""

    REGISTRATION = 1
    SHIFT_OPEN = 2
    RECEIPT = 3
    SHIFT_CLOSE = 5
    FN_CLOSE = 6
    REREGISTRATION = 11
    STATE_REPORT = 21
    CORRECTION = 31


class ReceiptKind(enum.IntEnum):
    SALE = 1  # приход
    SALE_RETURN = 2
    PURCHASE = 3  # расход
    PURCHASE_RETURN = 4


class Vat(enum.Enum):
    VAT20 = "vat20"
    VAT10 = "vat10"
    VAT0 = "vat0"
    NONE = "none"  # без НДС


class PaymentKind(enum.Enum):
    CASH = "cash"
    ELECTRONIC = "electronic"
    PREPAID = "prepaid"  # предоплата, аванс (tag 1215)
    CREDIT = "credit"  # постоплата, кредит (tag 1216)
    OTHER = "other"  # встречное предоставление (tag 1217)


class Capability(enum.Enum):
    """What a device (through its driver) can do; scenarios skip with a reason when one is missing."""

    SET_CLOCK = "set_clock"
    REREGISTER = "reregister"
    CONTINUE_PRINT = "continue_print"
    X_REPORT = "x_report"
    JOURNAL = "journal"
    DREAMKAS_CLOUD = "dreamkas_cloud"  # deferred re-registration tasks from the Кабинет hub
    OFD_QUEUE = "ofd_queue"


@dataclass(frozen=True)
class DeviceInfo:
    model: str  # our profile id: kf, dkf, start, atol …
    model_name: str  # what the device calls itself
    serial: str
    firmware: str  # version string "x.y.z"
    protocol: str  # "pirit", "atol-v3" …
    ffd: str  # "1.05", "1.2"
    fn_serial: str
    model_code: int | None = None


@dataclass(frozen=True)
class Status:
    shift: ShiftState
    document_open: bool
    pending_print: bool  # a document is closed in the ФН but its printout is not finished
    paper: PaperState
    cover_open: bool
    initialised: bool = True  # "start of work" done after power-up
    shift_number: int | None = None
    shift_opened_at: datetime | None = None
    raw: dict[str, int] = field(default_factory=dict, compare=False)  # vendor flags, for the report


@dataclass(frozen=True)
class FnStatus:
    serial: str
    phase: FnPhase
    valid_until: date | None
    tax_systems: TaxSystem
    registrations_done: int | None
    registrations_left: int | None
    last_fd_number: int
    warnings: FnWarning
    ffd: str = ""
    last_registration_fd: int | None = None  # FD number of the last (re-)registration report


@dataclass(frozen=True)
class OfdQueue:
    count: int
    first_number: int | None
    first_datetime: datetime | None
    connected: bool | None = None  # transport connection to the OFD, where the device says


@dataclass(frozen=True)
class ShiftCounters:
    """What the register has counted for the current shift (after a Z: the closed one, until the
    next shift opens): receipts by settlement sign, and the cash in the drawer."""

    shift_number: int
    sales: int  # приход: receipts in the shift
    sales_total: Decimal
    returns: int  # возврат прихода
    returns_total: Decimal
    cash: Decimal | None = None  # cash in the drawer, where the device says


@dataclass(frozen=True)
class FiscalDocument:
    kind: DocumentKind
    number: int  # ФД number (1040)
    fiscal_sign: str  # ФП/ФПД (1077)
    datetime: datetime  # device local time (1012)
    shift_number: int | None = None
    number_in_shift: int | None = None
    tax_system: TaxSystem | None = None
    total: Decimal | None = None
    printed: bool = True  # False: committed in the ФН, printout still pending


@dataclass(frozen=True)
class Item:
    name: str
    price: Decimal
    quantity: Decimal = Decimal(1)
    vat: Vat = Vat.NONE

    @property
    def amount(self) -> Decimal:
        """Price × quantity to the kopeck, half up, as the register rounds it (1.25 × 0.5 = 0.63)."""
        return (self.price * self.quantity).quantize(Decimal("0.01"), ROUND_HALF_UP)


@dataclass(frozen=True)
class Payment:
    amount: Decimal
    kind: PaymentKind = PaymentKind.CASH


@dataclass(frozen=True)
class JournalEntry:
    at: datetime
    event: str
    detail: str = ""


DEFAULT_CASHIER = "Кассир"


@runtime_checkable
class Kkt(Protocol):
    """A cash register, real or emulated, reached over its wire protocol."""

    @property
    def model(self) -> str: ...

    @property
    def capabilities(self) -> frozenset[Capability]: ...

    def connect(self) -> None:
        """Open the link and bring the device to a working state ("start of work")."""

    def close(self) -> None: ...

    def info(self) -> DeviceInfo: ...

    def status(self) -> Status: ...

    def fn(self) -> FnStatus: ...

    def ofd_queue(self) -> OfdQueue: ...

    def clock(self) -> datetime: ...

    def set_clock(self, value: datetime) -> None: ...

    def open_shift(self, cashier: str = DEFAULT_CASHIER) -> FiscalDocument: ...

    def close_shift(self, cashier: str = DEFAULT_CASHIER) -> FiscalDocument: ...

    def x_report(self, cashier: str = DEFAULT_CASHIER) -> None: ...

    def counters(self) -> ShiftCounters: ...

    def sell(
        self,
        items: Sequence[Item],
        payments: Sequence[Payment] | None = None,
        tax_system: TaxSystem | None = None,
        cashier: str = DEFAULT_CASHIER,
        kind: ReceiptKind = ReceiptKind.SALE,
    ) -> FiscalDocument:
        """A receipt of settlement sign ``kind`` (a sale by default; SALE_RETURN for a return)."""

    def cancel_document(self) -> None: ...

    def reregister(self, tax_systems: TaxSystem, cashier: str = DEFAULT_CASHIER) -> FiscalDocument: ...

    def continue_print(self) -> FiscalDocument | None:
        """Finish a printout interrupted after the ФН commit; never creates a new document."""

    def reprint_last(self) -> None: ...

    def journal(self) -> list[JournalEntry]: ...

    def reconcile(self) -> FiscalDocument | None:
        """Settle an operation that ended in OutcomeUnknown: the document it committed, or None."""
