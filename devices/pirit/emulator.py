"""Pirit wire front-end: real Pirit frames in, real Pirit frames out, over the fiscal core.

Byte-level behaviour follows reference §8.2: bad CRC → 0x07, wrong password → 0x06, unknown
command → 0x02, bad parameters → 0x03 (extended code kept for 0x06/1); the packet id is echoed;
every answer field is terminated by FS; upper/lower-case CRC and requests with or without a
trailing FS are accepted; a lone ENQ gets ACK; LF is ignored; garbage is dropped.  A powered-off
register answers nothing.  The emulator never imports a driver.

Each frame of a chunk is judged alone: a bad one never costs the valid request behind it.  A
frame that cannot be parsed, or whose packet id is outside 0x20..0xF0 (§2.2; an answer can only
echo such an id), is dropped silently [inferred: the reference names no answer for it].  An
internal error costs only its frame's answer and is journaled ("emulator error").
"""

from __future__ import annotations

from collections.abc import Callable

from harness.device import DocumentKind, FnPhase, PaperState, PaymentKind, ReceiptKind, TaxSystem, Vat
from harness.errors import ErrorKind

from ..emulator.core import CoreError, FiscalCore, PoweredOff
from ..emulator.latency import DeviceLatency
from ..emulator.records import ReceiptStep
from . import errors as pirit_errors
from .emulator_info import TYPE_BY_RECEIPT, InfoQueries, ParamError
from .protocol import (
    ACK,
    COMMAND_TIMEOUTS,
    DEFAULT_PASSWORD,
    DEFAULT_TIMEOUT,
    ENCODING,
    ENQ,
    MAX_PACKET_ID,
    MIN_PACKET_ID,
    BadCrc,
    Control,
    Field,
    Frame,
    FrameError,
    FrameReader,
    Request,
    decode_request,
    encode_response,
)

VAT_BY_INDEX = {0: Vat.VAT20, 1: Vat.VAT10, 2: Vat.VAT0, 3: Vat.NONE}
PAYMENT_BY_INDEX = {0: PaymentKind.CASH, 1: PaymentKind.ELECTRONIC}
RECEIPT_BY_TYPE = {
    2: ReceiptKind.SALE,
    3: ReceiptKind.SALE_RETURN,
    6: ReceiptKind.PURCHASE,
    7: ReceiptKind.PURCHASE_RETURN,
}
BATCH_COMMANDS = frozenset({0x24, *range(0x40, 0x4A), 0x52})  # silent when successful in batch mode
UNINITIALISED_OK = frozenset({0x00, 0x04, 0x06, 0x10})  # all else: 0x01 + extended 1 (§2.5.7)
# the document state nibble of 0x00 (§2.5.1) for each step of an open receipt
DOCUMENT_STATE = {ReceiptStep.OPENED: 1, ReceiptStep.SUBTOTAL: 2, ReceiptStep.PAYING: 3, ReceiptStep.PAID: 4}
PRINT_PENDING_STATE = 8


Answer = tuple[int, list[Field]]  # (error code, fields)


class PiritFrontEnd(InfoQueries):
    """One link's worth of protocol state (frame reassembly, batch mode) over a shared core."""

    latency: DeviceLatency | None = None  # pace=device (devices.emulator.latency): told each command run

    def __init__(self, core: FiscalCore, *, password: bytes = DEFAULT_PASSWORD) -> None:
        self.core = core
        self.password = password
        self._reader = FrameReader()
        self._batch = False
        self._batch_failed = False
        self._commands: dict[int, Callable[[Request], list[Field]]] = {
            0x00: self._status,
            0x01: self._shift_counters,
            0x02: self._device_info,
            0x03: self._receipt_data,
            0x04: self._printer_state,
            0x06: self._extended_error,
            0x10: self._start_work,
            0x13: self._get_clock,
            0x14: self._set_clock,
            0x20: self._x_report,
            0x21: self._close_shift,
            0x23: self._open_shift,
            0x30: self._open_document,
            0x31: self._close_document,
            0x32: self._cancel_document,
            0x42: self._add_item,
            0x44: self._subtotal,
            0x47: self._payment,
            0x60: self._registration,
            0x73: self._print_document,
            0x78: self._fn_query,
            0xA1: self._reprint_last_z,
            0xA3: self._reprint_registration,
        }
        # extended error code of the last 0x01/0x03 answer is device state (0x06/1 may come on
        # another connection: fisGo opens one TCP connection per command)
        core.wire_memory.setdefault("pirit_extended", (0, ""))

    # -------------------------------------------------------------------------- stream level

    def pending(self) -> bool:
        return self._reader.pending()

    def reset(self) -> None:
        self._reader.reset()

    def feed(self, data: bytes) -> bytes:
        if not self.core.powered:
            self._reader.reset()
            return b""
        out = bytearray()
        for event in self._reader.feed(data):
            if isinstance(event, Control):
                if event.byte == ENQ:
                    out.append(ACK)
            elif isinstance(event, Frame):
                out += self._safe_frame(event.raw)
        return bytes(out)

    def _safe_frame(self, raw: bytes) -> bytes:
        """One frame's answer; an internal error costs only this frame (journal "emulator error")."""
        try:
            return self.handle_frame(raw)
        except Exception as exc:  # noqa: BLE001 -- one bad frame must not cost the rest of the chunk
            self.core.log("emulator error", f"{type(exc).__name__}: {exc}")
            return b""

    def handle_frame(self, raw: bytes) -> bytes:
        try:
            request = decode_request(raw)
        except BadCrc as exc:
            if exc.packet_id is None or exc.command is None or not _valid_id(exc.packet_id):
                return b""
            return encode_response(exc.packet_id, exc.command, 0x07)
        except FrameError:
            return b""  # cannot even tell the packet id: a real device stays silent
        if not _valid_id(request.packet_id):
            return b""  # not a Pirit frame (§2.2): nothing to echo, nothing executed
        if request.password != self.password:
            return encode_response(request.packet_id, request.command, 0x06)
        with self.core.lock:
            try:
                error, fields = self._dispatch(request)
            except PoweredOff:
                return b""
        if self.latency is not None:  # pace=device
            self.latency.executed(COMMAND_TIMEOUTS.get(request.command, DEFAULT_TIMEOUT))
        if self._batch and error == 0 and request.command in BATCH_COMMANDS:
            return b""
        return encode_response(request.packet_id, request.command, error, fields)

    def _dispatch(self, request: Request) -> Answer:
        handler = self._commands.get(request.command)
        if handler is None:
            return 0x02, []
        if self._batch_failed and request.command not in (0x31, 0x32, 0x00, 0x04, 0x06):
            return 0x01, []
        try:
            if not self.core.initialised and request.command not in UNINITIALISED_OK:
                self.core.require_power()
                raise CoreError(ErrorKind.NOT_INITIALISED, "start of work (0x10) not done after power-up")
            return 0, handler(request)
        except ParamError as exc:
            self.core.wire_memory["pirit_extended"] = (exc.extended, str(exc))
            self._batch_failed = self._batch
            return 0x03, []
        except CoreError as exc:
            source = exc.source
            if (
                exc.kind is ErrorKind.TAX_SYSTEM_NOT_REGISTERED
                and self.core.profile.setting("tax_mismatch_code") == "param"
            ):
                source = "kkt"  # the firmware's own parameter check: 0x03 + extended 43
            code, extended = pirit_errors.code_for(exc.kind, source=source)
            if exc.kind is ErrorKind.BAD_PARAMETER and extended is None:
                extended = {0x60: 43, 0x42: 46, 0x47: 55}.get(request.command, 0)
            if code in (0x01, 0x03):
                self.core.wire_memory["pirit_extended"] = (extended or 0, exc.text)
            self._batch_failed = self._batch and request.command in BATCH_COMMANDS
            return code, []

    # -------------------------------------------------------------------------- status

    def _current_flags(self) -> int:
        core = self.core
        flags = 0
        if not core.initialised:
            flags |= 1 << 0
        if core.shift.is_open:
            flags |= 1 << 2
        if core.shift_expired():
            flags |= 1 << 3
        if core.fn.phase != FnPhase.FISCAL:
            flags |= 1 << 5
        if core.shift.close_interrupted:
            flags |= 1 << 8
        return flags

    def _document_status(self) -> int:
        core = self.core
        if core.pending is not None and core.pending.kind == DocumentKind.RECEIPT:
            doc = core.document_by_number(core.pending.document)
            return (PRINT_PENDING_STATE << 4) | TYPE_BY_RECEIPT.get(doc.receipt_kind or ReceiptKind.SALE, 2)
        if core.document is not None:
            return (DOCUMENT_STATE[core.document.state] << 4) | TYPE_BY_RECEIPT.get(core.document.kind, 2)
        return 0

    def _status(self, _: Request) -> list[Field]:
        self.core.require_power()
        return [0, self._current_flags(), self._document_status()]

    def _printer_state(self, _: Request) -> list[Field]:
        printer = self.core.printer
        mask = 0
        if printer.paper is PaperState.OUT:
            mask |= 1 << 1
        if printer.cover_open:
            mask |= (1 << 2) | (1 << 0)
        return [mask]

    def _extended_error(self, request: Request) -> list[Field]:
        which = self._int(request, 0, 1)
        if which == 1:
            code, text = self.core.wire_memory["pirit_extended"]
            return [which, code, text.encode(ENCODING, "replace").decode(ENCODING)]
        if which == 2:
            mask = 0
            if self.core.shift.close_interrupted:
                mask |= 1 << 5
            return [which, mask]
        raise ParamError(f"0x06 sub-request {which} not supported")

    # -------------------------------------------------------------------------- clock

    def _start_work(self, request: Request) -> list[Field]:
        self.core.start_work(self._datetime(request, 0))
        return []

    def _get_clock(self, _: Request) -> list[Field]:
        self.core.require_power()
        return self._date_time(self.core.now())

    def _set_clock(self, request: Request) -> list[Field]:
        self.core.set_rtc(self._datetime(request, 0))
        return []

    # -------------------------------------------------------------------------- shift

    def _open_shift(self, request: Request) -> list[Field]:
        self.core.open_shift(self._field(request, 0))
        return []

    def _close_shift(self, request: Request) -> list[Field]:
        self.core.close_shift(self._field(request, 0))
        return []

    def _x_report(self, request: Request) -> list[Field]:
        self.core.x_report(self._field(request, 0))
        return []

    def _reprint_last_z(self, _: Request) -> list[Field]:
        closes = [d for d in self.core.fn.archive if d.kind == DocumentKind.SHIFT_CLOSE]
        if not closes:
            raise CoreError(ErrorKind.OTHER, "no Z report in the ФН")
        self.core.print_document(closes[-1].number)
        return []

    def _reprint_registration(self, _: Request) -> list[Field]:
        self.core.print_document(self.core.last_registration().number)
        return []

    def _print_document(self, request: Request) -> list[Field]:
        number = self._int(request, 0, 0)
        if number == 0:
            number = self.core.last_registration().number
        self.core.print_document(number)
        return []

    # -------------------------------------------------------------------------- documents

    def _open_document(self, request: Request) -> list[Field]:
        mode = self._int(request, 0, 2)
        doc_type = mode & 0x0F
        if doc_type not in RECEIPT_BY_TYPE:
            raise ParamError(f"document type {doc_type} not supported by the emulator", 11)
        tax_raw = self._field(request, 4).strip()
        tax: TaxSystem | None = None
        if tax_raw:
            index = self._int(request, 4, 0, 43)
            if not 0 <= index <= 5:
                raise ParamError(f"bad tax system index {index}", 43)
            tax = TaxSystem.from_index(index)
        self.core.open_receipt(RECEIPT_BY_TYPE[doc_type], tax, self._field(request, 2))
        self._batch = bool(mode & 0x10)
        self._batch_failed = False
        return []

    def _add_item(self, request: Request) -> list[Field]:
        quantity = self._decimal(request, 2, 46)
        price = self._decimal(request, 3, 47)
        vat_index = self._int(request, 4, 3, 48)
        if vat_index not in VAT_BY_INDEX:
            raise ParamError(f"bad tax rate index {vat_index}", 48)
        tax = self.core.add_item(self._field(request, 0), quantity, price, VAT_BY_INDEX[vat_index])
        return [f"{tax:.4f}"]

    def _subtotal(self, _: Request) -> list[Field]:
        self.core.subtotal()
        return []

    def _payment(self, request: Request) -> list[Field]:
        index = self._int(request, 0, 0, 55)
        if index not in PAYMENT_BY_INDEX:
            raise ParamError(f"payment type {index} not supported by the emulator", 55)
        amount = self._decimal(request, 1, 55)
        self.core.pay(PAYMENT_BY_INDEX[index], amount)
        return []

    def _close_document(self, _: Request) -> list[Field]:
        try:
            doc = self.core.close_receipt()
        finally:
            if self.core.document is None:
                self._batch = self._batch_failed = False
        return [
            doc.number,
            doc.number,
            f"{doc.number} {doc.fiscal_sign}",
            doc.number,
            doc.fiscal_sign,
            doc.shift_number or 0,
            doc.number_in_shift or 0,
            *self._date_time(doc.at),
        ]

    def _cancel_document(self, _: Request) -> list[Field]:
        self._batch = self._batch_failed = False
        self.core.cancel_receipt()
        return []

    # -------------------------------------------------------------------------- registration

    def _registration(self, request: Request) -> list[Field]:
        if self._int(request, 0, 0) == 1:
            raise CoreError(ErrorKind.UNSUPPORTED, "ФН replacement is not emulated")
        mask = self._int(request, 3, 0, 43)
        if not 0 < mask < 64:
            raise ParamError(f"bad tax system mask {mask}", 43)
        work_mode = self._int(request, 4, self.core.fn.work_mode, 61)
        doc = self.core.reregister(TaxSystem(mask), cashier=self._field(request, 5), work_mode=work_mode)
        return [doc.number, doc.fiscal_sign, *self._date_time(doc.at)]


def _valid_id(packet_id: int) -> bool:
    return MIN_PACKET_ID <= packet_id <= MAX_PACKET_ID
