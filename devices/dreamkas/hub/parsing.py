"""Vocabularies and pure parsers of the Dreamkas hub; every parser raises :class:`HubError`.

Model facts (firmware gates, titles, factory-number prefixes) are read from the catalogue
:mod:`devices.models`; tax-system names, bits and Russian aliases from :mod:`harness.fiscal`.
Only the Кабинет vocabulary (``DEFAULT``/``SIMPLE``/... tax-mode strings) is Dreamkas' own.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from copy import deepcopy
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

from devices.models import MODELS
from harness.fiscal import ENVD_ABOLISHED, RUSSIAN_TAX_ALIASES, TAX_NAMES, TaxSystem, alias_key

# --------------------------------------------------------------------------------------------
# Vocabularies
# --------------------------------------------------------------------------------------------

#: Tax systems (СНО) by our name → tag 1055/1062 bit value (R1.1), derived from ``TAX_NAMES``.
TAX_SYSTEM_BITS: Mapping[str, int] = MappingProxyType({name: int(bit) for name, bit in TAX_NAMES.items()})

_CABINET_BY_BIT: Mapping[TaxSystem, str] = {
    TaxSystem.OSN: "DEFAULT",
    TaxSystem.USN_INCOME: "SIMPLE",
    TaxSystem.USN_INCOME_EXPENSE: "SIMPLE_WO",
    TaxSystem.ENVD: "ENVD",
    TaxSystem.ESN: "AGRICULT",
    TaxSystem.PATENT: "PATENT",
}
#: Our name → the Кабинет / hub string used in ``kkt_registration_info.tax_modes``.
CABINET_TAX_MODES: Mapping[str, str] = MappingProxyType({name: _CABINET_BY_BIT[bit] for name, bit in TAX_NAMES.items()})

_CLOUD_MODELS = tuple(model for model in MODELS.values() if model.has_cloud_tasks)
#: Minimum firmware per model for deferred re-registration (catalogue ``rereg_min_firmware``).
FIRMWARE_THRESHOLDS: Mapping[str, str] = MappingProxyType(
    {model.id: model.rereg_min_firmware for model in _CLOUD_MODELS if model.rereg_min_firmware}
)
#: Human model names for the threshold table keys (catalogue ``title``).
MODEL_NAMES: Mapping[str, str] = MappingProxyType({model.id: model.title for model in _CLOUD_MODELS})
#: Factory-number prefix → model (§5.6; catalogue ``serial_prefixes``).
SERIAL_PREFIX_MODELS: Mapping[str, str] = MappingProxyType(
    {prefix: model.id for model in _CLOUD_MODELS for prefix in model.serial_prefixes}
)
#: ``versions[].type`` values treated as the register firmware (else the first entry is used).
FIRMWARE_VERSION_TYPES = frozenset({"fisgo", "firmware", "fw"})

TASK_KIND = "CHANGE_PARAMETERS"
TASK_STATES = ("new", "delivered", "done", "failed", "cancelled")
DEFAULT_CASHIER: Mapping[str, str] = MappingProxyType({"name": "Администратор", "inn": ""})
DEFAULT_SHOP_INFO: Mapping[str, str] = MappingProxyType(
    {"legal_name": "", "inn": "", "address": "", "real_address": "", "shop_name": ""}
)


class HubError(ValueError):
    """Bad input to the hub; ``status`` is the HTTP status the server answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------------------------
# Parsers (pure functions, raise HubError with a one-line reason)
# --------------------------------------------------------------------------------------------

_TAX_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        alias_key(alias): name
        for name in TAX_NAMES
        for alias in (name, CABINET_TAX_MODES[name], *RUSSIAN_TAX_ALIASES[name])
    }
)
_TAX_BY_BIT = {bit: name for name, bit in TAX_SYSTEM_BITS.items()}
_ENVD = _TAX_BY_BIT[int(TaxSystem.ENVD)]


def model_for_serial(serial: str) -> str | None:
    """Catalogue model id for a factory number, None if the prefix is unknown."""
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
    if isinstance(value, str) and alias_key(value) in _TAX_ALIASES:
        return _TAX_ALIASES[alias_key(value)]
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
    if _ENVD in names and day >= ENVD_ABOLISHED:
        raise HubError(
            f"{_ENVD} is not allowed from {ENVD_ABOLISHED.isoformat()}: ЕНВД was abolished (domain rule R1.4)"
        )
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


def _parse_cashier(cashier: object) -> dict:
    if cashier is None:
        return dict(DEFAULT_CASHIER)
    if not isinstance(cashier, Mapping) or not isinstance(cashier.get("name"), str):
        raise HubError("'cashier' must be an object {name, inn}")
    return {"name": cashier["name"], "inn": str(cashier.get("inn") or "")}


def _parse_cash_info(payload: Mapping[str, Any]) -> dict:
    """A ``/cash_info_report/v1`` payload → ``versions`` and device attributes (None: not sent)."""
    versions = payload.get("versions")
    if versions is not None:
        if not isinstance(versions, list) or not all(isinstance(item, dict) and "version" in item for item in versions):
            raise HubError("'versions' must be a list of {type, version, ...}")
        versions = deepcopy(versions)
    kkt_info = _optional_dict(payload, "kkt_info")
    shop_info = _optional_dict(payload, "shop_info")
    reg_info = _optional_dict(payload, "kkt_registration_info")
    local_time = payload.get("local_time")
    if local_time is not None and not isinstance(local_time, str):
        raise HubError("'local_time' must be a string")
    modes = payload.get("tax_modes") or (reg_info or {}).get("tax_modes")
    return {
        "versions": versions,
        "kkt_info": kkt_info,
        "shop_info": shop_info,
        "kkt_registration_info": reg_info,
        "local_time": local_time,
        "tax_systems": parse_tax_systems(modes) if modes else None,
    }


def _parse_registration_report(payload: Mapping[str, Any]) -> tuple[int | None, dict | None, dict, list[str] | None]:
    """A ``/registration_report/v1`` payload → (task_id, error, registration_data, tax systems)."""
    task_id = _parse_task_id(payload.get("task_id"))
    error = _parse_error(payload.get("error"))
    registration = _optional_dict(payload, "registration_data") or {}
    reg_info = registration.get("kkt_registration_info")
    modes = payload.get("tax_modes") or registration.get("tax_modes")
    if not modes and isinstance(reg_info, dict):
        modes = reg_info.get("tax_modes")
    return task_id, error, registration, parse_tax_systems(modes) if modes else None


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
            parsed.append((number, dict(zip(columns, row, strict=True))))
    return parsed
