"""Scenario helpers shared by the whole suite (vendor-neutral: device interface + lab only)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import allure

from harness.device import FiscalDocument, Item, Kkt, ShiftState, TaxSystem
from harness.lab import HubLab, Lab

SUGAR = Item("Сахар", Decimal("100.00"))


def regimes(kkt: Kkt) -> tuple[TaxSystem, TaxSystem]:
    """The register's tax system now, and the one a scenario moves it to: ОСН, or УСН доход from ОСН.
    (A fresh emulator starts on УСН доход; a lab register is on whatever its last run left.)"""
    current = kkt.fn().tax_systems
    return current, (TaxSystem.USN_INCOME if TaxSystem.OSN in current else TaxSystem.OSN)


def ensure_shift_closed(kkt: Kkt) -> None:
    """Bring a device to "shift closed, no document" whatever state a previous run left it in."""
    with allure.step("Подготовка: смена закрыта, открытых документов нет"):
        status = kkt.status()
        if status.pending_print:
            kkt.continue_print()
        if status.document_open:
            kkt.cancel_document()
        if kkt.status().shift is not ShiftState.CLOSED:
            kkt.close_shift()


def ensure_shift_open(kkt: Kkt) -> None:
    ensure_shift_closed(kkt)
    with allure.step("Подготовка: открыть смену"):
        kkt.open_shift()


def at(lab: Lab, when: str) -> None:
    """Move device local time to ``when`` (ISO) — on emulators free, elsewhere skipped with the reason."""
    lab.clock_set(datetime.fromisoformat(when))


def reregistered_right_before(kkt: Kkt, opened: FiscalDocument, registration_before: int | None) -> bool:
    """True when a new registration report appeared, and it is the document just before this
    shift-open report (``registration_before``: ``kkt.fn().last_registration_fd`` read earlier)."""
    last = kkt.fn().last_registration_fd
    return last != registration_before and last == opened.number - 1


def open_shift_expecting(kkt: Kkt, title: str, *, reregistered: bool, regime: TaxSystem) -> FiscalDocument:
    """Open a shift; in the step ``title`` check whether a re-registration report came right
    before the shift-open report, and which СНО is in force afterwards."""
    registration = kkt.fn().last_registration_fd
    opened = kkt.open_shift()
    with allure.step(title):
        came = reregistered_right_before(kkt, opened, registration)
        assert came is reregistered, (
            f"отчёт о перерегистрации перед открытием смены: {'есть' if came else 'нет'}, "
            f"ожидалось: {'есть' if reregistered else 'нет'}"
        )
        check_regime(kkt, regime)
    return opened


def check_regime(kkt: Kkt, expected: TaxSystem) -> None:
    with allure.step(f"Проверить: зарегистрированная СНО — {expected.title}"):
        actual = kkt.fn().tax_systems
        assert actual == expected, f"СНО в регистрации {actual.title}, ожидалась {expected.title}"


def attach_note(title: str, text: str) -> None:
    allure.attach(text, title, allure.attachment_type.TEXT)


def task_delivered(kkt: Kkt, lab: Lab, hub: HubLab, *, now: str, target: TaxSystem, day: date) -> None:
    """Device local time ``now``, OFD online, shift closed, and a Кабинет task to ``target`` from
    ``day`` delivered to the register."""
    ensure_shift_closed(kkt)  # first: a real register's clock moves only with the shift closed
    at(lab, now)
    lab.ofd(True)
    hub.schedule(target, day)
    hub.poll_now()
