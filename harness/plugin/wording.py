"""Failure messages of scenarios in words: "получено 5, ожидалось 6", not Python internals.

Applies only inside scenarios that run on a register (the ``kkt_device`` fixture), so the
stand's own tests keep pytest's detailed diffs."""

from __future__ import annotations

import enum
from contextvars import ContextVar
from typing import Any

IN_SCENARIO: ContextVar[bool] = ContextVar("kkt_hil_in_scenario", default=False)


#: The register's states as a QA engineer names them (enums without a title of their own).
STATES_RU = {
    ("ShiftState", "closed"): "смена закрыта",
    ("ShiftState", "open"): "смена открыта",
    ("ShiftState", "expired"): "смена просрочена (> 24 ч)",
    ("PaperState", "ok"): "бумага есть",
    ("PaperState", "near_end"): "бумага заканчивается",
    ("PaperState", "out"): "нет бумаги",
}


def shown(value: Any) -> str:
    title = getattr(value, "title", None)
    if isinstance(value, enum.Enum) and (type(value).__name__, value.value) in STATES_RU:
        return STATES_RU[type(value).__name__, value.value]
    if isinstance(value, enum.Enum):
        return str(title) if isinstance(title, str) else str(value.value)
    if value is None:
        return "нет (None)"
    if isinstance(value, bool):
        return "да" if value else "нет"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 200 else text[:197] + "..."


def explain(op: str, left: Any, right: Any) -> list[str] | None:
    """The explanation lines for ``assert left <op> right`` (actual on the left)."""
    got, want = shown(left), shown(right)
    if op in ("==", "is"):
        return [f"получено {got}, ожидалось {want}"]
    if op in ("!=", "is not"):
        return [f"получено {got}, а ожидалось любое другое значение"]
    if op == "in":
        return [f"{got} не найдено в {want}"]
    if op == "not in":
        return [f"{got} не должно быть в {want}"]
    words = {"<": "меньше", "<=": "не больше", ">": "больше", ">=": "не меньше"}
    if op in words:
        return [f"получено {got}, ожидалось {words[op]} {want}"]
    return None
