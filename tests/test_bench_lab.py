"""The lab of a real register, with fakes for the register, the supply and the proxy: the
operator's work is checked on the device, time within and beyond the real-time budget, the
scenario-time lens, and what restore() brings back."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from harness.bench import BenchLab
from harness.device import FnPhase, FnStatus, FnWarning, OfdQueue, PaperState, ShiftState, Status, TaxSystem
from harness.errors import HarnessError, LabUnavailable, NeedsRealTimeOrOperator
from harness.operator import NoOperator, RemoteOperator, TtyOperator, make_operator
from harness.timelens import LensedKkt, ScenarioTime

NOW = datetime(2026, 12, 1, 10, 0, 0)


@dataclass
class FakeKkt:
    clock_at: datetime = NOW
    paper: PaperState = PaperState.OK
    shift: ShiftState = ShiftState.CLOSED
    queue: int = 0
    set_to: list[datetime] = field(default_factory=list)
    closed_shifts: int = 0

    def clock(self) -> datetime:
        return self.clock_at

    def set_clock(self, value: datetime) -> None:
        self.set_to.append(value)
        self.clock_at = value

    def status(self) -> Status:
        return Status(self.shift, False, False, self.paper, False)

    def ofd_queue(self) -> OfdQueue:
        return OfdQueue(self.queue, None, None)

    def fn(self) -> FnStatus:
        return FnStatus("9999", FnPhase.FISCAL, date(2027, 1, 1), TaxSystem.USN_INCOME, 3, None, 10, FnWarning(0))

    def close_shift(self) -> None:
        self.closed_shifts += 1
        self.shift = ShiftState.CLOSED


class Hands:
    """An operator that does what it is told to a FakeKkt."""

    description = "test hands"

    def __init__(self, kkt: FakeKkt, *, lie: bool = False) -> None:
        self.kkt, self.lie = kkt, lie
        self.asked: list[str] = []

    def ask(self, action: str, text: str, **args: Any) -> None:
        self.asked.append(action)
        if action == "paper" and not self.lie:
            self.kkt.paper = PaperState.OUT if args["state"] == "out" else PaperState.OK


def _lab(kkt: FakeKkt, operator: Any = None, **kw: Any) -> tuple[BenchLab, list[float]]:
    slept: list[float] = []
    lab = BenchLab(
        kkt, entry="lab:test", operator=operator or Hands(kkt), lens=ScenarioTime(), sleep=slept.append, **kw
    )
    return lab, slept


def test_paper_by_the_operator_is_checked_on_the_register() -> None:
    kkt = FakeKkt()
    lab, _ = _lab(kkt)
    lab.paper("out")
    assert kkt.paper is PaperState.OUT
    liar, _ = _lab(FakeKkt(), Hands(FakeKkt(), lie=True))
    with pytest.raises(HarnessError, match="but the register shows paper ok"):
        liar.paper("out")


def test_time_inside_a_shift_passes_for_real_up_to_the_budget() -> None:
    kkt = FakeKkt(shift=ShiftState.OPEN)
    lab, slept = _lab(kkt, budget=300)
    lab.clock_advance(minutes=2)
    assert slept == [120.0]
    with pytest.raises(
        NeedsRealTimeOrOperator, match=r"нужно 1:00:00 реального времени, .* бюджет реального времени 300 с"
    ):
        lab.clock_advance(hours=1)


def test_the_clock_moves_forward_by_whole_days_and_never_back() -> None:
    kkt = FakeKkt()
    lab, _ = _lab(kkt)
    lab.clock_set(datetime(2020, 12, 31, 23, 50))
    assert kkt.set_to[-1] == datetime(2026, 12, 1, 23, 50) and lab.lens.offset.days == 2161
    lab.clock_set(datetime(2021, 1, 1, 0, 10))  # forward within the test: the same shift of days
    assert kkt.set_to[-1] == datetime(2026, 12, 2, 0, 10)
    with pytest.raises(LabUnavailable, match="сценарий переводит часы назад") as back:
        lab.clock_set(datetime(2020, 12, 31, 9, 0))
    assert not isinstance(back.value, NeedsRealTimeOrOperator)  # no waiting brings a clock back
    assert lab.now() == datetime(2021, 1, 1, 0, 10)


def test_the_lens_shows_the_register_in_scenario_time() -> None:
    lens = ScenarioTime()
    lens.anchor(datetime(2021, 1, 1, 9, 0), NOW)
    assert lens.offset == timedelta(days=(date(2026, 12, 2) - date(2021, 1, 1)).days)  # 09:00 < 10:00: a day more
    lensed: Any = LensedKkt(FakeKkt(clock_at=NOW + timedelta(days=1)), lens)
    assert lensed.clock() == datetime(2021, 1, 1, 10, 0)  # the register's tomorrow is the scenario's 01.01
    assert lensed.fn().valid_until == date(2027, 1, 1) - lens.offset
    lensed.set_clock(datetime(2021, 1, 2, 8, 0))
    assert lensed.clock() == datetime(2021, 1, 2, 8, 0)
    assert lens.description.startswith("сценарий сдвинут на ")


def test_no_proxy_no_supply_no_operator_are_skips_with_the_reason() -> None:
    lab, _ = _lab(FakeKkt(), NoOperator())
    with pytest.raises(LabUnavailable, match="связь этой ККТ с ОФД не идёт через прокси стенда") as no_proxy:
        lab.ofd(False)
    assert not isinstance(no_proxy.value, NeedsRealTimeOrOperator)  # the stand cannot: not a matter of time
    with pytest.raises(NeedsRealTimeOrOperator, match="нужен оператор"):
        lab.paper("out")
    with pytest.raises(NeedsRealTimeOrOperator, match="нужен оператор"):
        lab.power("cycle")
    for call in (lab.journal, lab.tape, lab.state):
        with pytest.raises(LabUnavailable) as refused:
            call()
        assert not isinstance(refused.value, NeedsRealTimeOrOperator)


def test_restore_closes_the_shift_and_restores_the_link() -> None:
    modes: list[str] = []
    kkt = FakeKkt(shift=ShiftState.OPEN, paper=PaperState.OUT)
    lab, _ = _lab(kkt, proxy=type("P", (), {"set_mode": lambda self, mode, delay=0.0: modes.append(mode)})())
    done = lab.restore()
    assert done == ["бумага заправлена", "смена закрыта"] and modes == ["pass"] and kkt.closed_shifts == 1


def test_a_tty_operator_without_a_terminal_skips(tmp_path: Any) -> None:
    with pytest.raises(NeedsRealTimeOrOperator, match="нужен оператор, а терминала нет"):
        TtyOperator(path=str(tmp_path / "no-tty")).ask("paper", "Выньте бумагу", state="out")
    with pytest.raises(HarnessError, match="operator must be tty, none or tcp"):
        make_operator("robot")


def test_a_remote_operator_speaks_one_json_line() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[dict[str, Any]] = []

    def serve() -> None:
        for answer in ({"ok": True}, {"ok": False, "error": "no paper roll"}):
            conn, _ = listener.accept()
            with conn, conn.makefile("rwb") as stream:
                seen.append(json.loads(stream.readline()))
                stream.write((json.dumps(answer) + "\n").encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    operator = RemoteOperator(f"tcp://127.0.0.1:{listener.getsockname()[1]}", timeout=5)
    operator.ask("paper", "Выньте бумагу", state="out")
    with pytest.raises(HarnessError, match="could not do «Заправьте»: no paper roll"):
        operator.ask("paper", "Заправьте", state="ok")
    thread.join(timeout=5)
    listener.close()
    assert seen[0] == {"action": "paper", "args": {"state": "out"}, "text": "Выньте бумагу"}
    with pytest.raises(NeedsRealTimeOrOperator, match="недоступен"):
        operator.ask("paper", "again", state="ok")
