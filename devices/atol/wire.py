"""The АТОЛ wire: v3 frames and the task buffer, one application command at a time, and modes.

The way atol4j does it (reference §3.3): every command is an ADD with NeedResult and a fresh
TId; the synchronous answer (same packet ID) is only a transport acknowledgement unless it
already carries the result (A3/A4); the result is the asynchronous ``A6``/``A7`` frame on packet
ID 0xF0 carrying our TId, after which the driver ACKs the TId.  A garbled async frame (bad CRC on
ID 0xF0) is recovered with REQ; a result that never arrives ends in a LinkTimeout.  An empty
frame from the register is a retransmission request (resent at most :data:`RESEND_LIMIT` times);
a corrupted answer is met with an empty frame of our own.  Buffer refusals (B1 overflow, B2 TId
exists, A5 stopped) abort the buffer and retry once; anything else at the buffer level is a
:class:`~harness.errors.LinkCorrupted`.

Frames travel through the shared :class:`harness.link.Link`; :class:`BufferMatcher` is the АТОЛ
half of an exchange.  Per-command timeouts are the T5 values of §3.4
(:func:`~devices.atol.protocol.answer_timeout`).  Every application error byte becomes a
normalized :class:`~harness.errors.DeviceError` (:mod:`devices.atol.errors`); after 104/105 the
3Fh cover bit decides between "printer not ready" and "cover open".  Modes: an operation enters
its mode (56h, mode password 30 = system administrator by default) and leaves it (48h).
:func:`detect` is discovery.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from devices.models import Identified, identify
from harness.errors import DeviceError, ErrorKind, LinkCorrupted, LinkError, LinkTimeout, device_error
from harness.link import Deadline, Link, ask_again

from . import errors as atol_errors
from .protocol import (
    ASYNC_ID,
    MAX_HOST_ID,
    AddFlags,
    Answer,
    BufferAnswer,
    BufferStatus,
    Cmd,
    CodecError,
    DeviceType,
    EnterMode,
    ExtendedError,
    FirmwareVersion,
    FnQuery,
    Mode,
    ReadRequisite,
    Register,
    StateAnswer,
    StatusBlock,
    StatusFlags,
    Tag,
    V3Corrupt,
    V3Frame,
    V3Reader,
    answer_timeout,
    decode_buffer_answer,
    decode_tlvs,
    encode_abort,
    encode_ack,
    encode_add,
    encode_command,
    encode_frame,
    encode_read_register,
    encode_req,
    parse_answer,
)
from .protocol.commands import cmd_name

SYSADMIN_PASSWORD = 30
ABORT_TIMEOUT = 3.0  # seconds of the vendor's time (the link scales them)
ACK_TIMEOUT = 2.0
REQ_FLOOR = 0.1  # a REQ for a lost async result gets at least this long
DETECT_TIMEOUT = 1.0
RESEND_LIMIT = 3
TRACE_CHUNK = 4096
# commands that only read (status, state, FN queries, device type, firmware, requisites, cash,
# last error, registers): asked again when the answer is lost or garbled
READS = frozenset({0x3F, 0x45, 0xA4, 0xA5, 0x9D, 0xE9, 0x4D, 0xB3, 0x91, 0x58})
READ_TRIES = 3
EXTENDED_CODE_IN_REGISTER = 238  # §3.7: "read extended code from register 55"
BUFFER_REFUSALS = frozenset({BufferStatus.OVERFLOW, BufferStatus.ALREADY_EXISTS, BufferStatus.STOPPED})
FINAL = frozenset(
    {
        BufferStatus.RESULT,
        BufferStatus.ERROR,
        BufferStatus.STOPPED,
        BufferStatus.OVERFLOW,
        BufferStatus.ALREADY_EXISTS,
        BufferStatus.NOT_FOUND,
        BufferStatus.ILLEGAL_VALUE,
    }
)


class BufferRefused(Exception):
    def __init__(self, status: BufferStatus) -> None:
        super().__init__(status.name)
        self.status = status


class BufferMatcher:
    """The answer to one buffer command: its synchronous answer, or (with ``tid``) the task's result."""

    expects = "ATOL v3 frames"

    def __init__(self, wire: AtolWire, pid: int, frame: bytes, deadline: Deadline, what: str, tid: int | None) -> None:
        self._wire = wire
        self._pid = pid
        self._frame = frame
        self._deadline = deadline
        self._what = what
        self._tid = tid
        self._seen = bytearray()
        self._garbage = 0
        self._sync: BufferAnswer | None = None
        self._resends = 0
        self._async_lost = False

    def start(self) -> None:
        self._wire._reader.reset()
        self._wire._rx.clear()

    def junk(self) -> bytes:
        """What arrived, when some of it was no frame or a frame never finished (else b"")."""
        return bytes(self._seen[:64]) if self._garbage or self._wire._reader.in_frame else b""

    def _items(self, chunk: bytes) -> list[V3Frame | V3Corrupt]:
        """Split a chunk into frames; trace it once a frame boundary is reached."""
        wire = self._wire
        skipped = wire._reader.skipped
        items = wire._reader.feed(chunk)
        self._garbage += wire._reader.skipped - skipped
        if len(self._seen) < 64:
            self._seen += chunk
        wire._rx += chunk
        if not wire._reader.in_frame or len(wire._rx) > TRACE_CHUNK:  # one trace record per complete frame(s)
            wire.link.trace.rx(bytes(wire._rx))
            wire._rx.clear()
        return items

    def _resend(self, message: str, frame: bytes) -> None:
        self._resends += 1
        if self._resends > RESEND_LIMIT:
            raise LinkCorrupted(message)
        self._wire.link.write(frame)

    def feed(self, chunk: bytes) -> BufferAnswer | None:
        for item in self._items(chunk):
            if isinstance(item, V3Corrupt):
                if item.packet_id == self._pid:  # ask for it again
                    self._resend(
                        f"answer to {self._what} keeps arriving corrupted ({item.reason})", encode_frame(self._pid, b"")
                    )
                elif item.packet_id == ASYNC_ID:
                    self._async_lost = True
                continue
            if item.packet_id == self._pid:
                if item.is_resend_request:
                    self._resend(f"the register keeps asking to resend {self._what}", self._frame)
                    continue
                self._sync = _decode(item.payload, self._what)
                if self._tid is None or self._sync.status in FINAL:
                    return self._sync
            elif item.packet_id == ASYNC_ID and self._tid is not None and not item.is_resend_request:
                answer = _decode(item.payload, self._what)
                if answer.is_async and answer.tid == self._tid:
                    return answer
            # anything else: a stale answer or someone else's async result
        if self._sync is not None and self._async_lost and self._tid is not None:  # our A6/A7 was garbled: REQ
            floor = self._wire.link.deadline(REQ_FLOOR)
            deadline = self._deadline if self._deadline.expires_at > floor.expires_at else floor
            state = self._wire._request(encode_req(self._tid), deadline, self._what)
            if state.status in FINAL:
                return state
            self._async_lost = False  # still running: its asynchronous result is still to come
        return None


def _decode(payload: bytes, what: str) -> BufferAnswer:
    try:
        return decode_buffer_answer(payload)
    except (CodecError, ValueError) as exc:
        raise LinkCorrupted(f"malformed task-buffer answer to {what}: {exc}") from None


class AtolWire:
    """Application commands over the v3 task buffer, and the register's mode machine."""

    def __init__(self, link: Link, *, access_password: int = 0, mode_password: int = SYSADMIN_PASSWORD) -> None:
        self._link = link
        self._access_password = access_password
        self._mode_password = mode_password
        self._reader = V3Reader(max_payload=4096)
        self._rx = bytearray()  # received bytes not yet written to the trace
        self._pid = MAX_HOST_ID  # the first packet gets id 0
        self._tid = 0
        self._mode: int | None = None  # cached device mode; None = read it (45h)

    @property
    def link(self) -> Link:
        return self._link

    # ------------------------------------------------------------------------------ transport v3

    def _next_pid(self) -> int:
        self._pid = 0 if self._pid >= MAX_HOST_ID else self._pid + 1
        return self._pid

    def _next_tid(self) -> int:
        self._tid = 1 if self._tid >= MAX_HOST_ID else self._tid + 1
        return self._tid

    def _request(self, payload: bytes, deadline: Deadline, what: str, *, tid: int | None = None) -> BufferAnswer:
        """Send one buffer command; return its synchronous answer, or (with ``tid``) the task's result."""
        pid = self._next_pid()
        frame = encode_frame(pid, payload)
        return self._link.exchange(frame, BufferMatcher(self, pid, frame, deadline, what, tid), deadline, what=what)

    def abort(self) -> None:
        """C4: cancel every task in the register's buffer."""
        self._request(encode_abort(), self._link.deadline(ABORT_TIMEOUT), "ABORT")

    def _run_task(self, code: int, params: bytes, limit: float, what: str) -> BufferAnswer:
        tid = self._next_tid()
        task = encode_command(code, params, self._access_password)
        result = self._request(encode_add(tid, task, AddFlags.NEED_RESULT), self._link.deadline(limit), what, tid=tid)
        if result.status in BUFFER_REFUSALS:
            if result.status == BufferStatus.STOPPED:
                self._ack(tid, what)
            raise BufferRefused(result.status)
        if result.status in (BufferStatus.NOT_FOUND, BufferStatus.ILLEGAL_VALUE):
            raise LinkCorrupted(f"the register's task buffer refused {what}: {result.status.name}")
        self._ack(tid, what)
        return result

    def _ack(self, tid: int, what: str) -> None:
        try:
            self._request(encode_ack(tid), self._link.deadline(ACK_TIMEOUT), f"ACK of {what}")
        except LinkTimeout:
            self._link.trace.note(f"no answer to the ACK of TId {tid:#04x}; result already taken")

    def call(self, code: int, params: bytes = b"", *, timeout: float | None = None) -> Answer:
        """Run one application command; return its answer or raise the normalized DeviceError.

        A read (:data:`READS`) whose answer was lost or garbled is asked again, up to
        :data:`READ_TRIES` times: it changes nothing on the register.  Anything else runs once;
        a fiscal operation's link fault is the reconciler's (:mod:`harness.reconcile`)."""
        if code not in READS:
            return self._call_once(code, params, timeout)
        return ask_again(
            lambda: self._call_once(code, params, timeout),
            tries=READ_TRIES,
            what=f"{code:02X}h",
            trace=self._link.trace,
            reset=self._reader.reset,
        )

    def _call_once(self, code: int, params: bytes, timeout: float | None) -> Answer:
        with self._link.trace.timed(cmd_name(code)):
            return self._timed_call(code, params, timeout)

    def _timed_call(self, code: int, params: bytes, timeout: float | None) -> Answer:
        what = f"command {code:02X}h"
        limit = timeout if timeout is not None else answer_timeout(code)
        try:
            try:
                result = self._run_task(code, params, limit, what)
            except BufferRefused as refused:
                self._link.trace.note(f"task buffer refused {what} ({refused.status.name}): ABORT and retry")
                self.abort()
                try:
                    result = self._run_task(code, params, limit, what)
                except BufferRefused as again:
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
            return LinkCorrupted(
                f"register reported a link error to {command:02X}h: {atol_errors.text_of(code)} ({code})"
            )
        kind, text = atol_errors.kind_of(command, code)
        if code == EXTENDED_CODE_IN_REGISTER and command not in (Cmd.READ_REGISTER, Cmd.LAST_ERROR):
            with contextlib.suppress(DeviceError, LinkError, CodecError):  # §3.7: read it from register 55
                data = self.call(Cmd.READ_REGISTER, encode_read_register(Register.EXTENDED_ERROR)).data
                text = f"{text}: extended code {ExtendedError.decode(data).extended}"
        if code in (104, 105) and command != Cmd.STATUS:
            with contextlib.suppress(DeviceError, LinkError):
                if self.status_block().flags & StatusFlags.COVER_OPEN:
                    kind, text = ErrorKind.COVER_OPEN, "cover open"
        return device_error(kind, text, code=code, vendor="atol", command=f"{command:02X}h")

    # ------------------------------------------------------------------------------ reading

    def status_block(self) -> StatusBlock:
        return decoded(StatusBlock.decode, b"D" + self.call(Cmd.STATUS).data, "3Fh status block")

    def device_type(self) -> DeviceType:
        return decoded(DeviceType.decode, self.call(Cmd.DEVICE_TYPE).data, "A5h answer")

    def read_requisite(self, tag: int) -> bytes:
        """E9h: the value of one requisite (TLV tag) the register keeps."""
        data = self.call(Cmd.READ_REQUISITE, ReadRequisite(tag).encode()).data
        try:
            for found, value in decode_tlvs(data[1:]):
                if found == tag:
                    return value
        except CodecError as exc:
            raise LinkCorrupted(f"malformed E9h answer for {tag}: {exc}") from None
        raise LinkCorrupted(f"E9h answer without requisite {tag}")

    def serial(self) -> str:
        """The factory number: requisite 1013, else the 8 digits of the 3Fh status block."""
        try:
            return self.read_requisite(Tag.KKT_SERIAL).decode("ascii", "replace").strip()
        except DeviceError:
            return self.status_block().serial_text

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


def detect(link: Link, *, host_clock: Callable[[], datetime] | None = None) -> Identified | None:
    """An АТОЛ register on ``link``? ABORT within a short deadline, then A5h (model) and 3Fh (serial).
    Reads only; ``host_clock`` is not needed (an АТОЛ answers without the host's time)."""
    wire = AtolWire(link)
    try:
        wire._request(encode_abort(), link.deadline(DETECT_TIMEOUT), "ABORT")
        device_type = wire.device_type()
        serial = wire.serial()
    except (LinkError, DeviceError):
        return None
    try:
        version = FirmwareVersion.decode(wire.call(Cmd.FIRMWARE, b"\x01").data)
        firmware = f"{version.version}.{version.subversion}.{version.build}"
        fn_serial = wire.call(Cmd.FN, bytes([FnQuery.NUMBER])).data[:16].decode("ascii", "replace").strip()
    except (LinkError, DeviceError, CodecError):
        firmware = fn_serial = ""
    return replace(identify("atol", serial, device_type.model, firmware), fn_serial=fn_serial)


T = TypeVar("T")


def decoded(decode: Callable[[bytes], T], data: bytes, what: str) -> T:
    """``decode(data)``; an answer the codec cannot read is the link's fault (LinkCorrupted)."""
    try:
        return decode(data)
    except CodecError as exc:
        raise LinkCorrupted(f"malformed {what}: {exc}") from None
