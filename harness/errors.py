"""One exception tree for the whole stand.

Three branches, because a report reader must tell them apart at a glance:

* :class:`DeviceError` — the register said no.  That is product behaviour a scenario may assert on
  (``pytest.raises(NoPaper)``); when a scenario did not expect it, it is a *failed* test.  To make
  allure-pytest show it as **failed** (not broken) the branch also derives from ``AssertionError``.
* :class:`LinkError` — no answer, a bad checksum, a disconnect: the lab is broken, the test is
  **broken**.
* :class:`HarnessError` — our bug or a bad configuration (wrong ``--kkt`` spec, unknown model):
  **broken**, and the CLI prints it as a one-line usage error.

Every vendor code maps to a normalized :class:`ErrorKind`; the original code, extended code and
the vendor's text stay on the exception so the report shows exactly what the device answered.
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorKind(enum.Enum):
    """Normalized reasons a register refuses an operation (vendor-neutral)."""

    NO_PAPER = "no_paper"
    COVER_OPEN = "cover_open"
    PRINTER_NOT_READY = "printer_not_ready"
    SHIFT_EXPIRED = "shift_expired"  # shift longer than 24 h (register's or ФН's own check)
    SHIFT_OPEN = "shift_open"  # the shift must be closed for this operation
    SHIFT_CLOSED = "shift_closed"  # the shift must be open for this operation
    DOCUMENT_OPEN = "document_open"
    DOCUMENT_NOT_OPEN = "document_not_open"
    DOCUMENT_STATE = "document_state"  # wrong step inside a document (e.g. item after payment)
    PENDING_PRINT = "pending_print"  # closed in the ФН, printout not finished
    FN_EXPIRED = "fn_expired"
    FN_FULL = "fn_full"
    FN_MISSING = "fn_missing"
    FN_FAILURE = "fn_failure"
    FN_CRYPTO_EXHAUSTED = "fn_crypto_exhausted"
    FN_TIMER_MISMATCH = "fn_timer_mismatch"  # RTC jump vs the ФН's own timer (> 5 min)
    OFD_TIMEOUT = "ofd_timeout"  # oldest unsent document older than 30 days
    OFD_STORAGE_FULL = "ofd_storage_full"
    UNSENT_DOCUMENTS = "unsent_documents"
    TAX_SYSTEM_NOT_REGISTERED = "tax_system_not_registered"
    REGISTRATION_LIMIT = "registration_limit"
    NO_CHANGES = "no_changes"  # re-registration with the parameters already in force
    NOT_REGISTERED = "not_registered"
    ALREADY_REGISTERED = "already_registered"
    CLOCK_BEHIND_LAST_DOCUMENT = "clock_behind_last_document"
    CLOCK_CONFIRM_REQUIRED = "clock_confirm_required"  # > 24 h jump: repeat to confirm
    CLOCK_MISMATCH = "clock_mismatch"  # host and device clocks differ (> 8 min on Pirit 0x10)
    NOT_INITIALISED = "not_initialised"  # "start of work" not done after power-up
    NOT_ENOUGH_CASH = "not_enough_cash"
    WRONG_MODE = "wrong_mode"
    WRONG_PASSWORD = "wrong_password"
    BAD_PARAMETER = "bad_parameter"
    UNKNOWN_COMMAND = "unknown_command"
    DEVICE_BUSY = "device_busy"
    FATAL = "fatal"
    UNSUPPORTED = "unsupported"  # the model cannot do this at all
    OTHER = "other"


class KktError(Exception):
    """Base of every error the stand raises on purpose."""


class HarnessError(KktError):
    """Our bug or a bad configuration: a wrong spec, an unknown model, a missing tool."""


class UsageError(HarnessError):
    """The user asked for something malformed (CLI exits with code 2)."""


class SafetyRefusal(HarnessError):
    """A destructive operation was refused before anything was sent to a real device."""


class LabUnavailable(HarnessError):
    """The lab cannot do this on this device (no instrument, no control channel).

    The pytest plugin turns it into a *skip with the reason*; it never passes a scenario.
    """


class NeedsRealTimeOrOperator(LabUnavailable):
    """The scenario needs more real time than the budget allows, or a person where there is none
    (its skip is filed under its own category in the report)."""


class LinkError(KktError):
    """The link to the device is broken: the lab, not the product, failed."""


class LinkTimeout(LinkError):
    """No (complete) answer within the command's timeout."""


class LinkCorrupted(LinkError):
    """An answer arrived but could not be decoded (CRC, framing, garbage)."""


class LinkDisconnected(LinkError):
    """The transport was closed or could not be opened."""


class OutcomeUnknown(KktError):
    """A link fault hid whether a fiscal document was committed, and the register could not be
    asked before the operation's deadline.  Not a failure of the product: the lab broke.

    Never retry the operation blindly: the driver keeps the intent and settles it at the next
    fiscal operation (the same request again gets the committed document back, nothing twice),
    or now with ``kkt.reconcile()``.  ``fd_before`` is the last FD number before the operation,
    ``fd_after`` the last one seen after it (None: never seen), ``evidence`` what was tried.
    """

    def __init__(
        self,
        message: str,
        *,
        intent: str,
        fd_before: int,
        fd_after: int | None,
        evidence: list[str],
        started: bool = True,
    ) -> None:
        super().__init__(message)
        self.intent = intent
        self.started = started  # False: this operation never began, an earlier one is unsettled
        self.fd_before = fd_before
        self.fd_after = fd_after
        self.evidence = evidence

    def __reduce__(self) -> tuple[Any, ...]:  # pickling (pytest-xdist) with keyword-only arguments
        return (_rebuild_keywords, (type(self), str(self), dict(self.__dict__)))


class MiscommittedDocument(KktError, AssertionError):
    """The register committed a document other than the one requested (read back from the ФН:
    another kind, total or number).  ``document`` is what the register holds — never reported as
    the request."""

    def __init__(self, message: str, *, document: object) -> None:
        super().__init__(message)
        self.document = document

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_keywords, (type(self), str(self), dict(self.__dict__)))


def _rebuild_keywords(cls: type[Exception], message: str, fields: dict[str, Any]) -> Exception:
    return cls(message, **fields)


class DeviceError(KktError, AssertionError):
    """The register refused an operation.

    ``kind`` is the normalized reason; ``code``/``extended`` and ``text`` are the vendor's own.
    """

    kind: ErrorKind = ErrorKind.OTHER

    def __init__(
        self,
        text: str = "",
        *,
        code: int | None = None,
        extended: int | None = None,
        vendor: str = "",
        command: str = "",
        kind: ErrorKind | None = None,
    ) -> None:
        if kind is not None:
            self.kind = kind
        self.code = code
        self.extended = extended
        self.vendor = vendor
        self.command = command
        self.text = text or self.kind.value
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [f"{type(self).__name__}: {self.text}"]
        where = []
        if self.vendor:
            where.append(self.vendor)
        if self.command:
            where.append(f"command {self.command}")
        if self.code is not None:
            where.append(f"code {self.code:#04x}" if self.vendor == "pirit" else f"code {self.code}")
        if self.extended is not None:
            where.append(f"extended {self.extended}")
        if where:
            parts.append(f"({', '.join(where)})")
        return " ".join(parts)

    def __reduce__(self) -> tuple[Any, ...]:  # keep pickling (pytest-xdist) working with keyword-only arguments
        return (
            _rebuild_device_error,
            (type(self), self.text, self.code, self.extended, self.vendor, self.command, self.kind),
        )


def _rebuild_device_error(
    cls: type[DeviceError],
    text: str,
    code: int | None,
    extended: int | None,
    vendor: str,
    command: str,
    kind: ErrorKind,
) -> DeviceError:
    return cls(text, code=code, extended=extended, vendor=vendor, command=command, kind=kind)


class NoPaper(DeviceError):
    kind = ErrorKind.NO_PAPER


class CoverOpen(DeviceError):
    kind = ErrorKind.COVER_OPEN


class PrinterNotReady(DeviceError):
    kind = ErrorKind.PRINTER_NOT_READY


class ShiftExpired(DeviceError):
    kind = ErrorKind.SHIFT_EXPIRED


class ShiftOpen(DeviceError):
    kind = ErrorKind.SHIFT_OPEN


class ShiftClosed(DeviceError):
    kind = ErrorKind.SHIFT_CLOSED


class DocumentOpen(DeviceError):
    kind = ErrorKind.DOCUMENT_OPEN


class DocumentNotOpen(DeviceError):
    kind = ErrorKind.DOCUMENT_NOT_OPEN


class DocumentState(DeviceError):
    kind = ErrorKind.DOCUMENT_STATE


class PendingPrint(DeviceError):
    kind = ErrorKind.PENDING_PRINT


class FnExpired(DeviceError):
    kind = ErrorKind.FN_EXPIRED


class FnFull(DeviceError):
    kind = ErrorKind.FN_FULL


class FnMissing(DeviceError):
    kind = ErrorKind.FN_MISSING


class FnFailure(DeviceError):
    kind = ErrorKind.FN_FAILURE


class FnCryptoExhausted(DeviceError):
    kind = ErrorKind.FN_CRYPTO_EXHAUSTED


class FnTimerMismatch(DeviceError):
    kind = ErrorKind.FN_TIMER_MISMATCH


class OfdTimeout(DeviceError):
    kind = ErrorKind.OFD_TIMEOUT


class OfdStorageFull(DeviceError):
    kind = ErrorKind.OFD_STORAGE_FULL


class UnsentDocuments(DeviceError):
    kind = ErrorKind.UNSENT_DOCUMENTS


class TaxSystemNotRegistered(DeviceError):
    kind = ErrorKind.TAX_SYSTEM_NOT_REGISTERED


class RegistrationLimit(DeviceError):
    kind = ErrorKind.REGISTRATION_LIMIT


class NoChanges(DeviceError):
    kind = ErrorKind.NO_CHANGES


class NotRegistered(DeviceError):
    kind = ErrorKind.NOT_REGISTERED


class AlreadyRegistered(DeviceError):
    kind = ErrorKind.ALREADY_REGISTERED


class ClockBehindLastDocument(DeviceError):
    kind = ErrorKind.CLOCK_BEHIND_LAST_DOCUMENT


class ClockConfirmRequired(DeviceError):
    kind = ErrorKind.CLOCK_CONFIRM_REQUIRED


class ClockMismatch(DeviceError):
    kind = ErrorKind.CLOCK_MISMATCH


class NotInitialised(DeviceError):
    kind = ErrorKind.NOT_INITIALISED


class NotEnoughCash(DeviceError):
    kind = ErrorKind.NOT_ENOUGH_CASH


class WrongMode(DeviceError):
    kind = ErrorKind.WRONG_MODE


class WrongPassword(DeviceError):
    kind = ErrorKind.WRONG_PASSWORD


class BadParameter(DeviceError):
    kind = ErrorKind.BAD_PARAMETER


class UnknownCommand(DeviceError):
    kind = ErrorKind.UNKNOWN_COMMAND


class DeviceBusy(DeviceError):
    kind = ErrorKind.DEVICE_BUSY


class Fatal(DeviceError):
    kind = ErrorKind.FATAL


class Unsupported(DeviceError):
    kind = ErrorKind.UNSUPPORTED


_BY_KIND: dict[ErrorKind, type[DeviceError]] = {}
for _cls in list(globals().values()):
    if isinstance(_cls, type) and issubclass(_cls, DeviceError) and _cls is not DeviceError:
        _BY_KIND[_cls.kind] = _cls


def error_class(kind: ErrorKind) -> type[DeviceError]:
    """The exception class for a normalized kind (``DeviceError`` for OTHER)."""
    return _BY_KIND.get(kind, DeviceError)


def device_error(
    kind: ErrorKind,
    text: str = "",
    *,
    code: int | None = None,
    extended: int | None = None,
    vendor: str = "",
    command: str = "",
) -> DeviceError:
    """Build the right :class:`DeviceError` subclass for ``kind``."""
    cls = error_class(kind)
    return cls(text, kind=kind, code=code, extended=extended, vendor=vendor, command=command)
