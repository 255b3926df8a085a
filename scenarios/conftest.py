"""Scenario helpers shared by the whole suite (vendor-neutral: device interface + lab only)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import allure

from harness.device import FiscalDocument, Item, Kkt, ShiftState, TaxSystem
from harness.lab import HubLab, Lab
from harness.oracle import Oracle

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


def with_setting(kkt: Kkt, lab: Lab, name: str, value: str, current: str | None = None) -> None:
    """The register with profile setting ``name`` = ``value``: as it is when ``current`` (what the
    register reports) already says so, else changed by the lab — on a real register skipped with
    the reason."""
    allure.dynamic.parameter(name, value)
    if current != value:
        lab.setting(name, value)


def at(lab: Lab, when: str) -> None:
    """Move device local time to ``when`` (ISO) — on emulators free, elsewhere skipped with the reason."""
    lab.clock_set(datetime.fromisoformat(when))


def open_shift_expecting(
    oracle: Oracle, kkt: Kkt, title: str, *, to: TaxSystem | None, online: bool | None = None, **more: Any
) -> FiscalDocument:
    """Open a shift as the step ``title``: with ``to``, a re-registration report to ``to`` must come
    right before the shift-open report; without, nothing but the shift-open report (the СНО stays).
    ``more``: further changes the step expects (e.g. the Кабинет's statuses)."""
    changes = oracle.shift_opened(online=online, reregistered_to=to, hub=to is not None and oracle.watching_hub)
    with oracle.step(title, **{**changes, **more}):
        return kkt.open_shift()


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
