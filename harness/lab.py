"""The Lab: faults and time, as scenarios ask for them.

Scenarios never poke an emulator directly: they say ``lab.paper("out")`` or
``lab.clock_advance(hours=24)``.  :class:`EmulatorLab` does it through the emulator's control
channel (in process, or over TCP for ``kkt-hil emulate --control``); on a real register a lab
needs instruments or an operator, and whatever it cannot do raises :class:`LabUnavailable`,
which the pytest plugin turns into a *skip with the reason* — never a vacuous pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from .device import JournalEntry, PaperState
from .errors import HarnessError, LabUnavailable, LinkError, NeedsRealTimeOrOperator
from .timelens import ScenarioTime

Control = Callable[[dict[str, Any]], dict[str, Any]]


class Lab(Protocol):
    description: str

    def paper(self, state: PaperState | str, *, after_lines: int | None = None) -> None: ...
    def cover(self, open: bool) -> None: ...
    def ofd(self, online: bool) -> None: ...
    def now(self) -> datetime: ...
    def clock_set(self, value: datetime, *, rtc_only: bool = False) -> None: ...
    def clock_advance(self, seconds: float = 0, *, minutes: float = 0, hours: float = 0, days: float = 0) -> None: ...
    def power(self, action: str) -> None: ...
    def firmware(self, version: str) -> None: ...
    def zone(self, utc_offset_hours: int) -> None: ...
    def defects(self, enable: list[str] | None = None, disable: list[str] | None = None) -> list[str]: ...
    def journal(self) -> list[JournalEntry]: ...
    def tape(self) -> list[str]: ...
    def state(self) -> dict[str, Any]: ...
    def fn_setup(
        self, *, activated: datetime | None = None, registrations_done: int | None = None, kind: str | None = None
    ) -> dict[str, Any]: ...
    def setting(self, name: str, value: str) -> None: ...


class EmulatorLab:
    """A lab over an emulator control channel (a callable taking and returning JSON objects)."""

    def __init__(self, control: Control, *, description: str = "emulator") -> None:
        self._control = control
        self.description = description

    def raw(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send a control request as is (e.g. the ``hub`` op of a Dreamkas emulator)."""
        return self._control(request)

    def _op(self, op: str, **args: Any) -> dict[str, Any]:
        try:
            reply = self._control({"op": op, **args})
        except (OSError, ValueError) as exc:  # the control channel itself is gone: the lab is broken
            raise LinkError(f"emulator control channel failed during {op!r}: {exc}") from None
        if not reply.get("ok"):
            raise HarnessError(f"emulator control {op!r} failed: {reply.get('error', reply)}")
        return reply

    def paper(self, state: PaperState | str, *, after_lines: int | None = None) -> None:
        value = state.value if isinstance(state, PaperState) else str(state)
        args: dict[str, Any] = {"state": value}
        if after_lines is not None:
            args["after_lines"] = after_lines
        self._op("paper", **args)

    def cover(self, open: bool) -> None:
        self._op("cover", open=open)

    def ofd(self, online: bool) -> None:
        self._op("ofd", online=online)

    def now(self) -> datetime:
        return datetime.fromisoformat(self._op("clock")["now"])

    def clock_set(self, value: datetime, *, rtc_only: bool = False) -> None:
        self._op("clock", set=value.replace(microsecond=0).isoformat(), rtc_only=rtc_only)

    def clock_advance(self, seconds: float = 0, *, minutes: float = 0, hours: float = 0, days: float = 0) -> None:
        total = timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days).total_seconds()
        self._op("clock", advance=total)

    def power(self, action: str) -> None:
        self._op("power", action=action)

    def firmware(self, version: str) -> None:
        self._op("firmware", version=version)

    def zone(self, utc_offset_hours: int) -> None:
        """Set the device time zone (hours east of UTC, 2..12)."""
        self._op("zone", utc_offset_hours=utc_offset_hours)

    def fn_setup(
        self, *, activated: datetime | None = None, registrations_done: int | None = None, kind: str | None = None
    ) -> dict[str, Any]:
        """Age the ФН, use up its registrations, or make it a ФН of ``kind`` (fn15, fn36)."""
        args: dict[str, Any] = {}
        if kind is not None:
            args["kind"] = kind
        if activated is not None:
            args["activated"] = activated.isoformat()
        if registrations_done is not None:
            args["registrations_done"] = registrations_done
        return dict(self._op("fn", **args)["fn"])

    def setting(self, name: str, value: str) -> None:
        """Change a profile setting (``kkt-hil emulate --set`` names), e.g. auto_open_shift."""
        self._op("setting", name=name, value=value)

    def defects(self, enable: list[str] | None = None, disable: list[str] | None = None) -> list[str]:
        return list(self._op("defects", enable=enable or [], disable=disable or [])["defects"])

    def journal(self) -> list[JournalEntry]:
        return [
            JournalEntry(datetime.fromisoformat(e["at"]), e["event"], e.get("detail", ""))
            for e in self._op("journal")["journal"]
        ]

    def tape(self) -> list[str]:
        return list(self._op("tape")["tape"])

    def state(self) -> dict[str, Any]:
        return dict(self._op("state")["state"])


class UnavailableLab:
    """A device without lab control: every fault or time request skips the scenario with a reason."""

    def __init__(self, reason: str, *, description: str = "no lab control") -> None:
        self.reason = reason
        self.description = description

    def _no(self, what: str) -> LabUnavailable:
        return LabUnavailable(f"{what}: {self.reason}")

    def paper(self, state: PaperState | str, *, after_lines: int | None = None) -> None:
        raise self._no("нельзя управлять бумагой")

    def cover(self, open: bool) -> None:
        raise self._no("нельзя открыть или закрыть крышку")

    def ofd(self, online: bool) -> None:
        raise self._no("нельзя разорвать или восстановить связь с ОФД")

    def now(self) -> datetime:
        raise self._no("нет часов стенда")

    def clock_set(self, value: datetime, *, rtc_only: bool = False) -> None:
        raise self._no("стенд не может установить время ККТ")

    def clock_advance(self, seconds: float = 0, *, minutes: float = 0, hours: float = 0, days: float = 0) -> None:
        raise self._no("нельзя сдвинуть время ККТ (реальному ФН нужно реальное время)")

    def power(self, action: str) -> None:
        raise self._no("нет управляемого источника питания")

    def firmware(self, version: str) -> None:
        raise self._no("нельзя сменить прошивку")

    def zone(self, utc_offset_hours: int) -> None:
        raise self._no("нельзя сменить часовой пояс ККТ")

    def defects(self, enable: list[str] | None = None, disable: list[str] | None = None) -> list[str]:
        raise self._no("в реальную ККТ нельзя внести дефекты прошивки")

    def journal(self) -> list[JournalEntry]:
        raise self._no("нет журнала устройства")

    def tape(self) -> list[str]:
        raise self._no("напечатанную ленту не прочитать")

    def state(self) -> dict[str, Any]:
        raise self._no("нет состояния эмулятора")

    def fn_setup(
        self, *, activated: datetime | None = None, registrations_done: int | None = None, kind: str | None = None
    ) -> dict[str, Any]:
        raise self._no("реальный ФН нельзя состарить или израсходовать его перерегистрации по запросу")

    def setting(self, name: str, value: str) -> None:
        raise self._no(f"стенд не меняет настройку ККТ {name}")


class HubLab:
    """The Dreamkas Кабинет side of a scenario: schedule, withhold, and read the three statuses.

    Works the same against the harness's own hub for an emulated register and for a lab
    register pointed at that hub.  An emulated register is told to poll and to drop its link
    through its control channel; for a lab register the hub itself does it: it cuts the
    register off (HTTP 503) and waits for the register's next poll on its own schedule.  Dates go
    through the lab's scenario-time lens (:mod:`harness.timelens`).
    """

    def __init__(
        self,
        admin: Any,
        serial: str,
        *,
        device_control: Control | None = None,
        url: str = "",
        lens: ScenarioTime | None = None,
        poll_wait: float | None = None,
        budget: float | None = None,
        guard: Callable[[], None] = lambda: None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._admin = admin
        self.serial = serial
        self.url = url
        self._device_control = device_control
        self._lens = lens
        self._poll_wait = poll_wait
        self._budget = budget  # seconds of real waiting a scenario may spend on one poll
        self._guard = guard  # raises SafetyRefusal where a re-registration may not be ordered
        self._sleep = sleep
        self._monotonic = monotonic

    def schedule(self, tax_systems: Any, when: Any) -> int:
        """A deferred re-registration task to ``tax_systems`` (TaxSystem or names) from local date ``when``."""
        names = tax_systems.names if hasattr(tax_systems, "names") else list(tax_systems)
        self._guard()  # the register re-registers itself from the task: the same four conditions
        if self._lens is not None and isinstance(when, date):
            when = self._lens.date_to_device(when)
        day = when.isoformat() if hasattr(when, "isoformat") else str(when)
        return int(self._hub_call(self._admin.schedule, self.serial, names, day))

    def settle(self) -> list[str]:
        """Back to a known hub state for a lab register, which outlives one test (an emulator's
        hub does not): the link restored, leftover tasks withdrawn, a withhold released — and
        while the register still holds a withdrawn task (delivered, and no poll since it was
        withdrawn: the hub says so, so a settle that timed out is not forgotten by the next), its
        next poll awaited, so that no shift applies it.  Returns what was done, for the report."""
        self._hub_call(self._admin.offline, self.serial, False)
        cancelled = self._hub_call(self._admin.cancel, self.serial)  # first: nothing open is delivered after
        self._hub_call(self._admin.withhold, self.serial, False)
        done = [f"задания Кабинета отозваны: {', '.join(map(str, cancelled))}"] if cancelled else []
        held = [
            int(task["cancelled_after_poll"])
            for task in self._hub_call(self._admin.tasks, self.serial)
            if task.get("state") == "cancelled"
            and task.get("delivered_at")
            and task.get("cancelled_after_poll") is not None
        ]
        if held and self._polls() <= max(held):
            self._wait_for_poll(self._poll_limit(), "to drop the withdrawn task", after=max(held))
            done.append("ККТ получила отзыв задания")
        return done

    def _hub_call(self, call: Callable[..., Any], *args: Any) -> Any:
        """One admin request; a hub that is down or refuses is a HarnessError naming it."""
        try:
            return call(*args)
        except Exception as exc:  # noqa: BLE001 - the admin client is the cloud's (no vendor import here)
            raise HarnessError(f"the hub at {self.url} failed: {exc}") from None

    def _poll_limit(self) -> float:
        if self._poll_wait is None:
            raise HarnessError(
                "the register holds a Кабинет task and its hub poll period is unknown (hub_poll_seconds)"
            )
        return 2 * self._poll_wait + 1.0

    def _wait_for_poll(self, limit: float, why: str, *, after: int | None = None) -> None:
        """Until the register's poll count passes ``after`` (default: its count now)."""
        before = self._polls() if after is None else after
        deadline = self._monotonic() + limit
        while self._polls() <= before:
            if self._monotonic() >= deadline:
                raise HarnessError(f"the register did not poll the hub within {limit:g} s {why}")
            self._sleep(min(0.1, limit / 8))

    def withhold(self, flag: bool = True) -> None:
        self._hub_call(self._admin.withhold, self.serial, flag)

    def status(self) -> dict[str, Any]:
        """``{"firmware", "updated", "task_received", "reregistered", "last_error", ...}``."""
        view = dict(self._hub_call(self._admin.device, self.serial))
        if self._lens is not None and view.get("local_date"):
            view["local_date"] = self._lens.date_to_scenario(date.fromisoformat(view["local_date"])).isoformat()
        return view

    def _device(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._device_control is None:
            raise LabUnavailable("состояние Кабинета в самой лабораторной ККТ не прочитать")
        reply = self._device_control({"op": "hub", **request})
        if not reply.get("ok"):
            raise HarnessError(f"emulator hub control failed: {reply.get('error', reply)}")
        return reply

    def poll_now(self) -> dict[str, Any]:
        """Make the register poll the hub now (an emulator), or wait for its next poll (a lab register)."""
        if self._device_control is not None:
            return self._device({"poll": True})
        if self._poll_wait is None:
            raise LabUnavailable(
                "лабораторная ККТ опрашивает Кабинет по своему расписанию (в инвентаре нет hub_poll_seconds)"
            )
        limit = self._poll_limit()
        if self._budget is not None and limit > self._budget:
            raise NeedsRealTimeOrOperator(
                f"ждать следующего опроса Кабинета — до {limit:g} с реального времени; "
                f"бюджет реального времени {self._budget:g} с (--real-time-budget)"
            )
        self._wait_for_poll(limit, "(its hub address or poll period in the inventory is wrong, or it is down)")
        return self.status()

    def _polls(self) -> int:
        try:
            return int(self._admin.device(self.serial).get("poll_count", 0))
        except Exception as exc:  # noqa: BLE001 - the admin client is the cloud's (no vendor import here)
            if getattr(exc, "status", None) == 404:  # the hub has not seen the register yet: no poll so far
                return 0
            raise HarnessError(f"the hub at {self.url} failed: {exc}") from None

    def check(self) -> None:
        """The hub answers (before a run, and when a lab register is opened)."""
        self._hub_call(self._admin.tasks, self.serial)

    def link(self, online: bool) -> None:
        """Cut or restore the register's connection to the hub."""
        if self._device_control is not None:
            self._device({"online": online})
        else:
            self._hub_call(self._admin.offline, self.serial, not online)

    def device_tasks(self) -> list[dict[str, Any]]:
        """The tasks as the register itself holds them (emulators only)."""
        return list(self._device({})["tasks"])
