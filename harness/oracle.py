"""The full-state oracle: around a scenario step, everything the register lets us observe.

A step says what must change; the oracle reads the state before and after it and fails the step
on anything else that changed, with the difference attached to the Allure report::

    with oracle.step("Пробить чек", **oracle.sale(SUGAR.amount)):
        kkt.sell([SUGAR])

What is observed (:func:`observe`): the status (shift, its number, open document, pending
printout, paper, cover), the ФН (phase, validity, tax systems, registrations, last FD, last
registration FD, warnings, FFD), the OFD queue triplet, the shift counters, what the tape printed
(each fiscal document printed once, copies and other printouts counted apart) and, when the
scenario watches it, the Кабинет's statuses.  What a device cannot show (no tape on a real
register, no counters over some driver) is left out and named in the report, never guessed.

Every document an operation returns inside a step is checked against the state around it:
its number is one of the FDs the step created, its shift is the register's shift.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

import allure

from .device import FiscalDocument, Kkt, ShiftState
from .errors import KktError, LabUnavailable
from .fiscal import TaxSystem

# key → what the report calls it
LABELS: dict[str, str] = {
    "shift": "Смена",
    "shift_number": "Номер смены",
    "document_open": "Открыт документ",
    "pending_print": "Ждёт допечатки",
    "paper": "Бумага",
    "cover_open": "Крышка открыта",
    "phase": "Фаза ФН",
    "valid_until": "ФН действует до",
    "tax_systems": "СНО в регистрации",
    "registrations_done": "Регистраций в ФН",
    "registrations_left": "Регистраций осталось",
    "fd": "Последний ФД",
    "registration_fd": "ФД последней регистрации",
    "warnings": "Предупреждения ФН",
    "ffd": "ФФД",
    "queue": "Неотправлено в ОФД",
    "queue_first": "Первый неотправленный ФД",
    "queue_first_at": "Время первого неотправленного",
    "counters_shift": "Смена счётчиков",
    "sales": "Чеков прихода за смену",
    "sales_total": "Сумма прихода за смену",
    "returns": "Чеков возврата за смену",
    "returns_total": "Сумма возвратов за смену",
    "cash": "Наличных в ящике",
    "printed": "Напечатаны ФД",
    "copies": "Напечатаны копии ФД",
    "other_printouts": "Прочих печатных форм",
    "hub_updated": "Кабинет: обновлена",
    "hub_task_received": "Кабинет: получила задание",
    "hub_reregistered": "Кабинет: перерегистрирована",
    "hub_error": "Кабинет: ошибка",
}
CUT_MARK = "✂"  # the emulated tape's paper cut line ends with it
COPY_MARK = "КОПИЯ"
FD_LINE = re.compile(r"^ФД (\d+)\s+ФП")
Snapshot = dict[str, Any]


@dataclass(frozen=True)
class Printout:
    fd: int | None  # the fiscal document printed, None for an X report or a service document
    copy: bool


def printouts(lines: list[str]) -> list[Printout]:
    """The printouts on a tape, in order (a printout ends at its paper cut)."""
    result: list[Printout] = []
    fd: int | None = None
    copy = False
    for line in lines:
        if line.endswith(CUT_MARK):
            result.append(Printout(fd, copy))
            fd, copy = None, False
        elif line == COPY_MARK:
            copy = True
        elif (match := FD_LINE.match(line)) is not None:
            fd = int(match.group(1))
    return result


# ------------------------------------------------------------------------------ expectations


class Expect:
    """What a key must do in a step."""

    def check(self, key: str, before: Snapshot, after: Snapshot) -> str | None:
        raise NotImplementedError

    def describe(self, key: str, before: Snapshot) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Becomes(Expect):
    value: Any

    def check(self, key: str, before: Snapshot, after: Snapshot) -> str | None:
        return None if after[key] == self.value else f"ожидалось {show(self.value)}"

    def describe(self, key: str, before: Snapshot) -> str:
        return f"= {show(self.value)}"


@dataclass(frozen=True)
class Delta(Expect):
    amount: Any

    def check(self, key: str, before: Snapshot, after: Snapshot) -> str | None:
        if before[key] is None and after[key] is None:
            return None  # the device does not count it (e.g. registrations left over Pirit)
        if before[key] is None or after[key] is None:
            return f"ожидалось {show(before[key])} + {self.amount}"
        return None if after[key] == before[key] + self.amount else f"ожидалось {show(before[key] + self.amount)}"

    def describe(self, key: str, before: Snapshot) -> str:
        sign = "+" if self.amount >= 0 else "−"
        return f"{sign}{abs(self.amount)}"


@dataclass(frozen=True)
class Satisfies(Expect):
    test: Callable[[Any, Any], bool]  # (before, after) → ok
    text: str

    def check(self, key: str, before: Snapshot, after: Snapshot) -> str | None:
        return None if self.test(before[key], after[key]) else f"ожидалось: {self.text}"

    def describe(self, key: str, before: Snapshot) -> str:
        return self.text


@dataclass(frozen=True)
class Computed(Expect):
    """The key becomes a value computed from the whole state before the step."""

    value: Callable[[Snapshot], Any]
    text: str

    def check(self, key: str, before: Snapshot, after: Snapshot) -> str | None:
        wanted = self.value(before)
        return None if after[key] == wanted else f"ожидалось {show(wanted)} ({self.text})"

    def describe(self, key: str, before: Snapshot) -> str:
        return f"= {show(self.value(before))} ({self.text})"


def delta(amount: Any) -> Delta:
    """The key grows by ``amount`` (an int or a Decimal; negative: falls)."""
    return Delta(amount)


def changed(text: str = "любое изменение") -> Satisfies:
    """The key may change (its new value is checked elsewhere, or the rule leaves it open)."""
    return Satisfies(lambda _b, _a: True, text)


def differs() -> Satisfies:
    """The key must change to something else."""
    return Satisfies(lambda b, a: a != b, "изменилось")


def unchanged() -> Satisfies:
    return Satisfies(lambda b, a: a == b, "не изменилось")


def as_expect(value: Any) -> Expect:
    return value if isinstance(value, Expect) else Becomes(value)


# ------------------------------------------------------------------------------ observing


def observe(kkt: Kkt, lab: Any = None, hub: Any = None) -> tuple[Snapshot, list[str]]:
    """Everything the register shows now, as flat keys; and what it cannot show (report notes)."""
    unseen: list[str] = []
    status = kkt.status()
    fn = kkt.fn()
    queue = kkt.ofd_queue()
    snap: Snapshot = {
        "shift": status.shift,
        "shift_number": status.shift_number,
        "document_open": status.document_open,
        "pending_print": status.pending_print,
        "paper": status.paper,
        "cover_open": status.cover_open,
        "phase": fn.phase,
        "valid_until": fn.valid_until,
        "tax_systems": fn.tax_systems,
        "registrations_done": fn.registrations_done,
        "registrations_left": fn.registrations_left,
        "fd": fn.last_fd_number,
        "registration_fd": fn.last_registration_fd,
        "warnings": fn.warnings,
        "ffd": fn.ffd,
        "queue": queue.count,
        "queue_first": queue.first_number,
        "queue_first_at": queue.first_datetime,
    }
    try:
        counters = kkt.counters()
    except (AttributeError, NotImplementedError, KktError) as exc:
        unseen.append(f"счётчики смены: {exc}")
    else:
        snap.update(
            counters_shift=counters.shift_number,
            sales=counters.sales,
            sales_total=counters.sales_total,
            returns=counters.returns,
            returns_total=counters.returns_total,
            cash=counters.cash,
        )
    if lab is not None:
        try:
            snap["_tape"] = list(lab.tape())
        except LabUnavailable as exc:
            unseen.append(f"лента: {exc}")
    if hub is not None:
        try:
            view = hub.status()
        except LabUnavailable as exc:
            unseen.append(f"Кабинет: {exc}")
        else:
            snap.update(
                hub_updated=view.get("updated"),
                hub_task_received=view.get("task_received"),
                hub_reregistered=view.get("reregistered"),
                hub_error=view.get("last_error") or None,
            )
    return snap, unseen


def _tape_step(before: Snapshot, after: Snapshot) -> None:
    """The tape's growth in a step as three keys: originals printed, copies, other printouts."""
    if "_tape" not in before or "_tape" not in after:
        return
    old, new = before["_tape"], after["_tape"]
    grown = printouts(new[len(old) :]) if new[: len(old)] == old else printouts(new)
    after["printed"] = tuple(p.fd for p in grown if p.fd is not None and not p.copy)
    after["copies"] = tuple(p.fd for p in grown if p.fd is not None and p.copy)
    after["other_printouts"] = sum(1 for p in grown if p.fd is None)
    before.update(printed=(), copies=(), other_printouts=0)


def show(value: Any) -> str:
    if isinstance(value, TaxSystem):
        return value.title
    if isinstance(value, Enum):
        return str(value.value) if not isinstance(value.value, int) or isinstance(value, ShiftState) else value.name
    if isinstance(value, datetime):
        return f"{value:%d.%m.%Y %H:%M:%S}"
    if isinstance(value, tuple):
        return "[" + ", ".join(map(show, value)) + "]"
    if value is None:
        return "—"
    return str(value)


# ------------------------------------------------------------------------------ the oracle


@dataclass
class StepResult:
    title: str
    before: Snapshot
    after: Snapshot
    expected: dict[str, Expect]
    failures: dict[str, str] = field(default_factory=dict)
    documents: list[FiscalDocument] = field(default_factory=list)
    unseen: list[str] = field(default_factory=list)

    def table(self) -> str:
        rows = []
        for key, label in LABELS.items():
            if key not in self.after:
                continue
            was, now = self.before.get(key), self.after[key]
            rule = self.expected.get(key)
            if rule is None and was == now:
                continue
            verdict = "✗ " + self.failures[key] if key in self.failures else "✓"
            wanted = rule.describe(key, self.before) if rule is not None else "не меняется"
            rows.append(f"{verdict:<3} {label}: {show(was)} → {show(now)}  (шаг: {wanted})")
        for doc in self.documents:
            rows.append(
                f"ФД {doc.number}: {doc.kind.name}, {show(doc.datetime)}, смена {show(doc.shift_number)}"
                + (f", {doc.total}" if doc.total is not None else "")
            )
        rows += [f"не наблюдается — {text}" for text in self.unseen]
        return "\n".join(rows) or "ничего не изменилось"


class Oracle:
    """Snapshots around scenario steps.  ``kkt`` is the driver itself (its reads are not report
    steps); documents returned by the scenario's calls reach :meth:`saw` from the step proxy."""

    def __init__(self, kkt: Kkt, lab: Any = None) -> None:
        self._kkt = kkt
        self._lab = lab
        self._hub: Any = None
        self._documents: list[FiscalDocument] | None = None
        self._printed: set[int] = set()  # every FD printed as an original so far in this test
        self.steps: list[StepResult] = []

    def watch_hub(self, hub: Any) -> None:
        """Also observe the Кабинет's statuses from now on."""
        self._hub = hub

    @property
    def watching_hub(self) -> bool:
        return self._hub is not None

    def saw(self, value: Any) -> None:
        if self._documents is not None and isinstance(value, FiscalDocument):
            self._documents.append(value)

    def snapshot(self) -> Snapshot:
        return observe(self._kkt, self._lab, self._hub)[0]

    @contextmanager
    def step(self, title: str, **expected: Any) -> Iterator[StepResult]:
        """Run the body as the step ``title``; every key not in ``expected`` must stay as it was."""
        unknown = sorted(set(expected) - set(LABELS))
        if unknown:
            raise ValueError(f"oracle step {title!r}: unknown keys {unknown} (known: {', '.join(LABELS)})")
        rules = {key: as_expect(value) for key, value in expected.items()}
        with allure.step(title):
            before, unseen = observe(self._kkt, self._lab, self._hub)
            clock_before = self._kkt.clock()
            result = StepResult(title, before, before, rules, unseen=unseen)
            self._documents = result.documents
            try:
                yield result
            finally:
                self._documents = None
            after, _ = observe(self._kkt, self._lab, self._hub)
            clock_after = self._kkt.clock()
            _tape_step(before, after)
            result.after = after
            self._judge(result, clock_before, clock_after)
            self.steps.append(result)
            allure.attach(result.table(), "Состояние до → после", allure.attachment_type.TEXT)
            if result.failures:
                lines = [
                    f"{LABELS.get(k, k)}: {show(before.get(k))} → {show(after.get(k))} ({why})"
                    for k, why in result.failures.items()
                ]
                raise AssertionError(f"шаг «{title}»: " + "; ".join(lines))

    def _judge(self, result: StepResult, clock_before: datetime, clock_after: datetime) -> None:
        before, after = result.before, result.after
        rules = dict(result.expected)
        if "printed" in after and "printed" not in rules:
            rules["printed"] = Becomes(tuple(range(before["fd"] + 1, after["fd"] + 1)))
        for key in LABELS:
            if key not in after:  # the device does not show it: the report's note says so
                continue
            rule = rules.get(key)
            if rule is None:
                if before.get(key) != after[key]:
                    result.failures[key] = "изменилось, а шаг этого не предполагает"
                continue
            problem = rule.check(key, before, after)
            if problem is not None:
                result.failures[key] = problem
        for number in after.get("printed", ()):
            if number in self._printed:
                result.failures["printed"] = f"ФД {number} напечатан второй раз как оригинал"
            self._printed.add(number)
        self._check_documents(result, clock_before, clock_after)

    def _check_documents(self, result: StepResult, clock_before: datetime, clock_after: datetime) -> None:
        before, after = result.before, result.after
        earliest = clock_before.replace(second=0, microsecond=0)
        latest = clock_after + timedelta(minutes=1)
        for doc in result.documents:
            problems = []
            if not before["fd"] < doc.number <= after["fd"] and doc.number != before.get("fd"):
                problems.append(f"номер вне созданных шагом ФД {before['fd'] + 1}..{after['fd']}")
            shift = after["shift_number"]
            if doc.shift_number is not None and shift is not None and doc.shift_number != shift:
                problems.append(f"смена {doc.shift_number}, а у ККТ смена {after['shift_number']}")
            if not earliest <= doc.datetime <= latest:
                problems.append(f"время {show(doc.datetime)} вне шага {show(clock_before)}..{show(clock_after)}")
            if problems:
                result.failures[f"ФД {doc.number}"] = "; ".join(problems)

    # -------------------------------------------------------------------------- presets

    def queued(self, count: int, *, online: bool | None) -> dict[str, Any]:
        """The OFD queue after ``count`` new documents: offline it grows (the first unsent stays,
        or becomes the first new one); online it is empty; ``None`` (the link is not the
        scenario's): it grows by at most ``count``, and what leaves it leaves from the front."""
        if online:
            return {"queue": 0, "queue_first": None, "queue_first_at": None}
        if online is None:
            return {
                "queue": Satisfies(lambda b, a: 0 <= a <= b + count, f"не больше, чем было + {count}"),
                "queue_first": Satisfies(lambda b, a: a is None or b is None or a >= b, "первый прежний или позже"),
                "queue_first_at": Satisfies(lambda b, a: a is None or b is None or a >= b, "не раньше прежнего"),
            }
        if count == 0:
            return {}
        return {
            "queue": delta(count),
            "queue_first": Satisfies(lambda b, a: a == b if b is not None else a is not None, "первый прежний"),
            "queue_first_at": Satisfies(lambda b, a: a == b if b is not None else a is not None, "время прежнее"),
        }

    def sale(self, total: Decimal, *, online: bool | None = None, cash: bool = True) -> dict[str, Any]:
        """A cash sale of ``total`` in an open shift: one FD, the shift's sales, the drawer."""
        return {
            "fd": delta(1),
            "sales": delta(1),
            "sales_total": delta(total),
            **({"cash": delta(total)} if cash else {}),
            **self.queued(1, online=online),
        }

    def refund(self, total: Decimal, *, online: bool | None = None) -> dict[str, Any]:
        """A cash return of a sale: one FD, the shift's returns; the drawer gives the money back."""
        return {
            "fd": delta(1),
            "returns": delta(1),
            "returns_total": delta(total),
            "cash": delta(-total),
            **self.queued(1, online=online),
        }

    def shift_opened(
        self, *, online: bool | None = None, reregistered_to: TaxSystem | None = None, hub: bool = False
    ) -> dict[str, Any]:
        """A shift opened: the next number, counters from zero, one FD — or, with
        ``reregistered_to``, a re-registration report first and then the shift-open report (R6.3);
        ``hub``: the Кабинет then shows «перерегистрирована»."""
        documents = 1 if reregistered_to is None else 2
        opened = {
            "shift": ShiftState.OPEN,
            "shift_number": delta(1),
            "counters_shift": delta(1),
            "sales": 0,
            "sales_total": Decimal(0),
            "returns": 0,
            "returns_total": Decimal(0),
            "fd": delta(documents),
            **self.queued(documents, online=online),
        }
        if reregistered_to is None:
            return opened
        return {
            **self.reregistered(reregistered_to, online=online, documents=2),
            **opened,
            **({"hub_reregistered": True, "hub_error": None} if hub else {}),
        }

    def opened_by_receipt(
        self,
        total: Decimal,
        *,
        online: bool | None = None,
        reregistered_to: TaxSystem | None = None,
        hub: bool = False,
    ) -> dict[str, Any]:
        """A cash receipt on a closed shift that opens it implicitly (R3.8): the same as an
        explicit open (a due re-registration first), then the receipt."""
        opened = self.shift_opened(online=online, reregistered_to=reregistered_to, hub=hub)
        documents = opened["fd"].amount + 1
        return {
            **opened,
            "fd": delta(documents),
            "sales": 1,
            "sales_total": total,
            "cash": delta(total),
            **self.queued(documents, online=online),
        }

    def shift_closed(self, *, online: bool | None = None) -> dict[str, Any]:
        """A Z report: the shift closed (its number and counters stay readable), one FD."""
        return {"shift": ShiftState.CLOSED, "fd": delta(1), **self.queued(1, online=online)}

    def reregistered(self, target: TaxSystem, *, online: bool | None = None, documents: int = 1) -> dict[str, Any]:
        """A re-registration report as the step's first new document (then ``documents - 1`` more)."""
        return {
            "tax_systems": target,
            "registration_fd": Computed(lambda b: b["fd"] + 1, "первый новый ФД"),
            "registrations_done": delta(1),
            "registrations_left": delta(-1),
            "valid_until": changed("пересчитан для новой СНО (R2.4)"),
            "warnings": changed("пересчитаны со сроком ФН"),
            "fd": delta(documents),
            **self.queued(documents, online=online),
        }

    def pending_finished(self) -> dict[str, Any]:
        """A pending printout finished: the last FD printed now, nothing new in the ФН."""
        return {"pending_print": False, "printed": Computed(lambda b: (b["fd"],), "допечатан последний ФД")}

    def harmless(self, what: Callable[[], Any], title: str, *, printout: int = 0, copies: tuple[int, ...] = ()) -> Any:
        """``what`` must change nothing fiscal: no FD, no counter, no queue; at most ``printout``
        non-fiscal printouts and the ``copies`` of documents."""
        with self.step(title, other_printouts=printout, copies=copies):
            return what()
