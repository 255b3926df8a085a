"""Every command of the Pirit manual, and which firmware edition has it: pure data.

Source: the vendor's manual, dreamkas/pirit_documentation ``documentation_pirit_fm.md`` (reference
``protocols.md`` S1).  That one file generates six editions — Пирит 2Ф, FM16 (Вики Принт, the
printer inside Дримкас Старт) and punix (the fisGo Pirit core of Касса Ф and Дримкас-Ф), each for
FFD 1.05 and FFD 1.2 — and marks each passage with the editions it belongs to.  This table
records, for each command heading and each sub-request, the editions whose manual lists it, so

* the emulator answers a command its model's manual lacks exactly as that firmware does: unknown
  command 0x02; a sub-request it lacks: bad parameter 0x03 (:func:`available`);
* the README's conformance table is generated from it and from the handlers the emulator has
  (``python -m devices.conformance``).

Commands the manual dropped (0x9E, 0x9F, 0xA5: documented until the edition of 2021-02) are kept
with ``dropped=True``: firmware of that time serves them, and so does the emulator.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

PIRIT2F, FM16, PUNIX = "pirit2f", "fm16", "punix"
EDITIONS: tuple[str, ...] = (PIRIT2F, FM16, PUNIX)
EDITION_TITLES = {PIRIT2F: "Пирит 2Ф", FM16: "FM16 (Вики Принт)", PUNIX: "punix (fisGo)"}
ALL = frozenset(EDITIONS)
NOT_FM16 = frozenset({PIRIT2F, PUNIX})


@dataclass(frozen=True)
class Sub:
    """A sub-request (the first field of 0x01, 0x02, 0x03, 0x05, 0x06, 0x78, 0x79)."""

    number: int
    title: str
    editions: frozenset[str] = ALL
    ffd12: bool = False  # only in the FFD 1.2 editions


@dataclass(frozen=True)
class Command:
    code: int
    title: str  # the manual's heading
    editions: frozenset[str] = ALL
    ffd12: bool = False  # only in the FFD 1.2 editions
    subs: tuple[Sub, ...] = ()
    dropped: bool = False  # documented in editions before 2021-02 only

    def sub(self, number: int) -> Sub | None:
        return next((s for s in self.subs if s.number == number), None)


def _subs(
    *rows: tuple[int, str] | tuple[int, str, frozenset[str]] | tuple[int, str, frozenset[str], bool],
) -> tuple[Sub, ...]:
    return tuple(Sub(*row) for row in rows)


_FM16_ONLY = frozenset({FM16})
_PUNIX_ONLY = frozenset({PUNIX})

COMMANDS_LIST: tuple[Command, ...] = (
    Command(0x00, "Запрос флагов статуса ККТ"),
    Command(
        0x01,
        "Запрос сменных счетчиков и регистров",
        subs=_subs(
            (1, "номер текущей смены"),
            (2, "номер следующего чека"),
            (3, "суммы продаж по типам платежа"),
            (4, "количество оплат по продажам"),
            (5, "суммы возвратов по типам платежа"),
            (6, "количество оплат по возвратам"),
            (7, "количество чеков по типам операций"),
            (8, "суммы по аннулированным, отложенным, внесениям, изъятиям"),
            (9, "суммы по скидкам"),
            (10, "суммы налогов по продажам"),
            (11, "суммы налогов по возвратам"),
            (12, "данные последнего X/Z отчёта"),
            (13, "суммы по отделам по продажам"),
            (14, "суммы по отделам по возвратам"),
            (15, "количество чеков покупок и возвратов покупок"),
            (16, "суммы покупок по типам платежа"),
            (17, "суммы возвратов покупок по типам платежа"),
            (18, "данные по коррекциям"),
        ),
    ),
    Command(
        0x02,
        "Запрос сведений о ККТ",
        subs=_subs(
            (1, "заводской номер ККТ"),
            (2, "идентификатор прошивки"),
            (3, "ИНН"),
            (4, "регистрационный номер ККТ"),
            (5, "дата и время последней фискальной операции"),
            (6, "дата регистрации / перерегистрации"),
            (7, "сумма наличных в денежном ящике"),
            (8, "номер следующего документа"),
            (9, "номер смены регистрации"),
            (10, "номер следующего X отчёта"),
            (11, "текущий операционный счётчик"),
            (12, "нарастающий итог"),
            (14, "дата окончания временного ресурса ФН"),
            (15, "тип прошивки"),
            (16, "размер бумаги текущего дизайна"),
            (17, "дата и время открытия смены"),
            (18, "количество символов в строке", _FM16_ONLY),
            (19, "регистр CID SD карты", _FM16_ONLY),
            (20, "регистр CSD SD карты", _FM16_ONLY),
            (21, "модель устройства"),
            (22, "маска поддерживаемых интерфейсов", _FM16_ONLY),
            (23, "система налогообложения и режим работы"),
            (24, "максимум дополнительных строк в начале и конце чека"),
            (40, "состояние перехода на НДС 20%", _FM16_ONLY),
            (70, "рабочий идентификатор прошивки"),
            (71, "рабочий идентификатор wifi", _FM16_ONLY, True),
        ),
    ),
    Command(
        0x03,
        "Запрос данных по чеку",
        subs=_subs((1, "счётчики текущего документа"), (2, "данные последнего закрытого чека")),
    ),
    Command(0x04, "Запрос состояния печатающего устройства (ПУ)"),
    Command(
        0x05,
        "Запрос сервисной информации",
        subs=_subs(
            (1, "напряжение питания", NOT_FM16),
            (2, "температура термоголовки", NOT_FM16),
            (3, "количество отрезов резчика", NOT_FM16),
            (4, "ресурс термоголовки", NOT_FM16),
            (5, "обнулить количество отрезов резчика", NOT_FM16),
            (6, "обнулить ресурс термоголовки", NOT_FM16),
            (7, "напряжение на батарейке"),
            (8, "количество отрезов резчика (необнуляемое)", NOT_FM16),
            (9, "ресурс термоголовки (необнуляемый)", NOT_FM16),
            (10, "тип ПУ", _FM16_ONLY),
            (11, "версия BIOS ПУ", _FM16_ONLY),
            (12, "серийный номер ПУ", _FM16_ONLY),
            (13, "дата изменения BIOS ПУ", _FM16_ONLY),
        ),
    ),
    Command(
        0x06,
        "Запрос расширенной информации об ошибках",
        subs=_subs((1, "расширенный код последней ошибки"), (2, "маска блокировки ФН")),
    ),
    Command(0x10, "Начало работы с ККТ"),
    Command(0x11, "Чтение таблицы настроек"),
    Command(0x12, "Запись таблицы настроек"),
    Command(0x13, "Чтение даты/времени ККТ"),
    Command(0x14, "Запись даты/времени ККТ"),
    Command(0x15, "Программировать логотип"),
    Command(0x16, "Удалить логотип"),
    Command(0x17, "Загрузить дизайн чека"),
    Command(0x18, "Загрузить графическое изображение", NOT_FM16),
    Command(0x19, "Поиск графического изображения", NOT_FM16),
    Command(0x20, "Сформировать отчет без гашения (X-отчет)"),
    Command(0x21, "Сформировать отчет о закрытии смены"),
    Command(0x23, "Открыть смену"),
    Command(0x24, "Установить дополнительные реквизиты позиции"),
    Command(0x25, "Внесение дополнительных реквизитов в отчеты", ffd12=True),
    Command(0x30, "Открыть документ"),
    Command(0x31, "Завершить документ"),
    Command(0x32, "Аннулировать документ"),
    Command(0x33, "Отложить документ"),
    Command(0x34, "Отрезать документ"),
    Command(0x40, "Печать текста"),
    Command(0x41, "Печатать штрих-код"),
    Command(0x42, "Добавить товарную позицию"),
    Command(0x44, "Подытог"),
    Command(0x45, "Скидка на чек"),
    Command(0x47, "Оплата"),
    Command(0x48, "Внесение / изъятие суммы"),
    Command(0x49, "Печать реквизита"),
    Command(0x50, "Зарегистрировать сумму по отделу"),
    Command(0x52, "Сравнить сумму по чеку"),
    Command(0x53, "Открыть копию чека"),
    Command(0x54, "Обнулить наличные в денежном ящике"),
    Command(0x55, "Печать графики в документе"),
    Command(0x56, "Печать загруженной картинки", NOT_FM16),
    Command(0x57, "Печать реквизита для ОФД"),
    Command(0x58, "Открытие чека коррекции"),
    Command(0x59, "Формирование и печать отчета о текущем состоянии расчетов"),
    Command(0x60, "Регистрация / перерегистрация"),
    Command(0x63, "Технологическое обнуление"),
    Command(0x64, "Установить итог чека"),
    Command(0x67, "Печать изображения в формате PNG", NOT_FM16),
    Command(0x71, "Закрытие ФН"),
    Command(0x73, "Распечатать документ из ФН"),
    Command(
        0x78,
        "Обмен информацией с ФН",
        subs=_subs(
            (1, "номер ФН"),
            (2, "статус ФН"),
            (3, "номер последнего ФД"),
            (4, "дата и время регистрации"),
            (5, "номер ФД последней регистрации"),
            (6, "состояние смены"),
            (7, "состояние обмена с ОФД"),
            (11, "документ из архива ФН"),
            (12, "квитанция ОФД из архива ФН"),
            (13, "количество ФД без квитанции ОФД"),
            (14, "версии ФН и ФФД"),
            (15, "документ из архива ФН в TLV: начало"),
            (16, "документ из архива ФН в TLV: блок"),
            (17, "номер ФД начала смены"),
            (18, "ресурс ФН", _PUNIX_ONLY),
            (19, "последняя регистрация: ФД, ФП, дата, время"),
            (20, "регистрация по номеру в TLV: начало"),
            (21, "регистрация по номеру в TLV: блок"),
            (22, "текущая и максимальная версии ФФД", ALL, True),
            (23, "счётчики ФН", ALL, True),
        ),
    ),
    Command(
        0x79,
        "Команда для работы с кодом маркировки (КМ)",
        ffd12=True,
        subs=_subs(
            (0, "статус обработки КМ"),
            (1, "передача КМ в ФН для проверки"),
            (2, "принятие КМ для включения в документ"),
            (3, "удаление сохранённых КМ в ФН"),
            (6, "состояние передачи уведомлений"),
            (7, "длина уведомления"),
            (8, "блок уведомления"),
            (9, "окончание чтения уведомления"),
            (10, "квитанция ОИСМ на уведомление"),
            (11, "выгрузка уведомлений в автономном режиме"),
            (12, "длина очередного уведомления (автономный режим)"),
            (13, "очередное уведомление (автономный режим)"),
            (14, "подтверждение выгрузки уведомления"),
            (15, "передача КМ для включения в чек"),
            (16, "необходимость проверки КМ в ФН и ОИСМ"),
            (52, "состояние ключей в ФН"),
        ),
    ),
    Command(0x80, "Открыть денежный ящик"),
    Command(0x81, "Получить статус денежного ящика"),
    Command(0x82, "Подать звуковой сигнал"),
    Command(0x85, "Настройки wifi модуля", _FM16_ONLY, ffd12=True),
    Command(0x86, "Информация о wifi модуле", _FM16_ONLY, ffd12=True),
    Command(0x87, "Обновление ККТ по wifi", _FM16_ONLY, ffd12=True),
    Command(0x91, "Чтение блока памяти ККТ"),
    Command(0x93, "Установить скорость обмена"),
    Command(0x94, "Распечатать сервисные данные"),
    Command(0x9E, "Получить текущий URL сервера ОФД", dropped=True),
    Command(0x9F, "Установить URL сервера ОФД", dropped=True),
    Command(0xA0, "Аварийное закрытие смены"),
    Command(0xA1, "Печать копии последнего «Отчета о закрытии смены»"),
    Command(0xA3, "Печать копии «Отчета о регистрации/перерегистрации»"),
    Command(0xA4, "Аварийное закрытие ФН"),
    Command(0xA5, "Проверка доступности сервера ОФД", dropped=True),
    Command(0xA6, "Отправить данные для отчёта cash_info в Кабинет"),
    Command(0xA7, "Отправить данные для отчёта register в Кабинет"),
    Command(0xA8, "Установить флаг регистрации ККТ в Кабинете"),
    Command(0xA9, "Считать флаг регистрации ККТ в Кабинете"),
    Command(0xAA, "Активировать услуги", frozenset({FM16, PUNIX})),
)


def _index(commands: Iterable[Command]) -> Mapping[int, Command]:
    table: dict[int, Command] = {}
    for command in commands:
        if command.code in table:
            raise ValueError(f"command 0x{command.code:02X} is in the catalogue twice")
        table[command.code] = command
    return MappingProxyType(table)


COMMANDS: Mapping[int, Command] = _index(COMMANDS_LIST)


def has_command(code: int, edition: str, ffd: str) -> bool:
    """Does this edition's manual (for this FFD) list the command?"""
    command = COMMANDS.get(code)
    if command is None or edition not in command.editions:
        return False
    return not (command.ffd12 and ffd != "1.2")


def has_sub(code: int, number: int, edition: str, ffd: str) -> bool:
    """Does this edition's manual list the sub-request (False when the command has none)?"""
    command = COMMANDS.get(code)
    sub = command.sub(number) if command is not None else None
    if sub is None or edition not in sub.editions:
        return False
    return not (sub.ffd12 and ffd != "1.2")
