"""The vendor-neutral fiscal core: one state machine that is the emulator's fiscal truth.

Wire front-ends (Pirit, АТОЛ) translate frames into calls on :class:`FiscalCore` and translate
:class:`CoreError` kinds back into their own error codes.  The rules come from
``reference/domain-rules.md`` (rule ids in comments); where a rule is model-specific, the
:class:`~devices.emulator.profiles.ModelProfile` decides.  The core knows no wire protocol.

Layout: :mod:`.records` (the typed state), :mod:`.rules` (derived state and refusals),
:mod:`.printing` (tape, pending printouts), :mod:`.receipts` (the receipt life cycle),
:mod:`.snapshot` (JSON in and out); this module holds power, clock, shifts, registration,
reprints and the lab side.

Thread safety: one re-entrant lock guards everything (the wire, the control channel and the
hub poller run in different threads); every public method takes it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from harness.device import DocumentKind, FnPhase, PaperState, TaxSystem
from harness.errors import ErrorKind
from harness.fiscal import REREG_REASON_TAX_SYSTEMS
from harness.versions import parse_version

from .cashdesk import Corrections
from .clock import VirtualClock
from .defects import check_defects
from .printing import Printing
from .profiles import ModelProfile, fn_kind
from .receipts import Receipts
from .records import (
    CLOCK_SYNC_WINDOW,
    CUT,
    SHIFT_LIMIT,
    CoreError,
    Counters,
    Document,
    Fn,
    Printer,
    Shift,
    locked,
)
from .rules import FiscalRules
from .snapshot import snapshot

__all__ = ["CoreError", "FiscalCore", "PoweredOff", "restore_core"]

from .records import PoweredOff
from .snapshot import restore_core


class FiscalCore(Receipts, Corrections, FiscalRules, Printing):
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
        ofd_online: bool = True,
    ) -> None:
        self.lock = threading.RLock()
        self.call_depth = 0
        self.new_documents = []
        self.on_commit = None  # set by the --state journal (devices/emulator/durable.py)
        self.profile = profile
        self.clock = clock or VirtualClock(datetime(2020, 12, 1, 9, 0, 0))
        self.defects = set(check_defects(defects))
        self.firmware = profile.firmware
        self.serial = serial or (profile.serial_prefix + "123456")[:10]
        self.powered = True
        self.initialised = not profile.needs_start_of_work  # "start of work" needed after power-up
        self.boot_count = 1  # front-ends reset their per-boot state when it changes
        # A shop's register reaches its OFD: online unless started offline (setting ofd=offline);
        # the link going down is a fault the lab switches on (set_ofd, the control op "ofd").
        self.ofd_online = ofd_online
        # A network OFD link (ofd_link.NetworkOfd) sets ofd_network: then _drain_ofd delivers
        # nothing and only calls the ofd_wakeups (documents go over TCP, receipts come back);
        # ofd_allowed is the lab's "ofd" switch as that link sees it (the cable plugged in).
        self.ofd_network = False
        self.ofd_allowed = ofd_online
        self.ofd_wakeups: list[Callable[[], None]] = []
        self.printer = Printer()
        self.shift = Shift()
        self.document = None
        self.pending = None
        self.journal = []
        self.tape = []
        self.cash = Decimal(0)
        self.counters = Counters()
        self._clock_confirm: datetime | None = None  # a > 24 h jump waiting for its repeat (R3.4)
        self.wire_memory = {}
        self.before_shift_open: list[Callable[[FiscalCore], None]] = []  # fisGo hooks (R6.3)
        self.after_change: list[Callable[[FiscalCore], None]] = []
        activated = fn_activated or (self.clock.now() - timedelta(days=30))
        self.fn = Fn(
            serial="9999078900" + self.serial[-6:],
            kind=fn_kind(profile.fn_kind).id,
            phase=FnPhase.FISCAL,
            activated_at=activated,
            tax_systems=tax_systems,
            work_mode=0,
            registrations_done=1,
            ffd=profile.ffd,
            inn="7701234567",
            rnm="0000000001012345",
        )
        # the registration report (form 1) made when the ФН was activated, long delivered
        reg = self._make_document(DocumentKind.REGISTRATION, at=activated)
        reg.tax_systems = tax_systems
        reg.delivered = True
        reg.printed = True
        self.fn.archive.append(reg)
        self.log("power on", f"{profile.title} s/n {self.serial}, firmware {self.firmware}")

    # ------------------------------------------------------------------ documents

    def _changed(self) -> None:
        self._drain_ofd()
        for hook in list(self.after_change):
            hook(self)

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

    def _commit(self, kind: DocumentKind) -> Document:
        doc = self._make_document(kind)
        self.fn.archive.append(doc)  # the one place a document enters the ФН and the FD counter moves
        self.counters.operations += 1
        self.new_documents.append(doc)  # to on_commit when the outermost @locked call ends
        if self.has_defect("report_undelivered_as_sent"):
            doc.delivered = True
        self._drain_ofd()
        return doc

    def _drain_ofd(self) -> None:
        if self.ofd_network:  # the network link delivers; a new document or a change wakes it
            for wake in list(self.ofd_wakeups):
                wake()
            return
        if not self.ofd_online or not self.powered:
            return
        for doc in self.undelivered():
            doc.delivered = True
            self.log("OFD receipt", f"FD {doc.number} delivered")

    # ------------------------------------------------------------------ power, start of work

    @locked
    def start_work(self, host_time: datetime) -> None:
        """ "Start of work" after power-up (R3.4): sync within 8 min, refuse a date before the last FD."""
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

    # ------------------------------------------------------------------ clock

    @locked
    def set_rtc(self, value: datetime) -> None:
        """The register's own clock setting: shift closed, not before the last FD, a jump of more
        than 24 h ahead must be repeated to confirm (R3.4)."""
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

    # ------------------------------------------------------------------ shift

    @locked
    def open_shift(self, cashier: str = "", *, implicit: bool = False) -> Document:
        """Open a shift; ``implicit``: opened by a receipt on a closed shift (R3.8)."""
        self._require_ready()
        if self.shift.is_open:
            raise CoreError(ErrorKind.SHIFT_OPEN, "shift already open")
        self._require_idle()
        hooks = [] if implicit and self.has_defect("implicit_open_skips_task") else list(self.before_shift_open)
        for hook in hooks:  # deferred re-registration fires here, also on the implicit path (R6.3, R3.8)
            hook(self)
        if self.pending is not None:  # a hook's printout (form 11) must finish before the shift opens
            if self.printer.paper is PaperState.OUT:
                raise CoreError(ErrorKind.NO_PAPER, f"paper ran out printing document {self.pending.document}")
            self._require_no_pending()
        self._require_fn_usable(for_shift_open=True)
        self._require_paper()
        self.shift.number += 2 if self.has_defect("shift_number_skips") else 1
        self.shift.is_open = True
        self.shift.opened_at = self.clock.now()
        self.shift.opened_fn = self.clock.fn_seconds()
        self.shift.opened_rtc_fn_delta = self._rtc_minus_fn_timer()
        if not self.has_defect("shift_counters_not_reset"):  # the defect's totals: CashDesk.shift_totals
            self.shift.receipts = 0
            for counter in ("cancelled", "postponed", "cash_in", "cash_out"):  # the new shift's own counts
                setattr(self.shift, counter, 0)
                setattr(self.shift, counter + "_sum", Decimal(0))
        doc = self._commit(DocumentKind.SHIFT_OPEN)
        doc.shift_number = self.shift.number
        self.log("shift opened", f"shift {self.shift.number}, FD {doc.number}, cashier {cashier}")
        self._print_new(
            doc, self._document_lines(doc, f"ОТЧЁТ ОБ ОТКРЫТИИ СМЕНЫ {self.shift.number}", [f"Кассир {cashier}"])
        )
        return doc

    @locked
    def close_shift(self, cashier: str = "") -> Document:
        self._require_ready()
        if self.shift.close_interrupted:  # repeat of an interrupted Z: print only (R8.3)
            if self.pending is None:
                raise CoreError(ErrorKind.FATAL, "interrupted Z report lost its printout")
            doc = self.document_by_number(self.pending.document)
            self._print(self.pending)
            self.shift.close_interrupted = False
            return doc
        if not self.shift.is_open:
            raise CoreError(ErrorKind.SHIFT_CLOSED, "shift is not open")
        self._require_idle()
        self._require_fn_usable(for_shift_close=True)
        self._require_paper()
        self.counters.last_report = self.report_figures()
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
        self._print_new(doc, lines)
        self.shift.close_interrupted = False
        return doc

    @locked
    def x_report(self, cashier: str = "") -> None:
        """X report: printed only, never touches the ФН (scenario A edge case; seeded defect
        ``x_report_makes_document``: also committed as a form-21 document)."""
        self._require_ready()
        if self.profile.x_report_needs_open_shift and not self.shift.is_open:
            raise CoreError(ErrorKind.SHIFT_CLOSED, "shift is not open")
        self._require_idle()
        self._require_printer()
        self.counters.x_reports += 1
        self.counters.operations += 1
        self.counters.last_report = self.report_figures()
        self.tape.extend([f"X-ОТЧЁТ  смена {self.shift.number}", f"Кассир {cashier}", CUT])
        self.log("X report", f"shift {self.shift.number}")
        if self.has_defect("x_report_makes_document"):
            doc = self._commit(DocumentKind.STATE_REPORT)
            doc.shift_number = self.shift.number if self.shift.is_open else None
            doc.printed = True  # printed as the X report above
            doc.lines = [f"X-ОТЧЁТ  смена {self.shift.number}", f"Кассир {cashier}"]
            self.log("state report", f"FD {doc.number} (made by the X report)")

    # ------------------------------------------------------------------ registration

    @locked
    def reregister(
        self, tax_systems: TaxSystem, *, cashier: str = "", work_mode: int | None = None, force: bool = False
    ) -> Document:
        """Registration change (form 11) with a new СНО list (R5.*)."""
        self._require_ready()
        if self.shift.is_open:
            raise CoreError(ErrorKind.SHIFT_OPEN, "the shift must be closed for re-registration")
        self._require_idle()
        self.validate_tax_systems(tax_systems)
        mode = self.fn.work_mode if work_mode is None else work_mode
        if tax_systems == self.fn.tax_systems and mode == self.fn.work_mode and not force:
            raise CoreError(ErrorKind.NO_CHANGES, "nothing changed for re-registration")
        if self.registrations_left() <= 0:
            raise CoreError(ErrorKind.REGISTRATION_LIMIT, "no re-registrations left on this ФН", source="fn")
        self._require_fn_usable()
        if self.profile.rereg_requires_empty_queue and self.undelivered():
            raise CoreError(ErrorKind.UNSENT_DOCUMENTS, f"{len(self.undelivered())} documents not sent to the OFD")
        self._require_paper()
        old = self.fn.tax_systems
        self.fn.tax_systems = TaxSystem(tax_systems)
        self.fn.work_mode = mode
        self.fn.registrations_done += 1
        doc = self._commit(DocumentKind.REREGISTRATION)
        doc.tax_systems = TaxSystem(tax_systems)
        doc.reason = REREG_REASON_TAX_SYSTEMS
        self.log(
            "re-registered",
            f"FD {doc.number}: {old.title} → {tax_systems.title}; valid until {self.fn_valid_until():%d.%m.%Y}; "
            f"registrations left {self.registrations_left()}",
        )
        body = [f"Кассир {cashier}", f"СНО {tax_systems.title}", "Причина: изменение СНО (1205 бит 7)"]
        self._print_new(doc, self._document_lines(doc, "ОТЧЁТ ОБ ИЗМЕНЕНИИ ПАРАМЕТРОВ РЕГИСТРАЦИИ", body))
        return doc

    @locked
    def close_fn(self, cashier: str = "") -> Document:
        """Close the ФН's fiscal mode (form 6): shift closed, every document delivered to the OFD
        first; afterwards the ФН only keeps its archive and the register makes no fiscal document."""
        self._require_ready()
        if self.shift.is_open:
            raise CoreError(ErrorKind.SHIFT_OPEN, "the shift must be closed to close the ФН")
        self._require_idle()
        if self.undelivered():
            raise CoreError(ErrorKind.UNSENT_DOCUMENTS, f"{len(self.undelivered())} documents not sent to the OFD")
        self._require_paper()
        doc = self._commit(DocumentKind.FN_CLOSE)
        self.fn.phase = FnPhase.POST_FISCAL
        self.log("ФН closed", f"FD {doc.number}")
        self._print_new(doc, self._document_lines(doc, "ОТЧЁТ О ЗАКРЫТИИ ФН", [f"Кассир {cashier}"]))
        return doc

    # ------------------------------------------------------------------ reprint

    @locked
    def continue_print(self) -> Document | None:
        """Finish a pending printout (any kind); returns the document or None if nothing pends."""
        self._require_ready()
        if self.pending is None:
            return None
        doc = self.document_by_number(self.pending.document)
        self._print(self.pending)
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
        self._require_printer()
        self.tape.extend(["КОПИЯ", *doc.lines, CUT])
        return doc

    # ------------------------------------------------------------------ lab side

    @locked
    def set_ofd(self, online: bool) -> None:
        self.ofd_allowed = online
        if not self.ofd_network or not online:  # a network link raises ofd_online once its OFD answers
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
    def lab_fn(
        self,
        *,
        activated: datetime | None = None,
        registrations_done: int | None = None,
        tax_systems: TaxSystem | None = None,
        kind: str | None = None,
    ) -> None:
        if kind is not None:  # a prepared ФН of another model (15 or 36 months, R2.4)
            self.fn.kind = fn_kind(kind).id
            self.log("lab ФН", f"kind {self.fn.kind}")
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
        if tax_systems is not None:
            self.validate_tax_systems(tax_systems)
            self.fn.tax_systems = tax_systems
            self.log("lab ФН", f"registered on {tax_systems.title}")

    @locked
    def set_firmware(self, version: str) -> None:
        parse_version(version)
        self.firmware = version
        self.log("firmware", version)
        self._changed()

    @locked
    def set_defects(
        self, enable: set[str] | frozenset[str] = frozenset(), disable: set[str] | frozenset[str] = frozenset()
    ) -> None:
        self.defects |= set(check_defects(enable))
        self.defects -= set(check_defects(disable))
        self.log("defects", ",".join(sorted(self.defects)) or "none")

    @locked
    def snapshot(self) -> dict[str, Any]:
        """Everything, JSON-ready: the control channel's ``state`` op and ``--state FILE``."""
        return snapshot(self)
