"""Dreamkas hub ("Кабинет") emulator: the vendor cloud side of deferred re-registration.

Registers running fisGo poll the hub over HTTP (protocols.md §5.2-5.3, §8.4; domain-rules.md §6).
A partner schedules a re-registration task (new tax systems from a date); the hub hands it to the
register in a ``/poll/v3`` answer and tracks three statuses per register: firmware *updated*
(>= the model's threshold) → *task received* → *re-registered*.

The package, bottom to top:

* :mod:`.parsing` — vocabularies (Кабинет tax-mode strings; model facts read from the catalogue
  :mod:`devices.models`, tax systems from :mod:`harness.fiscal`) and the pure parsers;
* :mod:`.state` — the task and device records and the thread-safe :class:`Hub`;
* :mod:`.http` — the HTTP routing :func:`route`, :class:`HubServer` and :func:`serve`.

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

from harness.fiscal import ENVD_ABOLISHED
from harness.versions import version_at_least

from .http import MAX_BODY_BYTES, HubServer, route, serve
from .parsing import (
    CABINET_TAX_MODES,
    DEFAULT_CASHIER,
    DEFAULT_SHOP_INFO,
    FIRMWARE_THRESHOLDS,
    FIRMWARE_VERSION_TYPES,
    MODEL_NAMES,
    SERIAL_PREFIX_MODELS,
    TASK_KIND,
    TASK_STATES,
    TAX_SYSTEM_BITS,
    HubError,
    check_serial,
    check_task_request,
    model_for_serial,
    parse_date,
    parse_tax_system,
    parse_tax_systems,
    tax_mask,
)
from .state import HISTORY_LIMIT, Hub

__all__ = [
    "CABINET_TAX_MODES",
    "DEFAULT_CASHIER",
    "DEFAULT_SHOP_INFO",
    "ENVD_ABOLISHED",
    "FIRMWARE_THRESHOLDS",
    "FIRMWARE_VERSION_TYPES",
    "HISTORY_LIMIT",
    "MAX_BODY_BYTES",
    "MODEL_NAMES",
    "SERIAL_PREFIX_MODELS",
    "TASK_KIND",
    "TASK_STATES",
    "TAX_SYSTEM_BITS",
    "Hub",
    "HubError",
    "HubServer",
    "check_serial",
    "check_task_request",
    "model_for_serial",
    "parse_date",
    "parse_tax_system",
    "parse_tax_systems",
    "route",
    "serve",
    "tax_mask",
    "version_at_least",
]
