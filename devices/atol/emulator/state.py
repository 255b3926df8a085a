"""Device-level front-end state, refusals, mode rules and the wire constants of the АТОЛ emulator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.device import PaymentKind, ReceiptKind, Vat

from ...emulator.core import FiscalCore
from .. import errors as atol_errors
from ..protocol import (
    AddFlags,
    BufferStatus,
    Cmd,
    CommandRequest,
    Mode,
    PaymentType,
    ReceiptType,
    TaxType,
)

SYNC_PENDING = "pending"
SYNC_RESULT = "result"
SYNC_SETTING = "atol_sync_result"
A4_10_SETTING = "atol_a4_10_encoding"
TASK_CAPACITY = 32
ACCESS_PASSWORD = 0
PROTOCOL_VERSION = 3
DEVICE_TYPE_KKT = 1
V2_RESEND_LIMIT = 10

RECEIPT_KIND = {
    ReceiptType.SALE: ReceiptKind.SALE,
    ReceiptType.SALE_RETURN: ReceiptKind.SALE_RETURN,
    ReceiptType.EXPENSE: ReceiptKind.PURCHASE,
    ReceiptType.EXPENSE_RETURN: ReceiptKind.PURCHASE_RETURN,
}
RECEIPT_TYPE = {kind: int(rtype) for rtype, kind in RECEIPT_KIND.items()}
VAT_BY_TAX = {
    TaxType.DEPARTMENT: Vat.NONE,
    TaxType.VAT18: Vat.VAT20,
    TaxType.VAT20: Vat.VAT20,
    TaxType.VAT118: Vat.VAT20,
    TaxType.VAT120: Vat.VAT20,
    TaxType.VAT10: Vat.VAT10,
    TaxType.VAT110: Vat.VAT10,
    TaxType.VAT0: Vat.VAT0,
    TaxType.NONE: Vat.NONE,
}
PAYMENT_KIND = {PaymentType.CASH: PaymentKind.CASH, PaymentType.ELECTRONIC: PaymentKind.ELECTRONIC}

# the mode each command needs (None: any mode)
COMMAND_MODE: dict[int, int | None] = {
    Cmd.STATUS: None,
    Cmd.STATE: None,
    Cmd.DEVICE_TYPE: None,
    Cmd.FIRMWARE: None,
    Cmd.FN: None,
    Cmd.CASH_IN_DRAWER: None,
    Cmd.WRITE_REQUISITE: None,
    Cmd.READ_REQUISITE: None,
    Cmd.LAST_SHIFT_TOTALS: None,
    Cmd.LAST_ERROR: None,
    Cmd.READ_REGISTER: None,
    Cmd.REPRINT_LAST: None,
    Cmd.ENTER_MODE: None,
    Cmd.EXIT_MODE: None,
    Cmd.OPEN_SHIFT: Mode.REGISTRATION,
    Cmd.OPEN_RECEIPT: Mode.REGISTRATION,
    Cmd.REGISTER_POSITION: Mode.REGISTRATION,
    Cmd.PAYMENT: Mode.REGISTRATION,
    Cmd.CLOSE_RECEIPT: Mode.REGISTRATION,
    Cmd.CANCEL_RECEIPT: Mode.REGISTRATION,
    Cmd.X_REPORT: Mode.X_REPORT,
    Cmd.Z_REPORT: Mode.Z_REPORT,
    Cmd.SET_DATE: Mode.PROGRAMMING,
    Cmd.SET_TIME: Mode.PROGRAMMING,
    Cmd.SET_DATETIME: Mode.PROGRAMMING,
    Cmd.REGISTRATION: Mode.FN,
}


def modes_for_password(password: int) -> frozenset[int]:
    """Modes a mode password opens: cashiers 1-28, administrator 29, system administrator 30."""
    if 1 <= password <= 28:
        return frozenset({Mode.REGISTRATION, Mode.X_REPORT})
    if password == 29:
        return frozenset({Mode.REGISTRATION, Mode.X_REPORT, Mode.Z_REPORT})
    if password == 30:
        return frozenset(range(1, 7))
    return frozenset()


class AtolError(Exception):
    """A refusal decided by the front-end itself (parameters, mode, password)."""

    def __init__(self, code: int, text: str = "") -> None:
        super().__init__(text or atol_errors.text_of(code))
        self.code = code


@dataclass
class Task:
    tid: int
    flags: AddFlags
    status: BufferStatus
    data: bytes = b""


@dataclass
class AtolState:
    """Device-level front-end state (kept in ``core.wire_memory["atol"]``; lost at power-off)."""

    mode: int = Mode.SELECT
    submode: int = 0
    operator: int = 0  # the mode password that entered the current mode
    tasks: dict[int, Task] = field(default_factory=dict)
    stopped_by: int | None = None  # TId of a failed task that stops the buffer until ACKed
    requisites: dict[int, bytes] = field(default_factory=dict)
    blocks: bytearray = field(default_factory=bytearray)  # E8h multi-block accumulation
    # the last command other than the diagnostic reads (B3h, 91h): its byte, code, extended code
    last_command: int = 0
    last_error: int = 0
    last_extended: int = 0


Handler = Callable[[CommandRequest], bytes]


def _u(data: bytes = b"\x00") -> bytes:
    """A successful 'U' answer: ``55 00`` + data (a lone reserved 00 when there is none)."""
    return b"\x55\x00" + data


def describe_state(core: FiscalCore) -> dict[str, Any]:
    """The front-end's device-level state, for debugging and tests."""
    state = core.wire_memory.get("atol")
    if not isinstance(state, AtolState):
        return {}
    return {
        "mode": state.mode,
        "operator": state.operator,
        "tasks": {tid: (t.status.name, t.data.hex()) for tid, t in state.tasks.items()},
        "stopped_by": state.stopped_by,
        "requisites": {tag: value.hex() for tag, value in state.requisites.items()},
        "last_error": {"command": state.last_command, "error": state.last_error, "extended": state.last_extended},
    }
