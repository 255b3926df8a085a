"""fisGo behaviour above the fiscal core: the Кабинет hub link and deferred re-registration.

What an emulated Касса Ф / Дримкас-Ф / Старт does (protocols.md §5.3, domain-rules.md R6.3):

* polls the hub over real HTTP on a **virtual-time** schedule (every ``poll_interval`` device
  seconds, checked whenever the core changes, and on demand through the control channel);
* reports its firmware in ``cash_info_report``; takes ``registration`` tasks only with firmware
  at or above the model's threshold (Касса Ф 2.26.0, ДКФ 1.12.0, Старт 10.50.1);
* at **every** shift-open attempt (explicit, or implicit through a receipt) applies a due task
  *before* the shift opens: due means the scheduled date has come in **device local time**,
  compared as dates, never as text; a task is never applied inside an open shift;
* on success: tax-system mask, 1205 bit 7, a form-11 document, registrations left −1, a report
  to the hub; the task is done the moment the ФН committed — power loss or a paper fault after
  that never produces a second re-registration;
* on failure before the ФН commit (no paper, unsent documents where the model refuses, ФН
  expired, registrations exhausted): keeps the task, reports the error, retries at the next
  open; the profile says whether the shift then opens on the old regime;
* a task whose target is already in force (e.g. after a manual re-registration) is a no-op that
  burns nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from harness.device import TaxSystem
from harness.fiscal import REREG_REASON_TAX_SYSTEMS
from harness.versions import parse_version

from ..emulator.core import CoreError, FiscalCore
from .hub_client import HubClient, HubRequestError, task_result

DEFAULT_POLL_INTERVAL = 300.0  # device seconds between polls


@dataclass
class ReceivedTask:
    task_id: int
    target: TaxSystem
    scheduled: date
    state: str = "pending"  # pending → done | failed(kept for retry)
    last_error: str = ""
    document: int | None = None


class FisGo:
    def __init__(
        self, core: FiscalCore, hub_url: str, *, poll_interval: float = DEFAULT_POLL_INTERVAL, timeout: float = 2.0
    ) -> None:
        self.core = core
        self.client = HubClient(hub_url, core.serial, timeout=timeout)
        self.hub_url = hub_url
        self.poll_interval = poll_interval
        self.online = True
        self.tasks: dict[int, ReceivedTask] = {}
        self._outbox: list[dict[str, Any]] = []  # registration reports not yet delivered
        self._results: list[dict[str, Any]] = []  # task_results for the next poll
        self._last_poll: float | None = None
        self._polling = threading.local()
        self.last_error = ""
        core.before_shift_open.append(self._before_shift_open)
        core.after_change.append(self._tick)

    # ------------------------------------------------------------------------------ polling

    def supports_tasks(self) -> bool:
        threshold = self.core.profile.rereg_min_firmware
        if threshold is None:
            return False
        if "compare_firmware_as_text" in self.core.defects:  # seeded defect: "2.100.0" < "2.26.0"
            return self.core.firmware >= threshold  # pragma: no mutate
        return parse_version(self.core.firmware) >= parse_version(threshold)

    def _tick(self, core: FiscalCore) -> None:
        if self._last_poll is None or core.clock.fn_seconds() - self._last_poll >= self.poll_interval:
            self.poll()

    def poll(self) -> list[int]:
        """One exchange with the hub; returns the ids of newly received tasks."""
        core = self.core
        if not self.online or not core.powered or getattr(self._polling, "active", False):
            return []
        self._polling.active = True
        try:
            with core.lock:
                self._last_poll = core.clock.fn_seconds()
                try:
                    try:
                        self._flush_outbox()
                    except (HubRequestError, OSError, ValueError) as exc:
                        self.last_error = f"reports not delivered yet: {exc}"
                    self.client.cash_info_report(
                        firmware=core.firmware,
                        local_time=self._local_time_iso(),
                        tax_modes=core.fn.tax_systems.names,
                        kkt_info={"kkt_factory_number": core.serial, "fn_number": core.fn.serial},
                    )
                    tasks = self.client.poll(self._results)
                    self._results = []
                except (HubRequestError, OSError, ValueError) as exc:
                    self.last_error = f"hub unreachable: {exc}"
                    core.log("hub", self.last_error)
                    return []
                received = [self._receive(t) for t in tasks if t.get("type") == "registration"]
                new = [task_id for task_id in received if task_id is not None]
                self._forget_withdrawn({task_id for task_id in received if task_id is not None})
                if "reregister_inside_open_shift" in core.defects and core.shift.is_open:
                    self._apply_due(inside_shift=True)  # pragma: no mutate
                return new
        finally:
            self._polling.active = False

    def _forget_withdrawn(self, delivered: set[int]) -> None:
        """The hub delivers a task on every poll while it is open; one it no longer delivers
        (cancelled or withheld in the Кабинет) and not done here is forgotten, not retried."""
        if not self.supports_tasks():
            return
        for task_id, task in list(self.tasks.items()):
            if task.state != "done" and task_id not in delivered:
                del self.tasks[task_id]
                self.core.log("hub task withdrawn", f"#{task_id}: no longer delivered by the hub")

    def _receive(self, task: dict[str, Any]) -> int | None:
        if not self.supports_tasks():
            return None  # old firmware does not know registration tasks
        try:
            task_id = int(task["task_id"])
            data = task.get("data") or {}
            target = TaxSystem(int(data["tax_mask"]))
            scheduled = date.fromisoformat(str(data["scheduled_date"]))
        except (KeyError, TypeError, ValueError):
            self.core.log("hub", f"malformed task ignored: {task!r}")
            return None
        if task_id in self.tasks and self.tasks[task_id].state == "done":
            return None
        if task_id not in self.tasks:
            self.tasks[task_id] = ReceivedTask(task_id, target, scheduled)
            self.core.log("hub task received", f"#{task_id}: {target.title} from {scheduled:%d.%m.%Y}")
            self._results.append(task_result(task_id, result="OK", message="accepted"))
        return task_id

    def _flush_outbox(self) -> None:
        while self._outbox:
            try:
                self.client.registration_report(**self._outbox[0])
            except HubRequestError as exc:
                if exc.status is None or exc.status >= 500:
                    raise  # the hub is unreachable or failing: keep the report for the next contact
                # the hub refused this report for good (4xx): drop it, never block the link on it
                self.core.log("hub", f"report refused and dropped: {exc}")
            self._outbox.pop(0)

    def _report(self, **report: Any) -> None:
        self._outbox.append(report)
        try:
            if self.online:
                self._flush_outbox()
        except (HubRequestError, OSError, ValueError) as exc:
            self.last_error = f"report not delivered yet: {exc}"

    def _local_time_iso(self) -> str:
        offset = self.core.profile.utc_offset_hours
        sign = "+" if offset >= 0 else "-"
        return self.core.now().isoformat() + f"{sign}{abs(offset):02d}:00"

    # ------------------------------------------------------------------------------ applying

    def _scheduled(self, task: ReceivedTask) -> date:
        """The task's date as this firmware reads it (seeded defect ``swap_task_day_month``: a day
        of 12 or less is taken for the month, 03.02 read as 02.03)."""
        when = task.scheduled
        if "swap_task_day_month" in self.core.defects and when.day <= 12:
            return date(when.year, when.day, when.month)  # pragma: no mutate
        return when

    def _is_due(self, task: ReceivedTask, now: datetime) -> bool:
        defects = self.core.defects
        scheduled = self._scheduled(task)
        if "compare_dates_as_text" in defects:
            return now.strftime("%d.%m.%Y") >= scheduled.strftime("%d.%m.%Y")  # pragma: no mutate
        if "use_utc_date" in defects:
            return (now - timedelta(hours=self.core.profile.utc_offset_hours)).date() >= scheduled  # pragma: no mutate
        return now.date() >= scheduled

    def _before_shift_open(self, core: FiscalCore) -> None:
        self.poll()  # fisGo talks to the cloud before opening a shift
        if "skip_due_task_on_open" in core.defects:
            return
        self._apply_due(inside_shift=False)

    def _apply_due(self, *, inside_shift: bool) -> None:
        core = self.core
        now = core.now()
        for task in sorted(self.tasks.values(), key=lambda t: t.task_id):
            if task.state == "done" or not self._is_due(task, now):
                continue
            if task.state == "failed" and "failed_task_not_retried" in core.defects:
                continue  # pragma: no mutate (seeded defect: a failure before the ФН commit is never retried)
            self._apply(task, inside_shift=inside_shift)

    def _apply(self, task: ReceivedTask, *, inside_shift: bool) -> None:
        core = self.core
        if core.fn.tax_systems == task.target and "retry_burns_registration" not in core.defects:
            task.state = "done"
            core.log("deferred re-registration", f"task #{task.task_id}: {task.target.title} already in force, no-op")
            self._report(task_id=task.task_id, reason=0, tax_modes=task.target.names)
            return
        term_end = core.valid_until_for(task.target, core.fn.work_mode)
        if term_end < core.now().date():  # R6.3 rule 3: the ФН would be expired at once
            task.state = "failed"
            task.last_error = f"fn_incompatible: the ФН term for {task.target.title} ended on {term_end:%d.%m.%Y}"
            core.log("deferred re-registration refused", f"task #{task.task_id}: {task.last_error}")
            self._report_failure(task, "fn_incompatible", task.last_error)
            return
        before = core.fn.registrations_done
        try:
            if inside_shift:  # pragma: no mutate block (seeded defect: bypass the closed-shift rule)
                was_open = core.shift.is_open
                core.shift.is_open = False
                try:
                    doc = core.reregister(task.target, cashier="fisGo")
                finally:
                    core.shift.is_open = was_open
            else:
                doc = core.reregister(task.target, cashier="fisGo", force="retry_burns_registration" in core.defects)
        except CoreError as exc:
            if core.fn.registrations_done > before:  # committed in the ФН, only the printout failed
                if "retry_burns_registration" in core.defects:
                    task.state = "failed"  # pragma: no mutate (seeded defect: a print fault taken for a failure)
                    task.last_error = f"{exc.kind.value}: {exc.text}"  # pragma: no mutate
                    return
                self._done(task, core.last_fd().number, core.last_fd().fiscal_sign)
                return
            task.state = "failed"
            task.last_error = f"{exc.kind.value}: {exc.text}"
            core.log("deferred re-registration failed", f"task #{task.task_id}: {task.last_error}; will retry")
            self._report_failure(task, exc.kind.value, exc.text)
            if not core.profile.rereg_failure_opens_shift:
                raise
            return
        self._done(task, doc.number, doc.fiscal_sign)

    def _report_failure(self, task: ReceivedTask, code: str, message: str) -> None:
        """Tell the Кабинет the task failed (R6.3 rule 7); seeded defect ``failure_not_reported``."""
        if "failure_not_reported" in self.core.defects:
            return
        self._report(task_id=task.task_id, error={"code": code, "message": message})

    def _done(self, task: ReceivedTask, number: int, fiscal_sign: str) -> None:
        task.state = "done"
        task.document = number
        self.core.log("deferred re-registration", f"task #{task.task_id}: FD {number}, {task.target.title}")
        self._report(
            task_id=task.task_id,
            reason=REREG_REASON_TAX_SYSTEMS,
            number_fd=number,
            fiscal_sign=fiscal_sign,
            tax_modes=task.target.names,
        )

    # ------------------------------------------------------------------------------ control

    def control(self, request: dict[str, Any]) -> dict[str, Any]:
        """The ``hub`` control op: ``{"op": "hub", "online": bool}``, ``{"op": "hub", "poll": true}``."""
        with self.core.lock:
            return self._control(request)

    def _control(self, request: dict[str, Any]) -> dict[str, Any]:  # pragma: no mutate block (the lab's view: tests/)
        if "online" in request:
            if not isinstance(request["online"], bool):
                raise ValueError("hub takes 'online' true or false")
            self.online = request["online"]
            self.core.log("hub link", "up" if self.online else "down")
        if request.get("poll"):
            self.poll()
        return {
            "hub": self.hub_url,
            "online": self.online,
            "supports_tasks": self.supports_tasks(),
            "last_error": self.last_error,
            "tasks": [
                {
                    "task_id": t.task_id,
                    "target": t.target.names,
                    "date": t.scheduled.isoformat(),
                    "state": t.state,
                    "last_error": t.last_error,
                    "document": t.document,
                }
                for t in self.tasks.values()
            ],
        }


def attach_fisgo(emulator: Any, hub_url: str, *, poll_interval: float = DEFAULT_POLL_INTERVAL) -> FisGo:
    """Give an emulated Dreamkas register its cloud link (and the ``hub`` control op)."""
    if emulator.profile.rereg_min_firmware is None:
        raise ValueError(f"{emulator.profile.title} has no Dreamkas cloud link")
    fisgo = FisGo(emulator.core, hub_url, poll_interval=poll_interval)
    emulator.on_close(fisgo.client.close)  # its kept-alive connection to the hub
    emulator.handler.extra_ops["hub"] = fisgo.control
    emulator.core.wire_memory["fisgo"] = fisgo
    fisgo.poll()
    return fisgo
