"""Отложенная перерегистрация Dreamkas: примеры из материалов Dreamkas, даты на границах месяцев
и лет, порог прошивки (domain-rules.md §6, R6.0–R6.3)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import allure
import pytest

from harness import families
from harness.device import Kkt, TaxSystem
from harness.lab import Lab
from harness.oracle import Oracle
from harness.versions import parse_version

from .conftest import SUGAR, at, ensure_shift_closed, open_shift_expecting, regimes, task_delivered, with_setting

pytestmark = [
    allure.epic("Отложенная перерегистрация"),
    allure.feature("Штатные пути"),
    allure.label("rule", "R6.3"),
    pytest.mark.destructive,
]


def day_with_shift(kkt: Kkt, lab: Lab, oracle: Oracle, closed: datetime, regime: TaxSystem) -> None:
    """A working day before the task's date: a shift with a sale on ``regime``, closed at ``closed``.
    The shift opens right before it closes: inside an open shift a real register's time passes
    only for real, and what the rule looks at is the closing time, not the opening one."""
    at(lab, closed.isoformat())
    open_shift_expecting(oracle, kkt, f"Открыть смену {closed:%d.%m %H:%M}: без перерегистрации", to=None)
    with oracle.step(f"Продажа на {regime.title}", **oracle.sale(SUGAR.amount)):
        kkt.sell([SUGAR], tax_system=regime)
    with oracle.step(f"Закрыть смену {closed:%d.%m %H:%M}: до даты задания СНО прежняя", **oracle.shift_closed()):
        kkt.close_shift()


@allure.story("Пример 1: дата 31.12, закрыта 31.12 20:00, открыта 01.01 12:00")
@allure.title("Задание на 31.12: перерегистрация перед открытием 01.01 12:00")
@allure.severity(allure.severity_level.BLOCKER)
def test_example_1(kkt: Kkt, lab, hub, oracle) -> None:
    new = regimes(kkt)[1]  # a tax system the register is not on
    ensure_shift_closed(kkt)
    at(lab, "2020-12-31T19:58:00")
    lab.ofd(True)
    kkt.open_shift()
    hub.schedule(new, date(2020, 12, 31))  # the task arrives inside the open shift of its own date
    hub.poll_now()
    oracle.watch_hub(hub)
    with oracle.step("Закрыть смену ~20:00: внутри смены перерегистрации нет", **oracle.shift_closed(online=True)):
        kkt.close_shift()  # about 20:00 (a real register's time inside a shift passes only for real)
    at(lab, "2021-01-01T12:00:00")
    open_shift_expecting(
        oracle, kkt, "Открыть 01.01 12:00: отчёт о перерегистрации перед отчётом об открытии", to=new, online=True
    )
    with allure.step("Проверить: Кабинет — «обновлена», «получила задание», «перерегистрирована»"):
        status = hub.status()
        assert status["updated"] and status["task_received"] and status["reregistered"]


# the task's date D: the shift of the day before closes at 20:00 and changes nothing, the first
# open on D re-registers.  Year and month boundaries (text comparison of dd.mm.yyyy gets them
# wrong), a leap day, and dates whose day and month read swapped give another valid date
DATES = [  # (id, the date, what it exercises)
    ("year", date(2021, 1, 1), "граница года"),
    ("march", date(2021, 3, 1), "граница месяца после 28.02"),
    ("may", date(2021, 5, 1), "граница месяца: 01.05 < 30.04 как текст"),
    ("leap", date(2024, 2, 29), "високосный день"),
    ("day-month-later", date(2021, 2, 3), "день≠месяц: 03.02, наоборот — 02.03"),
    ("day-month-earlier", date(2021, 3, 2), "день≠месяц: 02.03, наоборот — 03.02"),
    ("month-end", date(2022, 1, 31), "конец месяца"),
]


# explicit opening on every date; the first receipt opening the shift (R3.8) on a few
EXAMPLE_2 = [(d, w, "explicit") for _, d, w in DATES] + [
    (date(2021, 1, 1), "граница года", "by-receipt"),
    (date(2021, 3, 2), "день≠месяц: 02.03, наоборот — 03.02", "by-receipt"),
]
EXAMPLE_2_IDS = [i for i, _, _ in DATES] + ["year-by-receipt", "day-month-earlier-by-receipt"]


@allure.story("Пример 2: задание на дату D, смена D−1 закрыта в 20:00, открыта D в 12:00")
@allure.title("Задание на дату D: перерегистрация перед первым открытием в D, не раньше")
@allure.severity(allure.severity_level.BLOCKER)
@pytest.mark.parametrize(("day", "why", "opened"), EXAMPLE_2, ids=EXAMPLE_2_IDS)
def test_example_2(kkt: Kkt, lab, hub, oracle, day: date, why: str, opened: str) -> None:
    old, new = regimes(kkt)  # the register's regime now, and another one
    eve = datetime.combine(day - timedelta(days=1), datetime.min.time())
    if day.year > 2021:  # a ФН that outlives the date also on ОСН (its term shortens, R2.4)
        ensure_shift_closed(kkt)
        at(lab, (eve + timedelta(hours=7)).isoformat())
        lab.fn_setup(activated=eve - timedelta(days=60))
    if opened == "by-receipt":
        with_setting(kkt, lab, "auto_open_shift", "1")
    task_delivered(kkt, lab, hub, now=(eve + timedelta(hours=7)).isoformat(), target=new, day=day)
    oracle.watch_hub(hub)
    day_with_shift(kkt, lab, oracle, eve + timedelta(hours=20), old)
    at(lab, f"{day.isoformat()}T12:00:00")
    if opened == "explicit":
        open_shift_expecting(oracle, kkt, f"Открыть {day:%d.%m.%Y} 12:00: перерегистрация перед открытием", to=new)
        return
    with oracle.step(
        f"Первый чек {day:%d.%m.%Y} 12:00 открывает смену: перерегистрация, открытие смены, чек на новой СНО",
        **oracle.opened_by_receipt(SUGAR.amount, reregistered_to=new, hub=True),
    ):
        kkt.sell([SUGAR])


@allure.story("Пример 3: круглосуточный магазин, закрыта 31.12 23:50, открыта 01.01 00:10")
@allure.title("Задание на 01.01: перерегистрация перед открытием в 00:10")
@allure.severity(allure.severity_level.BLOCKER)
def test_example_3_round_the_clock(kkt: Kkt, lab, hub, oracle) -> None:
    old, new = regimes(kkt)  # the register's regime now, and another one
    task_delivered(kkt, lab, hub, now="2020-12-31T00:05:00", target=new, day=date(2021, 1, 1))
    oracle.watch_hub(hub)
    day_with_shift(kkt, lab, oracle, datetime(2020, 12, 31, 23, 50), old)
    at(lab, "2021-01-01T00:10:00")
    open_shift_expecting(oracle, kkt, "Открыть 01.01 00:10: перерегистрация перед открытием", to=new)


def gate_variant(threshold: str, variant: str) -> tuple[str, bool] | None:
    """A firmware version around the gate ``threshold`` and whether it is enough; None when the
    variant does not exist for this gate.  The text traps have parts of other digit counts: as
    text they compare the other way round ("2.9.0" > "2.26.0", "2.126.0" < "2.26.0")."""
    major, minor, patch = parse_version(threshold)
    versions: dict[str, tuple[str, bool] | None] = {
        "ниже: минор −1": (f"{major}.{minor - 1}.{patch}", False) if minor else None,
        "ниже: патч −1": (f"{major}.{minor}.{patch - 1}", False) if patch else None,
        "ниже, как текст выше: однозначный минор": (f"{major}.9.0", False) if minor >= 10 else None,
        "ниже, как текст выше: мажор −1": (f"{major - 1}.99.99", False) if major >= 10 else None,
        "порог": (threshold, True),
        "выше: патч +1": (f"{major}.{minor}.{patch + 1}", True),
        "выше, как текст ниже: трёхзначный минор": (f"{major}.1{minor:02d}.0", True),
        "выше: следующий мажор": (f"{major + 1}.0.0", True),
    }
    return versions[variant]


GATE_VARIANTS = {  # id → variant (gate_variant's keys)
    "below-minor": "ниже: минор −1",
    "below-patch": "ниже: патч −1",
    "below-one-digit-minor": "ниже, как текст выше: однозначный минор",
    "below-major": "ниже, как текст выше: мажор −1",
    "at": "порог",
    "above-patch": "выше: патч +1",
    "above-three-digit-minor": "выше, как текст ниже: трёхзначный минор",
    "above-major": "выше: следующий мажор",
}


@allure.story("Порог прошивки")
@allure.title("Задание получает и применяет только прошивка не ниже порога (версии сравниваются как числа)")
@allure.severity(allure.severity_level.CRITICAL)
@pytest.mark.parametrize("variant", list(GATE_VARIANTS.values()), ids=list(GATE_VARIANTS))
def test_firmware_gate(kkt: Kkt, lab, hub, oracle, variant: str) -> None:
    old, new = regimes(kkt)  # the register's regime now, and another one
    threshold = families.model(kkt.model).rereg_min_firmware
    if threshold is None:
        pytest.skip(f"Устройство не умеет: у {kkt.model} нет порога прошивки для отложенной перерегистрации")
    chosen = gate_variant(threshold, variant)
    if chosen is None:
        pytest.skip(f"Вариант «{variant}» не существует для порога {threshold}")
    version, enough = chosen
    allure.dynamic.parameter("прошивка", version)
    at(lab, "2021-01-01T08:00:00")
    lab.ofd(True)
    ensure_shift_closed(kkt)
    lab.firmware(version)
    hub.poll_now()
    hub.schedule(new, date(2021, 1, 1))
    hub.poll_now()
    oracle.watch_hub(hub)
    with allure.step(f"Проверить: прошивка {version} — Кабинет видит «обновлена»: {'да' if enough else 'нет'}"):
        status = hub.status()
        assert status["updated"] is enough and status["task_received"] is enough
    open_shift_expecting(
        oracle,
        kkt,
        f"Открыть смену на прошивке {version}: " + ("перерегистрация" if enough else "СНО прежняя"),
        to=new if enough else None,
        online=True,
    )
    if not enough:
        with oracle.step("Закрыть смену", **oracle.shift_closed(online=True)):
            kkt.close_shift()
        lab.firmware(threshold)
        hub.poll_now()
        open_shift_expecting(
            oracle,
            kkt,
            f"После обновления до {threshold}: перерегистрация",
            to=new,
            online=True,
            hub_updated=True,
            hub_task_received=True,
        )
    with allure.step("Проверить: Кабинет — «обновлена», «получила задание», «перерегистрирована»"):
        status = hub.status()
        assert status["updated"] and status["task_received"] and status["reregistered"]
    del old
