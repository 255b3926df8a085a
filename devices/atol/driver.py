"""АТОЛ driver: the device interface (:class:`harness.device.Kkt`) over a link.

Talks "Протокол ККТ 3.x" to an АТОЛ 30Ф / 55Ф / 90Ф (or its emulator -- same bytes).  The wire
half -- v3 frames, the task buffer, timeouts, normalized errors, modes -- is
:class:`~devices.atol.wire.AtolWire`; this class gives the commands their fiscal meaning (§3.5).
Things the binary protocol does not give (fiscal sign of a document, shift opening time) stay
empty; see :mod:`devices.atol.emulator` for the [inferred] layouts shared with the emulator
(E8h/E9h requisites, A6h, 95h continue print, 3Fh bit 4).  The identity check reads the model
catalogue (:mod:`devices.models`).  The driver never imports the emulator.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from harness.device import (
    DEFAULT_CASHIER,
    DeviceInfo,
    DocumentKind,
    FiscalDocument,
    FnPhase,
    FnStatus,
    FnWarning,
    Item,
    OfdQueue,
    PaperState,
    Payment,
    ReceiptKind,
    ShiftCounters,
    ShiftState,
    Status,
    TaxSystem,
)
from harness.driver import DriverBase
from harness.errors import ClockConfirmRequired, DeviceError, HarnessError, LinkCorrupted, LinkError
from harness.fiscal import FFD_NAMES, REREG_REASON_SETTINGS_105, REREG_REASON_TAX_SYSTEMS
from harness.link import Link
from harness.reconcile import Intent, Observed

from .protocol import (
    NUMBER_ENCODINGS,
    STATUS_PRINT_PENDING,
    CloseReceipt,
    Cmd,
    CodecError,
    FirmwareVersion,
    FnQuery,
    FnValidity,
    Mode,
    NumberEncoding,
    OfdExchangeStatus,
    OfdFlags,
    OpenReceipt,
    PaymentType,
    PrinterFlags,
    ReceiptType,
    Registration,
    RegistrationKind,
    RegistrationTotals,
    StateAnswer,
    StatusFlags,
    Tag,
    WriteRequisite,
    encode_datetime_params,
    encode_tlv,
)
from .protocol import FnStatus as AtolFnStatus
from .reads import AtolReads
from .receipt_fields import cp866, payment_field, position
from .wire import SYSADMIN_PASSWORD, AtolWire

T = TypeVar("T")
# 92h receipt type of each settlement sign (§3.5.5: 1 приход, 2 возврат прихода, 4 расход, 5 возврат расхода)
RECEIPT_TYPE = {
    ReceiptKind.SALE: ReceiptType.SALE,
    ReceiptKind.SALE_RETURN: ReceiptType.SALE_RETURN,
    ReceiptKind.PURCHASE: ReceiptType.EXPENSE,
    ReceiptKind.PURCHASE_RETURN: ReceiptType.EXPENSE_RETURN,
}
FN_WARNING_BITS = 0x8F  # the A4h/30h warning bits harness.device.FnWarning knows


class AtolDriver(DriverBase, AtolReads):
    reports_shift_open_time = False  # the binary protocol has no shift-open time (status().shift_opened_at)
    protocol = "atol-v3"
    family_name = "atol"

    def __init__(
        self,
        link: Link,
        *,
        model: str,
        host_clock: Callable[[], datetime] = datetime.now,
        access_password: int = 0,
        mode_password: int = SYSADMIN_PASSWORD,
        a4_10_encoding: str | None = None,
    ) -> None:
        AtolWire.__init__(self, link, access_password=access_password, mode_password=mode_password)
        self._bind_model(model)
        if a4_10_encoding is not None and a4_10_encoding not in NUMBER_ENCODINGS:
            raise HarnessError(f"a4_10_encoding is {' or '.join(NUMBER_ENCODINGS)}, not {a4_10_encoding!r}")
        # A4h/10h number encoding ([conflict] §3.5.4): as told (the profile's atol_a4_10_encoding),
        # else learned from the register by the first answer whose two readings differ
        self._a4_10: NumberEncoding | None = NUMBER_ENCODINGS[a4_10_encoding] if a4_10_encoding else None
        self._host_clock = host_clock  # kept for interface symmetry: ATOL has no "start of work"

    # ------------------------------------------------------------------------------ lifecycle

    def connect(self) -> None:
        """ABORT, 3Fh, identity check, cancel an open receipt, back to the select mode (§3.3)."""
        self._reader.reset()
        self.abort()
        block = self.status_block()
        model = self.device_type().model
        seen = f"model byte {model} (3Fh {block.model}), expected {self._model.model_code}"
        self._check_identity(block.serial_text, block.model, model, seen=seen)
        self._mode = block.mode
        if block.receipt_state:
            self._enter(Mode.REGISTRATION)
            with contextlib.suppress(DeviceError):
                self.call(Cmd.CANCEL_RECEIPT)
        if self._current_mode() != Mode.SELECT:
            self.call(Cmd.EXIT_MODE)
            self._mode = Mode.SELECT

    # ------------------------------------------------------------------------------ reading

    def _decode_fn(self, decoder: Callable[[bytes], T], sub: int) -> T:
        try:
            return decoder(self._fn_query(sub))
        except CodecError as exc:
            raise LinkCorrupted(f"malformed A4h/{sub:02X}h answer: {exc}") from None

    def _write_requisite(self, tag: int, value: bytes) -> None:
        self.call(Cmd.WRITE_REQUISITE, WriteRequisite(encode_tlv(tag, value)).encode())

    def _write_cashier(self, cashier: str) -> None:
        try:
            self._write_requisite(Tag.CASHIER, cp866(cashier, 64))
        except DeviceError as exc:  # a device without E8h 1021 still works with its own operator
            self._link.trace.note(f"cashier requisite 1021 not written: {exc}")

    def _ffd(self) -> str:
        try:
            value = self.read_requisite(Tag.FFD_VERSION)
            return FFD_NAMES.get(value[0], "") if value else ""
        except DeviceError:
            return ""

    def info(self) -> DeviceInfo:
        device_type = self.device_type()
        try:
            version = FirmwareVersion.decode(self.call(Cmd.FIRMWARE, b"\x01").data)
        except CodecError as exc:
            raise LinkCorrupted(f"malformed 9Dh answer: {exc}") from None
        serial = self.serial()
        fn_serial = self._fn_query(FnQuery.NUMBER)[:16].decode("ascii", "replace").strip()
        return DeviceInfo(
            model=self._model.id,
            model_name=device_type.name or f"АТОЛ model {device_type.model}",
            serial=serial,
            firmware=f"{version.version}.{version.subversion}.{version.build}",
            protocol=self.protocol,
            ffd=self._ffd(),
            fn_serial=fn_serial,
            model_code=device_type.model,
        )

    def status(self) -> Status:
        block = self.status_block()
        state = StateAnswer.decode(self.call(Cmd.STATE).data)
        shift_params = self._shift_params(block)
        if shift_params.state == 2:  # "expired": plausible by analogy with libfptr, not confirmed (§3.5.4)
            shift = ShiftState.EXPIRED
        elif shift_params.state == 1 or block.flags & StatusFlags.SHIFT_OPEN:
            shift = ShiftState.OPEN
        else:
            shift = ShiftState.CLOSED
        paper = PaperState.OK
        if state.flags & PrinterFlags.NO_PAPER or not block.flags & StatusFlags.PAPER_PRESENT:
            paper = PaperState.OUT
        elif state.flags & PrinterFlags.PAPER_NEAR_END:
            paper = PaperState.NEAR_END
        return Status(
            shift=shift,
            document_open=block.receipt_state != 0,
            pending_print=bool(block.flags & STATUS_PRINT_PENDING),
            paper=paper,
            cover_open=bool(block.flags & StatusFlags.COVER_OPEN),
            initialised=True,  # an АТОЛ needs no "start of work"
            shift_number=shift_params.shift_number,
            shift_opened_at=None,  # not in the binary protocol [not found]
            raw={
                "flags": int(block.flags),
                "mode": block.mode,
                "submode": block.submode,
                "receipt_state": block.receipt_state,
                "printer": int(state.flags),
                "shift_state": shift_params.state,
            },
        )

    def fn(self) -> FnStatus:
        status: AtolFnStatus = self._decode_fn(AtolFnStatus.decode, FnQuery.STATUS)
        validity: FnValidity = self._decode_fn(FnValidity.decode, FnQuery.VALIDITY)
        try:
            taxes = TaxSystem(self.read_requisite(Tag.TAX_SYSTEMS)[0] & 0x3F)
        except (DeviceError, IndexError):
            taxes = TaxSystem(0)
        try:
            phase = FnPhase(status.phase & 0x0F)
        except ValueError:
            raise LinkCorrupted(f"unknown ФН phase {status.phase:#04x} in A4h/30h") from None
        registration: RegistrationTotals | None = None
        with contextlib.suppress(DeviceError, LinkCorrupted):
            registration = self._decode_fn(RegistrationTotals.decode, FnQuery.REGISTRATION)
        return FnStatus(
            serial=status.fn_number,
            phase=phase,
            valid_until=validity.valid_until,
            tax_systems=taxes,
            registrations_done=validity.registrations_done,
            registrations_left=validity.registrations_left,
            last_fd_number=status.last_fd_number,
            warnings=FnWarning(int(status.warnings) & FN_WARNING_BITS),
            ffd=self._ffd(),
            last_registration_fd=registration.fd_number if registration is not None else None,
        )

    def ofd_queue(self) -> OfdQueue:
        exchange: OfdExchangeStatus = self._decode_fn(OfdExchangeStatus.decode, FnQuery.OFD_EXCHANGE)
        connected = bool(exchange.flags & OfdFlags.TRANSPORT_CONNECTED)
        if exchange.unsent_count == 0:
            return OfdQueue(0, None, None, connected=connected)
        return OfdQueue(
            exchange.unsent_count, exchange.first_unsent_number, exchange.first_unsent_at, connected=connected
        )

    def clock(self) -> datetime:
        return self.status_block().datetime

    def set_clock(self, value: datetime) -> None:
        params = encode_datetime_params(value.replace(microsecond=0))
        with self._in_mode(Mode.PROGRAMMING):
            try:
                self.call(Cmd.SET_DATETIME, params)
            except ClockConfirmRequired:
                self.call(Cmd.SET_DATETIME, params)  # more than 24 h ahead: repeat to confirm

    # ------------------------------------------------------------------------------ documents

    def _last_document(self, kind: DocumentKind) -> FiscalDocument:
        status: AtolFnStatus = self._decode_fn(AtolFnStatus.decode, FnQuery.STATUS)
        shift = self._shift_params()
        clock = self.clock()
        when = status.last_document_at or clock
        if clock.replace(second=0) == when:  # the ФН keeps minutes; the clock gives the seconds
            when = clock
        return FiscalDocument(
            kind=kind,
            number=status.last_fd_number,
            fiscal_sign="",  # not in the binary protocol's answers [not found]
            datetime=when,
            shift_number=shift.shift_number,
            number_in_shift=max(0, shift.receipt_number - 1) if kind == DocumentKind.RECEIPT else None,
        )

    def open_shift(self, cashier: str = DEFAULT_CASHIER) -> FiscalDocument:
        def attempt() -> FiscalDocument:
            with self._in_mode(Mode.REGISTRATION):
                self._write_cashier(cashier)
                self.call(Cmd.OPEN_SHIFT, b"\x00" + cp866(cashier, 64))
            return self._last_document(DocumentKind.SHIFT_OPEN)

        return self.run(Intent(DocumentKind.SHIFT_OPEN, (cashier,)), attempt)

    def close_shift(self, cashier: str = DEFAULT_CASHIER) -> FiscalDocument:
        def attempt() -> FiscalDocument:
            with self._in_mode(Mode.Z_REPORT):
                self._write_cashier(cashier)
                self.call(Cmd.Z_REPORT)
            return self._last_document(DocumentKind.SHIFT_CLOSE)

        return self.run(Intent(DocumentKind.SHIFT_CLOSE, (cashier,)), attempt)

    def x_report(self, cashier: str = DEFAULT_CASHIER) -> None:
        with self._in_mode(Mode.X_REPORT):
            self._write_cashier(cashier)
            self.call(Cmd.X_REPORT, b"\x01")

    def counters(self) -> ShiftCounters:
        """A4h/10h the shift number; 91h register 6 the receipts of a type, register 3 their
        payments by payment type (summed over the 99h types 1..5), register 10 the cash in the drawer."""
        shift = self._shift_params()
        totals = {
            kind: sum((self.shift_payments(RECEIPT_TYPE[kind], p) for p in PaymentType), Decimal(0))
            for kind in (ReceiptKind.SALE, ReceiptKind.SALE_RETURN)
        }
        return ShiftCounters(
            shift_number=shift.shift_number,
            sales=self.shift_receipts(ReceiptType.SALE),
            sales_total=totals[ReceiptKind.SALE],
            returns=self.shift_receipts(ReceiptType.SALE_RETURN),
            returns_total=totals[ReceiptKind.SALE_RETURN],
            cash=self.cash_in_drawer(),
        )

    def sell(
        self,
        items: Sequence[Item],
        payments: Sequence[Payment] | None = None,
        tax_system: TaxSystem | None = None,
        cashier: str = DEFAULT_CASHIER,
        kind: ReceiptKind = ReceiptKind.SALE,
    ) -> FiscalDocument:
        if not items:
            raise HarnessError("a receipt needs at least one item")
        kind = ReceiptKind(kind)
        if tax_system is not None and (not tax_system.value or tax_system.value & (tax_system.value - 1)):
            raise HarnessError(f"a receipt takes one tax system, not {tax_system.title}")
        total = sum((item.amount for item in items), Decimal(0))
        payments = payments or [Payment(total)]
        positions = [position(item) for item in items]
        pays = [payment_field(payment) for payment in payments]
        # the kind is part of the request: an interrupted return is settled as a return, not a sale;
        # the total stays last (Intent.describe)
        request = (tuple(items), tuple(payments), tax_system, cashier, kind, total)
        intent = Intent(DocumentKind.RECEIPT, request, steps=len(items) + len(payments))
        return self.run(intent, lambda: self._sell_once(positions, pays, tax_system, cashier, kind, total))

    def _sell_once(
        self,
        positions: list[bytes],
        pays: list[bytes],
        tax_system: TaxSystem | None,
        cashier: str,
        kind: ReceiptKind,
        total: Decimal,
    ) -> FiscalDocument:
        with self._in_mode(Mode.REGISTRATION):
            self._write_cashier(cashier)
            if tax_system is not None:
                self._write_requisite(Tag.RECEIPT_TAX_SYSTEM, bytes([tax_system.value]))
            self.call(Cmd.OPEN_RECEIPT, OpenReceipt(RECEIPT_TYPE[kind]).encode())
            try:
                for position in positions:
                    self.call(Cmd.REGISTER_POSITION, position)
                for pay in pays:
                    self.call(Cmd.PAYMENT, pay)
                self.call(Cmd.CLOSE_RECEIPT, CloseReceipt(PaymentType.CASH, Decimal(0)).encode())
            except DeviceError:
                self._cancel_if_open()
                raise
        doc = self._last_document(DocumentKind.RECEIPT)
        return FiscalDocument(
            kind=doc.kind,
            number=doc.number,
            fiscal_sign=doc.fiscal_sign,
            datetime=doc.datetime,
            shift_number=doc.shift_number,
            number_in_shift=doc.number_in_shift,
            tax_system=tax_system,
            total=total,
        )

    def _cancel_if_open(self) -> None:
        """After a refused receipt: cancel it if it is still open (not if it is in the ФН already)."""
        try:
            if self.status_block().receipt_state:
                self.call(Cmd.CANCEL_RECEIPT)
        except (DeviceError, LinkError):
            pass

    def cancel_document(self) -> None:
        with self._in_mode(Mode.REGISTRATION):
            self.call(Cmd.CANCEL_RECEIPT)

    def continue_print(self) -> FiscalDocument | None:
        """95h for a printout pending after the ФН commit (3Fh bit 4); never a new document."""
        block = self.status_block()
        if not block.flags & STATUS_PRINT_PENDING:
            return None
        self.call(Cmd.REPRINT_LAST)
        # a pending printout with the shift closed is an interrupted Z; otherwise a receipt
        kind = DocumentKind.RECEIPT if block.flags & StatusFlags.SHIFT_OPEN else DocumentKind.SHIFT_CLOSE
        return self._last_document(kind)

    def reprint_last(self) -> None:
        self.call(Cmd.REPRINT_LAST)

    def reregister(self, tax_systems: TaxSystem, cashier: str = DEFAULT_CASHIER) -> FiscalDocument:
        """A6h "change registration parameters" with the new 1062 mask and reason bit 7 of 1205."""
        mask = int(tax_systems)
        if not 0 < mask < 0x100:
            raise HarnessError(f"bad tax-system mask {mask}")
        ffd = self._ffd()

        def attempt() -> FiscalDocument:
            with self._in_mode(Mode.FN):
                self._write_cashier(cashier)
                direct: int | None = None
                try:
                    self._write_requisite(Tag.TAX_SYSTEMS, bytes([mask]))
                except DeviceError as exc:
                    self._link.trace.note(f"1062 not written with E8h ({exc}); passing it in A6h")
                    direct = mask
                with contextlib.suppress(DeviceError):
                    if ffd == "1.05":
                        self._write_requisite(Tag.REREG_REASON, bytes([REREG_REASON_SETTINGS_105]))
                    else:
                        self._write_requisite(Tag.REREG_REASONS, REREG_REASON_TAX_SYSTEMS.to_bytes(4, "little"))
                self.call(Cmd.REGISTRATION, Registration(RegistrationKind.CHANGE_PARAMETERS, direct).encode())
            return self._registration_document()

        return self.run(Intent(DocumentKind.REREGISTRATION, (tax_systems, cashier)), attempt)

    def _registration_document(self) -> FiscalDocument:
        doc = self._last_document(DocumentKind.REREGISTRATION)
        with contextlib.suppress(DeviceError, LinkCorrupted):
            totals: RegistrationTotals = self._decode_fn(RegistrationTotals.decode, FnQuery.REGISTRATION)
            if totals.fd_number == doc.number:
                return FiscalDocument(
                    kind=doc.kind,
                    number=doc.number,
                    fiscal_sign=str(totals.fiscal_sign),
                    datetime=doc.datetime,
                    shift_number=doc.shift_number,
                    tax_system=None,
                )
        return doc

    # ------------------------------------------------------------------------------ reconciliation

    def _observe(self) -> Observed:
        block = self.status_block()
        status: AtolFnStatus = self._decode_fn(AtolFnStatus.decode, FnQuery.STATUS)
        shift = self._shift_params(block)
        registration: int | None = None
        with contextlib.suppress(DeviceError):
            registration = self._decode_fn(RegistrationTotals.decode, FnQuery.REGISTRATION).fd_number
        return Observed(
            fd=status.last_fd_number,
            shift_open=shift.state in (1, 2),
            shift_number=shift.shift_number,
            receipts=max(0, shift.receipt_number - 1),
            document_open=block.receipt_state != 0,
            registration_fd=registration,
            pending_print=bool(block.flags & STATUS_PRINT_PENDING),
            printer_stopped="cover open"
            if block.flags & StatusFlags.COVER_OPEN
            else "no paper"
            if not block.flags & StatusFlags.PAPER_PRESENT
            else "",
        )

    def _resync(self) -> None:
        """Partial frames forgotten, the task buffer emptied (ABORT), the mode read again."""
        self._reader.reset()
        self._mode = None
        self.abort()

    def _cancel_open_document(self) -> None:
        if self.status_block().receipt_state:
            self.cancel_document()

    def _committed_document(self, intent: Intent, after: Observed) -> FiscalDocument:
        if intent.kind is DocumentKind.REREGISTRATION:
            return self._registration_document()
        doc = self._last_document(intent.kind)
        if intent.kind is not DocumentKind.RECEIPT:
            return doc
        _, _, tax_system, _, _, total = intent.request
        assert isinstance(total, Decimal) and (tax_system is None or isinstance(tax_system, TaxSystem))
        return replace(doc, tax_system=tax_system, total=total, printed=not after.pending_print)
