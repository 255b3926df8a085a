"""Pirit driver: the device interface (:class:`harness.device.Kkt`) over a link.

Talks to a Касса Ф / Дримкас-Ф / Старт (or their emulators — same bytes).  The wire half —
frames, packet ids, per-command timeouts, normalized errors — is :class:`~devices.pirit.wire.PiritWire`;
this class gives the commands their fiscal meaning (§2.5).  The identity check reads the
model catalogue (:mod:`devices.models`).  The driver never imports the emulator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal

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
    PaymentKind,
    ReceiptKind,
    ShiftState,
    Status,
    TaxSystem,
    Vat,
)
from harness.driver import DriverBase
from harness.errors import (
    ClockConfirmRequired,
    ClockMismatch,
    DeviceError,
    HarnessError,
    LinkCorrupted,
    LinkTimeout,
    MiscommittedDocument,
)
from harness.fiscal import FFD_NAMES
from harness.link import Link
from harness.reconcile import Intent, Observed

from .protocol import (
    DEFAULT_PASSWORD,
    Field,
    format_date,
    format_money,
    format_quantity,
    format_time,
    parse_date,
    parse_int,
    parse_time,
)
from .reads import PiritReads
from .wire import PiritWire

RECEIPT_TYPE_SALE = 2  # 0x03/2 field 1 (the 0x30 document type)
# 0x30 field 1 bits 0..3, the manual's "Открыть документ": 2 приход, 3 возврат прихода, 6 расход,
# 7 возврат расхода (4 and 5 are cash in / cash out documents); 0x03/2 field 1 names the same types
RECEIPT_TYPES = {
    ReceiptKind.SALE: 2,
    ReceiptKind.SALE_RETURN: 3,
    ReceiptKind.PURCHASE: 6,
    ReceiptKind.PURCHASE_RETURN: 7,
}
VAT_INDEX = {Vat.VAT20: 0, Vat.VAT10: 1, Vat.VAT0: 2, Vat.NONE: 3}
PAYMENT_INDEX = {PaymentKind.CASH: 0, PaymentKind.ELECTRONIC: 1}


class PiritDriver(DriverBase, PiritReads, PiritWire):
    protocol = "pirit"
    family_name = "pirit"
    # a receipt in document state 8, an interrupted Z (bit 8); a shift-open or registration
    # report's unfinished printout is not flagged (R8.3)
    pending_print_shown = frozenset({DocumentKind.RECEIPT, DocumentKind.SHIFT_CLOSE})

    def __init__(
        self,
        link: Link,
        *,
        model: str,
        password: bytes = DEFAULT_PASSWORD,
        host_clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        PiritWire.__init__(self, link, password=password)
        self._bind_model(model)
        self._host_clock = host_clock
        self._registrations_seen = None  # a new link: search again

    # ------------------------------------------------------------------------------ lifecycle

    def connect(self) -> None:
        """Status, "start of work" when the device asks for it (§2.5.7), then check identity."""
        current = self._status_raw()[1]
        if current & 1:
            now = self._host_clock()
            try:
                self.call(0x10, [format_date(now.date()), format_time(now.time())])
            except ClockMismatch:
                self._link.trace.note("0x10: device clock differs from host by > 8 min; device keeps its clock")
        serial, model_code = self.identity()
        self._check_identity(serial, model_code, seen=f"serial {serial}, model code {model_code}")

    # ------------------------------------------------------------------------------ reading

    def _status_raw(self) -> tuple[int, int, int]:
        fields = self.fields(0x00)
        if len(fields) < 3:
            raise LinkCorrupted(f"status answer has {len(fields)} fields, expected 3")
        return parse_int(fields[0]), parse_int(fields[1]), parse_int(fields[2])

    def info(self) -> DeviceInfo:
        serial, model_code = self.identity()
        firmware = self.firmware()
        ffd = ""
        try:
            fn14 = self.sub(0x78, 14)
            ffd = FFD_NAMES.get(parse_int(fn14[4]), "") if len(fn14) > 4 else ""
        except DeviceError:
            pass
        return DeviceInfo(
            model=self._model.id,
            model_name=f"Pirit model {model_code}",
            serial=serial,
            firmware=firmware,
            protocol=self.protocol,
            ffd=ffd,
            fn_serial=self.sub(0x78, 1)[0],
            model_code=model_code,
        )

    def status(self) -> Status:
        fatal, current, document = self._status_raw()
        printer = parse_int(self.fields(0x04)[0])  # 0x04 never fails on a printer fault here
        shift = ShiftState.CLOSED
        if current & (1 << 2):
            shift = ShiftState.EXPIRED if current & (1 << 3) else ShiftState.OPEN
        number = None
        opened_at = None
        if current & 1 == 0:
            fn6 = self.sub(0x78, 6)
            number = parse_int(fn6[0]) if fn6 else None
            if shift is not ShiftState.CLOSED:
                opened_at = _datetime(self.sub(0x02, 17))
        return Status(
            shift=shift,
            document_open=(document >> 4) not in (0, 8),
            pending_print=(document >> 4) == 8 or bool(current & (1 << 8)),
            paper=PaperState.OUT if printer & 0b10 else PaperState.OK,
            cover_open=bool(printer & 0b100),
            initialised=not current & 1,
            shift_number=number,
            shift_opened_at=opened_at,
            raw={"fatal": fatal, "current": current, "document": document, "printer": printer},
        )

    def fn(self) -> FnStatus:
        state = self.sub(0x78, 2)
        validity = self.sub(0x02, 14)
        taxes = self.sub(0x02, 23)
        ffd = ""
        try:
            ffd = FFD_NAMES.get(parse_int(self.sub(0x78, 22)[0]), "")
        except DeviceError:
            pass
        return FnStatus(
            serial=self.sub(0x78, 1)[0],
            phase=FnPhase(parse_int(state[0]) & 0x0F),
            valid_until=parse_date(validity[0]) if validity and validity[0].strip("0") else None,
            tax_systems=TaxSystem(parse_int(taxes[0])),
            registrations_done=self._registrations_done(),
            registrations_left=None,  # the ФН's limit is not readable over Pirit
            last_fd_number=parse_int(self.sub(0x78, 3)[0]),
            warnings=FnWarning(parse_int(state[2]) if len(state) > 2 else 0),
            ffd=ffd,
            last_registration_fd=parse_int(self.sub(0x78, 19)[0]),
        )

    def ofd_queue(self) -> OfdQueue:
        fields = self.sub(0x78, 7)
        status, count = parse_int(fields[0]), parse_int(fields[1])
        if count == 0:
            return OfdQueue(0, None, None, connected=bool(status & 1))
        return OfdQueue(count, parse_int(fields[2]), _datetime(fields[3:5]), connected=bool(status & 1))

    def clock(self) -> datetime:
        value = _datetime(self.fields(0x13))
        assert value is not None
        return value

    def set_clock(self, value: datetime) -> None:
        fields = [format_date(value.date()), format_time(value.time())]
        try:
            self.call(0x14, fields)
        except ClockConfirmRequired:
            self.call(0x14, fields)  # more than 24 h ahead: repeat to confirm (§2.5.8)

    # ------------------------------------------------------------------------------ shift

    def _last_document(self, kind: DocumentKind) -> FiscalDocument:
        number = parse_int(self.sub(0x78, 3)[0])
        shift = parse_int(self.sub(0x01, 1)[0])
        return FiscalDocument(kind=kind, number=number, fiscal_sign="", datetime=self.clock(), shift_number=shift)

    def open_shift(self, cashier: str = DEFAULT_CASHIER) -> FiscalDocument:
        def attempt() -> FiscalDocument:
            self.call(0x23, [cashier])
            return self._last_document(DocumentKind.SHIFT_OPEN)

        return self.run(Intent(DocumentKind.SHIFT_OPEN, (cashier,)), attempt)

    def close_shift(self, cashier: str = DEFAULT_CASHIER) -> FiscalDocument:
        def attempt() -> FiscalDocument:
            self.call(0x21, [cashier, 0])
            return self._last_document(DocumentKind.SHIFT_CLOSE)

        return self.run(Intent(DocumentKind.SHIFT_CLOSE, (cashier,)), attempt)

    def x_report(self, cashier: str = DEFAULT_CASHIER) -> None:
        self.call(0x20, [cashier])

    # ------------------------------------------------------------------------------ receipts

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
        total = sum((item.amount for item in items), Decimal(0))
        payments = payments or [Payment(total)]
        # the kind is part of the request: an interrupted return is settled as a return, not a sale;
        # the total stays last (Intent.describe)
        request = (tuple(items), tuple(payments), tax_system, cashier, kind, total)
        intent = Intent(DocumentKind.RECEIPT, request, steps=len(items) + len(payments))
        return self.run(intent, lambda: self._sell_once(items, payments, tax_system, cashier, kind, total))

    def _sell_once(
        self,
        items: Sequence[Item],
        payments: Sequence[Payment],
        tax_system: TaxSystem | None,
        cashier: str,
        kind: ReceiptKind,
        total: Decimal,
    ) -> FiscalDocument:
        doc_type = RECEIPT_TYPES[kind]
        self.call(0x30, [doc_type, 1, cashier, "", tax_system.index if tax_system is not None else "", ""])
        try:
            for item in items:
                self.call(
                    0x42,
                    [item.name, "", format_quantity(item.quantity), format_money(item.price), VAT_INDEX[item.vat]],
                )
            self.call(0x44)
            for payment in payments:
                self.call(0x47, [PAYMENT_INDEX[payment.kind], format_money(payment.amount)])
            self._check_open_total(total, _total_half_even(items))
        except DeviceError:
            self._cancel_quietly()
            raise
        doc = self._close_document()
        return self._read_back_receipt(doc, tax_system, total, items, kind)

    def _check_open_total(self, total: Decimal, half_even: Decimal) -> None:
        """Before the commit: the receipt the register holds must total what was sent (0x03/1).
        Pirit's XOR checksum passes some corrupted requests; a changed price is caught here,
        the receipt cancelled, and the fault reported as the link's (so the sale is retried)."""
        try:
            held = Decimal(self.sub(0x03, 1)[0])
        except (DeviceError, ArithmeticError, IndexError):
            return  # a firmware without 0x03/1: nothing to check against
        if held not in (total, half_even):  # a firmware may round each amount half even (1.25 x 0.5 = 0.62)
            self._cancel_quietly()
            raise LinkCorrupted(f"the register holds a receipt of {held} for a sale of {total}; cancelled")

    def _read_back_receipt(
        self,
        doc: FiscalDocument,
        tax_system: TaxSystem | None,
        total: Decimal,
        items: Sequence[Item],
        receipt_kind: ReceiptKind = ReceiptKind.SALE,
    ) -> FiscalDocument:
        """After the commit: the last receipt in the register (0x03/2) must be this receipt (its type), of this
        total (or its total with amounts rounded half even), when it names this FD number; a second read settles an
        answer garbled on the way.  0x03/2 naming another FD is not judged: its field positions
        differ between devices (§2.5.5), and the FD number is checked by the reconciler."""
        accepted = (total, _total_half_even(items))
        expected = RECEIPT_TYPES[receipt_kind]
        committed, kind = doc, expected
        for _ in range(2):
            committed, kind = self._last_receipt(doc, expected)
            if committed.number != doc.number:
                self._link.trace.note(
                    f"0x03/2 names FD {committed.number}, the register's last receipt is FD {doc.number}: not judged"
                )
                return replace(doc, tax_system=tax_system, total=total)
            if committed.total in accepted and kind == expected:
                sign = doc.fiscal_sign or committed.fiscal_sign
                in_shift = doc.number_in_shift if doc.number_in_shift is not None else committed.number_in_shift
                return replace(doc, tax_system=tax_system, total=total, fiscal_sign=sign, number_in_shift=in_shift)
        raise MiscommittedDocument(
            f"the register's receipt FD {committed.number} is of type {kind}, total {committed.total}: "
            f"not the {receipt_kind.name.lower()} receipt (type {expected}) of {total} it was reported as",
            document=committed,
        )

    def _last_receipt(self, doc: FiscalDocument, expected: int = RECEIPT_TYPE_SALE) -> tuple[FiscalDocument, int]:
        """The last receipt the register committed and its type, from 0x03/2 (§2.5.5: type,
        operation counter, receipt number, document number, sum, discount, 0, FP, FD); date and
        time are ``doc``'s.  A firmware without 0x03/2 gives ``doc`` back unchecked."""
        try:
            fields = self.sub(0x03, 2)
        except DeviceError:
            return doc, expected
        if len(fields) < 9:
            raise LinkCorrupted(f"0x03/2 answer has {len(fields)} fields, expected 9")
        try:
            total = Decimal(fields[4])
        except ArithmeticError:
            raise LinkCorrupted(f"0x03/2 answer has a sum of {fields[4]!r}") from None
        receipt = replace(
            doc, number=parse_int(fields[8]), fiscal_sign=fields[7], total=total, number_in_shift=parse_int(fields[2])
        )
        return receipt, parse_int(fields[0])

    def _close_document(self) -> FiscalDocument:
        fields = self.fields(0x31, [0])
        if len(fields) < 9:
            raise LinkCorrupted(f"close-document answer has {len(fields)} fields, expected 9")
        when = _datetime(fields[7:9])
        assert when is not None
        return FiscalDocument(
            kind=DocumentKind.RECEIPT,
            number=parse_int(fields[3]),
            fiscal_sign=fields[4],
            datetime=when,
            shift_number=parse_int(fields[5]),
            number_in_shift=parse_int(fields[6]),
        )

    def _cancel_quietly(self) -> None:
        try:
            document = self._status_raw()[2]
            if (document >> 4) not in (0, 8):
                self.call(0x32)
        except (DeviceError, LinkTimeout, LinkCorrupted):
            pass

    def cancel_document(self) -> None:
        self.call(0x32)

    def continue_print(self) -> FiscalDocument | None:
        """Repeat 0x31 for a receipt in state 8, 0x21 for an interrupted Z (R8.2, R8.3)."""
        _, current, document = self._status_raw()
        if (document >> 4) == 8:
            return self._close_document()
        if current & (1 << 8):
            return self.close_shift()
        return None

    def reprint_last(self) -> None:
        self.call(0x73, [parse_int(self.sub(0x78, 3)[0])])

    # ------------------------------------------------------------------------------ registration

    def reregister(self, tax_systems: TaxSystem, cashier: str = DEFAULT_CASHIER) -> FiscalDocument:
        """0x60 without ФН replacement (§2.5.12), keeping the work mode; the device derives 1205."""
        inn = self.sub(0x02, 3)[0]
        rnm = self.sub(0x02, 4)[0]
        modes = self.sub(0x02, 23)
        work_mode = parse_int(modes[1]) if len(modes) > 1 else 0
        now = self.clock()
        fields: list[Field] = [
            0,
            rnm,
            inn,
            int(tax_systems),
            work_mode,
            cashier,
            format_date(now.date()),
            format_time(now.time()),
        ]
        fields += ["", "", "", "", "", "", "", "", "", "", 0, 4]

        def attempt() -> FiscalDocument:
            answer = self.fields(0x60, fields)
            when = _datetime(answer[2:4]) or now
            return FiscalDocument(
                kind=DocumentKind.REREGISTRATION,
                number=parse_int(answer[0]),
                fiscal_sign=answer[1],
                datetime=when,
            )

        return self.run(Intent(DocumentKind.REREGISTRATION, (tax_systems, cashier)), attempt)

    # ------------------------------------------------------------------------------ reconciliation

    def _observe(self) -> Observed:
        _, current, document = self._status_raw()
        printer = parse_int(self.fields(0x04)[0])
        shift = self.sub(0x78, 6)  # shift number, open flag, next receipt number
        if len(shift) < 3:
            raise LinkCorrupted(f"0x78/6 answer has {len(shift)} fields, expected 3")
        return Observed(
            fd=parse_int(self.sub(0x78, 3)[0]),
            shift_open=parse_int(shift[1]) == 1,
            shift_number=parse_int(shift[0]),
            receipts=max(0, parse_int(shift[2]) - 1),
            document_open=(document >> 4) not in (0, 8),
            registration_fd=parse_int(self.sub(0x78, 19)[0]),
            pending_print=(document >> 4) == 8 or bool(current & (1 << 8)),
            printer_stopped="cover open" if printer & 0b100 else "no paper" if printer & 0b10 else "",
        )

    def _resync(self) -> None:
        self._reader.reset()

    def _cancel_open_document(self) -> None:
        if (self._status_raw()[2] >> 4) not in (0, 8):
            self.call(0x32)

    def _committed_document(self, intent: Intent, after: Observed) -> FiscalDocument:
        if intent.kind is DocumentKind.REREGISTRATION:
            fields = self.sub(0x78, 19)  # FD, FP, date, time of the last (re-)registration
            return FiscalDocument(
                kind=DocumentKind.REREGISTRATION,
                number=parse_int(fields[0]),
                fiscal_sign=fields[1],
                datetime=_datetime(fields[2:4]) or self.clock(),
            )
        doc = self._last_document(intent.kind)
        if intent.kind is not DocumentKind.RECEIPT:
            return doc
        items, _, tax_system, _, kind, total = intent.request
        assert isinstance(total, Decimal) and (tax_system is None or isinstance(tax_system, TaxSystem))
        assert isinstance(items, tuple) and isinstance(kind, ReceiptKind)
        receipt = self._read_back_receipt(doc, tax_system, total, items, kind)  # the number is 0x78/3's
        return replace(receipt, printed=not after.pending_print)


def _datetime(fields: Sequence[str]) -> datetime | None:
    if len(fields) < 2 or not fields[0].strip("0 "):
        return None
    day: date = parse_date(fields[0])
    return datetime.combine(day, parse_time(fields[1]))


def _total_half_even(items: Sequence[Item]) -> Decimal:
    """The receipt total with each amount rounded half even: ``Item.amount`` rounds half up, as
    the register does; a firmware rounding the other way is not a corrupted link."""
    cent = Decimal("0.01")
    return sum(((item.price * item.quantity).quantize(cent, ROUND_HALF_EVEN) for item in items), Decimal(0))
