"""Expected refusals: a scenario that expects the register to refuse reads, in the report, as a
passed check ("ожидаемый отказ: нет бумаги"), not as a red step inside a green test; and a
refusal that did not come fails in words."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

import allure
import pytest

from ..errors import DeviceError, ErrorKind

KIND_RU: dict[ErrorKind, str] = {
    ErrorKind.NO_PAPER: "нет бумаги",
    ErrorKind.COVER_OPEN: "открыта крышка",
    ErrorKind.PRINTER_NOT_READY: "принтер не готов",
    ErrorKind.SHIFT_EXPIRED: "смена превысила 24 часа",
    ErrorKind.SHIFT_OPEN: "смена открыта",
    ErrorKind.SHIFT_CLOSED: "смена закрыта",
    ErrorKind.DOCUMENT_OPEN: "открыт документ",
    ErrorKind.DOCUMENT_NOT_OPEN: "документ не открыт",
    ErrorKind.DOCUMENT_STATE: "неверное состояние документа",
    ErrorKind.PENDING_PRINT: "документ не допечатан",
    ErrorKind.FN_EXPIRED: "срок ФН истёк",
    ErrorKind.FN_FULL: "архив ФН заполнен",
    ErrorKind.FN_MISSING: "нет ФН",
    ErrorKind.FN_FAILURE: "сбой ФН",
    ErrorKind.FN_CRYPTO_EXHAUSTED: "ресурс криптосопроцессора ФН исчерпан",
    ErrorKind.FN_TIMER_MISMATCH: "часы ККТ расходятся с таймером ФН",
    ErrorKind.OFD_TIMEOUT: "документ не передан в ОФД больше 30 дней",
    ErrorKind.OFD_STORAGE_FULL: "переполнена очередь ОФД",
    ErrorKind.UNSENT_DOCUMENTS: "есть неотправленные документы",
    ErrorKind.TAX_SYSTEM_NOT_REGISTERED: "СНО не зарегистрирована",
    ErrorKind.REGISTRATION_LIMIT: "исчерпан лимит перерегистраций",
    ErrorKind.NO_CHANGES: "нет изменений в параметрах регистрации",
    ErrorKind.NOT_REGISTERED: "ККТ не зарегистрирована",
    ErrorKind.ALREADY_REGISTERED: "ККТ уже зарегистрирована",
    ErrorKind.CLOCK_BEHIND_LAST_DOCUMENT: "время раньше последнего документа",
    ErrorKind.CLOCK_CONFIRM_REQUIRED: "нужно подтвердить перевод часов",
    ErrorKind.CLOCK_MISMATCH: "часы ККТ и кассы расходятся",
    ErrorKind.NOT_INITIALISED: "не выполнено «начало работы»",
    ErrorKind.NOT_ENOUGH_CASH: "недостаточно наличных",
    ErrorKind.WRONG_MODE: "неверный режим",
    ErrorKind.WRONG_PASSWORD: "неверный пароль",
    ErrorKind.BAD_PARAMETER: "неверный параметр",
    ErrorKind.UNKNOWN_COMMAND: "неизвестная команда",
    ErrorKind.DEVICE_BUSY: "ККТ занята",
    ErrorKind.FATAL: "фатальная ошибка",
    ErrorKind.UNSUPPORTED: "модель этого не умеет",
    ErrorKind.OTHER: "отказ",
}


def refusal_name(kind: type[BaseException]) -> str:
    """«нет бумаги» for NoPaper; the class name for anything that is not a register's refusal."""
    if isinstance(kind, type) and issubclass(kind, DeviceError) and kind is not DeviceError:
        return f"«{KIND_RU[kind.kind]}»"
    return kind.__name__


def describe_refusal(exc: BaseException) -> str:
    if isinstance(exc, DeviceError):
        return f"«{KIND_RU.get(exc.kind, exc.kind.value)}» ({exc})"
    return f"{type(exc).__name__}: {exc}"


@dataclass
class Expectation:
    kinds: tuple[type[BaseException], ...]
    match: str | None = None
    value: BaseException | None = field(default=None)

    def covers(self, exc: BaseException) -> bool:
        if not isinstance(exc, self.kinds):
            return False
        return self.match is None or re.search(self.match, str(exc)) is not None

    @property
    def names(self) -> str:
        return " или ".join(refusal_name(kind) for kind in self.kinds)


EXPECTED: ContextVar[Expectation | None] = ContextVar("kkt_hil_expected_refusal", default=None)


@contextlib.contextmanager
def expect_refusal(*kinds: type[BaseException], match: str | None = None) -> Iterator[Expectation]:
    """Like ``pytest.raises``: the block must end in one of ``kinds`` (and ``match`` the message).
    The device step that raised it reads as passed, with the refusal it answered.  No refusal is
    a failure in words; any other error goes through unchanged."""
    if not kinds:
        raise TypeError("expect_refusal needs at least one exception class")
    expectation = Expectation(kinds, match)
    token = EXPECTED.set(expectation)
    try:
        yield expectation
    except BaseException as exc:
        if not expectation.covers(exc):
            raise
        expectation.value = exc
        return
    finally:
        EXPECTED.reset(token)
    pytest.fail(f"ожидался отказ ККТ {expectation.names}, а операция выполнена без ошибки", pytrace=False)


def note_expected(exc: BaseException) -> bool:
    """Inside a device step: is ``exc`` the refusal the scenario expects?  If so, say so in a
    passed sub-step."""
    expectation = EXPECTED.get()
    if expectation is None or not expectation.covers(exc):
        return False
    with allure.step(f"Ожидаемый отказ ККТ: {describe_refusal(exc)}"):
        pass
    return True
