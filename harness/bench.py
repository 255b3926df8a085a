"""The lab of a real register (or the stand-in): faults and time through instruments, the OFD
proxy, the protocol and the operator — never through an emulator's control channel.

:class:`BenchLab` is the :class:`~harness.lab.Lab` of a ``lab:<id>`` device:

* power — the bench supply (pyvisa) of the inventory entry, else the operator;
* paper and cover — the operator, then the register's own status must show what was asked;
* OFD link — the harness OFD proxy between the register and its OFD (pass / block);
* the clock — moved with the protocol where the register allows it (shift closed, forward only,
  a destructive request the guard checks); inside an open shift time only passes for real, up to
  the real-time budget; scenario times are shifted by whole days (:mod:`harness.timelens`);
* the ФН and the firmware — the operator (swap in a prepared ФН, flash a firmware).

Whatever it cannot do raises :class:`~harness.errors.LabUnavailable` (the scenario is skipped with
the reason).  :meth:`restore` brings the register back to a known state after each test.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from .device import JournalEntry, PaperState, ShiftState
from .errors import HarnessError, KktError, LabUnavailable, LinkError, NeedsRealTimeOrOperator
from .fiscal import registrations_left
from .operator import Operator
from .timelens import ScenarioTime

DEFAULT_REAL_TIME_BUDGET = 300.0  # seconds of real waiting a scenario may ask for
CLOCK_MARGIN = timedelta(minutes=1)  # a clock move lands at least this far after the register's clock
OFD_DRAIN_TIMEOUT = 30.0
POWER_UP_TIMEOUT = 15.0
POLL = 0.2

PAPER_PROMPTS = {
    "out": "Выньте бумагу из принтера ККТ (рулон закончился)",
    "ok": "Заправьте бумагу в принтер ККТ и закройте крышку",
    "near_end": "Поставьте почти закончившийся рулон бумаги",
}


class Supply(Protocol):
    def output(self, on: bool) -> None: ...

    def output_state(self) -> bool: ...


class Proxy(Protocol):
    def set_mode(self, mode: str, delay: float = 0.0) -> None: ...


def wait_for_power_up(kkt: Any, sleep: Callable[[float], None] = time.sleep) -> None:
    """Connect to a register that was just powered up (it answers once it has booted)."""
    deadline = time.monotonic() + POWER_UP_TIMEOUT
    while True:
        try:
            kkt.connect()
            return
        except LinkError:
            if time.monotonic() >= deadline:
                raise
            sleep(POLL)


def _span_ru(span: timedelta) -> str:
    """``29 дн. 23:00:00`` (timedelta's own ``29 days, 23:00:00`` is English)."""
    clock = str(timedelta(seconds=span.seconds, microseconds=span.microseconds))
    return f"{span.days} дн. {clock}" if span.days else clock


class BenchLab:
    def __init__(
        self,
        kkt: Any,
        *,
        entry: str,
        operator: Operator,
        lens: ScenarioTime,
        supply: Supply | None = None,
        proxy: Proxy | None = None,
        budget: float = DEFAULT_REAL_TIME_BUDGET,
        on_fn_changed: Callable[[], None] = lambda: None,
        on_clock_set: Callable[[datetime], None] = lambda _at: None,
        hub: Any = None,
        registration_limit: int | None = None,
        sacrificial: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._kkt = kkt
        self.description = f"lab register {entry}"
        self._operator = operator
        self.lens = lens
        self._supply = supply
        self._proxy = proxy
        self._budget = budget
        self._on_fn_changed = on_fn_changed
        self._on_clock_set = on_clock_set
        self._hub = hub  # a HubLab: leftover Кабинет tasks are withdrawn by restore()
        self.registration_limit = registration_limit  # registrations the ФН allows (inventory), if known
        self._sacrificial = sacrificial  # only a sacrificial ФН is replaced when its registrations run low
        self._sleep = sleep
        self._fn_swapped = False
        self.registrations_reserve = 5  # below this many registrations left, the ФН is replaced after a test
        self._firmware: str | None = None  # the firmware before a test asked for another one

    # ------------------------------------------------------------------ printer, by the operator

    def paper(self, state: PaperState | str, *, after_lines: int | None = None) -> None:
        value = state.value if isinstance(state, PaperState) else str(state)
        if after_lines is not None:
            text = f"Бумага должна закончиться на печати следующего документа (через {after_lines} строк)"
            self._operator.ask("paper", text, state=value, after_lines=after_lines)
            return
        self._operator.ask("paper", PAPER_PROMPTS.get(value, value), state=value)
        shown = self._kkt.status().paper
        if (value == "out") != (shown is PaperState.OUT):
            raise HarnessError(
                f"the operator confirmed «{PAPER_PROMPTS[value]}», but the register shows paper {shown.value}"
            )

    def cover(self, open: bool) -> None:
        text = "Откройте крышку принтера ККТ" if open else "Закройте крышку принтера ККТ"
        self._operator.ask("cover", text, open=open)
        if self._kkt.status().cover_open is not open:
            raise HarnessError(f"the operator confirmed «{text}», but the register shows the cover otherwise")

    # ------------------------------------------------------------------ OFD, through the proxy

    def ofd(self, online: bool) -> None:
        if self._proxy is None:
            raise LabUnavailable("связь этой ККТ с ОФД не идёт через прокси стенда ([device.ofd] в инвентаре)")
        self._proxy.set_mode("pass" if online else "block")
        if online:
            deadline = time.monotonic() + OFD_DRAIN_TIMEOUT
            while self._kkt.ofd_queue().count and time.monotonic() < deadline:
                self._sleep(POLL)

    # ------------------------------------------------------------------ time

    def now(self) -> datetime:
        return self.lens.to_scenario(self._kkt.clock())

    def clock_set(self, value: datetime, *, rtc_only: bool = False) -> None:
        device_now = self._kkt.clock()  # every document so far was made at or before it
        target = self.lens.anchor(value, device_now + CLOCK_MARGIN)
        if self._kkt.status().shift is not ShiftState.CLOSED:
            self._wait(target - device_now, "чтобы перевести часы внутри открытой смены")
            return
        self._kkt.set_clock(target)  # the guard's SafetyRefusal: a skip in a destructive scenario, else broken
        self._on_clock_set(target)

    def clock_advance(self, seconds: float = 0, *, minutes: float = 0, hours: float = 0, days: float = 0) -> None:
        self._wait(
            timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days), "чтобы время прошло на реальном ФН"
        )

    def _wait(self, span: timedelta, why: str) -> None:
        if span.total_seconds() > self._budget:
            raise NeedsRealTimeOrOperator(
                f"нужно {_span_ru(span)} реального времени, {why}; "
                f"бюджет реального времени {self._budget:g} с (--real-time-budget)"
            )
        self._sleep(max(0.0, span.total_seconds()))

    # ------------------------------------------------------------------ power

    def power(self, action: str) -> None:
        if action not in ("off", "on", "cycle"):
            raise HarnessError(f"power takes off, on or cycle, not {action!r}")
        if self._supply is None:
            self._operator.ask(
                "power",
                {
                    "off": "Выключите питание ККТ",
                    "on": "Включите питание ККТ",
                    "cycle": "Выключите и снова включите питание ККТ",
                }[action],
                state=action,
            )
        else:
            if action in ("off", "cycle"):
                self._supply.output(False)
            if action == "cycle":
                self._sleep(1.0)
            if action in ("on", "cycle"):
                self._supply.output(True)
        if action in ("on", "cycle"):
            self._wait_for_power_up()

    def _wait_for_power_up(self) -> None:
        wait_for_power_up(self._kkt, self._sleep)

    # ------------------------------------------------------------------ ФН and firmware, by the operator

    def fn_setup(
        self, *, activated: datetime | None = None, registrations_done: int | None = None, kind: str | None = None
    ) -> dict[str, Any]:
        if activated is not None or registrations_done is not None or kind is not None:
            args: dict[str, Any] = {}
            parts = []
            if kind is not None:
                args["kind"] = kind
                parts.append(f"модели {kind}")
            if activated is not None:
                args["activated"] = self.lens.to_device(activated).isoformat()
                parts.append(f"активированный {self.lens.to_device(activated):%d.%m.%Y}")
            if registrations_done is not None:
                args["registrations_done"] = registrations_done
                parts.append(f"с {registrations_done} использованными регистрациями")
            self._operator.ask("fn_setup", "Установите в ККТ подготовленный ФН: " + ", ".join(parts), **args)
            self._fn_swapped = True
            self._on_fn_changed()
        fn = self._kkt.fn()
        if registrations_done is not None and fn.registrations_done not in (None, registrations_done):
            raise HarnessError(
                f"the ФН shows {fn.registrations_done} registrations done, {registrations_done} were asked for"
            )
        left = registrations_left(fn.registrations_left, fn.registrations_done, self.registration_limit)
        return {
            "valid_until": fn.valid_until.isoformat() if fn.valid_until else None,
            "registrations_done": fn.registrations_done,
            "registrations_left": left,
            "kind": kind,
        }

    def firmware(self, version: str) -> None:
        current = self._kkt.info().firmware
        self._operator.ask("firmware", f"Установите на ККТ прошивку {version}", version=version)
        self._firmware = self._firmware or current
        shown = self._kkt.info().firmware
        if shown != version:
            raise HarnessError(f"the operator confirmed firmware {version}, but the register reports {shown}")

    # ------------------------------------------------------------------ what a real register cannot do

    def zone(self, utc_offset_hours: int) -> None:
        raise LabUnavailable("стенд не меняет часовой пояс реальной ККТ")

    def setting(self, name: str, value: str) -> None:
        raise LabUnavailable(f"стенд не меняет настройку реальной ККТ {name}")

    def defects(self, enable: list[str] | None = None, disable: list[str] | None = None) -> list[str]:
        raise LabUnavailable("дефекты прошивки вносятся только в эмулятор")

    def journal(self) -> list[JournalEntry]:
        raise LabUnavailable("журнал этой ККТ не читается по её протоколу")

    def tape(self) -> list[str]:
        raise LabUnavailable("напечатанную ленту реальной ККТ не прочитать")

    def state(self) -> dict[str, Any]:
        raise LabUnavailable("у реальной ККТ нет состояния эмулятора")

    # ------------------------------------------------------------------ after each test

    def _registrations_low(self) -> bool:
        left = self.fn_setup()["registrations_left"]
        return left is not None and left <= self.registrations_reserve

    def prepare(self) -> list[str]:
        """Before a test: the known state :meth:`restore` leaves (a run may have died half-way),
        then the OFD link blocked, as an emulator starts.  Returns what was done."""
        done = self.restore()
        if self._proxy is not None:
            self._proxy.set_mode("block")
        return done

    def restore(self) -> list[str]:
        """Back to a known state: OFD link up, power on, paper in, cover closed, nothing pending,
        the shift closed, the lab's own ФН and firmware back, no Кабинет task left.  Every step is
        tried even when an earlier one failed (the lab's own ФН must come back even if the shift
        on a prepared one cannot be closed); returns what was done, for the report, or raises
        :class:`RestoreIncomplete` naming what could not be done."""
        done: list[str] = []
        failed: list[str] = []
        steps = (
            self._restore_power,
            self._restore_printer,
            self._restore_document,
            self._restore_shift,
            self._restore_fn,
            self._restore_shift,  # the lab's own ФН may hold an open shift of its own
            self._restore_firmware,
            self._restore_hub,
        )
        for step in steps:
            try:
                done += step()
            except KktError as exc:
                failed.append(f"{step.__name__.removeprefix('_restore_')}: {exc}")
                if isinstance(exc, LinkError) and step is self._restore_power:
                    break  # no answer after power-up: nothing else can be done
        if failed:
            raise RestoreIncomplete(done, failed)
        return done

    def _restore_power(self) -> list[str]:
        if self._proxy is not None:
            self._proxy.set_mode("pass")
        if self._supply is not None and not self._supply.output_state():
            self._supply.output(True)
            self._wait_for_power_up()
            return ["питание включено"]
        return []

    def _restore_printer(self) -> list[str]:
        done = []
        status = self._kkt.status()
        if status.cover_open:
            self.cover(False)
            done.append("крышка закрыта")
        if status.paper is PaperState.OUT:
            self.paper(PaperState.OK)
            done.append("бумага заправлена")
        return done

    def _restore_document(self) -> list[str]:
        done = []
        if self._kkt.status().pending_print:
            self._kkt.continue_print()
            done.append("допечатан прерванный документ")
        if self._kkt.status().document_open:  # read again: the printout may have closed it
            self._kkt.cancel_document()
            done.append("открытый чек аннулирован")
        return done

    def _restore_shift(self) -> list[str]:
        if self._kkt.status().shift is ShiftState.CLOSED:
            return []
        self._kkt.close_shift()  # each test starts, as on an emulator, with the shift closed
        return ["смена закрыта"]

    def _restore_fn(self) -> list[str]:
        done = []
        if self._fn_swapped:
            self._operator.ask("fn_restore", "Верните в ККТ стендовый ФН")
            self._fn_swapped = False
            self._on_fn_changed()
            done.append("стендовый ФН возвращён")
        if self._sacrificial and self._registrations_low():  # elsewhere the guard refuses every registration
            self._operator.ask("fn_replace", "Замените ФН стенда на новый: регистраций почти не осталось")
            self._on_fn_changed()
            done.append("ФН стенда заменён: регистрации почти исчерпаны")
        return done

    def _restore_firmware(self) -> list[str]:
        if self._firmware is None:
            return []
        version = self._firmware
        self._operator.ask("firmware", f"Верните на ККТ прошивку {version}", version=version)
        shown = self._kkt.info().firmware
        if shown != version:
            raise HarnessError(f"the operator confirmed firmware {version} back, but the register reports {shown}")
        self._firmware = None
        return [f"прошивка {version} возвращена"]

    def _restore_hub(self) -> list[str]:
        return list(self._hub.settle()) if self._hub is not None else []


class RestoreIncomplete(HarnessError):
    """Some of the known state could not be brought back: ``done`` and ``failed`` say what."""

    def __init__(self, done: list[str], failed: list[str]) -> None:
        super().__init__("; ".join(failed))
        self.done = done
        self.failed = failed
