"""State of the Dreamkas hub: task and device records and the thread-safe :class:`Hub`.

Everything here runs under one lock; input is validated by :mod:`.parsing` before the lock is
taken.  Firmware gates come from the catalogue (via :data:`.parsing.FIRMWARE_THRESHOLDS`) and
are compared with :func:`harness.versions.version_at_least`.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

from harness.versions import leading_version, version_at_least

from .parsing import (
    CABINET_TAX_MODES,
    DEFAULT_CASHIER,
    DEFAULT_SHOP_INFO,
    FIRMWARE_THRESHOLDS,
    MODEL_NAMES,
    TASK_KIND,
    HubError,
    _csv_rows,
    _optional_dict,
    _parse_cash_info,
    _parse_cashier,
    _parse_local_date,
    _parse_registration_report,
    _parse_task_id,
    _parse_task_results,
    _pick_firmware,
    check_serial,
    check_task_request,
    model_for_serial,
    tax_mask,
)

HISTORY_LIMIT = 200  # per-device report / unmatched-result history kept for inspection


@dataclass
class _Task:
    task_id: int
    serial: str
    tax_systems: list[str]
    date: dt.date
    cashier: dict
    created_at: str
    withheld: bool = False
    state: str = "new"
    delivered_at: str | None = None
    done_at: str | None = None
    deliveries: int = 0
    attempts: int = 0
    last_error: dict | None = None
    acknowledged_at: str | None = None
    results: list[dict] = field(default_factory=list)
    report: dict | None = None
    tax_modes_match: bool | None = None
    cancelled_after_poll: int | None = None  # the register's poll count when it was withdrawn

    @property
    def open(self) -> bool:
        return self.state in ("new", "delivered")

    def wire(self) -> dict:
        """The task as the register sees it in ``/poll/v3`` ``data.tasks[]``."""
        return {
            "task_id": self.task_id,
            "type": "registration",
            "result": "OK",
            "data": {
                "type": TASK_KIND,
                "cashier": dict(self.cashier),
                "scheduled_date": self.date.isoformat(),
                "tax_modes": [CABINET_TAX_MODES[name] for name in self.tax_systems],
                "tax_systems": list(self.tax_systems),
                "tax_mask": tax_mask(self.tax_systems),
            },
        }

    def view(self, local_date: dt.date | None = None) -> dict:
        """Admin view; ``due`` compares the register's local date with the scheduled date."""
        return {
            "task_id": self.task_id,
            "serial": self.serial,
            "type": TASK_KIND,
            "tax_systems": list(self.tax_systems),
            "tax_mask": tax_mask(self.tax_systems),
            "tax_modes": [CABINET_TAX_MODES[name] for name in self.tax_systems],
            "date": self.date.isoformat(),
            "cashier": dict(self.cashier),
            "withheld": self.withheld,
            "state": self.state,
            "created_at": self.created_at,
            "delivered_at": self.delivered_at,
            "acknowledged_at": self.acknowledged_at,
            "done_at": self.done_at,
            "deliveries": self.deliveries,
            "attempts": self.attempts,
            "last_error": deepcopy(self.last_error),
            "results": deepcopy(self.results),
            "report": deepcopy(self.report),
            "tax_modes_match": self.tax_modes_match,
            "cancelled_after_poll": self.cancelled_after_poll,
            "due": None if local_date is None else local_date >= self.date,
        }


@dataclass
class _Device:
    serial: str
    withheld: bool = False
    versions: list[dict] = field(default_factory=list)
    firmware: str | None = None
    kkt_info: dict | None = None
    shop_info: dict | None = None
    kkt_registration_info: dict | None = None
    tax_systems: list[str] | None = None
    local_time: str | None = None
    last_error: dict | None = None
    poll_count: int = 0
    last_poll_at: str | None = None
    last_seen_at: str | None = None
    handshake: dict | None = None
    reports: list[dict] = field(default_factory=list)
    unmatched_results: list[dict] = field(default_factory=list)


def _push(history: list[dict], item: dict) -> None:
    history.append(item)
    del history[:-HISTORY_LIMIT]


class Hub:
    """Thread-safe in-memory hub state; every public method takes the one lock.

    ``thresholds`` overrides entries of :data:`FIRMWARE_THRESHOLDS`; ``max_attempts`` (None =
    retry forever) turns a task ``failed`` after that many failed attempts; ``clock`` returns
    the current aware datetime (for timestamps).
    """

    def __init__(
        self,
        *,
        thresholds: Mapping[str, str] | None = None,
        max_attempts: int | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        merged = dict(FIRMWARE_THRESHOLDS)
        for model, version in (thresholds or {}).items():
            if model not in merged or leading_version(version) is None:
                raise ValueError(f"bad threshold {model!r}: {version!r}")
            merged[model] = version
        if max_attempts is not None and max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self._thresholds = MappingProxyType(merged)
        self._max_attempts = max_attempts
        self._clock = clock or (lambda: datetime.now(dt.UTC))
        self._lock = threading.Lock()
        self._devices: dict[str, _Device] = {}
        self._tasks: dict[int, _Task] = {}
        self._next_task_id = 1
        self._offline: set[str] = set()

    # ---- admin side ------------------------------------------------------------------------

    def set_offline(self, serial: object, flag: bool) -> None:
        """Cut (or restore) one register's link: its requests get 503, as if the network were down."""
        serial = check_serial(serial)
        with self._lock:
            (self._offline.add if flag else self._offline.discard)(serial)

    def cancel(self, serial: object) -> list[int]:
        """Withdraw a register's open tasks (state "cancelled"): they are no longer delivered."""
        serial = check_serial(serial)
        with self._lock:
            cancelled = [task for task in self._tasks_of(serial) if task.open]
            polls = self._device_locked(serial).poll_count
            for task in cancelled:
                task.state, task.done_at = "cancelled", self._now()
                task.cancelled_after_poll = polls  # a delivered task is gone from the register after its next poll
            return [task.task_id for task in cancelled]

    def is_offline(self, serial: str) -> bool:
        with self._lock:
            return serial in self._offline

    def schedule(self, serial: object, tax_systems: object, when: object, *, cashier: Mapping | None = None) -> int:
        """Queue a deferred re-registration task; returns its id."""
        request = check_task_request(serial, tax_systems, when)
        cashier = _parse_cashier(cashier)
        with self._lock:
            return self._schedule_locked(*request, cashier)

    def withhold(self, serial: object, flag: bool, task_id: object = None) -> list[int]:
        """Hold back (or release) delivery of a register's open tasks, or of one task.

        Without ``task_id`` the flag is also remembered for tasks scheduled later.  Returns the
        ids of the tasks whose flag was set.
        """
        serial = check_serial(serial)
        if not isinstance(flag, bool):
            raise HubError("'withhold' must be true or false")
        task_id = _parse_task_id(task_id)
        with self._lock:
            if task_id is not None:
                task = self._tasks.get(task_id)
                if task is None or task.serial != serial:
                    raise HubError(f"unknown task_id {task_id} for serial {serial}", 404)
                task.withheld = flag
                return [task_id]
            self._device_locked(serial).withheld = flag
            affected = [task for task in self._tasks_of(serial) if task.open]
            for task in affected:
                task.withheld = flag
            return [task.task_id for task in affected]

    def import_csv(self, text: str) -> dict:
        """Schedule one task per CSV row; returns ``{"created": [...], "rejected": [...]}``.

        Rows are numbered as in a spreadsheet (the header, if any, is row 1).  Columns are
        ``serial,date,tax_systems`` (header optional, any column order with a header).  The
        delimiter is ',' unless the first line has ';' and no ',' (then regimes use '+').
        """
        rows = _csv_rows(text)
        created: list[dict] = []
        rejected: list[dict] = []
        with self._lock:
            for row_number, values in rows:
                if isinstance(values, str):
                    rejected.append({"row": row_number, "reason": values})
                    continue
                try:
                    request = check_task_request(values["serial"], values["tax_systems"], values["date"])
                except HubError as exc:
                    rejected.append({"row": row_number, "reason": str(exc)})
                    continue
                task_id = self._schedule_locked(*request, dict(DEFAULT_CASHIER))
                created.append({"row": row_number, "task_id": task_id})
        return {"created": created, "rejected": rejected}

    def device(self, serial: object) -> dict:
        """Cabinet view of one register (statuses, firmware, tasks, reports)."""
        serial = check_serial(serial)
        with self._lock:
            device = self._devices.get(serial)
            if device is None:
                raise HubError(f"unknown device {serial}", 404)
            return self._device_view(device)

    def devices(self) -> list[dict]:
        """Views of every known register, by serial."""
        with self._lock:
            return [self._device_view(self._devices[key]) for key in sorted(self._devices)]

    def tasks(self, serial: object = None) -> list[dict]:
        """Views of all tasks (optionally of one register), by id."""
        serial = None if serial is None else check_serial(serial)
        with self._lock:
            return [
                task.view(self._local_date(task.serial))
                for task in self._tasks.values()
                if serial is None or task.serial == serial
            ]

    def reset(self) -> None:
        """Forget every device and task; ids restart at 1."""
        with self._lock:
            self._devices.clear()
            self._tasks.clear()
            self._offline.clear()
            self._next_task_id = 1

    # ---- device side -----------------------------------------------------------------------

    def handshake(self, serial: object, payload: Mapping[str, Any]) -> dict:
        """``/handshake/v2``: remember the API versions the register announced."""
        serial = check_serial(serial)
        methods = _optional_dict(payload, "methods")
        with self._lock:
            device = self._seen_locked(serial)
            device.handshake = methods or {}
        return {}

    def poll(self, serial: object, task_results: object = None) -> list[dict]:
        """``/poll/v3``: apply ``task_results``, then return the deliverable tasks."""
        serial = check_serial(serial)
        results = _parse_task_results(task_results)
        with self._lock:
            device = self._seen_locked(serial)
            device.poll_count += 1
            device.last_poll_at = device.last_seen_at
            for result in results:
                self._apply_task_result_locked(device, result)
            if not self._updated(device):
                return []
            delivered = []
            for task in self._tasks_of(serial):
                if task.open and not task.withheld:
                    task.state = "delivered"
                    task.delivered_at = task.delivered_at or device.last_seen_at
                    task.deliveries += 1
                    delivered.append(task.wire())
            return delivered

    def kkt_register_info(self, serial: object, task_id: object = None) -> dict:
        """``/kkt_register_info/v1``: registration parameters with the pending task's tax modes."""
        serial = check_serial(serial)
        task_id = _parse_task_id(task_id)
        with self._lock:
            device = self._seen_locked(serial)
            task = self._target_task_locked(serial, task_id)
            names = task.tax_systems if task else device.tax_systems or []
            info = deepcopy(device.kkt_registration_info or {})
            info.setdefault("registry_number", "")
            info.setdefault("autonomic", False)
            info.setdefault("work_mode", [])
            info.setdefault("agents", [])
            info["tax_modes"] = [CABINET_TAX_MODES[name] for name in names]
            return {
                "shop_info": deepcopy(device.shop_info) or dict(DEFAULT_SHOP_INFO),
                "kkt_registration_info": info,
                "task_id": task.task_id if task else None,
            }

    def registration_report(self, serial: object, payload: Mapping[str, Any]) -> dict:
        """``/registration_report/v1``: success closes the task, an error leaves it for retry."""
        serial = check_serial(serial)
        task_id, error, registration, names = _parse_registration_report(payload)
        with self._lock:
            device = self._seen_locked(serial)
            task = self._target_task_locked(serial, task_id)
            record = {
                "at": device.last_seen_at,
                "task_id": task.task_id if task else None,
                "type": payload.get("type"),
                "reason": payload.get("reason"),
                "date": payload.get("date"),
                "number_fd": registration.get("number_fd"),
                "fiscal_sign": registration.get("fiscal_sign"),
                "tax_systems": names,
                "error": error,
            }
            _push(device.reports, record)
            if error:
                device.last_error = dict(error)
            elif names:
                device.tax_systems = names
            if task is None or not task.open:
                return {"task_id": record["task_id"], "state": task.state if task else None}
            task.attempts += 1
            task.report = deepcopy(record)
            if error:
                task.last_error = dict(error)
                self._maybe_fail_locked(task)
            else:
                device.last_error = None
                device.tax_systems = names or list(task.tax_systems)
                task.state, task.done_at, task.last_error = "done", device.last_seen_at, None
                task.tax_modes_match = None if names is None else names == task.tax_systems
            return {"task_id": task.task_id, "state": task.state}

    def cash_info_report(self, serial: object, payload: Mapping[str, Any]) -> dict:
        """``/cash_info_report/v1``: firmware versions, ККТ/ФН info, local time, tax modes."""
        serial = check_serial(serial)
        report = _parse_cash_info(payload)
        with self._lock:
            device = self._seen_locked(serial)
            versions = report.pop("versions")
            if versions is not None:
                device.versions = versions
                device.firmware = _pick_firmware(versions)
            for attribute, value in report.items():
                if value is not None:
                    setattr(device, attribute, value)
            return {}

    # ---- helpers (caller holds the lock) ---------------------------------------------------

    def _now(self) -> str:
        return self._clock().isoformat(timespec="seconds")

    def _schedule_locked(self, serial: str, names: list[str], day: date, cashier: dict) -> int:
        device = self._device_locked(serial)
        task = _Task(
            task_id=self._next_task_id,
            serial=serial,
            tax_systems=names,
            date=day,
            cashier=cashier,
            created_at=self._now(),
            withheld=device.withheld,
        )
        self._tasks[task.task_id] = task
        self._next_task_id += 1
        return task.task_id

    def _device_locked(self, serial: str) -> _Device:
        device = self._devices.get(serial)
        if device is None:
            device = self._devices[serial] = _Device(serial)
        return device

    def _seen_locked(self, serial: str) -> _Device:
        device = self._device_locked(serial)
        device.last_seen_at = self._now()
        return device

    def _tasks_of(self, serial: str) -> list[_Task]:
        return [task for task in self._tasks.values() if task.serial == serial]

    def _target_task_locked(self, serial: str, task_id: int | None) -> _Task | None:
        """The named task (must be this register's and delivered), else the newest delivered."""
        if task_id is not None:
            task = self._tasks.get(task_id)
            if task is None or task.serial != serial:
                raise HubError(f"unknown task_id {task_id} for serial {serial}")
            if task.state == "new":
                raise HubError(f"task {task_id} has not been delivered yet")
            return task
        delivered = [task for task in self._tasks_of(serial) if task.state == "delivered"]
        return delivered[-1] if delivered else None

    def _apply_task_result_locked(self, device: _Device, result: dict) -> None:
        result = {**result, "at": device.last_seen_at}
        task = self._tasks.get(result["task_id"])
        if task is None or task.serial != device.serial:
            _push(device.unmatched_results, result)
            return
        task.results.append(result)
        if result["result"].upper() == "OK":
            task.acknowledged_at = task.acknowledged_at or result["at"]
            return
        error = {"code": result["error_code"], "message": str(result["message"] or result["result"])}
        device.last_error = dict(error)
        if task.open:
            task.last_error = error
            task.attempts += 1
            self._maybe_fail_locked(task)

    def _maybe_fail_locked(self, task: _Task) -> None:
        if self._max_attempts is not None and task.attempts >= self._max_attempts:
            task.state, task.done_at = "failed", self._now()

    def _threshold(self, serial: str) -> str | None:
        model = model_for_serial(serial)
        return self._thresholds.get(model) if model else None

    def _updated(self, device: _Device) -> bool:
        threshold = self._threshold(device.serial)
        return bool(threshold and device.firmware and version_at_least(device.firmware, threshold))

    def _local_date(self, serial: str) -> date | None:
        device = self._devices.get(serial)
        return _parse_local_date(device.local_time) if device else None

    def _device_view(self, device: _Device) -> dict:
        tasks = self._tasks_of(device.serial)
        current = tasks[-1] if tasks else None
        local_date = _parse_local_date(device.local_time)
        model = model_for_serial(device.serial)
        return {
            "serial": device.serial,
            "model": model,
            "model_name": MODEL_NAMES.get(model) if model else None,
            "threshold": self._threshold(device.serial),
            "firmware": device.firmware,
            "versions": deepcopy(device.versions),
            "updated": self._updated(device),
            "task_received": bool(current and current.delivered_at),
            "reregistered": bool(current and current.state == "done"),
            "last_error": deepcopy(device.last_error),
            "task_id": current.task_id if current else None,
            "withheld": device.withheld,
            "tax_systems": list(device.tax_systems) if device.tax_systems else None,
            "kkt_info": deepcopy(device.kkt_info),
            "local_time": device.local_time,
            "local_date": local_date.isoformat() if local_date else None,
            "poll_count": device.poll_count,
            "last_poll_at": device.last_poll_at,
            "last_seen_at": device.last_seen_at,
            "handshake": deepcopy(device.handshake),
            "tasks": [task.view(local_date) for task in tasks],
            "reports": deepcopy(device.reports),
            "unmatched_results": deepcopy(device.unmatched_results),
        }
