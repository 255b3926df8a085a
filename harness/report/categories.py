"""The report's categories: why a result is not green, as a QA engineer sorts it.

Failed results are the register's behaviour (a product defect); broken ones are the lab or the
link, or the harness itself; skipped ones say why they could not run.  Skip reasons start with
one of the prefixes below, which is how the report files them."""

from __future__ import annotations

import re

from harness import errors as _errors

SKIP_CAPABILITY = "Устройство не умеет"  # the model, its firmware or its protocol cannot
SKIP_LAB = "Стенд не умеет"  # no instrument, control channel or hub for this register
SKIP_SAFETY = "Безопасность"  # a destructive scenario on a register not proven sacrificial
SKIP_REAL_TIME = "Нужно реальное время или оператор"

PRODUCT_DEFECT = "Дефект ККТ (поведение не соответствует ожиданию)"
LINK_BROKEN = "Стенд/связь: нет ответа или ошибка канала"
HARNESS_ERROR = "Ошибка стенда (harness)"
SKIPPED_CAPABILITY = "Пропущено: устройство не умеет"
SKIPPED_SAFETY = "Пропущено: безопасность (нужна жертвенная ККТ)"
SKIPPED_REAL_TIME = "Пропущено: нужно реальное время или оператор"


def _class_names(base: type) -> list[str]:
    """``base`` and all its subclasses defined so far (allure-pytest puts ``Type: text``)."""
    names: set[str] = set()
    stack = [base]
    while stack:
        cls = stack.pop()
        if cls.__name__ not in names:
            names.add(cls.__name__)
            stack.extend(cls.__subclasses__())
    return sorted(names)


def _literal(text: str) -> str:
    """``text`` as a regex literal that Python and JavaScript read alike (no ``\\ `` escapes)."""
    return re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\1", text)


def _alternatives(required: list[str], classes: list[str]) -> str:
    """``A|B`` (each matched anywhere in a message, over lines) for the required words plus the
    class names they do not already cover."""
    words = list(required)
    for name in classes:
        if not any(word in name for word in words):
            words.append(name)
    return "|".join(rf"[\s\S]*{_literal(word)}[\s\S]*" for word in words)


def _prefixed(*prefixes: str) -> str:
    return "|".join(rf"[\s\S]*{_literal(prefix)}:[\s\S]*" for prefix in prefixes)


def categories() -> list[dict[str, object]]:
    """Category rules in Allure's format; the first that matches a result wins."""
    # allure-pytest's message is "<ExceptionClassName>: <text>" (no module), so subclasses
    # whose names do not contain the base name (LinkCorrupted, UsageError...) are listed too.
    # InstrumentError (a bench supply that does not answer) is named: its module may not be imported yet
    link = _alternatives(
        ["LinkError", "Timeout", "Disconnected", "OutcomeUnknown", "InstrumentError"], _class_names(_errors.LinkError)
    )
    return [
        {"name": PRODUCT_DEFECT, "matchedStatuses": ["failed"]},
        {"name": LINK_BROKEN, "matchedStatuses": ["broken"], "messageRegex": link},
        {"name": HARNESS_ERROR, "matchedStatuses": ["broken"]},
        {"name": SKIPPED_SAFETY, "matchedStatuses": ["skipped"], "messageRegex": _prefixed(SKIP_SAFETY)},
        {"name": SKIPPED_REAL_TIME, "matchedStatuses": ["skipped"], "messageRegex": _prefixed(SKIP_REAL_TIME)},
        {"name": SKIPPED_CAPABILITY, "matchedStatuses": ["skipped"]},
    ]
