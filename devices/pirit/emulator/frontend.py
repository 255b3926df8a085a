"""Pirit wire front-end: real Pirit frames in, real Pirit frames out, over the fiscal core.

Byte-level behaviour follows reference §8.2: bad CRC → 0x07, wrong password → 0x06, unknown
command → 0x02, bad parameters → 0x03 (extended code kept for 0x06/1); the packet id is echoed;
every answer field is terminated by FS; upper/lower-case CRC and requests with or without a
trailing FS are accepted; a lone ENQ gets ACK; LF is ignored; garbage is dropped.  A powered-off
register answers nothing.  The emulator never imports a driver.

The command set is the model's manual edition (:mod:`devices.pirit.catalogue`): a command its
edition lacks is unknown (0x02) even where another edition's handler exists; a sub-request its
edition lacks is a bad parameter (0x03).  Handlers live in mixins by group (:mod:`.fields`).

Each frame of a chunk is judged alone: a bad one never costs the valid request behind it.  A
frame that cannot be parsed, or whose packet id is outside 0x20..0xF0 (§2.2; an answer can only
echo such an id), is dropped silently [inferred: the reference names no answer for it].  An
internal error costs only its frame's answer and is journaled ("emulator error").

Two-stage binary commands (0x15 logo, 0x17 receipt design, 0x18 picture, 0x55 graphics, 0x67 PNG): the first
frame gives the byte count and is answered by a lone ACK; the next that many bytes are the image
itself, taken raw, then the standard answer follows.

Batch mode (0x30 bit 4) belongs to the open document, not to the connection: fisGo sends every
command on a new TCP connection, and a serial line has none.  A reconnect mid-batch therefore
keeps the batch (silent successes, a failed batch refusing all but close/cancel/status) until the
document is closed or cancelled; setting ``batch_scope=connection`` makes a new link start
outside batch mode instead (an emulator choice for clients that expect it) [decided: the manual
says nothing of connections].
"""

from __future__ import annotations

from collections.abc import Callable

from harness.errors import ErrorKind

from ...emulator.core import CoreError, FiscalCore, PoweredOff
from ...emulator.latency import DeviceLatency
from .. import errors as pirit_errors
from ..catalogue import COMMANDS, has_command, has_sub
from ..protocol import (
    ACK,
    COMMAND_TIMEOUTS,
    DEFAULT_PASSWORD,
    DEFAULT_TIMEOUT,
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
    parse_int,
)
from .documents import DocumentCommands
from .fields import ParamError, handlers_of
from .fn_queries import FnQueries
from .info import InfoQueries
from .marking import MarkingCommands
from .registration import RegistrationCommands
from .requisites import RequisiteCommands
from .service import ServiceCommands
from .shift import ShiftCommands
from .status import StatusCommands

BATCH_COMMANDS = frozenset({0x24, *range(0x40, 0x4A), 0x52})  # silent when successful in batch mode
UNINITIALISED_OK = frozenset({0x00, 0x04, 0x06, 0x10})  # all else: 0x01 + extended 1 (§2.5.7)
BINARY_COMMANDS = frozenset({0x15, 0x17, 0x18, 0x55, 0x67})  # two-stage: size, ACK, raw bytes, answer
# extended code (0x06/1) of a BAD_PARAMETER refusal the core gives without one
BAD_PARAMETER_EXTENDED = {0x60: 43, 0x42: 46, 0x47: 55, 0x31: 26, 0x48: 26}

Answer = tuple[int, list[Field]]  # (error code, fields)


class PiritFrontEnd(
    StatusCommands,
    InfoQueries,
    FnQueries,
    ShiftCommands,
    DocumentCommands,
    RequisiteCommands,
    RegistrationCommands,
    ServiceCommands,
    MarkingCommands,
):
    """One link's worth of protocol state (frame reassembly, a binary upload) over a shared core."""

    latency: DeviceLatency | None = None  # pace=device (devices.emulator.latency): told each command run

    def __init__(self, core: FiscalCore, *, password: bytes = DEFAULT_PASSWORD) -> None:
        self.core = core
        self.password = password
        self._reader = FrameReader()
        self._binary: tuple[Request, int, bytearray] | None = None  # a two-stage upload under way
        self._commands: dict[int, Callable[[Request], list[Field]]] = {
            code: getattr(self, name) for code, name in HANDLERS.items()
        }
        self.edition = core.profile.edition or "punix"
        if core.profile.setting("batch_scope") == "connection":
            core.wire_memory["pirit_batch"] = (False, False)
        # extended error code of the last 0x01/0x03 answer is device state (0x06/1 may come on
        # another connection: fisGo opens one TCP connection per command)
        core.wire_memory.setdefault("pirit_extended", (0, ""))
        core.wire_memory.setdefault("pirit_batch", (False, False))  # (batch mode on, a batch command failed)

    @property
    def _batch(self) -> bool:
        """Batch mode: on while the document opened in it is open (a power cut ends both)."""
        return self.core.document is not None and bool(self.core.wire_memory["pirit_batch"][0])

    @property
    def _batch_failed(self) -> bool:
        return self._batch and bool(self.core.wire_memory["pirit_batch"][1])

    def _set_batch(self, on: bool, failed: bool = False) -> None:
        self.core.wire_memory["pirit_batch"] = (on, failed)

    # -------------------------------------------------------------------------- stream level

    def pending(self) -> bool:
        return self._reader.pending()

    def reset(self) -> None:
        self._reader.reset()
        self._binary = None

    def feed(self, data: bytes) -> bytes:
        if not self.core.powered:
            self.reset()
            return b""
        out = bytearray()
        if self._binary is not None:
            data = self._take_binary(data, out)
        for event in self._reader.feed(data):
            if self._binary is not None:
                # the host must wait for the first stage's ACK before it sends the image: what
                # came in the same chunk is not the image [inferred], and is dropped
                self._reader.reset()
                break
            if isinstance(event, Control):
                if event.byte == ENQ:
                    out.append(ACK)
            elif isinstance(event, Frame):
                out += self._safe_frame(event.raw)
        return bytes(out)

    def _take_binary(self, data: bytes, out: bytearray) -> bytes:
        """Bytes of a two-stage upload; once all arrived, its standard answer.  Returns what is left."""
        assert self._binary is not None
        request, remaining, received = self._binary
        chunk, rest = data[:remaining], data[remaining:]
        received += chunk
        remaining -= len(chunk)
        if remaining > 0:
            self._binary = (request, remaining, received)
            return b""
        self._binary = None
        with self.core.lock:
            try:
                error, fields = self._dispatch(request, upload=bytes(received))
            except PoweredOff:
                return b""
        out += encode_response(request.packet_id, request.command, error, fields)
        return rest

    def _served(self, command: int) -> bool:
        """Does this model's firmware know the command (its manual edition, its FFD)?"""
        if command in COMMANDS:
            return has_command(command, self.edition, self.core.profile.ffd)
        return False

    def _binary_first_stage(self, request: Request) -> bytes:
        """0x15/0x17/0x18/0x67 first stage: a byte count the device can take → a lone ACK."""
        with self.core.lock:
            try:
                error, fields = self._dispatch(request, first_stage=True)
            except PoweredOff:
                return b""
        if error:
            return encode_response(request.packet_id, request.command, error, fields)
        size = int(str(fields[0]))
        if size == 0:
            return encode_response(request.packet_id, request.command, 0, [])
        self._binary = (request, size, bytearray())
        return bytes([ACK])

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
        if request.command in BINARY_COMMANDS and self._served(request.command):
            return self._binary_first_stage(request)
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

    def _dispatch(self, request: Request, *, first_stage: bool = False, upload: bytes | None = None) -> Answer:
        handler = self._commands.get(request.command)
        if handler is None or not self._served(request.command):
            return 0x02, []
        if self._batch_failed and request.command not in (0x31, 0x32, 0x00, 0x04, 0x06):
            return 0x01, []
        try:
            if not self.core.initialised and request.command not in UNINITIALISED_OK:
                self.core.require_power()
                raise CoreError(ErrorKind.NOT_INITIALISED, "start of work (0x10) not done after power-up")
            self._check_sub(request)
            if request.command in BINARY_COMMANDS:
                return 0, self._upload(request, upload, first_stage=first_stage)
            return 0, handler(request)
        except ParamError as exc:
            self.core.wire_memory["pirit_extended"] = (exc.extended, str(exc))
            if self._batch:
                self._set_batch(True, failed=True)
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
                extended = BAD_PARAMETER_EXTENDED.get(request.command, 0)
            if code in (0x01, 0x03):
                self.core.wire_memory["pirit_extended"] = (extended or 0, exc.text)
            if self._batch and request.command in BATCH_COMMANDS:
                self._set_batch(True, failed=True)
            return code, []

    def _check_sub(self, request: Request) -> None:
        """A command with sub-requests: the number must be one this edition's manual lists."""
        command = COMMANDS[request.command]
        if not command.subs:
            return
        raw = request.fields[0] if request.fields else ""
        if not raw.strip():
            return  # the handler's default (0x06: 1) or its own refusal
        try:
            number = parse_int(raw)
        except ValueError:
            raise ParamError(f"sub-request number is not an integer: {raw!r}") from None
        if not has_sub(request.command, number, self.edition, self.core.profile.ffd):
            raise ParamError(f"0x{request.command:02X} sub-request {number} not in the {self.edition} manual")


# command code → handler method name, found once (a test may replace a method: the name stays)
HANDLERS = handlers_of(PiritFrontEnd)


def _valid_id(packet_id: int) -> bool:
    return MIN_PACKET_ID <= packet_id <= MAX_PACKET_ID
