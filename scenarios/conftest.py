"""Scenario helpers shared by the whole suite (vendor-neutral: device interface + lab only)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import allure

from harness.device import FiscalDocument, Item, Kkt, ShiftState, TaxSystem

SUGAR = Item("Сахар", Decimal("100.00"))


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


def at(lab, when: str) -> None:  # type: ignore[no-untyped-def]
    """Move device local time to ``when`` (ISO) — on emulators free, elsewhere skipped with the reason."""
    lab.clock_set(datetime.fromisoformat(when))


def reregistered_right_before(kkt: Kkt, opened: FiscalDocument, registration_before: int | None) -> bool:
    """True when a new registration report appeared, and it is the document just before this
    shift-open report (``registration_before``: ``kkt.fn().last_registration_fd`` read earlier)."""
    last = kkt.fn().last_registration_fd
    return last != registration_before and last == opened.number - 1


def check_regime(kkt: Kkt, expected: TaxSystem) -> None:
    with allure.step(f"Проверить: зарегистрированная СНО — {expected.title}"):
        actual = kkt.fn().tax_systems
        assert actual == expected, f"СНО в регистрации {actual.title}, ожидалась {expected.title}"


def attach_note(title: str, text: str) -> None:
    allure.attach(text, title, allure.attachment_type.TEXT)


def task_delivered(kkt: Kkt, lab, hub, *, now: str, target: TaxSystem, day: date) -> None:  # type: ignore[no-untyped-def]
    """Device local time ``now``, OFD online, shift closed, and a Кабинет task to ``target`` from
    ``day`` delivered to the register."""
    at(lab, now)
    lab.ofd(True)
    ensure_shift_closed(kkt)
    hub.schedule(target, day)
    hub.poll_now()
