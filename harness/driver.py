"""What every driver shares, whatever its protocol: the catalogue model it was opened for, the
identity check against that record, and the parts of the device interface that are the same.

A family's driver is ``class XDriver(DriverBase, XWire)``: the wire half talks frames over the
link; this half knows which model the user named and refuses any other device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from . import families
from .device import Capability, JournalEntry
from .errors import HarnessError, UsageError
from .link import Link
from .reconcile import Reconciler
from .trace import Trace

if TYPE_CHECKING:
    from devices.models import Model

# what both built-in protocols offer through their drivers
STANDARD_CAPABILITIES = frozenset(
    {Capability.SET_CLOCK, Capability.REREGISTER, Capability.CONTINUE_PRINT, Capability.X_REPORT, Capability.OFD_QUEUE}
)


class DriverBase(Reconciler):
    family_name: ClassVar[str]
    capabilities: frozenset[Capability] = STANDARD_CAPABILITIES
    reports_shift_open_time = True  # status().shift_opened_at is read from the device in an open shift
    _link: Link

    def _bind_model(self, model: str) -> Model:
        """The catalogue record of ``model``; it must be one of this driver's family."""
        record = families.model(model)
        if record.family != self.family_name:
            known = ", ".join(m.id for m in families.family(self.family_name).models)
            raise HarnessError(f"the {self.family_name} driver does not know model {model!r} (known: {known})")
        self._model = record
        return record

    @property
    def model(self) -> str:
        return self._model.id

    @property
    def trace(self) -> Trace:
        return self._link.trace

    def _check_identity(self, serial: str, *model_codes: int, seen: str) -> None:
        """Refuse a device whose serial and model code(s) are not the named model's."""
        if not all(self._model.accepts(serial=serial, model_code=code) for code in model_codes):
            raise UsageError(
                f"device at {self._link.url} does not answer as {self._model.title} ({self._model.id}): {seen}"
            )

    def close(self) -> None:
        self._link.close()

    def __repr__(self) -> str:  # what an assertion message shows for ``kkt``
        model = getattr(self, "_model", None)
        link = getattr(self, "_link", None)
        return f"<ККТ {model.title if model else '?'} на {link.url if link else '?'}>"

    def journal(self) -> list[JournalEntry]:
        return []  # neither binary protocol has a device log
