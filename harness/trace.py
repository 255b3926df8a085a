"""The wire trace: every byte that crossed the link, timestamped, with decoded frames beside it.

Attached to every test in the Allure report, so a reader sees exactly what the harness sent and
what the register answered (``+0.012345 TX 02 50 49 ...  | REQ id=0x21 00 status []``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

Decoder = Callable[[bytes], str]


@dataclass(frozen=True)
class TraceRecord:
    t: float  # seconds since the trace started
    direction: str  # "TX" | "RX" | "--" (a note)
    raw: bytes
    decoded: str


@dataclass(frozen=True)
class Timing:
    """How long the register took to answer one driver command (request written → answer read)."""

    command: str  # "0x21 open shift", "A6h ..."
    seconds: float
    answered: bool  # False: the link failed (no answer, garbage) - not a response time


class Trace:
    def __init__(self, decoder: Decoder | None = None, *, limit: int = 20000) -> None:
        self._decoder = decoder
        self._t0 = time.monotonic()
        self._records: list[TraceRecord] = []
        self._timings: list[Timing] = []
        self._limit = limit
        self._dropped = 0
        self._lock = threading.Lock()

    def _add(self, direction: str, raw: bytes, decoded: str) -> None:
        with self._lock:
            if len(self._records) >= self._limit:
                self._records.pop(0)
                self._dropped += 1
            self._records.append(TraceRecord(time.monotonic() - self._t0, direction, raw, decoded))

    def decode(self, raw: bytes) -> str:
        """The decoder's one-line rendering of ``raw`` ("" without a decoder); never raises."""
        if self._decoder is None:
            return ""
        try:
            return self._decoder(raw)
        except Exception as exc:  # noqa: BLE001 - a trace must never break a test
            return f"undecodable: {exc}"

    def tx(self, raw: bytes) -> None:
        self._add("TX", raw, self.decode(raw))

    def rx(self, raw: bytes, decoded: str | None = None) -> None:
        self._add("RX", raw, self.decode(raw) if decoded is None else decoded)

    def note(self, text: str) -> None:
        self._add("--", b"", text)

    @contextlib.contextmanager
    def timed(self, command: str) -> Iterator[None]:
        """Time one driver command: an answer (a refusal is an answer too) is a response time;
        a link error is recorded as unanswered."""
        start = time.monotonic()
        answered = False
        try:
            yield
            answered = True
        except Exception as exc:
            from .errors import LinkError

            answered = not isinstance(exc, LinkError)
            raise
        finally:
            with self._lock:
                if len(self._timings) < self._limit:
                    self._timings.append(Timing(command, time.monotonic() - start, answered))

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
