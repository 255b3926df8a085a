"""Scenario time on a register whose clock only moves forward.

A scenario speaks in its own local times ("open at 2020-12-31 23:50, the task is for
2021-01-01").  An emulator is simply set to them.  A real register cannot go back before its
last document, so on a lab register the scenario's calendar is *shifted*: at the first clock
move of a test the lens picks the smallest whole number of days that puts the scenario's time at
or after what the register allows, and applies it to everything the test sends (clock sets, the
Кабинет task dates) and reads back (document times, the clock, the ФН expiry, the OFD queue), so
the scenario's assertions hold as written.  Whole days keep the time of day — midnight stays
midnight; the report says how far the scenario was shifted.  Within one test the scenario may not
move back: that is refused with the reason (a real register cannot).
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from typing import Any

from .errors import LabUnavailable


class ScenarioTime:
    """The offset between scenario time and device time for one test (0 until anchored)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)
        self.anchored = False

    def anchor(self, wanted: datetime, earliest: datetime) -> datetime:
        """The device time for scenario time ``wanted``; the first call fixes the offset so that
        it is not before ``earliest`` (the register's clock / last document, plus a margin)."""
        if not self.anchored:
            days = 0
            while wanted + timedelta(days=days) < earliest:
                days += 1
            self.offset = timedelta(days=days)
            self.anchored = True
        device = wanted + self.offset
        if device < earliest:
            raise LabUnavailable(
                f"сценарий переводит часы назад, на {wanted:%d.%m.%Y %H:%M}; часы реальной ККТ нельзя "
                "перевести раньше её последнего документа"
            )
        return device

    @property
    def description(self) -> str:
        return f"сценарий сдвинут на {self.offset.days} дн." if self.offset else "без сдвига"

    # ------------------------------------------------------------------ conversions

    def to_device(self, value: datetime) -> datetime:
        return value + self.offset

    def to_scenario(self, value: datetime) -> datetime:
        return value - self.offset

    def date_to_device(self, value: date) -> date:
        return value + self.offset

    def date_to_scenario(self, value: date) -> date:
        return value - self.offset


def _lensed(name: str) -> Any:
    """A method of :class:`LensedKkt` that calls the register and returns its answer in scenario time."""

    def call(self: LensedKkt, *args: Any, **kwargs: Any) -> Any:
        return self._out(getattr(self._target, name)(*args, **kwargs))

    call.__name__ = name
    return call


class LensedKkt:
    """A register seen through the lens: times in, times out, in scenario time."""

    def __init__(self, target: Any, lens: ScenarioTime) -> None:
        self._target = target
        self._lens = lens

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def _out(self, value: Any) -> Any:
        """Every datetime / date field of a returned value, back in scenario time."""
        if isinstance(value, datetime):
            return self._lens.to_scenario(value)
        if isinstance(value, date):
            return self._lens.date_to_scenario(value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes = {
                f.name: self._out(getattr(value, f.name))
                for f in dataclasses.fields(value)
                if isinstance(getattr(value, f.name), (datetime, date))
            }
            return dataclasses.replace(value, **changes) if changes else value
        if isinstance(value, list):
            return [self._out(v) for v in value]
        return value

    def clock(self) -> datetime:
        return self._out(self._target.clock())  # type: ignore[no-any-return]

    def set_clock(self, value: datetime) -> None:
        self._target.set_clock(self._lens.to_device(value))

    status = _lensed("status")
    fn = _lensed("fn")
    ofd_queue = _lensed("ofd_queue")
    open_shift = _lensed("open_shift")
    close_shift = _lensed("close_shift")
    sell = _lensed("sell")
    reregister = _lensed("reregister")
    continue_print = _lensed("continue_print")
    journal = _lensed("journal")
