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
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import allure

from .device import FiscalDocument, Kkt
from .errors import DeviceError, HarnessError, LabUnavailable
from .expectations import Becomes, Computed, Delta, Expect, Satisfies, Snapshot, as_expect, changed, delta, show
from .transitions import Transitions

__all__ = [
    "LABELS",
    "Becomes",
    "Computed",
    "Delta",
    "Expect",
    "Oracle",
    "Printout",
    "Satisfies",
    "StepResult",
    "changed",
    "delta",
    "observe",
    "printouts",
]

# key → what the report calls it
LABELS: dict[str, str] = {
    "shift": "Смена",
    "shift_number": "Номер смены",
    "shift_opened_at": "Смена открыта в",
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
    "hub_reports": "Кабинет: отчётов от ККТ",
    "hub_report_fd": "Кабинет: ФД в отчёте о задании",
    "hub_report_taxes": "Кабинет: СНО в отчёте о задании",
    "hub_report_signed": "Кабинет: ФП в отчёте о задании",
    "hub_report_reason": "Кабинет: причина в отчёте о задании",
}
DERIVED = ("printed", "copies", "other_printouts")
SETTLING = ("queue", "queue_first", "queue_first_at", "hub_reregistered", "hub_error", "hub_reports", "hub_report_fd")
# (a report's other fields arrive with it)
# the OFD link of a real register works between steps too: unannounced, the queue may only drain
DRAINING = {
    "queue": Satisfies(lambda b, a: a <= b, "может только уменьшиться (ОФД принимает)"),
    "queue_first": Satisfies(lambda b, a: a is None or b is None or a >= b, "прежний или позже"),
    "queue_first_at": Satisfies(lambda b, a: a is None or b is None or a >= b, "не раньше прежнего"),
}  # what a step's tape growth adds to its after-state
CUT_MARK = "✂"  # the emulated tape's paper cut line ends with it
COPY_MARK = "КОПИЯ"
FD_LINE = re.compile(r"^ФД (\d+)\s+ФП")


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


# ------------------------------------------------------------------------------ observing


def observe(kkt: Kkt, lab: Any = None, hub: Any = None) -> tuple[Snapshot, list[str]]:
    """Everything the register shows now, as flat keys; and what it cannot show (report notes)."""
    unseen: list[str] = []
    status = kkt.status()
    fn = kkt.fn()
    queue = kkt.ofd_queue()
    snap: Snapshot = {
        "_open_time_shown": getattr(kkt, "reports_shift_open_time", True),
        "shift": status.shift,
        "shift_number": status.shift_number,
        "shift_opened_at": status.shift_opened_at,
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
    except (AttributeError, NotImplementedError, DeviceError) as exc:  # a link fault is not "not shown"
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
        except HarnessError as exc:  # LabUnavailable, or a hub that has not seen the register yet
            unseen.append(f"Кабинет: {exc}")
        else:
            snap.update(
                hub_updated=view.get("updated"),
                hub_task_received=view.get("task_received"),
                hub_reregistered=view.get("reregistered"),
                hub_error=_current_task(view).get("last_error") or None,  # the register's error outlives tasks
                hub_reports=len(view.get("reports") or ()),
                hub_report_fd=_task_report(view).get("number_fd"),
                hub_report_taxes=tuple(_task_report(view).get("tax_systems") or ()),
                hub_report_signed=bool(_task_report(view).get("fiscal_sign")),
                hub_report_reason=_task_report(view).get("reason"),
            )
    return snap, unseen


def _current_task(view: dict[str, Any]) -> dict[str, Any]:
    tasks = view.get("tasks") or []
    return dict(tasks[-1]) if tasks else {}


def _task_report(view: dict[str, Any]) -> dict[str, Any]:
    """The report the register sent for its current task (empty before one)."""
    return dict(_current_task(view).get("report") or {})


def _tape_step(before: Snapshot, after: Snapshot) -> None:
    """The tape's growth in a step as three keys: originals printed, copies, other printouts."""
    if "_tape" not in before or "_tape" not in after:
        return
    # completed printouts, compared by position: a printout begun before the step and cut in it
    # counts in the step (its FD line may have been printed before)
    grown = printouts(after["_tape"])[len(printouts(before["_tape"])) :]
    after["printed"] = tuple(p.fd for p in grown if p.fd is not None and not p.copy)
    after["copies"] = tuple(p.fd for p in grown if p.fd is not None and p.copy)
    after["other_printouts"] = sum(1 for p in grown if p.fd is None)
    before.update(printed=(), copies=(), other_printouts=0)


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


class Oracle(Transitions):
    """Snapshots around scenario steps.  ``kkt`` is the driver itself (its reads are not report
    steps); documents returned by the scenario's calls reach :meth:`saw` from the step proxy."""

    def __init__(
        self,
        kkt: Kkt,
        lab: Any = None,
        *,
        settle: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kkt = kkt
        self._lab = lab
        self._settle = settle  # seconds a real register may take to deliver what a step expects delivered
        self._sleep = sleep
        self._monotonic = monotonic
        self._hub: Any = None
        self._documents: list[FiscalDocument] | None = None
        self._printed: set[int] = set()  # every FD printed as an original so far in this test
        self._last: tuple[Snapshot, list[str]] | None = None  # the last after-state, while nothing ran since
        self.steps: list[StepResult] = []

    def watch_hub(self, hub: Any) -> None:
        """Also observe the Кабинет's statuses from now on."""
        if hub is self._hub:
            return
        self._hub = hub
        self._last = None
        listen = getattr(hub, "_listen_calls", None)
        if listen is not None:
            listen(self.touched)

    @property
    def watching_hub(self) -> bool:
        return self._hub is not None

    def saw(self, value: Any) -> None:
        if self._documents is not None and isinstance(value, FiscalDocument):
            self._documents.append(value)

    def touched(self) -> None:
        """A scenario's call reached the register, its lab or its hub: the state may have changed."""
        self._last = None

    def _before(self) -> tuple[Snapshot, list[str]]:
        """The state before a step: the last step's after-state when nothing has been called since
        (an emulator changes only when asked; a real register's OFD link works on its own)."""
        if self._last is not None and self._settle == 0:
            snap, unseen = self._last
            return {k: v for k, v in snap.items() if k not in DERIVED}, list(unseen)
        before, unseen = observe(self._kkt, self._lab, self._hub)
        before["_clock"] = self._kkt.clock()
        return before, unseen

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
            before, unseen = self._before()
            clock_before = before["_clock"]
            result = StepResult(title, before, before, rules, unseen=unseen)
            self._documents = result.documents
            try:
                yield result
            finally:
                self._documents = None
            after = self._observe_settled(rules, before)
            clock_after = after["_clock"]
            self._last = (dict(after), unseen)
            _tape_step(before, after)
            result.after = after
            self._judge(result, clock_before, clock_after)
            self.steps.append(result)
            allure.attach(result.table(), "Состояние до → после", allure.attachment_type.TEXT)
            if result.failures:
                lines = [
                    f"{LABELS[k]}: {show(before.get(k))} → {show(after.get(k))} ({why})"
                    if k in LABELS
                    else f"{k}: {why}"
                    for k, why in result.failures.items()
                ]
                raise AssertionError(f"шаг «{title}»: " + "; ".join(lines))

    def _observe_settled(self, rules: dict[str, Expect], before: Snapshot) -> Snapshot:
        """The state after a step.  A real register sends to the OFD and reports to the Кабинет on
        its own time: while an announced OFD-queue or Кабинет value is not there yet, the state is
        read again, for at most ``settle`` seconds (emulators: 0, they answer at once)."""
        deadline = self._monotonic() + self._settle
        while True:
            after, _ = observe(self._kkt, self._lab, self._hub)
            after["_clock"] = self._kkt.clock()
            waiting = [
                key
                for key, rule in rules.items()
                if key in SETTLING and key in after and key in before and rule.check(key, before, after) is not None
            ]
            if not waiting or self._monotonic() >= deadline:
                return after
            self._sleep(0.5)

    def _judge(self, result: StepResult, clock_before: datetime, clock_after: datetime) -> None:
        before, after = result.before, result.after
        rules = dict(result.expected)
        if self._settle > 0:  # a real register: unannounced, its queue may drain
            rules = {**DRAINING, **rules}
        if "printed" in after and "printed" not in rules:
            rules["printed"] = Becomes(tuple(range(before["fd"] + 1, after["fd"] + 1)))
        for key in LABELS:
            if key not in after and key not in before:  # the device does not show it: the note says so
                continue
            if (key in after) != (key in before) and key not in DERIVED:
                result.failures[key] = "прочитано только " + ("до шага" if key in before else "после шага")
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
            new = before["fd"] < doc.number <= after["fd"]
            if not new and doc.number != before["fd"]:  # continue_print: the last FD, finished now
                problems.append(f"номер вне созданных шагом ФД {before['fd'] + 1}..{after['fd']}")
            shift = after["shift_number"]
            if new and doc.shift_number is not None and shift is not None and doc.shift_number != shift:
                problems.append(f"смена {doc.shift_number}, а у ККТ смена {after['shift_number']}")
            if new and not earliest <= doc.datetime <= latest:
                problems.append(f"время {show(doc.datetime)} вне шага {show(clock_before)}..{show(clock_after)}")
            if problems:
                result.failures[f"ФД {doc.number}"] = "; ".join(problems)

    # -------------------------------------------------------------------------- operations

    def harmless(self, what: Callable[[], Any], title: str, *, printout: int = 0, copies: tuple[int, ...] = ()) -> Any:
        """``what`` must change nothing fiscal: no FD, no counter, no queue; at most ``printout``
        non-fiscal printouts and the ``copies`` of documents."""
        with self.step(title, other_printouts=printout, copies=copies):
            return what()
