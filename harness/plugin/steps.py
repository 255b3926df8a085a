"""Every device, lab and hub call a scenario makes is an Allure step with a Russian title."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import allure

from .refusals import note_expected

STEP_TITLES: dict[str, str] = {
    "info": "Прочитать сведения о ККТ",
    "status": "Запросить статус ККТ",
    "fn": "Запросить состояние ФН",
    "ofd_queue": "Запросить очередь документов для ОФД",
    "clock": "Прочитать часы ККТ",
    "set_clock": "Установить часы ККТ",
    "open_shift": "Открыть смену",
    "close_shift": "Закрыть смену (Z-отчёт)",
    "x_report": "Снять X-отчёт",
    "counters": "Запросить счётчики смены",
    "sell": "Пробить чек продажи",
    "cancel_document": "Аннулировать открытый документ",
    "reregister": "Перерегистрировать ККТ",
    "continue_print": "Допечатать прерванный документ",
    "reprint_last": "Повторить печать последнего документа",
    "journal": "Прочитать журнал ККТ",
}
LAB_TITLES: dict[str, str] = {
    "paper": "Стенд: бумага",
    "cover": "Стенд: крышка открыта",
    "ofd": "Стенд: связь с ОФД",
    "clock_set": "Стенд: установить время",
    "clock_advance": "Стенд: прошло времени",
    "power": "Стенд: питание",
    "firmware": "Стенд: прошивка",
    "zone": "Стенд: часовой пояс",
    "defects": "Стенд: дефекты прошивки",
    "fn_setup": "Стенд: подготовить ФН",
    "setting": "Стенд: настройка ККТ",
}
HUB_TITLES: dict[str, str] = {
    "schedule": "Кабинет: создать задание на перерегистрацию",
    "withhold": "Кабинет: придержать задание",
    "status": "Кабинет: статусы ККТ",
    "poll_now": "ККТ: опросить Кабинет",
    "link": "ККТ: связь с Кабинетом",
}


class StepProxy:
    """Wraps every public method of ``target`` in an Allure step titled from ``titles``."""

    def __init__(self, target: Any, titles: dict[str, str]) -> None:
        self._target = target
        self._titles = titles
        self._listeners: list[Callable[[Any], None]] = []  # see every result (the state oracle)
        self._callers: list[Callable[[], None]] = []  # told before every call

    def _listen(self, listener: Callable[[Any], None]) -> None:
        self._listeners.append(listener)

    def _listen_calls(self, caller: Callable[[], None]) -> None:
        self._callers.append(caller)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name.startswith("_") or not callable(value):
            return value
        if name not in self._titles:  # not a report step, but a call the oracle must know of

            @functools.wraps(value)
            def call(*args: Any, **kwargs: Any) -> Any:
                for caller in self._callers:
                    caller()
                return value(*args, **kwargs)

            return call
        title = self._titles[name]

        @functools.wraps(value)
        def step(*args: Any, **kwargs: Any) -> Any:
            refused: BaseException | None = None
            for caller in self._callers:
                caller()
            with allure.step(step_title(title, args, kwargs)):
                try:
                    result = value(*args, **kwargs)
                    for listener in self._listeners:
                        listener(result)
                    return result
                except Exception as exc:
                    if not note_expected(exc):
                        raise
                    refused = exc  # the scenario expects it: a passed step, raised outside it
            raise refused

        return step

    def __repr__(self) -> str:
        return repr(self._target)


def step_title(title: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    parts = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]
    return f"{title}" + (f": {', '.join(parts)}" if parts else "")


def _short(value: Any) -> str:
    if hasattr(value, "title") and hasattr(value, "names") and not callable(value.title):
        return str(value.title)  # TaxSystem
    if hasattr(value, "value") and type(value).__module__.startswith("harness"):
        return str(value.value)  # enums
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    if type(value).__name__ == "Item":
        return f"{value.name} {value.quantity}×{value.price}"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."
