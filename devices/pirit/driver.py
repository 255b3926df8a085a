"""Pirit driver: the device interface (:class:`harness.device.Kkt`) over any transport.

Talks to a Касса Ф / Дримкас-Ф / Старт (or their emulators — same bytes) with the per-command
timeouts Crystal's own connector uses (reference §2.3), packet ids 0x21..0x3F, discarding the
device's 0x20 "recovery" frames and stale answers.  Error answers become normalized
:class:`~harness.errors.DeviceError`\\ s; for 0x01/0x03 the extended code is read with 0x06/1.
The driver never imports the emulator.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal

from harness.device import (
    DEFAULT_CASHIER,
    Capability,
    DeviceInfo,
    DocumentKind,
    FiscalDocument,
    FnPhase,
    FnStatus,
    FnWarning,
    Item,
    JournalEntry,
    OfdQueue,
    PaperState,
    Payment,
    PaymentKind,
    ShiftState,
    Status,
    TaxSystem,
    Vat,
)
from harness.errors import (
    ClockConfirmRequired,
    ClockMismatch,
    DeviceError,
    ErrorKind,
    HarnessError,
    LinkCorrupted,
    UsageError,
    LinkTimeout,
    device_error,
)
from harness.transport import Transport

from . import errors as pirit_errors
from .protocol import (
    DEFAULT_PASSWORD,
    BadCrc,
    Control,
    Field,
    Frame,
    FrameError,
    FrameReader,
    Garbage,
    PacketIds,
    Response,
    decode_response,
    describe,
    encode_request,
    format_date,
    format_money,
    format_quantity,
    format_time,
    is_recovery_frame,
    parse_date,
    parse_int,
    parse_time,
)

# Crystal's per-command read timeouts (reference §2.3, S5); everything else 10 s
TIMEOUTS: dict[int, float] = {
    0x00: 1.5,
    0x21: 60.0,
    0x23: 60.0,
    0x31: 20.0,
    0x32: 20.0,
    0x59: 20.0,
    0x60: 60.0,
    0x78: 20.0,
    0x81: 5.0,
}
DEFAULT_TIMEOUT = 10.0
VAT_INDEX = {Vat.VAT20: 0, Vat.VAT10: 1, Vat.VAT0: 2, Vat.NONE: 3}
PAYMENT_INDEX = {PaymentKind.CASH: 0, PaymentKind.ELECTRONIC: 1}
FFD_NAMES = {1: "1.0", 2: "1.05", 3: "1.1", 4: "1.2"}

# what a device must report to be the model the user named (serial prefix, 0x02/21 model codes)
MODEL_IDENTITY: dict[str, tuple[str | None, frozenset[int]]] = {
    "kf": ("0497", frozenset({9})),
    "dkf": ("0496", frozenset({9})),
    "start": (None, frozenset({1, 2, 3, 4, 5})),
}


class PiritDriver:
    protocol = "pirit"

    def __init__(
        self,
        transport: Transport,
        *,
        model: str,
        password: bytes = DEFAULT_PASSWORD,
        timeout_scale: float = 1.0,
        host_clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        if model not in MODEL_IDENTITY:
            raise HarnessError(f"the Pirit driver does not know model {model!r} (known: {', '.join(MODEL_IDENTITY)})")
        self._transport = transport
        self._model = model
        self._password = password
        self._scale = timeout_scale
        self._host_clock = host_clock
        self._ids = PacketIds()
        self._reader = FrameReader()

    # ------------------------------------------------------------------------------ properties

    @property
    def model(self) -> str:
        return self._model

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset(
            {Capability.SET_CLOCK, Capability.REREGISTER, Capability.CONTINUE_PRINT, Capability.X_REPORT, Capability.OFD_QUEUE}
        )

    @property
    def trace(self):  # type: ignore[no-untyped-def]
        return self._transport.trace

    # ------------------------------------------------------------------------------ the wire

    def call(self, command: int, fields: Sequence[Field] = (), *, timeout: float | None = None) -> Response:
        """Send one command and return its answer; raise DeviceError for an error answer."""
        response = self._exchange(command, fields, timeout)
        if response.error:
            raise self._error(command, response.error)
        return response

    def _exchange(self, command: int, fields: Sequence[Field], timeout: float | None) -> Response:
        packet_id = next(self._ids)
        frame = encode_request(command, fields, packet_id=packet_id, password=self._password)
        stale = self._transport.drain()
        if stale:
            self._transport.trace.rx(stale, "discarded before request: " + describe(stale))
        self._reader.reset()
        self._transport.write(frame)
        limit = (timeout if timeout is not None else TIMEOUTS.get(command, DEFAULT_TIMEOUT)) * self._scale
        deadline = time.monotonic() + limit
        garbage = bytearray()
        while True:
            try:
                chunk = self._transport.read(deadline)
            except LinkTimeout:
                garbage += self._reader.partial()  # an unterminated frame: the device did answer
                if garbage:
                    what = bytes(garbage[:32]).hex(" ")
                    raise LinkCorrupted(f"{self._transport.url} answered garbage, not a Pirit frame: {what}") from None
                raise LinkTimeout(
                    f"no answer from {self._transport.url} to command {command:#04x} within {limit:g} s"
                ) from None
            for event in self._reader.feed(chunk):
                if isinstance(event, Garbage):
                    garbage += event.raw
                    self._transport.trace.rx(event.raw, "garbage")
                    continue
                if isinstance(event, Control):
                    self._transport.trace.rx(bytes([event.byte]), event.name)
                    continue
                assert isinstance(event, Frame)
                self._transport.trace.rx(event.raw, describe(event.raw, kind="answer"))
                try:
                    response = decode_response(event.raw)
                except BadCrc as exc:
                    raise LinkCorrupted(f"answer to {command:#04x} has a bad CRC: {exc}") from None
                except FrameError as exc:
                    raise LinkCorrupted(f"malformed answer to {command:#04x}: {exc}") from None
                if is_recovery_frame(response) or response.packet_id != packet_id:
                    continue  # recovery frame or a stale answer (S2, S5): keep reading
                if response.command != command:
                    raise LinkCorrupted(f"answer for command {response.command:#04x}, expected {command:#04x}")
                return response

    def _error(self, command: int, code: int) -> Exception:
        if code in pirit_errors.LINK_CODES:
            _, text = pirit_errors.kind_of(command, code)
            return LinkCorrupted(f"device reported a link error to command {command:#04x}: {text} ({code:#04x})")
        extended: int | None = None
        ext_text = ""
        if code in (0x01, 0x03) and command != 0x06:
            try:
                answer = self._exchange(0x06, [1], None)
                if not answer.error and len(answer.fields) >= 2:
                    extended = parse_int(answer.fields[1])
                    ext_text = answer.fields[2] if len(answer.fields) > 2 else ""
            except (LinkTimeout, LinkCorrupted, ValueError):
                pass
        kind, text = pirit_errors.kind_of(command, code, extended)
        if code == 0x09 and command != 0x04:
            try:
                mask = parse_int(self._exchange(0x04, [], None).fields[0])
                if mask & 0b100:
                    kind, text = ErrorKind.COVER_OPEN, "cover open"
            except (LinkTimeout, LinkCorrupted, ValueError, IndexError):
                pass
        if ext_text:
            text = f"{text}: {ext_text}"
        return device_error(kind, text, code=code, extended=extended, vendor="pirit", command=f"{command:#04x}")

    def _fields(self, command: int, fields: Sequence[Field] = (), **kw: float) -> tuple[str, ...]:
        return self.call(command, fields, **kw).fields

    def _sub(self, command: int, n: int, *extra: Field) -> tuple[str, ...]:
        """Sub-request ``n`` of 0x01/0x02/0x03/0x06/0x78: the answer without the echoed ``n``."""
        fields = self._fields(command, [n, *extra])
        return fields[1:] if fields and fields[0].strip() == str(n) else fields

    # ------------------------------------------------------------------------------ lifecycle

    def connect(self) -> None:
        """Status, "start of work" when the device asks for it (§2.5.7), then check identity."""
        current = self._status_raw()[1]
        if current & 1:
            now = self._host_clock()
            try:
                self.call(0x10, [format_date(now.date()), format_time(now.time())])
            except ClockMismatch:
                self._transport.trace.note("0x10: device clock differs from host by > 8 min; device keeps its clock")
        self._check_identity()

    def _check_identity(self) -> None:
        serial = self._sub(0x02, 1)[0]
        model_code = parse_int(self._sub(0x02, 21)[0])
        prefix, codes = MODEL_IDENTITY[self._model]
        if (prefix and not serial.startswith(prefix)) or model_code not in codes:
            raise UsageError(
                f"device at {self._transport.url} is not a {self._model}: serial {serial}, model code {model_code}"
            )

    def close(self) -> None:
        self._transport.close()

    # ------------------------------------------------------------------------------ reading

    def _status_raw(self) -> tuple[int, int, int]:
        fields = self._fields(0x00)
        if len(fields) < 3:
            raise LinkCorrupted(f"status answer has {len(fields)} fields, expected 3")
        return parse_int(fields[0]), parse_int(fields[1]), parse_int(fields[2])

    def info(self) -> DeviceInfo:
        serial = self._sub(0x02, 1)[0]
        model_code = parse_int(self._sub(0x02, 21)[0])
        try:
            firmware = self._sub(0x02, 70)[0]
        except DeviceError:
            firmware = self._sub(0x02, 2)[0]  # older firmware: numeric id only
        ffd = ""
        try:
            fn14 = self._sub(0x78, 14)
            ffd = FFD_NAMES.get(parse_int(fn14[4]), "") if len(fn14) > 4 else ""
        except DeviceError:
            pass
        return DeviceInfo(
            model=self._model,
            model_name=f"Pirit model {model_code}",
            serial=serial,
            firmware=firmware,
            protocol=self.protocol,
            ffd=ffd,
            fn_serial=self._sub(0x78, 1)[0],
            model_code=model_code,
        )

    def status(self) -> Status:
        fatal, current, document = self._status_raw()
        printer = parse_int(self._fields(0x04)[0])  # 0x04 never fails on a printer fault here
        shift = ShiftState.CLOSED
        if current & (1 << 2):
            shift = ShiftState.EXPIRED if current & (1 << 3) else ShiftState.OPEN
        number = None
        opened_at = None
        if current & 1 == 0:
            fn6 = self._sub(0x78, 6)
            number = parse_int(fn6[0]) if fn6 else None
            if shift is not ShiftState.CLOSED:
                opened_at = _datetime(self._sub(0x02, 17))
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
        state = self._sub(0x78, 2)
        validity = self._sub(0x02, 14)
        taxes = self._sub(0x02, 23)
        ffd = ""
        try:
            ffd = FFD_NAMES.get(parse_int(self._sub(0x78, 22)[0]), "")
        except DeviceError:
            pass
        return FnStatus(
            serial=self._sub(0x78, 1)[0],
            phase=FnPhase(parse_int(state[0]) & 0x0F),
            valid_until=parse_date(validity[0]) if validity and validity[0].strip("0") else None,
            tax_systems=TaxSystem(parse_int(taxes[0])),
            registrations_done=None,  # Pirit has no plain counter for this (read via 0x78/20 TLV)
            registrations_left=None,
            last_fd_number=parse_int(self._sub(0x78, 3)[0]),
            warnings=FnWarning(parse_int(state[2]) if len(state) > 2 else 0),
            ffd=ffd,
            last_registration_fd=parse_int(self._sub(0x78, 19)[0]),
        )

    def ofd_queue(self) -> OfdQueue:
        fields = self._sub(0x78, 7)
        status, count = parse_int(fields[0]), parse_int(fields[1])
        if count == 0:
            return OfdQueue(0, None, None, connected=bool(status & 1))
        return OfdQueue(count, parse_int(fields[2]), _datetime(fields[3:5]), connected=bool(status & 1))

    def clock(self) -> datetime:
        value = _datetime(self._fields(0x13))
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
        number = parse_int(self._sub(0x78, 3)[0])
        shift = parse_int(self._sub(0x01, 1)[0])
        return FiscalDocument(kind=kind, number=number, fiscal_sign="", datetime=self.clock(), shift_number=shift)

    def open_shift(self, cashier: str = DEFAULT_CASHIER) -> FiscalDocument:
        self.call(0x23, [cashier])
        return self._last_document(DocumentKind.SHIFT_OPEN)

    def close_shift(self, cashier: str = DEFAULT_CASHIER) -> FiscalDocument:
        self.call(0x21, [cashier, 0])
        return self._last_document(DocumentKind.SHIFT_CLOSE)

    def x_report(self, cashier: str = DEFAULT_CASHIER) -> None:
        self.call(0x20, [cashier])

    # ------------------------------------------------------------------------------ receipts

    def sell(
        self,
        items: Sequence[Item],
        payments: Sequence[Payment] | None = None,
        tax_system: TaxSystem | None = None,
        cashier: str = DEFAULT_CASHIER,
    ) -> FiscalDocument:
        if not items:
            raise HarnessError("a sale needs at least one item")
        total = sum((item.amount for item in items), Decimal(0))
        payments = payments or [Payment(total)]
        self.call(0x30, [2, 1, cashier, "", tax_system.index if tax_system is not None else "", ""])
        try:
            for item in items:
                self.call(
                    0x42,
                    [item.name, "", format_quantity(item.quantity), format_money(item.price), VAT_INDEX[item.vat]],
                )
            self.call(0x44)
            for payment in payments:
                self.call(0x47, [PAYMENT_INDEX[payment.kind], format_money(payment.amount)])
        except DeviceError:
            self._cancel_quietly()
            raise
        doc = self._close_document()
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

    def _close_document(self) -> FiscalDocument:
        fields = self._fields(0x31, [0])
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
        self.call(0x73, [parse_int(self._sub(0x78, 3)[0])])

    # ------------------------------------------------------------------------------ registration

    def reregister(self, tax_systems: TaxSystem, cashier: str = DEFAULT_CASHIER) -> FiscalDocument:
        """0x60 without ФН replacement (§2.5.12), keeping the work mode; the device derives 1205."""
        inn = self._sub(0x02, 3)[0]
        rnm = self._sub(0x02, 4)[0]
        modes = self._sub(0x02, 23)
        work_mode = parse_int(modes[1]) if len(modes) > 1 else 0
        now = self.clock()
        fields: list[Field] = [0, rnm, inn, int(tax_systems), work_mode, cashier, format_date(now.date()), format_time(now.time())]
        fields += ["", "", "", "", "", "", "", "", "", "", 0, 4]
        answer = self._fields(0x60, fields)
        when = _datetime(answer[2:4]) or now
        return FiscalDocument(
            kind=DocumentKind.REREGISTRATION,
            number=parse_int(answer[0]),
            fiscal_sign=answer[1],
            datetime=when,
        )

    def journal(self) -> list[JournalEntry]:
        return []  # the Pirit protocol has no device log


def _datetime(fields: Sequence[str]) -> datetime | None:
    if len(fields) < 2 or not fields[0].strip("0 "):
        return None
    day: date = parse_date(fields[0])
    return datetime.combine(day, parse_time(fields[1]))
