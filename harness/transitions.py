"""The transitions scenarios announce to the state oracle (:mod:`harness.oracle`): what a sale,
a return, a shift opened or closed, a re-registration and the OFD queue change, as the keyword
arguments of ``oracle.step``.  Every preset is a dict; a scenario adds to it or overrides a key."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .device import ShiftState
from .expectations import Computed, DuringStep, KeptOrDuringStep, Satisfies, changed, delta
from .fiscal import TaxSystem


class Transitions:
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
            "queue_first": Computed(
                lambda b: b["queue_first"] if b["queue_first"] is not None else b["fd"] + 1,
                "первый прежний, или первый новый ФД",
            ),
            "queue_first_at": KeptOrDuringStep(),
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
            "shift_opened_at": DuringStep(),
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
            **(self.task_done(reregistered_to) if hub else {}),
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

    def task_done(self, target: TaxSystem) -> dict[str, Any]:
        """The Кабинет got the register's report of the re-registration: the task done, no error,
        one more report, naming the re-registration report (the step's first new FD), its fiscal
        sign, a reason, and the new tax systems."""
        return {
            "hub_reregistered": True,
            "hub_error": None,
            "hub_reports": delta(1),
            "hub_report_fd": Computed(lambda b: b["fd"] + 1, "первый новый ФД"),
            "hub_report_taxes": tuple(target.names),
            "hub_report_signed": True,
            "hub_report_reason": Satisfies(lambda _b, a: bool(a), "причина перерегистрации"),
        }

    def task_already_done(self, target: TaxSystem) -> dict[str, Any]:
        """A task whose tax systems are already in force: reported done without a report of its
        own (R5.7 "no changes"): no FD, no reason, the tax systems in force."""
        return {
            "hub_reregistered": True,
            "hub_error": None,
            "hub_reports": delta(1),
            "hub_report_fd": None,
            "hub_report_taxes": tuple(target.names),
            "hub_report_signed": False,
            "hub_report_reason": Satisfies(lambda _b, a: not a, "без причины"),
        }

    def task_failed(self) -> dict[str, Any]:
        """The register reported the task's failure to the Кабинет: an error, one more report."""
        return {
            "hub_error": Satisfies(
                lambda _b, a: isinstance(a, dict) and bool(a.get("code")) and bool(a.get("message")),
                "ошибка задания сообщена: код и текст",
            ),
            "hub_reports": delta(1),
        }

    def shift_closed(self, *, online: bool | None = None) -> dict[str, Any]:
        """A Z report: the shift closed (its number and counters stay readable), one FD."""
        return {"shift": ShiftState.CLOSED, "shift_opened_at": None, "fd": delta(1), **self.queued(1, online=online)}

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

    def report_resumed(self) -> dict[str, Any]:
        """Paper back: a report without a protocol-level repeat finishes printing by itself (R8.3)."""
        return {
            "pending_print": False,
            "printed": Computed(lambda b: (b["fd"],), "отчёт допечатан сам"),
        }

    def pending_finished(self) -> dict[str, Any]:
        """A pending printout finished: the last FD printed now, nothing new in the ФН."""
        return {"pending_print": False, "printed": Computed(lambda b: (b["fd"],), "допечатан последний ФД")}
