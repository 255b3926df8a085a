"""A. Нет бумаги (domain-rules.md, scenario matrix A; rules R8.1–R8.4)."""

from __future__ import annotations

from datetime import date

import allure
import pytest

from harness.device import Kkt, PaperState, ShiftState
from harness.errors import NoPaper
from harness.oracle import Satisfies, changed, delta
from harness.plugin import expect_refusal

from .conftest import SUGAR, ensure_shift_closed, ensure_shift_open, regimes, task_delivered

pytestmark = [
    allure.epic("Отказы в работе ККТ"),
    allure.feature("A. Нет бумаги"),
    allure.link("matrix.html#scenario-a", name="Матрица сценариев A"),
    allure.label("rule", "R8.1"),
    allure.label("rule", "R8.2"),
]


@allure.story("Бумага кончилась до начала чека")
@allure.title("Без бумаги ККТ отказывает в новом чеке, ничего не записывая в ФН")
@allure.severity(allure.severity_level.CRITICAL)
def test_idle_refusal(kkt: Kkt, lab, oracle) -> None:
    ensure_shift_open(kkt)
    with oracle.step("Стенд: бумага кончилась — статус «нет бумаги», больше ничего", paper=PaperState.OUT):
        lab.paper(PaperState.OUT)
    with oracle.step("Проверить: чек отклонён с ошибкой «нет бумаги», в ФН и очереди ничего нового"):
        with expect_refusal(NoPaper):
            kkt.sell([SUGAR])
    with oracle.step("Стенд: бумага заправлена", paper=PaperState.OK):
        lab.paper(PaperState.OK)
    with oracle.step("Проверить: после заправки продажа проходит", **oracle.sale(SUGAR.amount)):
        kkt.sell([SUGAR])


@allure.story("Бумага кончилась на печати чека после записи в ФН")
@allure.title("Чек записан в ФН, печать продолжается после заправки, второго документа нет")
@allure.severity(allure.severity_level.BLOCKER)
def test_paper_out_mid_receipt(kkt: Kkt, lab, oracle) -> None:
    ensure_shift_open(kkt)
    lab.ofd(False)  # the receipt must stay in the OFD queue to be seen there
    lab.paper(PaperState.OK, after_lines=3)  # paper ends while the receipt is printed
    with oracle.step(
        "Пробить чек: печать обрывается — чек уже в ФН, в счётчиках и в очереди ОФД, ККТ ждёт допечатки",
        **oracle.sale(SUGAR.amount, online=False),
        pending_print=True,
        paper=PaperState.OUT,
        printed=(),
    ):
        with expect_refusal(NoPaper):
            kkt.sell([SUGAR])
    with oracle.step("Стенд: бумага заправлена — ККТ всё ещё ждёт допечатки", paper=PaperState.OK):
        lab.paper(PaperState.OK)
    with oracle.step("Допечатать: тот же документ, второго ФД нет", **oracle.pending_finished()):
        document = kkt.continue_print()
    with allure.step("Проверить: допечатка вернула номер последнего ФД"):
        assert document is not None and document.number == oracle.steps[-1].after["fd"]
    with oracle.step(
        "Проверить: следующая продажа получает следующий номер ФД", **oracle.sale(SUGAR.amount, online=False)
    ):
        kkt.sell([SUGAR])


@allure.story("Бумага кончилась на печати Z-отчёта")
@allure.title("Смена закрыта в ФН, повтор закрытия только допечатывает, второго Z нет")
@allure.severity(allure.severity_level.CRITICAL)
def test_paper_out_mid_z_report(kkt: Kkt, lab, oracle) -> None:
    ensure_shift_open(kkt)
    lab.paper(PaperState.OK, after_lines=2)
    with oracle.step(
        "Закрыть смену: печать Z обрывается — Z уже в ФН, ККТ требует допечатки",
        fd=delta(1),
        **oracle.queued(1, online=None),
        shift=Satisfies(
            lambda _b, a: a in (ShiftState.OPEN, ShiftState.CLOSED),
            "закрыта в ФН; до допечатки может показываться открытой",
        ),
        shift_opened_at=changed("как и смена"),
        pending_print=True,
        paper=PaperState.OUT,
        printed=(),
    ):
        with expect_refusal(NoPaper):
            kkt.close_shift()
    lab.paper(PaperState.OK)
    with oracle.step(
        "Допечатать: тот же Z, смена закрыта",
        **oracle.pending_finished(),
        shift=ShiftState.CLOSED,
        **oracle.queued(0, online=None),
    ):
        document = kkt.continue_print()
    with allure.step("Проверить: допечатан последний ФД"):
        assert document is not None and document.number == oracle.steps[-1].after["fd"]
    with oracle.step("Проверить: новая смена открывается следующим ФД", **oracle.shift_opened()):
        kkt.open_shift()


@allure.story("Бумага кончилась на печати отчёта об открытии смены")
@allure.title("Смена открыта в ФН, отчёт допечатывается сам после заправки, второго отчёта нет")
@allure.severity(allure.severity_level.CRITICAL)
def test_paper_out_mid_shift_open_report(kkt: Kkt, lab, oracle) -> None:
    ensure_shift_closed(kkt)
    lab.paper(PaperState.OK, after_lines=2)
    with oracle.step(
        "Открыть смену: печать отчёта обрывается — смена уже открыта в ФН",
        **oracle.shift_opened(),
        paper=PaperState.OUT,
        pending_print=changed("ждёт ли ККТ допечатки отчёта, зависит от модели (R8.3)"),
        printed=(),
    ):
        with expect_refusal(NoPaper):
            kkt.open_shift()
    with oracle.step(
        "Стенд: бумага заправлена — отчёт об открытии допечатан сам",
        paper=PaperState.OK,
        **oracle.report_resumed(),
    ):
        lab.paper(PaperState.OK)
    with oracle.step("Продажа в этой смене", **oracle.sale(SUGAR.amount)):
        kkt.sell([SUGAR])


@allure.story("Бумага кончилась на печати отчёта о перерегистрации")
@allure.title("Перерегистрация засчитана один раз, повтор не создаёт второго отчёта")
@allure.severity(allure.severity_level.BLOCKER)
@pytest.mark.destructive
def test_paper_out_mid_reregistration_report(kkt: Kkt, lab, oracle) -> None:
    ensure_shift_closed(kkt)
    target = regimes(kkt)[1]
    lab.ofd(True)
    lab.paper(PaperState.OK, after_lines=2)
    with oracle.step(
        f"Перерегистрировать на {target.title}: печать отчёта обрывается — перерегистрация уже в ФН",
        **oracle.reregistered(target, online=True),
        paper=PaperState.OUT,
        pending_print=changed("ждёт ли ККТ допечатки отчёта, зависит от модели (R8.3)"),
        printed=(),
    ):
        with expect_refusal(NoPaper):
            kkt.reregister(target)
    with oracle.step(
        "Стенд: бумага заправлена — отчёт допечатывается сам, второго отчёта нет",
        paper=PaperState.OK,
        **oracle.report_resumed(),
    ):
        lab.paper(PaperState.OK)
    with oracle.step("Допечатать: печатать нечего, ничего не меняется"):
        kkt.continue_print()
    with oracle.step("Проверить: смена открывается следующим ФД", **oracle.shift_opened(online=True)):
        kkt.open_shift()


@allure.story("Бумага кончилась на печати отчёта об отложенной перерегистрации")
@allure.title("Задание Кабинета выполнено один раз: после заправки нет повторной перерегистрации")
@allure.severity(allure.severity_level.BLOCKER)
@pytest.mark.destructive
def test_paper_out_mid_deferred_reregistration(kkt: Kkt, lab, hub, oracle) -> None:
    new = regimes(kkt)[1]  # a tax system the register is not on
    task_delivered(kkt, lab, hub, now="2021-01-01T09:00:00", target=new, day=date(2021, 1, 1))
    oracle.watch_hub(hub)
    lab.paper(PaperState.OK, after_lines=2)
    with oracle.step(
        "Открыть смену: ККТ перерегистрируется, печать отчёта обрывается; Кабинет видит «перерегистрирована»",
        **oracle.reregistered(new, online=True),
        paper=PaperState.OUT,
        pending_print=changed("ждёт ли ККТ допечатки отчёта, зависит от модели (R8.3)"),
        printed=(),
        **oracle.task_done(new),
    ):
        with expect_refusal(NoPaper):
            kkt.open_shift()
    with oracle.step(
        "Стенд: бумага заправлена — отчёт допечатан",
        paper=PaperState.OK,
        **oracle.report_resumed(),
    ):
        lab.paper(PaperState.OK)
    with oracle.step("Открыть смену: без второй перерегистрации", **oracle.shift_opened(online=True)):
        kkt.open_shift()


@allure.story("Бумага на исходе")
@allure.title("Датчик «бумага заканчивается» только предупреждает и не блокирует продажу")
@allure.severity(allure.severity_level.NORMAL)
def test_near_end_only_warns(kkt: Kkt, lab, oracle) -> None:
    ensure_shift_open(kkt)
    lab.paper(PaperState.NEAR_END)
    with oracle.step("Проверить: продажа проходит и печатается", **oracle.sale(SUGAR.amount)):
        kkt.sell([SUGAR])


@allure.story("Отложенная допечатка и перезагрузка")
@allure.title("Недопечатанный чек переживает выключение питания и допечатывается после включения")
@allure.severity(allure.severity_level.CRITICAL)
def test_pending_print_survives_power_cycle(kkt: Kkt, lab, oracle) -> None:
    ensure_shift_open(kkt)
    lab.paper(PaperState.OK, after_lines=3)
    with oracle.step(
        "Пробить чек: печать обрывается после записи в ФН",
        **oracle.sale(SUGAR.amount),
        pending_print=True,
        paper=PaperState.OUT,
        printed=(),
    ):
        with expect_refusal(NoPaper):
            kkt.sell([SUGAR])
    with oracle.step("Выключить и включить питание: ККТ всё ещё ждёт допечатки, в ФН ничего не изменилось"):
        lab.power("cycle")
        kkt.connect()
    lab.paper(PaperState.OK)
    with oracle.step("Допечатать: тот же документ", **oracle.pending_finished()):
        kkt.continue_print()
