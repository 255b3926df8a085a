"""The safety guard on the wire: a destructive operation never reaches a register not proven
sacrificial, whichever path sends it.

A fiscal device is not a dev board (DESIGN.md "Safety"): registration, re-registration, ФН
close, technological reset and moving the clock forward cannot be undone.  The guard sits in
:class:`~harness.transport.Transport` — the lowest layer the stand owns — so the typed API,
a raw ``call()``, the driver's internals, ``open_kkt()`` and ``probe`` all pass through it.  The
family's *scanner* finds the destructive requests in the outgoing byte stream (frames split
across writes included); the *policy* decides whether this register may receive them.  A
refusal raises :class:`~harness.errors.SafetyRefusal` naming the operation and the reason, sends
nothing, and leaves a note in the wire trace.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .errors import SafetyRefusal
from .trace import Trace

MAX_TAIL = 4096  # outgoing bytes kept while a frame is incomplete


@dataclass(frozen=True)
class Destructive:
    """A destructive request found in outgoing bytes."""

    operation: str  # for the refusal: "re-registration (0x60)"
    clock: datetime | None = None  # for a clock set: the device time asked for


# (stream) -> (destructive requests in its complete frames, bytes of the stream those frames used)
Scanner = Callable[[bytes], tuple[list[Destructive], int]]


class Policy(Protocol):
    def refusal(self, request: Destructive) -> str | None:
        """Why ``request`` may not go to this register; None when it may."""


class Emulated:
    """An emulated register: nothing it holds is real, everything may be sent."""

    def refusal(self, request: Destructive) -> str | None:
        return None


@dataclass(frozen=True)
class Unproven:
    """A register nothing proves sacrificial: every destructive request is refused.

    Clock sets included, in either direction: the guard cannot know the device's own time, and a
    "start of work" (Pirit 0x10) already syncs a clock that is off by minutes."""

    why: str

    def refusal(self, request: Destructive) -> str | None:
        return self.why


class Guard:
    """Checks every write to one transport against a family scanner and a policy."""

    def __init__(self, scanner: Scanner, policy: Policy, *, where: str) -> None:
        self._scan = scanner
        self.policy = policy
        self._where = where
        self._tail = bytearray()  # bytes of an incomplete frame already sent
        # Complete frames the kept tail already holds (a scanner keeps bytes from the first place a
        # frame may start, and a complete frame may follow it): judged when they were written,
        # they must not be judged — or counted against the registrations floor — again.
        self._judged: Counter[Destructive] = Counter()

    def check(self, data: bytes, trace: Trace) -> None:
        """Raise :class:`SafetyRefusal` if ``data`` completes a refused request; else remember the tail."""
        stream = bytes(self._tail) + bytes(data)
        requests, used = self._scan(stream)
        judged = self._judged.copy()
        for request in requests:
            if judged[request] > 0:
                judged[request] -= 1
                continue
            reason = self.policy.refusal(request)
            if reason is not None:
                trace.note(f"refused before sending: {request.operation} ({reason})")
                raise SafetyRefusal(f"{request.operation} refused on {self._where}: {reason} (nothing was sent)")
        tail = stream[used:][-MAX_TAIL:]
        self._tail = bytearray(tail)
        self._judged = Counter(self._scan(tail)[0]) if tail else Counter()


REGISTRATION_WORDS = ("registration", "re-registration")  # findings that use up a registration


@dataclass
class Sacrificial:
    """A lab register from the inventory: destructive requests pass only when all four hold —
    the test asked for it (``destructive`` marker, or ``open_kkt(..., destructive=True)``), the run
    allows it (``--allow-destructive``), the inventory entry is ``sacrificial = true``, and the
    factory serial read from the register matches the entry — and, for a (re-)registration,
    more registrations than the floor are left."""

    entry: str  # "lab:bench1 (inventory.toml:12)"
    sacrificial: bool
    allow_destructive: bool
    rereg_floor: int
    test_destructive: bool = False
    identity: str | None = None  # why the identity is not proven; None once the serial matched
    registrations_left: int | None = None  # read from the register at connect; counted down
    registrations_unknown: str = "the registrations left on the ФН could not be read"  # the refusal then

    def refusal(self, request: Destructive) -> str | None:
        if not self.test_destructive:
            return "the scenario is not marked destructive"
        if not self.allow_destructive:
            return "the run has no --allow-destructive"
        if not self.sacrificial:
            return f"{self.entry} is not marked sacrificial"
        if self.identity is not None:
            return self.identity
        if any(word in request.operation for word in REGISTRATION_WORDS):
            left = self.registrations_left
            if left is None:
                return self.registrations_unknown
            if left <= self.rereg_floor:
                return f"{left} registrations left on the ФН, the floor is {self.rereg_floor}"
            self.registrations_left = left - 1
        return None
