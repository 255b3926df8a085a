"""What a key of the state oracle must do in a step (:mod:`harness.oracle`): become a value, grow
by an amount, satisfy a test, or become a value computed from the state before the step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from .device import ShiftState
from .fiscal import TaxSystem

Snapshot = dict[str, Any]


class Expect:
    """What a key must do in a step."""

    def check(self, key: str, before: Snapshot, after: Snapshot) -> str | None:
        raise NotImplementedError

    def describe(self, key: str, before: Snapshot) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Becomes(Expect):
    value: Any

    def check(self, key: str, before: Snapshot, after: Snapshot) -> str | None:
        return None if after[key] == self.value else f"ожидалось {show(self.value)}"

    def describe(self, key: str, before: Snapshot) -> str:
        return f"= {show(self.value)}"


@dataclass(frozen=True)
class Delta(Expect):
    amount: Any

    def check(self, key: str, before: Snapshot, after: Snapshot) -> str | None:
        if before[key] is None and after[key] is None:
            return None  # the device does not count it (e.g. registrations left over Pirit)
        if before[key] is None or after[key] is None:
            return f"ожидалось {show(before[key])} + {self.amount}"
        return None if after[key] == before[key] + self.amount else f"ожидалось {show(before[key] + self.amount)}"

    def describe(self, key: str, before: Snapshot) -> str:
        sign = "+" if self.amount >= 0 else "−"
        return f"{sign}{abs(self.amount)}"


@dataclass(frozen=True)
class Satisfies(Expect):
    test: Callable[[Any, Any], bool]  # (before, after) → ok
    text: str

    def check(self, key: str, before: Snapshot, after: Snapshot) -> str | None:
        return None if self.test(before[key], after[key]) else f"ожидалось: {self.text}"

    def describe(self, key: str, before: Snapshot) -> str:
        return self.text


@dataclass(frozen=True)
class Computed(Expect):
    """The key becomes a value computed from the whole state before the step."""

    value: Callable[[Snapshot], Any]
    text: str

    def check(self, key: str, before: Snapshot, after: Snapshot) -> str | None:
        wanted = self.value(before)
        return None if after[key] == wanted else f"ожидалось {show(wanted)} ({self.text})"

    def describe(self, key: str, before: Snapshot) -> str:
        return f"= {show(self.value(before))} ({self.text})"


@dataclass(frozen=True)
class DuringStep(Expect):
    """A device time inside the step (to the minute: registers keep minutes in the ФН)."""

    def check(self, key: str, before: Snapshot, after: Snapshot) -> str | None:
        value, start, end = after[key], before["_clock"], after["_clock"]
        if value is None and key == "shift_opened_at" and not after.get("_open_time_shown", True):
            return None  # the device does not report it (АТОЛ has no shift-open time)
        if value is None or start is None or end is None:
            return "ожидалось время внутри шага"
        if start.replace(second=0, microsecond=0) <= value <= end + timedelta(minutes=1):
            return None
        return f"ожидалось время внутри шага {show(start)}..{show(end)}"

    def describe(self, key: str, before: Snapshot) -> str:
        return "время этого шага"


class KeptOrDuringStep(DuringStep):
    """The value stays as it was, or — when there was none — is a time inside the step (the first
    unsent document's time: the queue was empty, so it is one of the step's documents)."""

    def check(self, key: str, before: Snapshot, after: Snapshot) -> str | None:
        if before[key] is not None:
            return None if after[key] == before[key] else f"ожидалось {show(before[key])}"
        return super().check(key, before, after)

    def describe(self, key: str, before: Snapshot) -> str:
        return "прежнее" if before[key] is not None else "время этого шага"


def delta(amount: Any) -> Delta:
    """The key grows by ``amount`` (an int or a Decimal; negative: falls)."""
    return Delta(amount)


def changed(text: str = "любое изменение") -> Satisfies:
    """The key may change (its new value is checked elsewhere, or the rule leaves it open)."""
    return Satisfies(lambda _b, _a: True, text)


def differs() -> Satisfies:
    """The key must change to something else."""
    return Satisfies(lambda b, a: a != b, "изменилось")


def unchanged() -> Satisfies:
    return Satisfies(lambda b, a: a == b, "не изменилось")


def as_expect(value: Any) -> Expect:
    return value if isinstance(value, Expect) else Becomes(value)


def show(value: Any) -> str:
    if isinstance(value, TaxSystem):
        return value.title
    if isinstance(value, Enum):
        return str(value.value) if not isinstance(value.value, int) or isinstance(value, ShiftState) else value.name
    if isinstance(value, datetime):
        return f"{value:%d.%m.%Y %H:%M:%S}"
    if isinstance(value, tuple):
        return "[" + ", ".join(map(show, value)) + "]"
    if value is None:
        return "—"
    return str(value)
