"""E. Смена через полночь и перерегистрация при первом открытии после даты
(domain-rules.md, matrix E; R3.1–R3.5, R6.3, R9.4)."""

from __future__ import annotations

from datetime import date, timedelta

import allure
import pytest

from harness.device import Kkt, ShiftState
from harness.errors import FnTimerMismatch, ShiftExpired
from harness.plugin import expect_refusal

from .conftest import SUGAR, at, ensure_shift_closed, open_shift_expecting, regimes, task_delivered

pytestmark = [
    allure.epic("Отложенная перерегистрация"),
    allure.feature("E. Смена через полночь"),
    allure.link("matrix.html#scenario-e", name="Матрица сценариев E"),
    allure.label("rule", "R3.1"),
    allure.label("rule", "R3.3"),
    allure.label("rule", "R6.3"),
    pytest.mark.destructive,
]


@allure.story("Смена 23:50–00:10 и задание на следующий день")
@allure.title(
    "Открыта 23:50, продажа после полуночи, закрыта 00:10 — одна смена; "
    "перерегистрация только перед следующим открытием"
)
@allure.severity(allure.severity_level.BLOCKER)
def test_shift_across_midnight_with_due_task(kkt: Kkt, lab, hub, oracle) -> None:
    old, new = regimes(kkt)  # the register's regime now, and another one
    task_delivered(kkt, lab, hub, now="2020-12-31T23:40:00", target=new, day=date(2021, 1, 1))
    oracle.watch_hub(hub)
    at(lab, "2020-12-31T23:50:00")
    open_shift_expecting(oracle, kkt, "Открыть смену 31.12 23:50: задание ещё не на дату", to=None, online=True)
    lab.clock_advance(minutes=15)  # 00:05 on 01.01: the task is due now, but the shift is open
    with oracle.step("ККТ опрашивает Кабинет в 00:05: в открытой смене ничего не меняется"):
        hub.poll_now()
    with oracle.step("Продажа после полуночи: та же смена, старая СНО", **oracle.sale(SUGAR.amount, online=True)):
        receipt = kkt.sell([SUGAR], tax_system=old)
    lab.clock_advance(minutes=5)
    with oracle.step(
        "Закрыть смену 00:10: одна смена через полночь, перерегистрации нет", **oracle.shift_closed(online=True)
    ):
        closed = kkt.close_shift()
    with allure.step("Проверить: чек и Z — одной смены"):
        assert receipt.shift_number == closed.shift_number
    open_shift_expecting(oracle, kkt, "Открыть следующую смену: сначала перерегистрация", to=new, online=True)
    with oracle.step("Продажа на новой СНО", **oracle.sale(SUGAR.amount, online=True)):
        kkt.sell([SUGAR], tax_system=new)


@allure.story("Граница 24 часов")
@allure.title("23:59 после открытия — чек проходит; 24:01 — отказ «смена > 24 ч»; закрыть просроченную смену можно")
@allure.severity(allure.severity_level.CRITICAL)
@pytest.mark.parametrize(
    "opened",
    ["2021-03-01T08:00:00", "2021-02-28T23:30:00", "2020-12-31T12:00:00"],
    ids=["morning", "month-end-night", "new-year-noon"],
)
def test_24_hour_boundary(kkt: Kkt, lab, oracle, opened: str) -> None:
    at(lab, opened)
    ensure_shift_closed(kkt)
    open_shift_expecting(oracle, kkt, f"Открыть смену {opened}", to=None)
    lab.clock_advance(hours=23, minutes=59)
    with oracle.step("Через 23:59: чек проходит", **oracle.sale(SUGAR.amount)):
        kkt.sell([SUGAR])
    with oracle.step("Через 24:01: статус «смена > 24 ч», больше ничего", shift=ShiftState.EXPIRED):
        lab.clock_advance(minutes=2)
    with oracle.step("Проверить: чек отклонён, состояние прежнее"), expect_refusal(ShiftExpired):
        kkt.sell([SUGAR])
    with oracle.step("Проверить: просроченную смену можно закрыть", **oracle.shift_closed()):
        kkt.close_shift()
    open_shift_expecting(oracle, kkt, "Новая смена открывается", to=None)
    with oracle.step("Чек в новой смене", **oracle.sale(SUGAR.amount)):
        kkt.sell([SUGAR])


@allure.story("31.12 против 01.01")
@allure.title("Задание на 01.01.2021 не срабатывает 31.12.2020 (даты сравниваются хронологически, не как текст)")
@allure.severity(allure.severity_level.BLOCKER)
def test_year_boundary_is_chronological(kkt: Kkt, lab, hub, oracle) -> None:
    old, new = regimes(kkt)  # the register's regime now, and another one
    task_delivered(kkt, lab, hub, now="2020-12-31T09:00:00", target=new, day=date(2021, 1, 1))
    oracle.watch_hub(hub)
    open_shift_expecting(oracle, kkt, "Открыть 31.12: без перерегистрации", to=None, online=True)
    with oracle.step("Закрыть смену 31.12", **oracle.shift_closed(online=True)):
        kkt.close_shift()
    at(lab, "2021-01-01T09:00:00")
    open_shift_expecting(oracle, kkt, "Открыть 01.01: перерегистрация перед открытием", to=new, online=True)
    del old


# Russia's zones, Kaliningrad to Kamchatka (no DST since 2014, R9.4)
ZONES = {
    "kaliningrad": 2,
    "moscow": 3,
    "samara": 4,
    "yekaterinburg": 5,
    "omsk": 6,
    "krasnoyarsk": 7,
    "irkutsk": 8,
    "yakutsk": 9,
    "vladivostok": 10,
    "magadan": 11,
    "kamchatka": 12,
}


@allure.story("Часовой пояс ККТ против часового пояса Кабинета")
@allure.title("Решает местная дата ККТ: в 23:30 31.12 по местному задания на 01.01 нет, в 00:30 01.01 — есть")
@allure.severity(allure.severity_level.CRITICAL)
@pytest.mark.parametrize("offset", list(ZONES.values()), ids=list(ZONES))
def test_device_local_date_decides(kkt: Kkt, lab, hub, oracle, offset: int) -> None:
    new = regimes(kkt)[1]  # a tax system the register is not on
    allure.dynamic.parameter("часовой пояс", f"UTC+{offset}")
    ensure_shift_closed(kkt)
    lab.zone(offset)
    task_delivered(kkt, lab, hub, now="2020-12-31T20:00:00", target=new, day=date(2021, 1, 1))
    oracle.watch_hub(hub)
    at(lab, "2020-12-31T23:30:00")  # in Moscow it is 01.01 already for a register west of it
    open_shift_expecting(oracle, kkt, f"31.12 23:30 по местному (UTC+{offset}): без перерегистрации", to=None)
    with oracle.step("Закрыть смену", **oracle.shift_closed()):
        kkt.close_shift()
    at(lab, "2021-01-01T00:30:00")  # in Moscow and in UTC it is still 31.12 for a register east of it
    open_shift_expecting(oracle, kkt, f"01.01 00:30 по местному (UTC+{offset}): перерегистрация", to=new)
    with allure.step("Проверить: Кабинет видит местную дату ККТ 01.01"):
        assert hub.status()["local_date"] == "2021-01-01"


@allure.story("Задание пришло во время открытой смены")
@allure.title("Задание, полученное в открытой смене в день даты, ждёт закрытия смены и не прерывает её")
@allure.severity(allure.severity_level.CRITICAL)
def test_task_arriving_inside_open_shift_waits(kkt: Kkt, lab, hub, oracle) -> None:
    old, new = regimes(kkt)  # the register's regime now, and another one
    at(lab, "2021-01-01T09:00:00")
    lab.ofd(True)
    ensure_shift_closed(kkt)
    kkt.open_shift()
    hub.schedule(new, date(2021, 1, 1))
    oracle.watch_hub(hub)
    with oracle.step(
        "ККТ получает задание в открытой смене: ничего не меняется, кроме «получила задание»", hub_task_received=True
    ):
        hub.poll_now()
        hub.poll_now()  # and polls again later in the shift
    with oracle.step("Продажа на старой СНО", **oracle.sale(SUGAR.amount, online=True)):
        kkt.sell([SUGAR], tax_system=old)
    with oracle.step("Закрыть смену: перерегистрации нет", **oracle.shift_closed(online=True)):
        kkt.close_shift()
    open_shift_expecting(oracle, kkt, "Перерегистрация перед следующей сменой", to=new, online=True)


@allure.story("Часы ККТ и таймер ФН (R3.5)")
@allure.title("Часы ККТ убежали на 25 ч: смена по таймеру ФН не просрочена, чек отклонён — время расходится с ФН")
@allure.label("rule", "R3.5")
@allure.severity(allure.severity_level.CRITICAL)
def test_rtc_jump_is_judged_by_the_fn_timer(kkt: Kkt, lab, oracle) -> None:
    at(lab, "2021-03-01T08:00:00")
    ensure_shift_closed(kkt)
    open_shift_expecting(oracle, kkt, "Открыть смену", to=None)
    with oracle.step("Стенд: часы ККТ (не ФН) ушли на 25 ч вперёд — смена по таймеру ФН не просрочена"):
        lab.clock_set(lab.now() + timedelta(hours=25), rtc_only=True)
    with oracle.step("Чек: отказ «время расходится с таймером ФН», ничего не записано"):
        with expect_refusal(FnTimerMismatch):
            kkt.sell([SUGAR])
