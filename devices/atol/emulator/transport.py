"""The АТОЛ front-end's byte-level half: the link (v3 frames, v2 ENQ/ACK), the task buffer, dispatch.

:class:`AtolFrontEnd` holds one link's transport state and the command table; the handlers it
dispatches to come from :class:`~.commands.AtolCommands` / :class:`~.queries.AtolQueries`.  The
behaviour is documented in the package docstring (:mod:`devices.atol.emulator`).
"""

from __future__ import annotations

from typing import Any

from ...emulator.core import CoreError, FiscalCore, PoweredOff
from ...emulator.latency import DeviceLatency
from .. import errors as atol_errors
from ..protocol import (
    ACK,
    ASYNC_ID,
    ENQ,
    EOT,
    NAK,
    V3_ESC,
    V3_STX,
    AddFlags,
    BufferCmd,
    BufferStatus,
    Cmd,
    CodecError,
    V2Control,
    V2Frame,
    V2Reader,
    V3Corrupt,
    V3Frame,
    V3Reader,
    answer_timeout,
    decode_buffer_command,
    decode_command,
    encode_frame,
    encode_status,
    encode_v2_frame,
)
from .commands import AtolCommands
from .diagnostics import AtolDiagnostics
from .state import (
    ACCESS_PASSWORD,
    COMMAND_MODE,
    SYNC_PENDING,
    SYNC_RESULT,
    SYNC_SETTING,
    TASK_CAPACITY,
    V2_RESEND_LIMIT,
    AtolError,
    AtolState,
    Handler,
    Task,
)

V2_LINE_BYTES = frozenset(int(c) for c in V2Control)
V3_STX_BYTE = bytes([V3_STX])
V3_ESC_BYTE = bytes([V3_ESC])


# commands whose run leaves the "last error" (B3h, register 55) as it was: the reads of it
DIAGNOSTIC_COMMANDS = frozenset({Cmd.LAST_ERROR, Cmd.READ_REGISTER})


class AtolFrontEnd(AtolCommands, AtolDiagnostics):
    """One link's worth of transport state over a shared core (device state in wire_memory)."""

    latency: DeviceLatency | None = None  # pace=device (devices.emulator.latency): told each command run

    def __init__(
        self, core: FiscalCore, *, access_password: int = ACCESS_PASSWORD, sync_result: str | None = None
    ) -> None:
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
        self._v2_state = "idle"  # idle | receiving | await_eot | offered | sent
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
            Cmd.LAST_SHIFT_TOTALS: self._last_shift_totals,
            Cmd.LAST_ERROR: self._last_error,
            Cmd.READ_REGISTER: self._read_register,
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
            data = bytes(data)
            i, size = 0, len(data)
            while i < size:
                byte = data[i]
                items: list[Any]
                end = self._whole_v3_frame(data, i) if byte == V3_STX else 0
                if end:  # one whole v3 frame: judged byte by byte, it would all go to the v3 reader
                    items = self._v3.feed(data[i:end])
                    i = end
                else:
                    i += 1
                    if (self._v3.in_frame or byte == V3_STX) and self._v2.expected_lrc != byte:
                        if self._v2.in_frame:
                            self._v2.reset()  # 0xFE starts a v3 frame (unless it is the good LRC, above)
                        items = list(self._v3.feed(bytes([byte])))
                    elif self._v2.in_frame or self._v2_state == "receiving":
                        items = list(self._v2.feed(bytes([byte])))
                    elif byte in V2_LINE_BYTES:
                        items = [V2Control(byte)]
                    else:
                        continue  # an idle v2 line hears only its control bytes: no frame without ENQ/ACK
                for item in items:
                    try:
                        out += self._on_item(item)
                    except PoweredOff:
                        return bytes(out)
                    except Exception as exc:  # noqa: BLE001 -- garbage must never kill the emulator
                        self.core.log("emulator error", f"{type(exc).__name__}: {exc}")
            return bytes(out)

    def _whole_v3_frame(self, data: bytes, start: int) -> int:
        """Where the v3 frame starting at ``data[start]`` (its STX) ends, when all of it is in
        ``data``, it is the next thing the v3 reader sees whole (no frame of either version under
        way), and neither its header nor its data needs the reader's judgement (no STX after the
        first, no escape, a length the reader takes); else 0."""
        if self._v3.in_frame or self._v2.in_frame or len(data) - start < 5:
            return 0
        low, high = data[start + 1], data[start + 2]
        length = low | (high << 7)
        end = start + 5 + length  # STX, 2 length bytes, id, data, CRC
        if low > 0x7F or length > self._v3.max_payload or end > len(data):
            return 0
        if data.find(V3_STX_BYTE, start + 1, end) >= 0 or data.find(V3_ESC_BYTE, start + 4, end) >= 0:
            return 0
        return end

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
            if self._v2_state != "receiving":
                return b""  # no ENQ/ACK before it: not received, not executed (§3.4 steps 1-3)
            self._v2_answer = self._execute(item.data)[1]
            self._v2_state = "await_eot"
            self._v2_resends = 0
            return bytes([ACK])
        # V2Corrupt: NAK, and the host repeats the frame without a new ENQ (§3.4 step 4)
        return bytes([NAK]) if self._v2_state == "receiving" else b""

    # -------------------------------------------------------------------------- v2 line

    def _on_v2_control(self, item: V2Control) -> bytes:
        if item == V2Control.ENQ:
            self._v2_state, self._v2_answer = "receiving", None
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
        """Run one application command: (success, answer payload); its outcome is the "last
        error" (B3h, register 55) unless it is one of the reads of it."""
        command = task[2] if len(task) >= 3 else None
        ok, answer = self._run(task, command)
        if command is not None and command not in DIAGNOSTIC_COMMANDS:
            state = self.state
            state.last_command = command
            state.last_error = 0 if ok else (answer[0] if command == Cmd.DEVICE_TYPE else answer[1])
            state.last_extended = 0  # the emulator has no codes below the ATOL one
        return ok, answer

    def _run(self, task: bytes, command: int | None) -> tuple[bool, bytes]:
        if self.latency is not None and command is not None:  # pace=device
            self.latency.executed(answer_timeout(command))
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
