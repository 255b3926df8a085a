"""АТОЛ wire front-end: real "Протокол ККТ 3.x" frames in, real frames out, over the fiscal core.

Transport (reference §3.2-§3.4, §8.3)
=====================================

* **v3** (0xFE framing, CRC-8): every host payload is a task-buffer command.  ADD / ACK_ADD
  execute the task at once (the emulator never has a task in progress); the *synchronous* answer
  (same packet ID) is ``A1`` (pending) by default or ``A3``/``A4`` + result when the task was
  added with NeedResult -- switch with ``core.wire_memory["atol_sync_result"] = "result"`` (or
  ``profile.extra``); the default follows the reference's recommendation.  The result always
  also goes out asynchronously on packet ID 0xF0 as ``A6 TId answer`` / ``A7 TId answer``; an
  application error (error byte ≠ 0) makes the task an *error* (A4/A7) [inferred], and the data
  is the same application answer either way (``55 67 00`` for "no paper").  REQ answers the
  task's status (+ data when finished) or ``B3``; ACK drops the task and answers its final status
  byte [inferred]; ABORT clears the buffer and answers ``A3`` [inferred].  A task without
  NeedResult is dropped as soon as it ran.  A failed task without IgnoreError *stops* the buffer
  until it is acknowledged: later ADDs are kept as ``A5`` (stopped) and not executed.  A TId
  already in the buffer gets ``B2``, a full buffer ``B1``, an unknown buffer command or flag bit
  ``B4``.  A corrupted host frame is answered with an empty frame carrying its ID (the
  retransmission request); an empty host frame asks for our last answer with that ID again; an
  exact repeat of the previous packet is answered from memory, not executed twice.
* **v2** (ENQ/ACK/EOT, DLE stuffing, LRC) for old clients: ENQ → ACK, frame → ACK (NAK on a bad
  LRC), EOT → ENQ when the answer is ready, ACK → answer frame, ACK → EOT, NAK → the frame again.
  A 0xFE byte always starts a v3 frame (the link never confuses a v2 frame for one, at the cost
  of not accepting raw 0xFE inside v2 data).  Timing (T1..T8) is not emulated.
* Garbage is skipped; an unfinished frame is dropped on the inter-byte timeout (``reset``).  A
  powered-off register answers nothing and loses its task buffer and mode.

Application layer (§3.5)
========================

The access password (2 BCD, default 0) is checked on every task (wrong → 140).  The mode machine:
56h ``mode(1) password(4 BCD)`` from mode 0 (select); passwords 1-28 are cashiers (modes 1, 2),
29 the administrator (1-3), 30 the system administrator (1-6); a wrong password → 140, a
non-BCD one → 164; 48h back to mode 0 (refused with 155 while a receipt is open in mode 1).
Commands outside their mode → 102: receipts, 9Ah, 59h in mode 1; 67h in mode 2; 5Ah in mode 3;
64h/4Bh/EDh in mode 4 (programming) [inferred]; A6h in mode 6 (FN access) [inferred].  3Fh, 45h,
A5h, 9Dh, A4h, 4Dh, E8h, E9h and 95h work in every mode.

* 3Fh: the 30-byte 'D' block from the core (serial = last 8 digits of the 10-digit core serial;
  flags bit 4 = a printout is pending after the ФН commit [inferred], :data:`STATUS_PRINT_PENDING`).
* 92h opens a receipt; on a closed shift the core opens one implicitly when the profile says so
  (``auto_open_shift``).  The receipt's tax system is the 1055 requisite written with E8h before
  92h (consumed); without it the core takes the lowest registered one.  The cashier is requisite
  1021 if written, else "Кассир N" of the mode password.
* E6h position (tax byte: libfptr numbering [inferred]), 99h payment (``U err remainder change``),
  4Ah close (a non-zero sum is paid first), 59h cancel; 9Ah open shift; 5Ah Z; 67h X (type 1).
* 95h: finishes a printout pending after the ФН commit (no new document), otherwise prints a copy
  of the last document.  This is the emulator's "continue print" [inferred: libfptr's
  ``continuePrint`` has no documented binary command].
* 64h / 4Bh / EDh set the date, the time, both (the core's rules: shift closed → 156, before the
  last document → 32, more than 24 h ahead → 22 once, then accepted on the identical repeat).
* A6h (mode 6): ``kind(1) [tax-system mask(1)]`` [inferred]; kind 2 changes the registration
  parameters without ФН replacement: the new 1062 mask is the byte given directly, else the 1062
  last written with E8h (consumed), else the current one (→ "nothing changed", 231).  Kind 1
  (activation) answers 208, kind 3 (ФН replacement) 122.
* E8h writes TLVs (tag, length LE): 1021 cashier, 1055 receipt tax system, 1062 tax systems for
  A6h, 1101/1205 reasons (kept; the core records bit 7 itself).  E9h reads 1013, 1018, 1021,
  1037, 1041, 1062, 1209 and answers ``U err blocks(1) TLV``; other tags → 218.
* A4h/43h: the last (re-)registration (FD number, fiscal sign, 1062) [inferred, see the codec].
* A4h/10h (state 2 = expired [plausible, not confirmed]; numbers binary LE, the S7 reading of the
  [conflict]; receipt number = next receipt like 3Fh), 20h, 30h, 31h, 32h, 33h, 42h.

The emulator never imports a driver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from harness.device import FnPhase as CoreFnPhase
from harness.device import PaperState, PaymentKind, ReceiptKind, TaxSystem, Vat
from harness.errors import ErrorKind

from ..emulator.core import CoreError, FiscalCore, PoweredOff
from . import errors as atol_errors
from .protocol import (
    ACK,
    ASYNC_ID,
    ENQ,
    EOT,
    FFD_CODES,
    NAK,
    STATUS_BLOCK_SIZE,
    STATUS_PRINT_PENDING,
    V3_STX,
    AddFlags,
    BufferCmd,
    BufferStatus,
    CloseReceipt,
    Cmd,
    CodecError,
    CommandRequest,
    EnterMode,
    FirmwareVersion,
    FnQuery,
    FnStatus,
    FnValidity,
    Interface,
    Mode,
    OfdExchangeStatus,
    OfdFlags,
    OpenReceipt,
    Payment,
    PaymentResult,
    PaymentType,
    Position,
    PrinterFlags,
    ReadRequisite,
    ReceiptType,
    Registration,
    RegistrationKind,
    RegistrationTotals,
    ShiftParams,
    ShiftState,
    StateAnswer,
    StatusBlock,
    StatusFlags,
    Tag,
    TaxType,
    V2Control,
    V2Frame,
    V2Reader,
    V3Corrupt,
    V3Frame,
    V3Reader,
    WriteRequisite,
    decode_buffer_command,
    decode_command,
    decode_date_params,
    decode_datetime_params,
    decode_time_params,
    decode_tlvs,
    encode_frame,
    encode_status,
    encode_text,
    encode_tlv,
    encode_v2_frame,
    money_to_bcd,
    to_bcd,
    to_le,
)

SYNC_PENDING = "pending"
SYNC_RESULT = "result"
SYNC_SETTING = "atol_sync_result"
TASK_CAPACITY = 32
ACCESS_PASSWORD = 0
PROTOCOL_VERSION = 3
DEVICE_TYPE_KKT = 1
V2_RESEND_LIMIT = 10

RECEIPT_KIND = {
    ReceiptType.SALE: ReceiptKind.SALE,
    ReceiptType.SALE_RETURN: ReceiptKind.SALE_RETURN,
    ReceiptType.EXPENSE: ReceiptKind.PURCHASE,
    ReceiptType.EXPENSE_RETURN: ReceiptKind.PURCHASE_RETURN,
}
RECEIPT_TYPE = {kind: int(rtype) for rtype, kind in RECEIPT_KIND.items()}
VAT_BY_TAX = {
    TaxType.DEPARTMENT: Vat.NONE,
    TaxType.VAT18: Vat.VAT20,
    TaxType.VAT20: Vat.VAT20,
    TaxType.VAT118: Vat.VAT20,
    TaxType.VAT120: Vat.VAT20,
    TaxType.VAT10: Vat.VAT10,
    TaxType.VAT110: Vat.VAT10,
    TaxType.VAT0: Vat.VAT0,
    TaxType.NONE: Vat.NONE,
}
PAYMENT_KIND = {PaymentType.CASH: PaymentKind.CASH, PaymentType.ELECTRONIC: PaymentKind.ELECTRONIC}

# the mode each command needs (None: any mode)
COMMAND_MODE: dict[int, int | None] = {
    Cmd.STATUS: None,
    Cmd.STATE: None,
    Cmd.DEVICE_TYPE: None,
    Cmd.FIRMWARE: None,
    Cmd.FN: None,
    Cmd.CASH_IN_DRAWER: None,
    Cmd.WRITE_REQUISITE: None,
    Cmd.READ_REQUISITE: None,
    Cmd.REPRINT_LAST: None,
    Cmd.ENTER_MODE: None,
    Cmd.EXIT_MODE: None,
    Cmd.OPEN_SHIFT: Mode.REGISTRATION,
    Cmd.OPEN_RECEIPT: Mode.REGISTRATION,
    Cmd.REGISTER_POSITION: Mode.REGISTRATION,
    Cmd.PAYMENT: Mode.REGISTRATION,
    Cmd.CLOSE_RECEIPT: Mode.REGISTRATION,
    Cmd.CANCEL_RECEIPT: Mode.REGISTRATION,
    Cmd.X_REPORT: Mode.X_REPORT,
    Cmd.Z_REPORT: Mode.Z_REPORT,
    Cmd.SET_DATE: Mode.PROGRAMMING,
    Cmd.SET_TIME: Mode.PROGRAMMING,
    Cmd.SET_DATETIME: Mode.PROGRAMMING,
    Cmd.REGISTRATION: Mode.FN,
}


def modes_for_password(password: int) -> frozenset[int]:
    """Modes a mode password opens: cashiers 1-28, administrator 29, system administrator 30."""
    if 1 <= password <= 28:
        return frozenset({Mode.REGISTRATION, Mode.X_REPORT})
    if password == 29:
        return frozenset({Mode.REGISTRATION, Mode.X_REPORT, Mode.Z_REPORT})
    if password == 30:
        return frozenset(range(1, 7))
    return frozenset()


class AtolError(Exception):
    """A refusal decided by the front-end itself (parameters, mode, password)."""

    def __init__(self, code: int, text: str = "") -> None:
        super().__init__(text or atol_errors.text_of(code))
        self.code = code


@dataclass
class Task:
    tid: int
    flags: AddFlags
    status: BufferStatus
    data: bytes = b""


@dataclass
class AtolState:
    """Device-level front-end state (kept in ``core.wire_memory["atol"]``; lost at power-off)."""

    mode: int = Mode.SELECT
    submode: int = 0
    operator: int = 0  # the mode password that entered the current mode
    tasks: dict[int, Task] = field(default_factory=dict)
    stopped_by: int | None = None  # TId of a failed task that stops the buffer until ACKed
    requisites: dict[int, bytes] = field(default_factory=dict)
    blocks: bytearray = field(default_factory=bytearray)  # E8h multi-block accumulation


Handler = Callable[[CommandRequest], bytes]


def _u(data: bytes = b"\x00") -> bytes:
    """A successful 'U' answer: ``55 00`` + data (a lone reserved 00 when there is none)."""
    return b"\x55\x00" + data


class AtolFrontEnd:
    """One link's worth of transport state over a shared core (device state in wire_memory)."""

    def __init__(self, core: FiscalCore, *, access_password: int = ACCESS_PASSWORD, sync_result: str | None = None) -> None:
        if sync_result not in (None, SYNC_PENDING, SYNC_RESULT):
            raise ValueError(f"sync_result is {SYNC_PENDING!r} or {SYNC_RESULT!r}, not {sync_result!r}")
        self.core = core
        self.access_password = access_password
        self._sync_default = sync_result
        self._v3 = V3Reader(max_payload=4096)
        self._v2 = V2Reader()
        self._answers: dict[int, bytes] = {}  # packet id → our last synchronous answer frame
        self._last_packet: tuple[int, bytes] | None = None
        self._v2_answer: bytes | None = None
        self._v2_state = "idle"  # idle | await_eot | offered | sent
        self._v2_resends = 0
        self._commands: dict[int, Handler] = {
            Cmd.STATUS: self._status,
            Cmd.STATE: self._state_code,
            Cmd.DEVICE_TYPE: self._device_type,
            Cmd.FIRMWARE: self._firmware,
            Cmd.FN: self._fn_query,
            Cmd.CASH_IN_DRAWER: self._cash_in_drawer,
            Cmd.ENTER_MODE: self._enter_mode,
            Cmd.EXIT_MODE: self._exit_mode,
            Cmd.OPEN_SHIFT: self._open_shift,
            Cmd.OPEN_RECEIPT: self._open_receipt,
            Cmd.REGISTER_POSITION: self._register_position,
            Cmd.PAYMENT: self._payment,
            Cmd.CLOSE_RECEIPT: self._close_receipt,
            Cmd.CANCEL_RECEIPT: self._cancel_receipt,
            Cmd.X_REPORT: self._x_report,
            Cmd.Z_REPORT: self._z_report,
            Cmd.SET_DATE: self._set_date,
            Cmd.SET_TIME: self._set_time,
            Cmd.SET_DATETIME: self._set_datetime,
            Cmd.REPRINT_LAST: self._reprint_last,
            Cmd.WRITE_REQUISITE: self._write_requisite,
            Cmd.READ_REQUISITE: self._read_requisite,
            Cmd.REGISTRATION: self._registration,
        }

    # -------------------------------------------------------------------------- device state

    @property
    def state(self) -> AtolState:
        state = self.core.wire_memory.get("atol")
        if not isinstance(state, AtolState):
            state = AtolState()
            self.core.wire_memory["atol"] = state
        return state

    def _boot_if_needed(self) -> None:
        """After power-up an АТОЛ is ready at once (no "start of work"): fresh mode and buffer."""
        if self.core.wire_memory.get("atol_boot") != self.core.boot_count:
            self.core.wire_memory["atol"] = AtolState()
            self.core.wire_memory["atol_boot"] = self.core.boot_count

    def _sync_mode(self) -> str:
        value = self.core.wire_memory.get(SYNC_SETTING) or self.core.profile.extra.get(SYNC_SETTING)
        value = value or self._sync_default or SYNC_PENDING
        return value if value in (SYNC_PENDING, SYNC_RESULT) else SYNC_PENDING

    # -------------------------------------------------------------------------- stream level

    def pending(self) -> bool:
        return self._v3.in_frame or self._v2.in_frame

    def reset(self) -> None:
        self._v3.reset()
        self._v2.reset()

    def feed(self, data: bytes) -> bytes:
        with self.core.lock:
            if not self.core.powered:  # a register that is off hears nothing and forgets the link
                self.reset()
                self._v2_state, self._v2_answer = "idle", None
                self._answers.clear()
                self._last_packet = None
                return b""
            self._boot_if_needed()
            out = bytearray()
            for byte in bytes(data):
                if self._v2.in_frame and byte != V3_STX:
                    items: list[Any] = list(self._v2.feed(bytes([byte])))
                elif self._v3.in_frame or byte == V3_STX:
                    if self._v2.in_frame:
                        self._v2.reset()  # 0xFE always starts a v3 frame
                    items = list(self._v3.feed(bytes([byte])))
                else:
                    items = list(self._v2.feed(bytes([byte])))
                for item in items:
                    try:
                        out += self._on_item(item)
                    except PoweredOff:
                        return bytes(out)
                    except Exception as exc:  # noqa: BLE001 -- garbage must never kill the emulator
                        self.core.log("emulator error", f"{type(exc).__name__}: {exc}")
            return bytes(out)

    def _on_item(self, item: Any) -> bytes:
        if isinstance(item, V3Frame):
            return self._on_v3_frame(item)
        if isinstance(item, V3Corrupt):
            if item.packet_id is None or item.packet_id in (ASYNC_ID, V3_STX):
                return b""
            return encode_frame(item.packet_id, b"")  # retransmission request
        if isinstance(item, V2Control):
            return self._on_v2_control(item)
        if isinstance(item, V2Frame):
            self._v2_answer = self._execute(item.data)[1]
            self._v2_state = "await_eot"
            self._v2_resends = 0
            return bytes([ACK])
        self._v2_state = "idle"  # V2Corrupt
        return bytes([NAK])

    # -------------------------------------------------------------------------- v2 line

    def _on_v2_control(self, item: V2Control) -> bytes:
        if item == V2Control.ENQ:
            self._v2_state, self._v2_answer = "idle", None
            return bytes([ACK])
        if item == V2Control.EOT:
            if self._v2_state == "await_eot" and self._v2_answer is not None:
                self._v2_state = "offered"
                return bytes([ENQ])
            self._v2_state = "idle"
            return b""
        if item == V2Control.ACK:
            if self._v2_state == "offered" and self._v2_answer is not None:
                self._v2_state = "sent"
                return encode_v2_frame(self._v2_answer)
            if self._v2_state == "sent":
                self._v2_state, self._v2_answer = "idle", None
                return bytes([EOT])
            return b""
        # NAK
        if self._v2_state == "sent" and self._v2_answer is not None and self._v2_resends < V2_RESEND_LIMIT:
            self._v2_resends += 1
            return encode_v2_frame(self._v2_answer)
        self._v2_state, self._v2_answer = "idle", None
        return bytes([EOT])

    # -------------------------------------------------------------------------- v3 task buffer

    def _on_v3_frame(self, frame: V3Frame) -> bytes:
        pid = frame.packet_id
        if frame.is_resend_request:
            return self._answers.get(pid, b"")
        if pid == ASYNC_ID:
            return b""  # the host never sends on the async ID
        if self._last_packet == (pid, frame.payload) and pid in self._answers:
            return self._answers[pid]  # the host repeated a packet whose answer it lost
        self._last_packet = (pid, frame.payload)
        sync, async_frames = self._buffer_command(frame.payload)
        answer = encode_frame(pid, sync)
        self._answers[pid] = answer
        return answer + b"".join(async_frames)

    def _buffer_command(self, payload: bytes) -> tuple[bytes, list[bytes]]:
        state = self.state
        try:
            cmd = decode_buffer_command(payload)
        except (CodecError, ValueError):
            return encode_status(BufferStatus.ILLEGAL_VALUE), []
        if cmd.kind == BufferCmd.ABORT:
            state.tasks.clear()
            state.stopped_by = None
            return encode_status(BufferStatus.RESULT), []
        if cmd.kind in (BufferCmd.ACK, BufferCmd.REQ):
            task = state.tasks.get(cmd.tid) if cmd.tid is not None else None
            if task is None:
                return encode_status(BufferStatus.NOT_FOUND), []
            if cmd.kind == BufferCmd.REQ:
                return encode_status(task.status, task.data), []
            self._drop(task.tid)
            return encode_status(task.status), []
        if cmd.kind == BufferCmd.ACK_ADD and cmd.ack_tid is not None:
            self._drop(cmd.ack_tid)
        return self._add(cmd.tid, cmd.flags, cmd.task)

    def _drop(self, tid: int) -> None:
        state = self.state
        state.tasks.pop(tid, None)
        if state.stopped_by == tid:
            state.stopped_by = None

    def _add(self, tid: int | None, flags: AddFlags, task: bytes) -> tuple[bytes, list[bytes]]:
        state = self.state
        if tid is None or int(flags) & ~0x07:
            return encode_status(BufferStatus.ILLEGAL_VALUE), []
        if tid in state.tasks:
            return encode_status(BufferStatus.ALREADY_EXISTS), []
        if len(state.tasks) >= TASK_CAPACITY:
            return encode_status(BufferStatus.OVERFLOW), []
        if state.stopped_by is not None:
            state.tasks[tid] = Task(tid, flags, BufferStatus.STOPPED)
            return encode_status(BufferStatus.STOPPED), []
        ok, answer = self._execute(task)
        status = BufferStatus.RESULT if ok else BufferStatus.ERROR
        if AddFlags.NEED_RESULT in flags:
            state.tasks[tid] = Task(tid, flags, status, answer)
            if not ok and AddFlags.IGNORE_ERROR not in flags:
                state.stopped_by = tid
        async_status = BufferStatus.ASYNC_RESULT if ok else BufferStatus.ASYNC_ERROR
        async_frame = encode_frame(ASYNC_ID, encode_status(async_status, answer, tid=tid))
        if self._sync_mode() == SYNC_RESULT and AddFlags.NEED_RESULT in flags:
            sync = encode_status(status, answer)
        else:
            sync = encode_status(BufferStatus.PENDING)
        return sync, [async_frame]

    # -------------------------------------------------------------------------- application

    def _execute(self, task: bytes) -> tuple[bool, bytes]:
        """Run one application command: (success, answer payload)."""
        command = task[2] if len(task) >= 3 else None
        try:
            request = decode_command(task)
            if request.password != self.access_password:
                raise AtolError(140, "wrong access password")
            handler = self._commands.get(request.code)
            if handler is None:
                raise AtolError(122, f"command {request.code:02X}h is not emulated")
            needed = COMMAND_MODE.get(request.code)
            if needed is not None and self.state.mode != needed:
                raise AtolError(102, f"command {request.code:02X}h needs mode {needed}, mode is {self.state.mode}")
            return True, handler(request)
        except AtolError as exc:
            code = exc.code
        except CoreError as exc:
            code = atol_errors.code_for(
                exc.kind, source=exc.source, command=command, z_interrupted=self.core.shift.close_interrupted
            )
        except PoweredOff:
            raise
        except CodecError as exc:
            text = str(exc)
            code = 20 if any(word in text for word in ("need", "truncated", "claims")) else 19
        except Exception as exc:  # noqa: BLE001 -- a front-end bug must not kill the link
            self.core.log("emulator error", f"{type(exc).__name__}: {exc}")
            code = 122
        if command == Cmd.DEVICE_TYPE:
            return False, bytes([code])
        return False, bytes([0x55, code, 0x00])

    # -------------------------------------------------------------------------- helpers

    def _cashier(self) -> str:
        raw = self.state.requisites.get(Tag.CASHIER)
        if raw:
            try:
                return raw.decode("cp866").rstrip("\x00 ")
            except UnicodeDecodeError:
                pass
        return f"Кассир {self.state.operator}" if self.state.operator else "Кассир"

    def _firmware_parts(self) -> tuple[int, int, int]:
        parts = [int(p) if p.isdigit() else 0 for p in self.core.firmware.split(".")] + [0, 0, 0]
        return min(parts[0], 99), min(parts[1], 99), parts[2] % 10000

    def _serial_bcd(self) -> int:
        digits = "".join(c for c in self.core.serial if c.isdigit())
        return int(digits[-8:] or "0")

    def _receipt_state(self) -> int:
        doc = self.core.document
        return RECEIPT_TYPE.get(doc.kind, 1) if doc is not None else 0

    def _mode_byte_parts(self) -> tuple[int, int]:
        return self.state.mode, self.state.submode

    # -------------------------------------------------------------------------- status

    def _status(self, _: CommandRequest) -> bytes:
        core = self.core
        core.require_power()
        flags = StatusFlags.NONE
        if core.fn.phase == CoreFnPhase.FISCAL:
            flags |= StatusFlags.FISCAL
        if core.shift.is_open:
            flags |= StatusFlags.SHIFT_OPEN
        if core.printer.paper is not PaperState.OUT:
            flags |= StatusFlags.PAPER_PRESENT
        if core.printer.cover_open:
            flags |= StatusFlags.COVER_OPEN
        if core.fn.phase in (CoreFnPhase.FISCAL, CoreFnPhase.POST_FISCAL, CoreFnPhase.ARCHIVE):
            flags |= StatusFlags.FN_ACTIVATED
        if core.pending is not None or core.shift.close_interrupted:
            flags |= STATUS_PRINT_PENDING
        now = core.now()
        doc = core.document
        closed_shifts = core.shift.number - 1 if core.shift.is_open else core.shift.number
        block = StatusBlock(
            date=now.date(),
            time=now.time(),
            cashier=self.state.operator % 100,
            number_in_hall=1,
            flags=flags,
            serial=self._serial_bcd(),
            model=core.profile.model_code,
            version=to_bcd(self._firmware_parts()[0], 1) + to_bcd(self._firmware_parts()[1], 1),
            mode=self.state.mode,
            submode=self.state.submode,
            receipt_number=(core.shift.receipts + 1) % 10000,
            shift_number=max(0, closed_shifts) % 10000,
            receipt_state=self._receipt_state(),
            receipt_sum=doc.total.quantize(Decimal("0.01")) if doc is not None else Decimal("0.00"),
            decimal_point=2,
            interface=Interface.USB,
        )
        encoded = block.encode()
        assert len(encoded) == STATUS_BLOCK_SIZE
        return encoded

    def _state_code(self, _: CommandRequest) -> bytes:
        printer = self.core.printer
        flags = PrinterFlags.NONE
        if printer.paper is PaperState.OUT:
            flags |= PrinterFlags.NO_PAPER
        elif printer.paper is PaperState.NEAR_END:
            flags |= PrinterFlags.PAPER_NEAR_END
        mode, submode = self._mode_byte_parts()
        return b"\x55" + StateAnswer(mode, submode, flags).encode()

    def _device_type(self, _: CommandRequest) -> bytes:
        version, subversion, build = self._firmware_parts()
        firmware = to_bcd(version, 1) + to_bcd(subversion, 1) + b"\x00" + to_bcd(build, 2)
        name = encode_text(self.core.profile.model_name.encode("cp866", "replace").decode("cp866"))
        mode, submode = self._mode_byte_parts()
        return bytes([0, PROTOCOL_VERSION, DEVICE_TYPE_KKT, self.core.profile.model_code, mode, submode]) + firmware + name

    def _firmware(self, request: CommandRequest) -> bytes:
        source = request.params[0] if request.params else 1
        if source not in (1, 3):
            raise AtolError(19, f"9Dh source {source}: 1 main CPU or 3 bootloader")
        version, subversion, build = self._firmware_parts() if source == 1 else (1, 0, 0)
        return _u(FirmwareVersion(version, subversion, 0, build).encode())

    def _cash_in_drawer(self, _: CommandRequest) -> bytes:
        cash = max(Decimal(0), self.core.cash).quantize(Decimal("0.01"))
        return b"\x4d" + money_to_bcd(cash, 7)

    # -------------------------------------------------------------------------- FN queries

    def _fn_query(self, request: CommandRequest) -> bytes:
        if not request.params:
            raise AtolError(20, "A4h needs a sub-command")
        core = self.core
        sub = request.params[0]
        last = core.last_fd()
        if sub == FnQuery.SHIFT:
            state = ShiftState.CLOSED
            if core.shift.is_open:
                state = ShiftState.EXPIRED if core.shift_expired() else ShiftState.OPEN
            return _u(ShiftParams(state, core.shift.number % 0x10000, (core.shift.receipts + 1) % 0x10000).encode())
        if sub == FnQuery.OFD_EXCHANGE:
            queue = core.unsent()
            flags = OfdFlags.NONE
            if core.ofd_online:
                flags |= OfdFlags.TRANSPORT_CONNECTED
            if queue:
                flags |= OfdFlags.MESSAGE_WAITING
            return _u(
                OfdExchangeStatus(
                    flags,
                    0,
                    min(len(queue), 0xFFFF),
                    queue[0].number if queue else 0,
                    queue[0].at.replace(second=0) if queue else None,
                ).encode()
            )
        if sub == FnQuery.STATUS:
            return _u(
                FnStatus(
                    phase=int(core.fn.phase),
                    current_document=core.fn_current_document(),
                    document_data_received=core.document is not None and bool(core.document.items),
                    shift_open=core.shift.is_open,
                    warnings=int(core.fn_warnings()),  # type: ignore[arg-type]
                    last_document_at=last.at.replace(second=0),
                    fn_number=core.fn.serial,
                    last_fd_number=last.number,
                ).encode()
            )
        if sub == FnQuery.NUMBER:
            return _u(core.fn.serial.encode("ascii", "replace")[:16].ljust(16, b" "))
        if sub == FnQuery.VALIDITY:
            return _u(
                FnValidity(core.fn_valid_until(), min(core.registrations_left(), 255), min(core.fn.registrations_done, 255)).encode()
            )
        if sub == FnQuery.VERSION:
            return _u(encode_text("fn-emulator 1.0", 16, fill=0x20) + b"\x01")
        if sub == FnQuery.REGISTRATION:
            registration = core.last_registration()
            return _u(
                RegistrationTotals(
                    at=registration.at.replace(second=0),
                    inn=core.fn.inn[:12],
                    rnm=core.fn.rnm[:20],
                    tax_systems=int(registration.tax_systems or core.fn.tax_systems) & 0xFF,
                    work_mode=core.fn.work_mode & 0xFF,
                    fd_number=registration.number,
                    fiscal_sign=int(registration.fiscal_sign) if registration.fiscal_sign.isdigit() else 0,
                ).encode()
            )
        if sub == FnQuery.UNCONFIRMED_COUNT:
            return _u(to_le(min(len(core.unsent()), 0xFFFF), 2))
        raise AtolError(122, f"A4h sub-command {sub:02X}h is not emulated")

    # -------------------------------------------------------------------------- modes

    def _enter_mode(self, request: CommandRequest) -> bytes:
        if len(request.params) != 5:
            raise AtolError(20, "56h takes mode(1) and password(4)")
        try:
            params = EnterMode.decode(request.params)
        except CodecError:
            raise AtolError(164, "mode password is not BCD") from None
        state = self.state
        if not 1 <= params.mode <= 6:
            raise AtolError(19, f"no mode {params.mode}")
        if state.mode != Mode.SELECT and state.mode != params.mode:
            raise AtolError(102, f"leave mode {state.mode} (48h) first")
        if params.mode not in modes_for_password(params.password):
            raise AtolError(140, f"password {params.password} does not open mode {params.mode}")
        state.mode, state.submode, state.operator = params.mode, 0, params.password
        return _u()

    def _exit_mode(self, _: CommandRequest) -> bytes:
        state = self.state
        if state.mode == Mode.REGISTRATION and self.core.document is not None:
            raise AtolError(155, "a receipt is open")
        state.mode, state.submode = Mode.SELECT, 0
        return _u()

    # -------------------------------------------------------------------------- shift, reports

    def _open_shift(self, request: CommandRequest) -> bytes:
        self.core.open_shift(self._cashier())
        return _u()

    def _z_report(self, _: CommandRequest) -> bytes:
        self.core.close_shift(self._cashier())
        return _u()

    def _x_report(self, request: CommandRequest) -> bytes:
        report = request.params[0] if request.params else 1
        if report != 1:
            raise AtolError(163, f"report type {report} is not emulated (1 = X report)")
        self.core.x_report(self._cashier())
        return _u()

    def _reprint_last(self, _: CommandRequest) -> bytes:
        core = self.core
        if core.pending is not None:
            core.continue_print()
        else:
            core.print_document(core.last_fd().number)
        return _u()

    # -------------------------------------------------------------------------- receipts

    def _open_receipt(self, request: CommandRequest) -> bytes:
        if len(request.params) < 2:
            raise AtolError(20, "92h takes flags(1) and type(1)")
        params = OpenReceipt.decode(request.params)
        try:
            kind = RECEIPT_KIND[ReceiptType(params.receipt_type)]
        except (ValueError, KeyError):
            raise AtolError(106, f"receipt type {params.receipt_type} is not emulated") from None
        tax: TaxSystem | None = None
        raw = self.state.requisites.pop(Tag.RECEIPT_TAX_SYSTEM, None)
        if raw is not None:
            mask = raw[0] if raw else 0
            if mask == 0 or mask & (mask - 1) or mask >= 64:
                raise AtolError(231, f"1055 must be a single tax system, not {mask}")
            tax = TaxSystem(mask)
        self.core.open_receipt(kind, tax, self._cashier())
        return _u()

    def _register_position(self, request: CommandRequest) -> bytes:
        params = Position.decode(request.params)
        if params.quantity <= 0:
            raise AtolError(10, "quantity must be positive")
        try:
            vat = VAT_BY_TAX[TaxType(params.tax)]
        except ValueError:
            raise AtolError(19, f"tax type {params.tax} unknown") from None
        if params.discount and params.discount_type not in (0, 1):
            raise AtolError(19, "discount type is 0 (percent) or 1 (sum)")
        if params.flags & 0x01:  # check only
            self.core.current_document()
            return _u()
        self.core.add_item(params.name, params.quantity, params.price, vat)
        return _u()

    def _payment(self, request: CommandRequest) -> bytes:
        params = Payment.decode(request.params)
        kind = self._payment_kind(params.payment_type)
        if params.amount <= 0:
            raise AtolError(19, "payment sum must be positive")
        change = self.core.pay(kind, params.amount)
        doc = self.core.document
        remainder = max(Decimal(0), doc.total - doc.paid) if doc is not None else Decimal(0)
        return _u(PaymentResult(remainder.quantize(Decimal("0.01")), change.quantize(Decimal("0.01"))).encode())

    @staticmethod
    def _payment_kind(code: int) -> PaymentKind:
        try:
            return PAYMENT_KIND[PaymentType(code)]
        except (ValueError, KeyError):
            raise AtolError(126, f"payment type {code} is not emulated (1 cash, 2 electronic)") from None

    def _close_receipt(self, request: CommandRequest) -> bytes:
        params = CloseReceipt.decode(request.params)
        core = self.core
        doc = core.document
        if params.amount > 0 and doc is not None and doc.paid < doc.total:
            core.pay(self._payment_kind(params.payment_type), params.amount)
        core.close_receipt()
        return _u()

    def _cancel_receipt(self, _: CommandRequest) -> bytes:
        self.core.cancel_receipt()
        return _u()

    # -------------------------------------------------------------------------- clock

    def _set_date(self, request: CommandRequest) -> bytes:
        day = decode_date_params(request.params)
        self.core.set_rtc(datetime.combine(day, self.core.now().time()))
        return _u()

    def _set_time(self, request: CommandRequest) -> bytes:
        moment: time = decode_time_params(request.params)
        self.core.set_rtc(datetime.combine(self.core.now().date(), moment))
        return _u()

    def _set_datetime(self, request: CommandRequest) -> bytes:
        self.core.set_rtc(decode_datetime_params(request.params))
        return _u()

    # -------------------------------------------------------------------------- requisites

    def _write_requisite(self, request: CommandRequest) -> bytes:
        params = WriteRequisite.decode(request.params)
        state = self.state
        if params.blocks == 0 or params.block >= params.blocks:
            raise AtolError(19, f"block {params.block} of {params.blocks}")
        if params.block == 0:
            state.blocks = bytearray()
        state.blocks += params.data
        if params.block < params.blocks - 1:
            return _u()
        data, state.blocks = bytes(state.blocks), bytearray()
        for tag, value in decode_tlvs(data):
            if tag in (Tag.RECEIPT_TAX_SYSTEM, Tag.TAX_SYSTEMS, Tag.REREG_REASON) and len(value) != 1:
                raise AtolError(20, f"requisite {tag} is one byte")
            if tag == Tag.REREG_REASONS and len(value) != 4:
                raise AtolError(20, "requisite 1205 is four bytes")
            state.requisites[tag] = value
        return _u()

    def _read_requisite(self, request: CommandRequest) -> bytes:
        params = ReadRequisite.decode(request.params)
        core = self.core
        values: dict[int, Callable[[], bytes]] = {
            Tag.KKT_SERIAL: lambda: core.serial.encode("ascii", "replace"),
            Tag.INN: lambda: core.fn.inn.encode("ascii", "replace"),
            Tag.RNM: lambda: core.fn.rnm.encode("ascii", "replace"),
            Tag.FN_SERIAL: lambda: core.fn.serial.encode("ascii", "replace"),
            Tag.TAX_SYSTEMS: lambda: bytes([int(core.fn.tax_systems) & 0xFF]),
            Tag.FFD_VERSION: lambda: bytes([FFD_CODES.get(core.fn.ffd, 2)]),
            Tag.CASHIER: lambda: self._cashier().encode("cp866", "replace"),
        }
        if params.tag not in values:
            raise AtolError(218, f"requisite {params.tag} is not available")
        if params.block != 0:
            raise AtolError(19, "one block only")
        return _u(b"\x01" + encode_tlv(params.tag, values[params.tag]()))

    # -------------------------------------------------------------------------- registration

    def _registration(self, request: CommandRequest) -> bytes:
        params = Registration.decode(request.params)
        state = self.state
        if params.kind == RegistrationKind.REGISTRATION:
            raise CoreError(ErrorKind.ALREADY_REGISTERED, "the ФН is already activated")
        if params.kind == RegistrationKind.FN_REPLACEMENT:
            raise AtolError(122, "ФН replacement is not emulated")
        if params.kind != RegistrationKind.CHANGE_PARAMETERS:
            raise AtolError(19, f"A6h kind {params.kind}: 1 activation, 2 change parameters, 3 ФН replacement")
        written = state.requisites.pop(Tag.TAX_SYSTEMS, None)
        if params.tax_systems is not None:
            mask = params.tax_systems
        elif written:
            mask = written[0]
        else:
            mask = int(self.core.fn.tax_systems)
        state.requisites.pop(Tag.REREG_REASONS, None)
        state.requisites.pop(Tag.REREG_REASON, None)
        self.core.reregister(TaxSystem(mask & 0xFF), cashier=self._cashier())
        return _u()


def describe_state(core: FiscalCore) -> dict[str, Any]:
    """The front-end's device-level state, for debugging and tests."""
    state = core.wire_memory.get("atol")
    if not isinstance(state, AtolState):
        return {}
    return {
        "mode": state.mode,
        "operator": state.operator,
        "tasks": {tid: (t.status.name, t.data.hex()) for tid, t in state.tasks.items()},
        "stopped_by": state.stopped_by,
        "requisites": {tag: value.hex() for tag, value in state.requisites.items()},
    }


__all__ = ["AtolFrontEnd", "AtolState", "Task", "modes_for_password", "describe_state"]
