"""АТОЛ driver: the device interface (:class:`harness.device.Kkt`) over the v3 transport.

Talks "Протокол ККТ 3.x" to an АТОЛ 30Ф / 55Ф / 90Ф (or its emulator -- same bytes), the way
atol4j does (reference §3.3): every command is an ADD with NeedResult and a fresh TId; the
synchronous answer (same packet ID) is only a transport acknowledgement unless it already carries
the result (A3/A4); the result is the asynchronous ``A6``/``A7`` frame on packet ID 0xF0 carrying
our TId, after which the driver ACKs the TId.  A lost async frame is recovered with REQ.  An
empty frame from the register is a retransmission request (the driver resends, at most
:data:`RESEND_LIMIT` times); a corrupted answer is met with an empty frame of our own.  Buffer
refusals (B1 overflow, B2 TId exists, A5 stopped) abort the buffer and retry once; anything else
at the buffer level is a :class:`~harness.errors.LinkCorrupted`.

Per-command timeouts are the T5 values of §3.4 (:func:`~devices.atol.protocol.answer_timeout`),
scaled by ``timeout_scale``.  Every application error byte becomes a normalized
:class:`~harness.errors.DeviceError` (:mod:`devices.atol.errors`); after 104/105 the 3Fh cover bit
decides between "printer not ready" and "cover open".

Modes: each operation enters its mode (56h, mode password 30 = system administrator by default)
and leaves it (48h) afterwards.  Things the binary protocol does not give (fiscal sign of a
document, shift opening time) stay empty; see :mod:`devices.atol.emulator` for the [inferred]
layouts shared with the emulator (E8h/E9h requisites, A6h, 95h continue print, 3Fh bit 4).
The driver never imports the emulator.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

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
    DeviceError,
    ErrorKind,
    HarnessError,
    LinkCorrupted,
    LinkError,
    LinkTimeout,
    UsageError,
    device_error,
)
from harness.transport import Transport

from . import errors as atol_errors
from .protocol import (
    ASYNC_ID,
    FFD_NAMES,
    MAX_HOST_ID,
    STATUS_PRINT_PENDING,
    AddFlags,
    Answer,
    BufferAnswer,
    BufferStatus,
    CloseReceipt,
    Cmd,
    CodecError,
    DeviceType,
    EnterMode,
    FirmwareVersion,
    FnQuery,
    FnValidity,
    Mode,
    OfdExchangeStatus,
    OfdFlags,
    OpenReceipt,
    PaymentType,
    Position,
    PrinterFlags,
    ReadRequisite,
    ReceiptType,
    Registration,
    RegistrationKind,
    RegistrationTotals,
    ShiftParams,
    StateAnswer,
    StatusBlock,
    StatusFlags,
    Tag,
    TaxType,
    V3Corrupt,
    V3Frame,
    V3Reader,
    WriteRequisite,
    answer_timeout,
    decode_buffer_answer,
    decode_tlvs,
    describe,
    encode_abort,
    encode_ack,
    encode_add,
    encode_command,
    encode_datetime_params,
    encode_frame,
    encode_req,
    encode_tlv,
    parse_answer,
)
from .protocol import FnStatus as AtolFnStatus
from .protocol import Payment as AtolPayment

MODEL_CODES: dict[str, int] = {"atol": 61, "atol55": 62, "atol90": 72}  # libfptr LIBFPTR_MODEL_* (§3.1)
VAT_TAX = {Vat.VAT20: TaxType.VAT20, Vat.VAT10: TaxType.VAT10, Vat.VAT0: TaxType.VAT0, Vat.NONE: TaxType.NONE}
PAYMENT_TYPE = {PaymentKind.CASH: PaymentType.CASH, PaymentKind.ELECTRONIC: PaymentType.ELECTRONIC}
SYSADMIN_PASSWORD = 30
FN_WARNING_BITS = 0x8F  # the A4h/30h warning bits harness.device.FnWarning knows
ABORT_TIMEOUT = 3.0  # seconds, unscaled
ACK_TIMEOUT = 2.0
RESEND_LIMIT = 3
REREG_REASON_TAX_SYSTEMS = 1 << 7  # tag 1205 bit 7 (§4.1)
REREG_REASON_SETTINGS_105 = 4  # tag 1101 "change of ККТ settings" (FFD 1.05)
BUFFER_REFUSALS = frozenset({BufferStatus.OVERFLOW, BufferStatus.ALREADY_EXISTS, BufferStatus.STOPPED})
_FINAL = frozenset({BufferStatus.RESULT, BufferStatus.ERROR, BufferStatus.STOPPED,
                    BufferStatus.OVERFLOW, BufferStatus.ALREADY_EXISTS, BufferStatus.NOT_FOUND,
                    BufferStatus.ILLEGAL_VALUE})


class _BufferRefused(Exception):
    def __init__(self, status: BufferStatus) -> None:
        super().__init__(status.name)
        self.status = status


class AtolDriver:
    protocol = "atol-v3"

    def __init__(
        self,
        transport: Transport,
        *,
        model: str,
        timeout_scale: float = 1.0,
        host_clock: Callable[[], datetime] = datetime.now,
        access_password: int = 0,
        mode_password: int = SYSADMIN_PASSWORD,
    ) -> None:
        if model not in MODEL_CODES:
            raise HarnessError(f"the АТОЛ driver does not know model {model!r} (known: {', '.join(MODEL_CODES)})")
        self._transport = transport
        self._model = model
        self._scale = timeout_scale
        self._host_clock = host_clock  # kept for interface symmetry: ATOL has no "start of work"
        self._access_password = access_password
        self._mode_password = mode_password
        self._reader = V3Reader(max_payload=4096)
        self._rx = bytearray()  # received bytes not yet written to the trace
        self._pid = MAX_HOST_ID  # the first packet gets id 0
        self._tid = 0
        self._mode: int | None = None  # cached device mode; None = read it (45h)

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

    # ------------------------------------------------------------------------------ transport v3

    def _next_pid(self) -> int:
        self._pid = 0 if self._pid >= MAX_HOST_ID else self._pid + 1
        return self._pid

    def _next_tid(self) -> int:
        self._tid = 1 if self._tid >= MAX_HOST_ID else self._tid + 1
        return self._tid

    def _read_items(self, deadline: float, what: str, garbage: list[int]) -> list[V3Frame | V3Corrupt]:
        """Read one chunk, trace it, split it into frames (also counts garbage bytes)."""
        try:
            chunk = self._transport.read(deadline)
        except LinkTimeout:
            if garbage[0]:
                raise LinkCorrupted(f"{self._transport.url} answered garbage, not ATOL v3 frames ({what})") from None
            raise LinkTimeout(f"no answer from {self._transport.url} to {what}") from None
        skipped = self._reader.skipped
        items = self._reader.feed(chunk)
        garbage[0] += self._reader.skipped - skipped
        self._rx += chunk
        if not self._reader.in_frame or len(self._rx) > 4096:  # one trace record per complete frame(s)
            self._transport.trace.rx(bytes(self._rx))
            self._rx.clear()
        return items

    def _request(self, payload: bytes, limit: float, what: str, *, tid: int | None = None) -> BufferAnswer:
        """Send one buffer command; return its synchronous answer, or (with ``tid``) the task's result."""
        pid = self._next_pid()
        frame = encode_frame(pid, payload)
        stale = self._transport.drain()
        if stale:
            self._transport.trace.rx(stale, "discarded before request: " + describe(stale))
        self._reader.reset()
        self._rx.clear()
        self._transport.write(frame)
        deadline = time.monotonic() + limit * self._scale
        garbage = [0]
        sync: BufferAnswer | None = None
        resends = 0
        async_lost = False
        while True:
            for item in self._read_items(deadline, what, garbage):
                if isinstance(item, V3Corrupt):
                    if item.packet_id == pid:
                        resends += 1
                        if resends > RESEND_LIMIT:
                            raise LinkCorrupted(f"answer to {what} keeps arriving corrupted ({item.reason})")
                        self._transport.write(encode_frame(pid, b""))  # ask for it again
                    elif item.packet_id == ASYNC_ID:
                        async_lost = True
                    continue
                if item.packet_id == pid:
                    if item.is_resend_request:
                        resends += 1
                        if resends > RESEND_LIMIT:
                            raise LinkCorrupted(f"the register keeps asking to resend {what}")
                        self._transport.write(frame)
                        continue
                    sync = self._decode(item.payload, what)
                    if tid is None or sync.status in _FINAL:
                        return sync
                elif item.packet_id == ASYNC_ID and tid is not None and not item.is_resend_request:
                    answer = self._decode(item.payload, what)
                    if answer.is_async and answer.tid == tid:
                        return answer
                # anything else: a stale answer or someone else's async result
            if sync is not None and async_lost and tid is not None:  # our A6/A7 was garbled: ask with REQ
                state = self._request(encode_req(tid), max(0.1, (deadline - time.monotonic()) / self._scale), what)
                if state.status in _FINAL:
                    return state
                async_lost = False  # still running: its asynchronous result is still to come

    @staticmethod
    def _decode(payload: bytes, what: str) -> BufferAnswer:
        try:
            return decode_buffer_answer(payload)
        except (CodecError, ValueError) as exc:
            raise LinkCorrupted(f"malformed task-buffer answer to {what}: {exc}") from None

    def abort(self) -> None:
        """C4: cancel every task in the register's buffer."""
        self._request(encode_abort(), ABORT_TIMEOUT, "ABORT")

    def _run_task(self, code: int, params: bytes, limit: float, what: str) -> BufferAnswer:
        tid = self._next_tid()
        task = encode_command(code, params, self._access_password)
        result = self._request(encode_add(tid, task, AddFlags.NEED_RESULT), limit, what, tid=tid)
        if result.status in BUFFER_REFUSALS:
            if result.status == BufferStatus.STOPPED:
                self._ack(tid, what)
            raise _BufferRefused(result.status)
        if result.status in (BufferStatus.NOT_FOUND, BufferStatus.ILLEGAL_VALUE):
            raise LinkCorrupted(f"the register's task buffer refused {what}: {result.status.name}")
        self._ack(tid, what)
        return result

    def _ack(self, tid: int, what: str) -> None:
        try:
            self._request(encode_ack(tid), ACK_TIMEOUT, f"ACK of {what}")
        except LinkTimeout:
            self._transport.trace.note(f"no answer to the ACK of TId {tid:#04x}; result already taken")

    def call(self, code: int, params: bytes = b"", *, timeout: float | None = None) -> Answer:
        """Run one application command; return its answer or raise the normalized DeviceError."""
        what = f"command {code:02X}h"
        limit = timeout if timeout is not None else answer_timeout(code)
        try:
            try:
                result = self._run_task(code, params, limit, what)
            except _BufferRefused as refused:
                self._transport.trace.note(f"task buffer refused {what} ({refused.status.name}): ABORT and retry")
                self.abort()
                try:
                    result = self._run_task(code, params, limit, what)
                except _BufferRefused as again:
                    raise LinkCorrupted(f"the register's task buffer refused {what}: {again.status.name}") from None
        except LinkError:
            self._mode = None
            raise
        try:
            answer = parse_answer(result.data, code)
        except CodecError as exc:
            raise LinkCorrupted(f"malformed answer to {what}: {exc}") from None
        if answer.error:
            self._mode = None
            raise self._error(code, answer.error)
        return answer

    def _error(self, command: int, code: int) -> Exception:
        if code in atol_errors.LINK_CODES:
            return LinkCorrupted(f"register reported a link error to {command:02X}h: {atol_errors.text_of(code)} ({code})")
        kind, text = atol_errors.kind_of(command, code)
        if code in (104, 105) and command != Cmd.STATUS:
            with contextlib.suppress(DeviceError, LinkError):
                if self._status_block().flags & StatusFlags.COVER_OPEN:
                    kind, text = ErrorKind.COVER_OPEN, "cover open"
        return device_error(kind, text, code=code, vendor="atol", command=f"{command:02X}h")

    # ------------------------------------------------------------------------------ modes

    def _current_mode(self) -> int:
        if self._mode is None:
            self._mode = StateAnswer.decode(self.call(Cmd.STATE).data).mode
        return self._mode

    def _enter(self, mode: int) -> None:
        current = self._current_mode()
        if current == mode:
            return
        if current != Mode.SELECT:
            self.call(Cmd.EXIT_MODE)
            self._mode = Mode.SELECT
        self.call(Cmd.ENTER_MODE, EnterMode(mode, self._mode_password).encode())
        self._mode = mode

    def _leave_quietly(self) -> None:
        try:
            if self._current_mode() != Mode.SELECT:
                self.call(Cmd.EXIT_MODE)
            self._mode = Mode.SELECT
        except (DeviceError, LinkError):
            self._mode = None

    @contextlib.contextmanager
    def _in_mode(self, mode: int) -> Iterator[None]:
        self._enter(mode)
        try:
            yield
        except LinkError:
            self._mode = None
            raise
        except BaseException:
            self._leave_quietly()
            raise
        self._leave_quietly()

    # ------------------------------------------------------------------------------ lifecycle

    def connect(self) -> None:
        """ABORT, 3Fh, identity check, cancel an open receipt, back to the select mode (§3.3)."""
        self._reader.reset()
        self.abort()
        block = self._status_block()
        self._check_identity(block)
        self._mode = block.mode
        if block.receipt_state:
            self._enter(Mode.REGISTRATION)
            with contextlib.suppress(DeviceError):
                self.call(Cmd.CANCEL_RECEIPT)
        if self._current_mode() != Mode.SELECT:
            self.call(Cmd.EXIT_MODE)
            self._mode = Mode.SELECT

    def _check_identity(self, block: StatusBlock) -> None:
        expected = MODEL_CODES[self._model]
        device_type = self._device_type()
        if block.model != expected or device_type.model != expected:
            raise UsageError(
                f"device at {self._transport.url} is not a {self._model}: model byte {device_type.model} "
                f"(3Fh {block.model}), expected {expected}"
            )

    def close(self) -> None:
        self._transport.close()

    # ------------------------------------------------------------------------------ reading

    def _status_block(self) -> StatusBlock:
        answer = self.call(Cmd.STATUS)
        try:
            return StatusBlock.decode(b"D" + answer.data)
        except CodecError as exc:
            raise LinkCorrupted(f"malformed 3Fh status block: {exc}") from None

    def _device_type(self) -> DeviceType:
        try:
            return DeviceType.decode(self.call(Cmd.DEVICE_TYPE).data)
        except CodecError as exc:
            raise LinkCorrupted(f"malformed A5h answer: {exc}") from None

    def _fn_query(self, sub: int) -> bytes:
        return self.call(Cmd.FN, bytes([sub])).data

    def _decode_fn(self, decoder: Callable[[bytes], object], sub: int):  # type: ignore[no-untyped-def]
        try:
            return decoder(self._fn_query(sub))
        except CodecError as exc:
            raise LinkCorrupted(f"malformed A4h/{sub:02X}h answer: {exc}") from None

    def _read_requisite(self, tag: int) -> bytes:
        data = self.call(Cmd.READ_REQUISITE, ReadRequisite(tag).encode()).data
        try:
            for found, value in decode_tlvs(data[1:]):
                if found == tag:
                    return value
        except CodecError as exc:
            raise LinkCorrupted(f"malformed E9h answer for {tag}: {exc}") from None
        raise LinkCorrupted(f"E9h answer without requisite {tag}")

    def _write_requisite(self, tag: int, value: bytes) -> None:
        self.call(Cmd.WRITE_REQUISITE, WriteRequisite(encode_tlv(tag, value)).encode())

    def _write_cashier(self, cashier: str) -> None:
        try:
            self._write_requisite(Tag.CASHIER, _cp866(cashier, 64))
        except DeviceError as exc:  # a device without E8h 1021 still works with its own operator
            self._transport.trace.note(f"cashier requisite 1021 not written: {exc}")

    def _ffd(self) -> str:
        try:
            value = self._read_requisite(Tag.FFD_VERSION)
            return FFD_NAMES.get(value[0], "") if value else ""
        except DeviceError:
            return ""

    def info(self) -> DeviceInfo:
        device_type = self._device_type()
        try:
            version = FirmwareVersion.decode(self.call(Cmd.FIRMWARE, b"\x01").data)
        except CodecError as exc:
            raise LinkCorrupted(f"malformed 9Dh answer: {exc}") from None
        try:
            serial = self._read_requisite(Tag.KKT_SERIAL).decode("ascii", "replace").strip()
        except DeviceError:
            serial = self._status_block().serial_text
        fn_serial = self._fn_query(FnQuery.NUMBER)[:16].decode("ascii", "replace").strip()
        return DeviceInfo(
            model=self._model,
            model_name=device_type.name or f"АТОЛ model {device_type.model}",
            serial=serial,
            firmware=f"{version.version}.{version.subversion}.{version.build}",
            protocol=self.protocol,
            ffd=self._ffd(),
            fn_serial=fn_serial,
            model_code=device_type.model,
        )

    def status(self) -> Status:
        block = self._status_block()
        state = StateAnswer.decode(self.call(Cmd.STATE).data)
        shift_params: ShiftParams = self._decode_fn(ShiftParams.decode, FnQuery.SHIFT)
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
            taxes = TaxSystem(self._read_requisite(Tag.TAX_SYSTEMS)[0] & 0x3F)
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
        return OfdQueue(exchange.unsent_count, exchange.first_unsent_number, exchange.first_unsent_at, connected=connected)

    def clock(self) -> datetime:
        return self._status_block().datetime

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
        shift: ShiftParams = self._decode_fn(ShiftParams.decode, FnQuery.SHIFT)
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
        with self._in_mode(Mode.REGISTRATION):
            self._write_cashier(cashier)
            self.call(Cmd.OPEN_SHIFT, b"\x00" + _cp866(cashier, 64))
        return self._last_document(DocumentKind.SHIFT_OPEN)

    def close_shift(self, cashier: str = DEFAULT_CASHIER) -> FiscalDocument:
        with self._in_mode(Mode.Z_REPORT):
            self._write_cashier(cashier)
            self.call(Cmd.Z_REPORT)
        return self._last_document(DocumentKind.SHIFT_CLOSE)

    def x_report(self, cashier: str = DEFAULT_CASHIER) -> None:
        with self._in_mode(Mode.X_REPORT):
            self._write_cashier(cashier)
            self.call(Cmd.X_REPORT, b"\x01")

    def sell(
        self,
        items: Sequence[Item],
        payments: Sequence[Payment] | None = None,
        tax_system: TaxSystem | None = None,
        cashier: str = DEFAULT_CASHIER,
    ) -> FiscalDocument:
        if not items:
            raise HarnessError("a sale needs at least one item")
        if tax_system is not None and (not tax_system.value or tax_system.value & (tax_system.value - 1)):
            raise HarnessError(f"a receipt takes one tax system, not {tax_system.title}")
        total = sum((item.amount for item in items), Decimal(0))
        payments = payments or [Payment(total)]
        positions = [_position(item) for item in items]
        pays = [_payment(payment) for payment in payments]
        with self._in_mode(Mode.REGISTRATION):
            self._write_cashier(cashier)
            if tax_system is not None:
                self._write_requisite(Tag.RECEIPT_TAX_SYSTEM, bytes([tax_system.value]))
            self.call(Cmd.OPEN_RECEIPT, OpenReceipt(ReceiptType.SALE).encode())
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
            if self._status_block().receipt_state:
                self.call(Cmd.CANCEL_RECEIPT)
        except (DeviceError, LinkError):
            pass

    def cancel_document(self) -> None:
        with self._in_mode(Mode.REGISTRATION):
            self.call(Cmd.CANCEL_RECEIPT)

    def continue_print(self) -> FiscalDocument | None:
        """95h for a printout pending after the ФН commit (3Fh bit 4); never a new document."""
        block = self._status_block()
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
        with self._in_mode(Mode.FN):
            self._write_cashier(cashier)
            direct: int | None = None
            try:
                self._write_requisite(Tag.TAX_SYSTEMS, bytes([mask]))
            except DeviceError as exc:
                self._transport.trace.note(f"1062 not written with E8h ({exc}); passing it in A6h")
                direct = mask
            with contextlib.suppress(DeviceError):
                if ffd == "1.05":
                    self._write_requisite(Tag.REREG_REASON, bytes([REREG_REASON_SETTINGS_105]))
                else:
                    self._write_requisite(Tag.REREG_REASONS, REREG_REASON_TAX_SYSTEMS.to_bytes(4, "little"))
            self.call(Cmd.REGISTRATION, Registration(RegistrationKind.CHANGE_PARAMETERS, direct).encode())
        doc = self._last_document(DocumentKind.REREGISTRATION)
        with contextlib.suppress(DeviceError, LinkCorrupted):
            totals: RegistrationTotals = self._decode_fn(RegistrationTotals.decode, FnQuery.REGISTRATION)
            if totals.fd_number == doc.number:
                return FiscalDocument(
                    kind=doc.kind, number=doc.number, fiscal_sign=str(totals.fiscal_sign), datetime=doc.datetime,
                    shift_number=doc.shift_number, tax_system=None,
                )
        return doc

    def journal(self) -> list[JournalEntry]:
        return []  # the ATOL binary protocol has no device log


def _cp866(text: str, width: int) -> bytes:
    return text.encode("cp866", "replace")[:width]


def _position(item: Item) -> bytes:
    price = item.price.quantize(Decimal("0.01"), ROUND_HALF_UP)
    quantity = item.quantity.quantize(Decimal("0.001"), ROUND_HALF_UP)
    name = _cp866(item.name, 64).decode("cp866")
    try:
        return Position(name=name, price=price, quantity=quantity, tax=VAT_TAX[item.vat]).encode()
    except CodecError as exc:
        raise HarnessError(f"item {item.name!r} cannot be sent to an АТОЛ: {exc}") from None


def _payment(payment: Payment) -> bytes:
    try:
        return AtolPayment(PAYMENT_TYPE[payment.kind], payment.amount.quantize(Decimal("0.01"), ROUND_HALF_UP)).encode()
    except CodecError as exc:
        raise HarnessError(f"payment {payment.amount} cannot be sent to an АТОЛ: {exc}") from None
