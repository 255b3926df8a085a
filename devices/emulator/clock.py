"""The emulator's virtual clock: the settable RTC and the ФН's own monotonic timer.

Both advance together when virtual time passes (``advance``); the register's clock-setting
command moves only the RTC (a real ФН keeps counting on its own timer, R3.5), while the lab's
``clock set`` moves both, like a lab that waited.  A *frozen* clock (the default for tests)
never moves by itself: 24 hours of device time cost nothing.  A *flowing* clock also follows
wall time, for a POS developer who points a cash program at ``kkt-hil emulate``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any


class VirtualClock:
    def __init__(
        self,
        start: datetime,
        *,
        flowing: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
        fn_seconds: float = 0.0,
    ) -> None:
        self._monotonic = monotonic
        self._flowing = flowing
        self._rtc_base = start.replace(microsecond=0, tzinfo=None)
        self._fn_base = fn_seconds
        self._t0 = monotonic()

    def _elapsed(self) -> float:
        return self._monotonic() - self._t0 if self._flowing else 0.0

    def now(self) -> datetime:
        """Device local time (RTC), whole seconds."""
        return (self._rtc_base + timedelta(seconds=int(self._elapsed()))).replace(microsecond=0)

    def fn_seconds(self) -> float:
        """The ФН's own timer: seconds of device life, never set by the register."""
        return self._fn_base + self._elapsed()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("virtual time only moves forward; use set() to go back")
        self._rtc_base += timedelta(seconds=seconds)
        self._fn_base += seconds

    def set(self, value: datetime, *, rtc_only: bool = False) -> None:
        """Set the RTC; unless ``rtc_only``, the ФН timer moves by the same amount."""
        value = value.replace(microsecond=0, tzinfo=None)
        delta = (value - self.now()).total_seconds()
        self._rebase()
        self._rtc_base = value
        if not rtc_only:
            self._fn_base += delta

    def _rebase(self) -> None:
        elapsed = self._elapsed()
        self._rtc_base += timedelta(seconds=int(elapsed))
        self._fn_base += elapsed
        self._t0 = self._monotonic()

    @property
    def flowing(self) -> bool:
        return self._flowing

    def snapshot(self) -> dict[str, object]:
        return {"rtc": self.now().isoformat(), "fn_seconds": self.fn_seconds(), "flowing": self._flowing}

    @classmethod
    def restore(cls, data: dict[str, Any]) -> VirtualClock:
        return cls(
            datetime.fromisoformat(str(data["rtc"])),
            flowing=bool(data.get("flowing", False)),
            fn_seconds=float(data.get("fn_seconds", 0.0)),
        )
