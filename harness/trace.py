"""The wire trace: every byte that crossed the link, timestamped, with decoded frames beside it.

Attached to every test in the Allure report, so a reader sees exactly what the harness sent and
what the register answered (``+0.012345 TX 02 50 49 ...  | REQ id=0x21 00 status []``).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from .errors import LinkError

Decoder = Callable[[bytes], str]


class TraceRecord:
    """One line of the trace.  With a ``decoder``, ``decoded`` is rendered when first read (by
    a report, a test), not on the wire path: a decoder is a pure function of ``raw`` and never
    raises (an exception becomes ``undecodable: ...``), so the text is the same as if eager."""

    __slots__ = ("_decoded", "_decoder", "direction", "raw", "t")

    def __init__(self, t: float, direction: str, raw: bytes, decoded: str = "", *, decoder: Decoder | None = None):
        self.t = t  # seconds since the trace started
        self.direction = direction  # "TX" | "RX" | "--" (a note)
        self.raw = raw
        self._decoded: str | None = None if decoder is not None else decoded
        self._decoder = decoder

    @property
    def decoded(self) -> str:
        text = self._decoded
        if text is None:
            assert self._decoder is not None
            try:
                text = self._decoder(self.raw)
            except Exception as exc:  # noqa: BLE001 - a trace must never break a test
                text = f"undecodable: {exc}"
            self._decoded = text
        return text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TraceRecord):
            return NotImplemented
        return (self.t, self.direction, self.raw, self.decoded) == (other.t, other.direction, other.raw, other.decoded)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TraceRecord(t={self.t!r}, direction={self.direction!r}, raw={self.raw!r}, decoded={self.decoded!r})"


@dataclass(frozen=True)
class Timing:
    """How long the register took to answer one driver command (request written → answer read)."""

    command: str  # "0x21 open shift", "A6h ..."
    seconds: float
    answered: bool  # False: the link failed (no answer, garbage) - not a response time


class _Timed:
    """The context of :meth:`Trace.timed` (a class: it is on every command's path)."""

    __slots__ = ("_command", "_start", "_trace")

    def __init__(self, trace: Trace, command: str) -> None:
        self._trace = trace
        self._command = command

    def __enter__(self) -> None:
        self._start = time.monotonic()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        answered = kind is None or (isinstance(exc, Exception) and not isinstance(exc, LinkError))
        self._trace._timing(Timing(self._command, time.monotonic() - self._start, answered))


class Trace:
    def __init__(self, decoder: Decoder | None = None, *, limit: int = 20000) -> None:
        self._decoder = decoder
        self._t0 = time.monotonic()
        self._records: collections.deque[TraceRecord] = collections.deque()
        self._timings: list[Timing] = []
        self._limit = limit
        self._dropped = 0
        self._lock = threading.Lock()

    def _add(self, direction: str, raw: bytes, decoded: str, decoder: Decoder | None = None) -> None:
        with self._lock:
            if len(self._records) >= self._limit:
                self._records.popleft()
                self._dropped += 1
            self._records.append(TraceRecord(time.monotonic() - self._t0, direction, raw, decoded, decoder=decoder))

    def decode(self, raw: bytes) -> str:
        """The decoder's one-line rendering of ``raw`` ("" without a decoder); never raises."""
        if self._decoder is None:
            return ""
        try:
            return self._decoder(raw)
        except Exception as exc:  # noqa: BLE001 - a trace must never break a test
            return f"undecodable: {exc}"

    def tx(self, raw: bytes) -> None:
        self._add("TX", bytes(raw), "", self._decoder)  # decoded when the trace is read

    def rx(self, raw: bytes, decoded: str | Decoder | None = None) -> None:
        """``decoded``: the text; or a decoder of ``raw`` to use instead of the trace's (both run
        when the trace is read)."""
        if isinstance(decoded, str):
            self._add("RX", raw, decoded)
        else:
            self._add("RX", bytes(raw), "", decoded or self._decoder)

    def note(self, text: str) -> None:
        self._add("--", b"", text)

    def timed(self, command: str) -> _Timed:
        """Time one driver command (``with trace.timed("0x00 status"):``): an answer (a refusal
        is an answer too) is a response time; a link error is recorded as unanswered."""
        return _Timed(self, command)

    def _timing(self, timing: Timing) -> None:
        with self._lock:
            if len(self._timings) < self._limit:
                self._timings.append(timing)

    @property
    def timings(self) -> list[Timing]:
        with self._lock:
            return list(self._timings)

    @property
    def dropped(self) -> int:
        """Records dropped from the start of a trace that outgrew its limit."""
        with self._lock:
            return self._dropped

    @property
    def records(self) -> list[TraceRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._timings.clear()
            self._dropped = 0

    def render(self) -> str:
        lines = []
        if self._dropped:
            lines.append(f"... {self._dropped} earlier records dropped ...")
        for rec in self.records:
            hexed = rec.raw.hex(" ").upper()
            if rec.direction == "--":
                lines.append(f"+{rec.t:10.6f} -- {rec.decoded}")
            else:
                lines.append(f"+{rec.t:10.6f} {rec.direction} {hexed}" + (f"  | {rec.decoded}" if rec.decoded else ""))
        return "\n".join(lines) + ("\n" if lines else "")
