"""Dreamkas hub ("Кабинет") emulator: the vendor cloud side of deferred re-registration.

Registers running fisGo poll the hub over HTTP (protocols.md §5.2-5.3, §8.4; domain-rules.md §6).
A partner schedules a re-registration task (new tax systems from a date); the hub hands it to the
register in a ``/poll/v3`` answer and tracks three statuses per register: firmware *updated*
(>= the model's threshold) → *task received* → *re-registered*.

Layers (one module, top to bottom): vocabularies and parsers, the thread-safe :class:`Hub` state,
the HTTP routing, and :func:`serve`.

Extensions over the public protocol (our device emulator and :mod:`devices.dreamkas.hub_client`
rely on them):

* a device names itself with ``serial`` in the JSON body (top level or inside ``data``), an
  ``X-Kkt-Serial`` header, or ``kkt_info.kkt_factory_number``; the real hub uses HTTP Basic auth;
* a ``registration`` poll task carries, directly in ``data``: ``scheduled_date`` (YYYY-MM-DD, the
  register's local date from which the change applies), ``tax_modes`` (Кабинет strings
  ``DEFAULT/SIMPLE/SIMPLE_WO/ENVD/AGRICULT/PATENT``, the vocabulary of ``kkt_registration_info``),
  ``tax_systems`` (our names) and ``tax_mask`` (tag 1062 bits);
* ``/kkt_register_info/v1`` and ``/registration_report/v1`` accept an optional ``task_id``;
* a task is delivered on every poll while it is open (``new``/``delivered``), not withheld and the
  register is *updated*; it stops once a successful ``/registration_report/v1`` marks it ``done``
  (or, with ``max_attempts``, once that many failures mark it ``failed``).

Device-reported tax modes may use any vocabulary: our names, Кабинет strings, Russian names or
single bit values.  Errors are answered as JSON ``{"ok": false, "result": "ERROR", "error": ...}``.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Vocabularies
# --------------------------------------------------------------------------------------------

#: Tax systems (СНО) by our name → tag 1055/1062 bit value (R1.1).
TAX_SYSTEM_BITS: Mapping[str, int] = MappingProxyType(
    {"osn": 1, "usn_income": 2, "usn_income_expense": 4, "envd": 8, "esn": 16, "patent": 32}
)
#: Our name → the Кабинет / hub string used in ``kkt_registration_info.tax_modes``.
CABINET_TAX_MODES: Mapping[str, str] = MappingProxyType(
    {
        "osn": "DEFAULT",
        "usn_income": "SIMPLE",
        "usn_income_expense": "SIMPLE_WO",
        "envd": "ENVD",
        "esn": "AGRICULT",
        "patent": "PATENT",
    }
)
_RUSSIAN_TAX_NAMES = {
    "osn": ("осн", "общая"),
    "usn_income": ("усн доход", "усн доходы", "усн д"),
    "usn_income_expense": (
        "усн доход-расход",
        "усн доходы-расходы",
        "усн доход минус расход",
        "усн доходы минус расходы",
        "усн д-р",
    ),
    "envd": ("енвд",),
    "esn": ("есхн",),
    "patent": ("патент", "псн"),
}

#: Minimum firmware per model for deferred re-registration (brief; unverified, R6.0).
FIRMWARE_THRESHOLDS: Mapping[str, str] = MappingProxyType(
    {"kf": "2.26.0", "dkf": "1.12.0", "start": "10.50.1"}
)
#: Human model names for the threshold table keys.
MODEL_NAMES: Mapping[str, str] = MappingProxyType(
    {"kf": "Касса Ф", "dkf": "Дримкас-Ф", "start": "Дримкас Старт"}
)
#: Factory-number prefix → model (§5.6).  0493 is our convention for the emulated Старт.
SERIAL_PREFIX_MODELS: Mapping[str, str] = MappingProxyType(
    {"0497": "kf", "0496": "dkf", "0493": "start"}
)
#: ``versions[].type`` values treated as the register firmware (else the first entry is used).
FIRMWARE_VERSION_TYPES = frozenset({"fisgo", "firmware", "fw"})

TASK_KIND = "CHANGE_PARAMETERS"
TASK_STATES = ("new", "delivered", "done", "failed")
ENVD_ABOLISHED = date(2021, 1, 1)  # R1.4
DEFAULT_CASHIER: Mapping[str, str] = MappingProxyType({"name": "Администратор", "inn": ""})
DEFAULT_SHOP_INFO: Mapping[str, str] = MappingProxyType(
    {"legal_name": "", "inn": "", "address": "", "real_address": "", "shop_name": ""}
)
MAX_BODY_BYTES = 1 << 20
HISTORY_LIMIT = 200  # per-device report / unmatched-result history kept for inspection


class HubError(ValueError):
    """Bad input to the hub; ``status`` is the HTTP status the server answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------------------------
# Parsers (pure functions, raise HubError with a one-line reason)
# --------------------------------------------------------------------------------------------


def _alias_key(text: str) -> str:
    text = text.strip().lower().replace("ё", "е")
    text = re.sub(r"[\u2010-\u2015\u2212]", "-", text)
    text = re.sub(r"\s*-\s*", "-", text)
    return re.sub(r"\s+", " ", text)


_TAX_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        _alias_key(alias): name
        for name in TAX_SYSTEM_BITS
        for alias in (name, CABINET_TAX_MODES[name], *_RUSSIAN_TAX_NAMES[name])
    }
)
_TAX_BY_BIT = {bit: name for name, bit in TAX_SYSTEM_BITS.items()}


def parse_version(text: object) -> tuple[int, ...] | None:
    """Leading dotted numbers of a version string ("2.26.0-rc1" → (2, 26, 0)); None if none."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", str(text))
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def version_at_least(version: object, threshold: object) -> bool:
    """True if ``version`` >= ``threshold`` numerically; unparseable versions are never enough."""
    have, need = parse_version(version), parse_version(threshold)
    if have is None or need is None:
        return False
    width = max(len(have), len(need))
    return have + (0,) * (width - len(have)) >= need + (0,) * (width - len(need))


def model_for_serial(serial: str) -> str | None:
    """Model key ('kf', 'dkf', 'start') for a factory number, None if the prefix is unknown."""
    return SERIAL_PREFIX_MODELS.get(serial[:4])


def check_serial(value: object) -> str:
    """Validate a factory number: exactly 10 digits, as a string."""
    if isinstance(value, str) and re.fullmatch(r"\d{10}", value.strip()):
        return value.strip()
    raise HubError(f"bad serial {value!r}: expected 10 digits")


def parse_date(value: object) -> date:
    """Parse YYYY-MM-DD or DD.MM.YYYY (a datetime.date passes through)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    text = value.strip() if isinstance(value, str) else ""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text)
        if re.fullmatch(r"\d{2}\.\d{2}\.\d{4}", text):
            return datetime.strptime(text, "%d.%m.%Y").date()
    except ValueError:
        pass
    raise HubError(f"bad date {value!r}: expected YYYY-MM-DD or DD.MM.YYYY")


def parse_tax_system(value: object) -> str:
    """One tax system by name, Кабинет string, Russian name or bit value → our name."""
    if isinstance(value, int) and not isinstance(value, bool) and value in _TAX_BY_BIT:
        return _TAX_BY_BIT[value]
    if isinstance(value, str) and _alias_key(value) in _TAX_ALIASES:
        return _TAX_ALIASES[_alias_key(value)]
    raise HubError(f"unknown tax system {value!r}")


def parse_tax_systems(value: object) -> list[str]:
    """A non-empty list (or a '+'/';'-separated string) of tax systems → names in bit order."""
    if isinstance(value, str):
        tokens: list[object] = [token for token in re.split(r"[+;]", value) if token.strip()]
    elif isinstance(value, (list, tuple)):
        tokens = list(value)
    else:
        raise HubError(f"bad tax systems {value!r}: expected a list of names")
    names = {parse_tax_system(token) for token in tokens}
    if not names:
        raise HubError("no tax systems given")
    return sorted(names, key=TAX_SYSTEM_BITS.__getitem__)


def tax_mask(names: Iterable[str]) -> int:
    """Tag 1062 bit mask of tax-system names."""
    mask = 0
    for name in names:
        mask |= TAX_SYSTEM_BITS[name]
    return mask


def check_task_request(serial: object, tax_systems: object, when: object) -> tuple[str, list[str], date]:
    """Validate a scheduling request; the order fixes which reason a bad CSV row gets."""
    serial = check_serial(serial)
    day = parse_date(when)
    names = parse_tax_systems(tax_systems)
    if "envd" in names and day >= ENVD_ABOLISHED:
        raise HubError("envd is not allowed from 2021-01-01: ЕНВД was abolished (domain rule R1.4)")
    return serial, names, day


def _parse_local_date(local_time: str | None) -> date | None:
    if not local_time:
        return None
    try:
        return datetime.fromisoformat(local_time.strip()).date()
    except ValueError:
        try:
            return datetime.strptime(local_time.strip()[:10], "%d.%m.%Y").date()
        except ValueError:
            return None


def _optional_dict(payload: Mapping[str, Any], key: str) -> dict | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise HubError(f"'{key}' must be an object")
    return deepcopy(value)


def _parse_error(value: object) -> dict | None:
    """``error`` of a report: {} / None → no error; a string becomes the message."""
    if value in (None, "", {}):
        return None
    if isinstance(value, str):
        return {"code": None, "message": value}
    if isinstance(value, dict):
        return {"code": value.get("code"), "message": str(value.get("message") or "")}
    raise HubError("'error' must be an object {code, message}")


def _parse_task_id(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise HubError(f"bad task_id {value!r}: expected an integer")


def _parse_task_results(value: object) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise HubError("'task_results' must be a list")
    results = []
    for item in value:
        if not isinstance(item, dict):
            raise HubError("each task result must be an object")
        task_id = _parse_task_id(item.get("task_id"))
        if task_id is None:
            raise HubError("task result without task_id")
        results.append(
            {
                "task_id": task_id,
                "type": item.get("type"),
                "result": str(item.get("result") or ""),
                "message": item.get("message"),
                "error_code": item.get("error_code"),
                "data": deepcopy(item.get("data")),
            }
        )
    return results


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


@dataclass
class _Task:
    task_id: int
    serial: str
    tax_systems: list[str]
    date: date
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

    def view(self, local_date: date | None = None) -> dict:
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
            if model not in merged or parse_version(version) is None:
                raise ValueError(f"bad threshold {model!r}: {version!r}")
            merged[model] = version
        if max_attempts is not None and max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self._thresholds = MappingProxyType(merged)
        self._max_attempts = max_attempts
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._lock = threading.Lock()
        self._devices: dict[str, _Device] = {}
        self._tasks: dict[int, _Task] = {}
        self._next_task_id = 1

    # ---- admin side ------------------------------------------------------------------------

    def schedule(
        self, serial: object, tax_systems: object, when: object, *, cashier: Mapping | None = None
    ) -> int:
        """Queue a deferred re-registration task; returns its id."""
        request = check_task_request(serial, tax_systems, when)
        cashier = self._check_cashier(cashier)
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
                    request = check_task_request(
                        values["serial"], values["tax_systems"], values["date"]
                    )
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
        task_id = _parse_task_id(payload.get("task_id"))
        error = _parse_error(payload.get("error"))
        registration = _optional_dict(payload, "registration_data") or {}
        reg_info = registration.get("kkt_registration_info")
        modes = payload.get("tax_modes") or registration.get("tax_modes")
        if not modes and isinstance(reg_info, dict):
            modes = reg_info.get("tax_modes")
        names = parse_tax_systems(modes) if modes else None
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
        versions = payload.get("versions")
        if versions is not None:
            if not isinstance(versions, list) or not all(
                isinstance(item, dict) and "version" in item for item in versions
            ):
                raise HubError("'versions' must be a list of {type, version, ...}")
            versions = deepcopy(versions)
        kkt_info = _optional_dict(payload, "kkt_info")
        shop_info = _optional_dict(payload, "shop_info")
        reg_info = _optional_dict(payload, "kkt_registration_info")
        local_time = payload.get("local_time")
        if local_time is not None and not isinstance(local_time, str):
            raise HubError("'local_time' must be a string")
        modes = payload.get("tax_modes") or (reg_info or {}).get("tax_modes")
        names = parse_tax_systems(modes) if modes else None
        with self._lock:
            device = self._seen_locked(serial)
            if versions is not None:
                device.versions = versions
                device.firmware = _pick_firmware(versions)
            for attribute, value in (
                ("kkt_info", kkt_info),
                ("shop_info", shop_info),
                ("kkt_registration_info", reg_info),
                ("local_time", local_time),
                ("tax_systems", names),
            ):
                if value is not None:
                    setattr(device, attribute, value)
            return {}

    # ---- helpers (caller holds the lock) ---------------------------------------------------

    @staticmethod
    def _check_cashier(cashier: Mapping | None) -> dict:
        if cashier is None:
            return dict(DEFAULT_CASHIER)
        if not isinstance(cashier, Mapping) or not isinstance(cashier.get("name"), str):
            raise HubError("'cashier' must be an object {name, inn}")
        return {"name": cashier["name"], "inn": str(cashier.get("inn") or "")}

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


def _pick_firmware(versions: list[dict]) -> str | None:
    for item in versions:
        if str(item.get("type") or "").lower() in FIRMWARE_VERSION_TYPES:
            return str(item["version"])
    return str(versions[0]["version"]) if versions else None


_CSV_COLUMNS = {
    "serial": "serial",
    "kkt_factory_number": "serial",
    "date": "date",
    "tax_systems": "tax_systems",
    "tax_system": "tax_systems",
    "tax_modes": "tax_systems",
    "regime": "tax_systems",
}


def _csv_rows(text: str) -> list[tuple[int, dict | str]]:
    """(row number, {serial, date, tax_systems} or a rejection reason) for each non-blank row."""
    if not isinstance(text, str) or not text.strip():
        raise HubError("CSV body is empty")
    text = text.lstrip("\ufeff")
    first_line = text.splitlines()[0] if text.splitlines() else ""
    delimiter = ";" if ";" in first_line and "," not in first_line else ","
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter, skipinitialspace=True))
    except csv.Error as exc:
        raise HubError(f"bad CSV: {exc}") from None
    columns = ["serial", "date", "tax_systems"]
    numbered = [(number, [cell.strip() for cell in row]) for number, row in enumerate(rows, 1)]
    numbered = [(number, row) for number, row in numbered if any(row)]
    if numbered and numbered[0][1][0].lower() in _CSV_COLUMNS:
        header = numbered.pop(0)[1]
        try:
            columns = [_CSV_COLUMNS[name.lower()] for name in header]
        except KeyError as exc:
            raise HubError(f"unknown CSV column {exc.args[0]!r}") from None
        if sorted(columns) != ["date", "serial", "tax_systems"]:
            raise HubError("CSV header must name the columns serial, date, tax_systems once each")
    parsed: list[tuple[int, dict | str]] = []
    for number, row in numbered:
        while row and not row[-1]:
            row.pop()
        if len(row) != len(columns):
            parsed.append((number, f"expected {len(columns)} columns, got {len(row)}"))
        else:
            parsed.append((number, dict(zip(columns, row))))
    return parsed


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------

_DEVICE_ENDPOINTS = {
    "/handshake/v2": "handshake",
    "/poll/v3": "poll",
    "/kkt_register_info/v1": "kkt_register_info",
    "/registration_report/v1": "registration_report",
    "/cash_info_report/v1": "cash_info_report",
}
_ADMIN_PATHS = {
    "/admin/tasks": ("GET", "POST"),
    "/admin/withhold": ("POST",),
    "/admin/devices": ("GET",),
    "/admin/import": ("POST",),
    "/admin/reset": ("POST",),
}


def _json_object(raw: bytes) -> dict:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise HubError(f"bad JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(body, dict):
        raise HubError("JSON body must be an object")
    return body


def _device_payload(body: dict) -> dict:
    """Top-level fields merged with the ``data`` object the register wraps reports in."""
    data = body.get("data")
    if data is None:
        return body
    if not isinstance(data, dict):
        raise HubError("'data' must be an object")
    return {**{key: value for key, value in body.items() if key != "data"}, **data}


def _device_serial(headers: Mapping[str, str], payload: dict) -> str:
    kkt_info = payload.get("kkt_info")
    candidates = [
        payload.get("serial"),
        headers.get("X-Kkt-Serial"),
        kkt_info.get("kkt_factory_number") if isinstance(kkt_info, dict) else None,
    ]
    serials = {check_serial(value) for value in candidates if value not in (None, "")}
    if not serials:
        raise HubError("device serial missing: send 'serial' in the body or an X-Kkt-Serial header")
    if len(serials) > 1:
        raise HubError(f"conflicting serial numbers {sorted(serials)}")
    return serials.pop()


def route(hub: Hub, method: str, target: str, headers: Mapping[str, str], raw: bytes) -> tuple[int, dict]:
    """Map one HTTP request to the hub; returns (status, JSON answer).  Raises HubError."""
    split = urlsplit(target)
    path = split.path.rstrip("/") or "/"
    if path in _DEVICE_ENDPOINTS:
        if method != "POST":
            raise HubError(f"{method} not allowed on {path}", 405)
        payload = _device_payload(_json_object(raw))
        serial = _device_serial(headers, payload)
        name = _DEVICE_ENDPOINTS[path]
        if name == "poll":
            data: Any = {"tasks": hub.poll(serial, payload.get("task_results"))}
        elif name == "kkt_register_info":
            data = hub.kkt_register_info(serial, payload.get("task_id"))
        else:
            data = getattr(hub, name)(serial, payload)
        return 200, {"result": "OK", "data": data}

    device_path = re.fullmatch(r"/admin/devices/([^/]+)", path)
    allowed = ("GET",) if device_path else _ADMIN_PATHS.get(path)
    if allowed is None:
        raise HubError(f"unknown path {path}", 404)
    if method not in allowed:
        raise HubError(f"{method} not allowed on {path}", 405)
    if device_path:
        return 200, {"ok": True, **hub.device(device_path.group(1))}
    if path == "/admin/devices":
        return 200, {"ok": True, "devices": hub.devices()}
    if path == "/admin/tasks" and method == "GET":
        serial = parse_qs(split.query).get("serial", [None])[0]
        return 200, {"ok": True, "tasks": hub.tasks(serial)}
    if path == "/admin/import":
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise HubError("CSV body must be UTF-8") from None
        return 200, {"ok": True, **hub.import_csv(text)}
    if path == "/admin/reset":
        hub.reset()
        return 200, {"ok": True}
    body = _json_object(raw)
    if path == "/admin/withhold":
        if "withhold" not in body:
            raise HubError("'withhold' (true or false) is required")
        tasks = hub.withhold(body.get("serial"), body["withhold"], body.get("task_id"))
        return 200, {"ok": True, "tasks": tasks}
    for key in ("serial", "tax_systems", "date"):
        if key not in body:
            raise HubError(f"'{key}' is required")
    task_id = hub.schedule(body["serial"], body["tax_systems"], body["date"], cashier=body.get("cashier"))
    return 200, {"ok": True, "task_id": task_id}


def _error_answer(message: str) -> dict:
    return {"ok": False, "result": "ERROR", "error": message.splitlines()[0] if message else "error"}


class _Handler(BaseHTTPRequestHandler):
    server: _HubHTTPServer
    server_version = "kkt-hil-hub/1.0"

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (base signature)
        log.debug("%s %s", self.address_string(), format % args)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_text = self.headers.get("Content-Length", "0") or "0"
        if not length_text.isdigit():
            raise HubError(f"bad Content-Length {length_text!r}")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            raise HubError(f"body too large ({length} bytes)", 413)
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size_text = self.rfile.readline(64).split(b";")[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise HubError(f"bad chunk size {size_text!r}") from None
            if len(body) + size > MAX_BODY_BYTES:
                raise HubError("body too large", 413)
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers up to the empty line
                    pass
                return bytes(body)
            body += self.rfile.read(size)
            self.rfile.readline(8)  # CRLF after the chunk

    def _dispatch(self, method: str) -> None:
        try:
            raw = self._read_body()
            status, answer = route(self.server.hub, method, self.path, self.headers, raw)
        except HubError as exc:
            status, answer = exc.status, _error_answer(str(exc))
        except Exception as exc:  # a bug must still produce an answer, never a dropped connection
            log.exception("hub: %s %s failed", method, self.path)
            status, answer = 500, _error_answer(f"internal error: {type(exc).__name__}: {exc}")
        payload = json.dumps(answer, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _HubHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], hub: Hub) -> None:
        self.hub = hub
        super().__init__(address, _Handler)


def _check_loopback(host: str) -> str:
    address = "127.0.0.1" if host == "localhost" else host
    try:
        if ipaddress.IPv4Address(address).is_loopback:
            return address
    except ValueError:
        pass
    raise ValueError(f"refusing to serve the hub on non-loopback host {host!r}")


class HubServer:
    """A running hub HTTP server (background thread); use as a context manager or close()."""

    def __init__(self, hub: Hub, host: str = "127.0.0.1", port: int = 0) -> None:
        self.hub = hub
        self._httpd = _HubHTTPServer((_check_loopback(host), port), hub)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"dreamkas-hub:{self.port}",
            daemon=True,
        )
        self._closed = False
        self._thread.start()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        host = self._httpd.server_address[0]
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> HubServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def serve(hub: Hub, host: str = "127.0.0.1", port: int = 0) -> HubServer:
    """Serve ``hub`` over HTTP on a loopback address; non-loopback hosts raise ValueError."""
    return HubServer(hub, host, port)
