"""The device journal as a Russian QA engineer reads it in the report.

Emulators and drivers keep their journal events in English (a contract of the control channel
and of users' scripts); the report shows them in Russian.  An event without a translation is
shown as it is."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..device import JournalEntry

EVENTS_RU: dict[str, str] = {
    "power on": "включение",
    "re-registered": "перерегистрация",
    "power off": "выключение",
    "start of work": "начало работы",
    "clock set": "часы установлены",
    "lab clock set": "стенд: часы установлены",
    "shift opened": "смена открыта",
    "shift closed": "смена закрыта",
    "X report": "X-отчёт",
    "receipt opened": "чек открыт",
    "receipt closed": "чек закрыт",
    "receipt cancelled": "чек аннулирован",
    "printing interrupted": "печать прервана",
    "paper out": "бумага кончилась",
    "paper": "бумага",
    "cover": "крышка",
    "document lost": "документ потерян",
    "OFD receipt": "квитанция ОФД",
    "OFD link": "связь с ОФД",
    "firmware": "прошивка",
    "defects": "дефекты прошивки",
    "lab ФН": "стенд: ФН",
    "state restored": "состояние восстановлено",
    "emulator error": "ошибка эмулятора",
    "hub": "Кабинет",
    "hub link": "связь с Кабинетом",
    "hub task received": "получено задание Кабинета",
    "hub task withdrawn": "задание Кабинета отозвано",
    "deferred re-registration": "отложенная перерегистрация",
    "deferred re-registration refused": "отложенная перерегистрация отклонена",
    "deferred re-registration failed": "отложенная перерегистрация не удалась",
}

#: A detail that is one state word.
_STATES_RU = {
    "up": "есть",
    "down": "нет",
    "open": "открыта",
    "closed": "закрыта",
    "ok": "есть",
    "out": "нет",
    "near_end": "заканчивается",
}
#: Phrases first (they hold words that alone would read otherwise), then single words.
_PHRASES_RU = [
    (re.compile(r"^runs out after (\d+) lines$"), r"кончится через \1 стр."),
    (re.compile(r"^up \((.*)\)$"), r"есть (\1)"),
    (re.compile(r"^down: "), "нет: "),
    (re.compile(r"^paper ran out while printing$"), "бумага кончилась во время печати"),
    (re.compile(r": paper out$"), ": кончилась бумага"),
    (
        re.compile(r"^open document discarded at power-off \(not committed in the ФН\)$"),
        "открытый документ сброшен при выключении (в ФН не записан)",
    ),
    (re.compile(r"no longer delivered by the hub"), "Кабинет его больше не выдаёт"),
    (re.compile(r"already in force, no-op"), "уже действует, ничего не сделано"),
    (re.compile(r"; will retry$"), "; повтор позже"),
    (re.compile(r"\bvalid until\b"), "действует до"),
    (re.compile(r"\bregistered on\b"), "зарегистрирован на"),
    (re.compile(r"\bregistrations done\b"), "перерегистраций сделано"),
    (re.compile(r"\blast FD\b"), "последний ФД"),
    (re.compile(r"\bregistrations left\b"), "перерегистраций осталось"),
]
_WORDS_RU = {
    "FD": "ФД",
    "shift": "смена",
    "total": "итог",
    "delivered": "доставлен",
    "cashier": "кассир",
    "task": "задание",
    "firmware": "прошивка",
    "unsent": "не отправлено",
    "host": "касса",
    "documents": "документов",
    "document": "документ",
    "activated": "активирован",
    "sale": "продажа",
    "from": "с",
}
_WORD = re.compile(r"\b(" + "|".join(sorted((re.escape(w) for w in _WORDS_RU), key=len, reverse=True)) + r")\b")


def event_ru(event: str) -> str:
    return EVENTS_RU.get(event, event)


def detail_ru(detail: str) -> str:
    if detail in _STATES_RU:
        return _STATES_RU[detail]
    for pattern, replacement in _PHRASES_RU:
        detail = pattern.sub(replacement, detail)
    return _WORD.sub(lambda m: _WORDS_RU[m.group(1)], detail)


def journal_text(entries: Iterable[JournalEntry]) -> str:
    return "\n".join(
        f"{e.at:%d.%m.%Y %H:%M:%S}  {event_ru(e.event)}" + (f": {detail_ru(e.detail)}" if e.detail else "")
        for e in entries
    )
