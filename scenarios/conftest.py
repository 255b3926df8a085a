"""Scenario helpers shared by the whole suite (vendor-neutral: device interface + lab only)."""

from __future__ import annotations

import allure

from harness.device import Kkt, ShiftState


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
