"""The core's state as plain JSON, and back: the control channel's ``state`` op and ``--state FILE``
(the snapshot, and the journal entries :mod:`.durable` appends between snapshots).

The one place where typed state (enums, decimals, datetimes) becomes strings and numbers.  The
JSON layout is a contract (users keep state files across versions): enum values are written as
they always were (paper ``"ok"``, document kinds as form numbers, tax systems as 1062 bits, a
pending printout's kind as ``"receipt"`` / ``"shift_close"`` / ``"shift_open"`` /
``"reregistration"``).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, fields
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from harness.device import DocumentKind, FnPhase, PaperState, ReceiptKind, TaxSystem

from .clock import VirtualClock
from .defects import check_defects
from .records import (
    SHIFT_SUMS,
    Counters,
    Document,
    DocumentForm,
    Fn,
    OpenDocument,
    PendingPrint,
    Printer,
    ReceiptStep,
    Shift,
)

if TYPE_CHECKING:
    from .core import FiscalCore

PENDING_KINDS = {
    DocumentKind.RECEIPT: "receipt",
    DocumentKind.SHIFT_CLOSE: "shift_close",
    DocumentKind.SHIFT_OPEN: "shift_open",
    DocumentKind.REREGISTRATION: "reregistration",
}
PENDING_BY_NAME = {name: kind for kind, name in PENDING_KINDS.items()}


def snapshot(core: FiscalCore, *, documents: bool = True) -> dict[str, Any]:
    """Everything, JSON-ready (call with the core's lock held); ``documents=False`` leaves out the
    ФН archive (``fn.documents``), the one part that grows."""
    data: dict[str, Any] = _state(core, documents)
    return data


def journal_entry(core: FiscalCore, documents: list[Document]) -> dict[str, Any]:
    """What the ``--state`` journal keeps for one ФН commit (or, with no documents, a change of
    the rest of the state): the documents just committed, what :func:`restore_core` reads of the
    rest (no archive, no derived values such as ``ofd_queue``: they cost a pass over the archive
    each), and the two flags of archived documents that change later (sent to the OFD, printout
    finished) as ``[first, last]`` ranges of the numbers of the documents that are not.  Its size
    does not grow with the archive.  :func:`replay` is the way back."""
    unsent, unprinted = [], []
    for doc in core.fn.archive:
        if not doc.delivered:
            unsent.append(doc.number)
        if not doc.printed:
            unprinted.append(doc.number)
    return {
        "documents": [_document_json(d) for d in documents],
        "state": _restorable(core),
        "unsent": _ranges(unsent),
        "unprinted": _ranges(unprinted),
    }


def _restorable(core: FiscalCore) -> dict[str, Any]:
    """The keys of :func:`snapshot` that :func:`restore_core` reads, without the archive."""
    pending = None
    if core.pending is not None:
        pending = {**asdict(core.pending), "kind": PENDING_KINDS[core.pending.kind]}
    data: dict[str, Any] = jsonable(
        {
            "model": core.profile.id,
            "serial": core.serial,
            "firmware": core.firmware,
            "clock": core.clock.snapshot(),
            "ofd_online": core.ofd_online,
            "defects": sorted(core.defects),
            "printer": asdict(core.printer),
            "shift": asdict(core.shift),
            "document": asdict(core.document) if core.document else None,
            "pending_print": pending,
            "fn": {f.name: getattr(core.fn, f.name) for f in fields(core.fn) if f.name != "archive"},
            "cash": core.cash,
            "counters": asdict(core.counters),
        }
    )
    return data


def _document_json(doc: Document) -> dict[str, Any]:
    """``jsonable(asdict(doc))`` without asdict's deep copy (the fields are flat; lines are strings)."""
    data: dict[str, Any] = jsonable({f.name: getattr(doc, f.name) for f in fields(doc)})
    return data


def _ranges(numbers: list[int]) -> list[list[int]]:
    """Ascending numbers as ``[first, last]`` runs: [1, 2, 3, 7] → [[1, 3], [7, 7]]."""
    if numbers and numbers[-1] - numbers[0] == len(numbers) - 1:
        return [[numbers[0], numbers[-1]]]  # one run (the usual OFD queue): no loop
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    return runs


def _numbers(runs: list[list[int]]) -> set[int]:
    return {n for first, last in runs for n in range(int(first), int(last) + 1)}


def replay(data: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A :func:`snapshot` with :func:`journal_entry` records applied in order, for
    :func:`restore_core`: documents added (or replaced, by number), what restore reads as the
    last entry had it (derived values, which restore does not read, stay as ``data`` had them).
    KeyError/TypeError for an entry of another shape."""
    if not entries:
        return data
    archive = {int(d["number"]): d for d in data["fn"]["documents"]}
    for entry in entries:
        for doc in entry["documents"]:
            archive[int(doc["number"])] = doc
    last = entries[-1]
    unsent, unprinted = _numbers(last["unsent"]), _numbers(last["unprinted"])
    documents = [archive[number] for number in sorted(archive)]
    for doc in documents:
        doc["delivered"] = doc["number"] not in unsent
        doc["printed"] = doc["number"] not in unprinted
    state = {**data, **last["state"]}
    state["fn"] = {**data["fn"], **last["state"]["fn"], "documents": documents}
    return state


def _state(core: FiscalCore, documents: bool = True) -> Any:
    unsent = core.undelivered()  # the lab sees the queue as it is, not as the ФН reports it
    pending = None
    if core.pending is not None:
        pending = {**asdict(core.pending), "kind": PENDING_KINDS[core.pending.kind]}
    return jsonable(
        {
            "model": core.profile.id,
            "serial": core.serial,
            "firmware": core.firmware,
            "powered": core.powered,
            "initialised": core.initialised,
            "clock": core.clock.snapshot(),
            "ofd_online": core.ofd_online,
            "defects": sorted(core.defects),
            "printer": asdict(core.printer),
            "shift": {
                **asdict(core.shift),
                "expired": core.shift_expired(),
                "elapsed_seconds": (core.shift_elapsed() or timedelta()).total_seconds(),
            },
            "document": asdict(core.document) if core.document else None,
            "pending_print": pending,
            "fn": {
                **{f.name: getattr(core.fn, f.name) for f in fields(core.fn) if f.name != "archive"},
                "valid_until": core.fn_valid_until(),
                "expired": core.fn_expired(),
                "registrations_left": core.registrations_left(),
                "warnings": int(core.fn_warnings()),
                "last_fd": core.last_fd().number,
                **({"documents": [asdict(d) for d in core.fn.archive]} if documents else {}),
            },
            "ofd_queue": {
                "count": len(unsent),
                "first_number": unsent[0].number if unsent else None,
                "first_datetime": unsent[0].at if unsent else None,
                "blocked": core.ofd_blocked(),
            },
            "cash": core.cash,
            "counters": asdict(core.counters),
        }
    )


def restore_core(core: FiscalCore, data: dict[str, Any]) -> None:
    """Load a :func:`snapshot` into a core built for the same model (``--state FILE``)."""
    if not isinstance(data, dict):
        raise ValueError("state file does not hold a register snapshot (a JSON object)")
    if data.get("model") != core.profile.id:
        raise ValueError(f"state file is for model {data.get('model')!r}, not {core.profile.id!r}")
    try:
        with core.lock:
            core.serial = data["serial"]
            core.firmware = data["firmware"]
            core.clock = VirtualClock.restore(data["clock"])
            core.ofd_online = bool(data["ofd_online"])
            core.defects = set(check_defects(data.get("defects", [])))
            printer = dict(data["printer"])
            core.printer = Printer(**{**printer, "paper": PaperState(printer["paper"])})
            shift = {k: v for k, v in data["shift"].items() if k in Shift.__dataclass_fields__}
            sums = {k: Decimal(shift[k]) for k in SHIFT_SUMS if k in shift}
            core.shift = Shift(**{**shift, **sums, "opened_at": _dt(shift.get("opened_at"))})
            core.document = _open_document(data["document"]) if data.get("document") else None
            core.pending = _pending(data["pending_print"]) if data.get("pending_print") else None
            core.fn = _fn(data["fn"])
            core.cash = Decimal(data.get("cash", "0"))
            core.counters = Counters(**data.get("counters", {}))
            core.new_documents = []
            core.powered = True
            core.initialised = not core.profile.needs_start_of_work
            core.log("state restored", f"{len(core.fn.archive)} documents, last FD {core.last_fd().number}")
    except (KeyError, TypeError, AttributeError, ArithmeticError, ValueError) as exc:
        raise ValueError(f"state file is incomplete or from another version: {exc}") from None


def _open_document(raw: dict[str, Any]) -> OpenDocument:
    fields = dict(raw)
    for key in ("total", "paid", "cash_paid"):
        fields[key] = Decimal(fields[key])
    fields["kind"] = ReceiptKind(fields["kind"])
    fields["tax_system"] = TaxSystem(fields["tax_system"])
    fields["state"] = ReceiptStep(fields["state"])
    fields["form"] = DocumentForm(fields.get("form", DocumentForm.RECEIPT.value))
    for key in ("payments", "taxes"):
        fields[key] = {k: Decimal(v) for k, v in fields.get(key, {}).items()}
    fields["discount"] = Decimal(fields.get("discount", "0"))
    return OpenDocument(**fields)


def _pending(raw: dict[str, Any]) -> PendingPrint:
    return PendingPrint(**{**raw, "kind": PENDING_BY_NAME[raw["kind"]]})


def _document(raw: dict[str, Any]) -> Document:
    fields = dict(raw)
    fields["at"] = _dt(fields["at"])
    fields["kind"] = DocumentKind(fields["kind"])
    for key in ("tax_system", "tax_systems"):
        fields[key] = None if fields.get(key) is None else TaxSystem(fields[key])
    fields["total"] = None if fields.get("total") is None else Decimal(fields["total"])
    fields["receipt_kind"] = None if fields.get("receipt_kind") is None else ReceiptKind(fields["receipt_kind"])
    for key in ("payments", "taxes"):
        fields[key] = {k: Decimal(v) for k, v in fields.get(key, {}).items()}
    return Document(**fields)


def _fn(raw: dict[str, Any]) -> Fn:
    fields = {k: raw[k] for k in Fn.__dataclass_fields__ if k not in ("archive", "activated_at")}
    fields["phase"] = FnPhase(fields["phase"])
    fields["tax_systems"] = TaxSystem(fields["tax_systems"])
    activated = _dt(raw["activated_at"])
    if activated is None:
        raise ValueError("the ФН has no activation date")
    return Fn(**fields, activated_at=activated, archive=[_document(d) for d in raw["documents"]])


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def jsonable(value: Any) -> Any:
    """Plain JSON values: enums as their values, decimals as strings, dates in ISO form."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return int(value) if isinstance(value, int) else value.value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value
