"""The Pirit wire: one command out, its answer back, errors normalized (no fiscal meaning here).

Frames go through the shared :class:`harness.link.Link`; this module supplies the Pirit half of
an exchange (:class:`AnswerMatcher`: packet ids 0x21..0x3F, the device's 0x20 "recovery" frames
and stale answers skipped, §2.2–§2.3) and turns error answers into normalized
:class:`~harness.errors.DeviceError`\\ s — for 0x01/0x03 the extended code is read with 0x06/1,
for 0x09 the printer state (0x04) tells a cover from a paper fault.  Crystal's own per-command
read timeouts (§2.3, S5) are the defaults.  :func:`detect` is discovery: is a Pirit register on
this link, and which model of the catalogue can it be?  (A register not started since power-up
gets the "start of work" every cash program sends first, 0x10 with the host's time.)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from devices.models import Identified, identify
from harness.errors import (
    ClockBehindLastDocument,
    DeviceError,
    ErrorKind,
    LinkCorrupted,
    LinkError,
    LinkTimeout,
    device_error,
)
from harness.link import Link, ask_again
from harness.trace import Trace

from . import errors as pirit_errors
from .protocol import (
    COMMAND_NAMES,
    COMMAND_TIMEOUTS,
    DEFAULT_PASSWORD,
    DEFAULT_TIMEOUT,
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
    format_time,
    is_recovery_frame,
    parse_int,
)

TIMEOUTS = COMMAND_TIMEOUTS  # Crystal's per-command read timeouts (reference §2.3, S5); everything else 10 s
# commands that only read (status, counters, device info, receipt data, printer, extended error,
# clock, ФН queries): asked again when the answer is lost or garbled
READS = frozenset({0x00, 0x01, 0x02, 0x03, 0x04, 0x06, 0x13, 0x78})
READ_TRIES = 3
DETECT_TIMEOUT = 1.0  # discovery asks briefly: an idle Pirit answers 0x00 within milliseconds


def describe_answer(raw: bytes) -> str:
    return describe(raw, kind="answer")


@functools.cache
def _labels(command: int) -> tuple[str, str]:
    """A command's name in the response times and in link errors (built once per command)."""
    return f"0x{command:02X} {COMMAND_NAMES.get(command, 'unknown')}", f"command {command:#04x}"


class AnswerMatcher:
    """The answer to one request: same packet id and command; everything else is traced and skipped."""

    expects = "a Pirit frame"

    def __init__(self, reader: FrameReader, trace: Trace, packet_id: int, command: int) -> None:
        self._reader = reader
        self._trace = trace
        self._packet_id = packet_id
        self._command = command
        self._garbage = bytearray()

    def start(self) -> None:
        self._reader.reset()
        self._garbage.clear()

    def junk(self) -> bytes:
        return bytes(self._garbage) + self._reader.partial()  # an unterminated frame: the device did answer

    def feed(self, chunk: bytes) -> Response | None:
        for event in self._reader.feed(chunk):
            if isinstance(event, Garbage):
                self._garbage += event.raw
                self._trace.rx(event.raw, "garbage")
                continue
            if isinstance(event, Control):
                self._trace.rx(bytes([event.byte]), event.name)
                continue
            assert isinstance(event, Frame)
            self._trace.rx(event.raw, describe_answer)  # decoded when the trace is read
            try:
                response = decode_response(event.raw)
            except BadCrc as exc:
                raise LinkCorrupted(f"answer to {self._command:#04x} has a bad CRC: {exc}") from None
            except FrameError as exc:
                raise LinkCorrupted(f"malformed answer to {self._command:#04x}: {exc}") from None
            if is_recovery_frame(response) or response.packet_id != self._packet_id:
                continue  # a recovery frame or a stale answer (S2, S5): keep reading
            if response.command != self._command:
                raise LinkCorrupted(f"answer for command {response.command:#04x}, expected {self._command:#04x}")
            return response
        return None


class PiritWire:
    """Commands and answers over a link; the fiscal meaning is :class:`~devices.pirit.driver.PiritDriver`'s."""

    def __init__(self, link: Link, *, password: bytes = DEFAULT_PASSWORD) -> None:
        self._link = link
        self._password = password
        self._ids = PacketIds()
        self._reader = FrameReader()

    @property
    def link(self) -> Link:
        return self._link

    def call(self, command: int, fields: Sequence[Field] = (), *, timeout: float | None = None) -> Response:
        """Send one command and return its answer; raise DeviceError for an error answer.

        A read (:data:`READS`) whose answer was lost or garbled is asked again, up to
        :data:`READ_TRIES` times: it changes nothing on the register.  Anything else is sent once;
        a fiscal operation's link fault is the reconciler's (:mod:`harness.reconcile`)."""
        if command not in READS:
            return self._call_once(command, fields, timeout)
        return ask_again(
            lambda: self._call_once(command, fields, timeout),
            tries=READ_TRIES,
            what=f"{command:#04x}",
            trace=self._link.trace,
            reset=self._reader.reset,
        )

    def _call_once(self, command: int, fields: Sequence[Field], timeout: float | None) -> Response:
        response = self._exchange(command, fields, timeout)
        if response.error:
            raise self._error(command, response.error)
        return response

    def _exchange(self, command: int, fields: Sequence[Field], timeout: float | None) -> Response:
        packet_id = next(self._ids)
        frame = encode_request(command, fields, packet_id=packet_id, password=self._password)
        deadline = self._link.deadline(timeout if timeout is not None else TIMEOUTS.get(command, DEFAULT_TIMEOUT))
        matcher = AnswerMatcher(self._reader, self._link.trace, packet_id, command)
        timed, what = _labels(command)
        with self._link.trace.timed(timed):
            return self._link.exchange(frame, matcher, deadline, what=what)

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

    def fields(self, command: int, fields: Sequence[Field] = ()) -> tuple[str, ...]:
        return self.call(command, fields).fields

    def sub(self, command: int, n: int, *extra: Field) -> tuple[str, ...]:
        """Sub-request ``n`` of 0x01/0x02/0x03/0x06/0x78: the answer without the echoed ``n``."""
        answer = self.fields(command, [n, *extra])
        return answer[1:] if answer and answer[0].strip() == str(n) else answer

    def identity(self) -> tuple[str, int]:
        """(factory serial 0x02/1, model code 0x02/21)."""
        return self.sub(0x02, 1)[0], parse_int(self.sub(0x02, 21)[0])

    def firmware(self) -> str:
        try:
            return self.sub(0x02, 70)[0]
        except DeviceError:
            return self.sub(0x02, 2)[0]  # older firmware: numeric id only


def detect(link: Link, *, host_clock: Callable[[], datetime] = datetime.now) -> Identified | None:
    """A Pirit register on ``link``? Status 0x00 within a short deadline, then its identity.

    A register just powered up answers nothing else before "start of work" (0x10, §2.5.7), which
    carries the host's time: ``host_clock``, the register's time as the lab knows it (a register
    whose clock the lab moved forward refuses a time before its last document, 0x0C).  Within
    8 minutes of its own clock the register takes the host's; beyond, it keeps its own."""
    wire = PiritWire(link)
    try:
        status = wire._call_once(0x00, (), DETECT_TIMEOUT)  # once: discovery asks briefly
    except (LinkError, DeviceError):
        return None
    try:
        if parse_int(status.fields[1]) & 1:  # "start of work" not done since power-up (§2.5.7)
            now = host_clock()
            try:
                wire.call(0x10, [format_date(now.date()), format_time(now.time())])
            except ClockBehindLastDocument:
                return Identified(
                    "pirit",
                    "",
                    0,
                    note=(
                        f"a Pirit register waiting for start of work: {now:%d.%m.%Y %H:%M} is before its last "
                        "document (its clock was moved forward; with its inventory entry the lab's clock skew is used)"
                    ),
                )
        serial, model_code = wire.identity()
        firmware = wire.firmware()
        fn_serial = wire.sub(0x78, 1)[0]
    except (LinkError, DeviceError, ValueError, IndexError) as exc:  # e.g. "start of work" not done yet
        return Identified("pirit", "", 0, note=f"a Pirit register that did not tell its identity: {exc}")
    return replace(identify("pirit", serial, model_code, firmware), fn_serial=fn_serial)
