"""The framed request/answer layer both drivers share: stale bytes, deadlines, junk, trace.

A driver hands :meth:`Link.exchange` one request frame and a *matcher* — the only part that
knows the family's framing (Pirit packet ids; АТОЛ packet and task ids, async results).  The
link does the rest the same way for every family: bytes left over from an earlier timeout are
discarded (and shown in the trace), the frame is written, and the answer is read against a
:class:`Deadline`.  When the deadline passes, a device that said *something* unparseable is a
:class:`~harness.errors.LinkCorrupted` ("answered garbage"), silence is a
:class:`~harness.errors.LinkTimeout`; nothing waits forever.

The timeout scale (``--device-timeout-scale``, slow links) is applied in one place,
:meth:`Link.deadline`: drivers speak in the vendor's own timeouts and never see the scale.
(Models: pymodbus ``transaction`` between API and framer; labgrid ``util/timeout.py``.)
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

from .errors import LinkCorrupted, LinkTimeout
from .trace import Trace
from .transport import Transport

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Deadline:
    """A point on the monotonic clock, and how long it was set for (for messages)."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self.expires_at = clock() + seconds

    @property
    def remaining(self) -> float:
        return max(0.0, self.expires_at - self._clock())

    @property
    def expired(self) -> bool:
        return self._clock() >= self.expires_at

    def __repr__(self) -> str:
        return f"Deadline({self.seconds:g} s, {self.remaining:.3f} s left)"


class Matcher(Protocol[T_co]):
    """The family-specific half of one exchange."""

    expects: str  # what a good answer is, for the "answered garbage" message ("a Pirit frame")

    def start(self) -> None:
        """A new request is about to go out: forget partial frames."""

    def feed(self, chunk: bytes) -> T_co | None:
        """Consume received bytes; the answer once it is complete, else None.

        Raise :class:`LinkCorrupted` for an answer that cannot be right (bad CRC, wrong command).
        """

    def junk(self) -> bytes:
        """Bytes received that were no answer (garbage, an unterminated frame); b"" if none."""


def ask_again(ask: Callable[[], T], *, tries: int, what: str, trace: Trace, reset: Callable[[], None]) -> T:
    """``ask()``, asked again (up to ``tries`` in all) when its answer was lost or garbled — only
    for requests that change nothing on the register (reads).  ``reset`` forgets partial frames."""
    for attempt in range(1, tries + 1):
        try:
            return ask()
        except (LinkTimeout, LinkCorrupted) as exc:
            if attempt == tries:
                raise
            trace.note(f"{what} changes nothing: asked again after {exc}")
            reset()
    raise AssertionError("unreachable")  # pragma: no cover


class Link:
    """A transport plus the timeout scale: request/answer exchanges with deadlines."""

    def __init__(self, transport: Transport, *, timeout_scale: float = 1.0) -> None:
        if not timeout_scale > 0:
            raise ValueError(f"timeout scale must be positive, not {timeout_scale!r}")
        self.transport = transport
        self.timeout_scale = timeout_scale
        self._cap: Deadline | None = None

    @property
    def url(self) -> str:
        return self.transport.url

    @property
    def trace(self) -> Trace:
        return self.transport.trace

    def deadline(self, seconds: float) -> Deadline:
        """A deadline ``seconds`` of the vendor's timeout from now, scaled for this link — never
        past the deadline of the operation under way (:meth:`capped`)."""
        scaled = seconds * self.timeout_scale
        if self._cap is not None:
            scaled = max(0.0, min(scaled, self._cap.remaining))
        return Deadline(scaled)

    @contextlib.contextmanager
    def capped(self, deadline: Deadline) -> Iterator[None]:
        """Every exchange inside ends by ``deadline`` (one fiscal operation's total deadline)."""
        outer, self._cap = (
            self._cap,
            deadline if self._cap is None or deadline.expires_at < self._cap.expires_at else self._cap,
        )
        try:
            yield
        finally:
            self._cap = outer

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def read(self, deadline: Deadline) -> bytes:
        """At least one byte before ``deadline``, or :class:`LinkTimeout`."""
        return self.transport.read(deadline.expires_at)

    def discard_stale(self) -> bytes:
        """Drop bytes that arrived since the last exchange (late answers); they go to the trace."""
        stale = self.transport.drain()
        if stale:
            self.trace.rx(stale, "discarded before request: " + self.trace.decode(stale))
        return stale

    def exchange(self, frame: bytes, matcher: Matcher[T], deadline: Deadline, *, what: str) -> T:
        """Send ``frame`` and return the answer ``matcher`` recognises before ``deadline``."""
        self.discard_stale()
        matcher.start()
        self.write(frame)
        return self.receive(matcher, deadline, what=what)

    def receive(self, matcher: Matcher[T], deadline: Deadline, *, what: str) -> T:
        """Read until ``matcher`` has its answer; garbage or silence at the deadline is a LinkError."""
        while True:
            try:
                chunk = self.read(deadline)
            except LinkTimeout:
                junk = matcher.junk()
                if junk:
                    raise LinkCorrupted(
                        f"{self.url} answered garbage to {what}, not {matcher.expects}: {junk[:32].hex(' ')}"
                    ) from None
                raise LinkTimeout(f"no answer from {self.url} to {what} within {deadline.seconds:g} s") from None
            answer = matcher.feed(chunk)
            if answer is not None:
                return answer

    def reopen(self, deadline: Deadline) -> None:
        """The link was cut: open it again before ``deadline`` (LinkDisconnected if it stays cut)."""
        self.transport.reopen(deadline.expires_at)

    def close(self) -> None:
        self.transport.close()
