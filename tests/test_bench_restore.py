"""What a lab register is brought back to before and after each test (BenchLab.prepare/restore)
and what its Кабинет side is (HubLab on a lab register): every step is tried even after one
fails, the lab's own ФН comes back first of all, leftover tasks are withdrawn and a register that
already holds one is waited for; a task is a re-registration the safety guard is asked about."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from harness.bench import RestoreIncomplete
from harness.device import PaperState, ShiftState
from harness.errors import FnExpired, HarnessError, NeedsRealTimeOrOperator, SafetyRefusal
from harness.lab import HubLab

from .test_bench_lab import FakeKkt, Hands, _lab


@dataclass
class ExpiredWhileSwapped(FakeKkt):
    """A prepared ФН past its term: its shift cannot be closed until the lab's own ФН is back."""

    swapped: bool = True

    def close_shift(self) -> None:
        if self.swapped:
            raise FnExpired("FN lifetime expired")
        super().close_shift()


class SwappingHands(Hands):
    def ask(self, action: str, text: str, **args: Any) -> None:
        super().ask(action, text, **args)
        if action == "fn_restore":
            assert isinstance(self.kkt, ExpiredWhileSwapped)
            self.kkt.swapped = False
            self.kkt.shift = ShiftState.CLOSED  # the lab's own ФН has no open shift


def test_the_lab_fn_comes_back_even_when_the_shift_on_the_prepared_one_cannot_be_closed() -> None:
    kkt = ExpiredWhileSwapped(shift=ShiftState.OPEN)
    hands = SwappingHands(kkt)
    lab, _ = _lab(kkt, operator=hands)
    lab._fn_swapped = True  # a test put a prepared ФН in
    with pytest.raises(RestoreIncomplete) as failed:
        lab.restore()
    assert "fn_restore" in hands.asked
    assert failed.value.done == ["стендовый ФН возвращён"]
    assert len(failed.value.failed) == 1 and failed.value.failed[0].startswith("shift: ")
    assert lab.restore() == []  # the next attempt finds the known state


def test_prepare_restores_then_blocks_the_ofd_link_as_an_emulator_starts() -> None:
    modes: list[str] = []
    kkt = FakeKkt(paper=PaperState.OUT)
    proxy = type("P", (), {"set_mode": lambda self, mode, delay=0.0: modes.append(mode)})()
    lab, _ = _lab(kkt, proxy=proxy)
    assert lab.prepare() == ["бумага заправлена"]
    assert modes == ["pass", "block"]


@dataclass
class FakeAdmin:
    """The hub's admin API for one register: tasks with states and a poll counter."""

    tasks_: list[dict[str, Any]] = field(default_factory=list)
    polls: int = 0
    polls_on_read: bool = True  # the register polls while we wait (it reads the cancellation)
    calls: list[str] = field(default_factory=list)
    down: bool = False
    reads: int = 0

    def withhold(self, serial: str, flag: bool) -> list[int]:
        self.calls.append(f"withhold {flag}")
        return []

    def offline(self, serial: str, flag: bool) -> None:
        if self.down:
            raise ConnectionRefusedError("[Errno 111] Connection refused")
        self.calls.append(f"offline {flag}")

    def tasks(self, serial: str) -> list[dict[str, Any]]:
        if self.down:
            raise ConnectionRefusedError("[Errno 111] Connection refused")
        return [dict(t) for t in self.tasks_]

    def cancel(self, serial: str) -> list[int]:
        ids = [t["task_id"] for t in self.tasks_ if t["state"] in ("new", "delivered")]
        for task in self.tasks_:
            if task["task_id"] in ids:
                task["state"], task["cancelled_after_poll"] = "cancelled", self.polls
        return ids

    def device(self, serial: str) -> dict[str, Any]:
        if self.down:
            raise ConnectionRefusedError("[Errno 111] Connection refused")
        if self.polls_on_read and self.reads:  # the register polls while we wait (not before we look)
            self.polls += 1
        self.reads += 1
        return {"poll_count": self.polls}

    def schedule(self, serial: str, names: list[str], when: str) -> int:
        self.calls.append(f"schedule {names} {when}")
        return 7


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _hub(admin: FakeAdmin, **kw: Any) -> tuple[HubLab, FakeTime]:
    clock = FakeTime()
    hub = HubLab(admin, "0497123456", url="http://127.0.0.1:1", sleep=clock.sleep, monotonic=lambda: clock.now, **kw)
    return hub, clock


DELIVERED = {"task_id": 3, "state": "delivered", "delivered_at": "2026-12-01T10:00:00"}


def test_settle_withdraws_leftover_tasks_and_waits_for_the_register_that_holds_one() -> None:
    admin = FakeAdmin([dict(DELIVERED), {"task_id": 4, "state": "new", "delivered_at": None}])
    hub, _ = _hub(admin, poll_wait=1.0)
    assert hub.settle() == ["задания Кабинета отозваны: 3, 4", "ККТ получила отзыв задания"]
    assert admin.calls == ["offline False", "withhold False"]  # withdrawn before a withhold is released
    assert {t["state"] for t in admin.tasks_} == {"cancelled"}


def test_settle_with_nothing_left_does_nothing_and_does_not_wait() -> None:
    admin = FakeAdmin([{"task_id": 3, "state": "done", "delivered_at": "2026-12-01T10:00:00"}], polls_on_read=False)
    hub, clock = _hub(admin, poll_wait=300.0)
    assert hub.settle() == [] and clock.now == 0.0


def test_a_register_that_never_polls_leaves_settle_failed_and_the_next_settle_waits_again() -> None:
    admin = FakeAdmin([dict(DELIVERED)], polls_on_read=False)
    hub, clock = _hub(admin, poll_wait=2.0)
    with pytest.raises(HarnessError, match=r"did not poll the hub within 5 s"):
        hub.settle()
    assert clock.now >= 5.0
    with pytest.raises(HarnessError, match=r"did not poll the hub within 5 s"):
        hub.settle()  # the task is withdrawn, but the register has not heard of it yet
    admin.polls += 1  # it polls at last
    assert hub.settle() == []


def test_a_hub_that_is_down_is_a_harness_error_naming_it() -> None:
    hub, _ = _hub(FakeAdmin(down=True), poll_wait=1.0)
    with pytest.raises(HarnessError, match=r"the hub at http://127.0.0.1:1 failed: .*Connection refused"):
        hub.settle()
    with pytest.raises(HarnessError, match=r"the hub at http://127.0.0.1:1 failed"):
        hub.check()


def test_a_task_is_asked_of_the_safety_guard_first() -> None:
    admin = FakeAdmin()

    def refuse() -> None:
        raise SafetyRefusal("re-registration (Кабинет task) refused: the scenario is not marked destructive")

    hub, _ = _hub(admin, guard=refuse)
    with pytest.raises(SafetyRefusal):
        hub.schedule(["osn"], "2026-12-02")
    assert admin.calls == []  # nothing reached the hub
    allowed, _ = _hub(admin)
    assert allowed.schedule(["osn"], "2026-12-02") == 7 and admin.calls == ["schedule ['osn'] 2026-12-02"]


def test_waiting_for_a_poll_beyond_the_real_time_budget_is_a_skip() -> None:
    hub, clock = _hub(FakeAdmin(), poll_wait=300.0, budget=300.0)
    with pytest.raises(
        NeedsRealTimeOrOperator,
        match=r"до 601 с реального времени; бюджет реального времени 300 с \(--real-time-budget\)",
    ):
        hub.poll_now()
    assert clock.now == 0.0


@dataclass
class LowFn(FakeKkt):
    def fn(self) -> Any:
        from harness.device import FnPhase, FnStatus, FnWarning, TaxSystem

        return FnStatus("9999", FnPhase.FISCAL, None, TaxSystem.USN_INCOME, 28, None, 10, FnWarning(0))


@pytest.mark.parametrize("sacrificial", [True, False])
def test_a_fresh_fn_is_asked_for_only_on_a_sacrificial_register(sacrificial: bool) -> None:
    kkt = LowFn()
    hands = Hands(kkt)
    lab, _ = _lab(kkt, operator=hands, registration_limit=30, sacrificial=sacrificial)  # 2 left
    done = lab.restore()
    assert ("fn_replace" in hands.asked) is sacrificial
    assert ("ФН стенда заменён: регистрации почти исчерпаны" in done) is sacrificial
