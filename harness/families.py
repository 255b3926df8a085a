"""Protocol families and the model catalogue, found through entry points (python-can style).

A *family* is a wire protocol with everything the stand needs to reach its registers: the
models that speak it (records of the catalogue, :mod:`devices.models`), a driver, a ``describe``
for the wire trace, a ``detect`` for discovery, an emulator (the fiscal core and a wire
front-end), and optionally the vendor cloud its registers talk to.  Families register under the
entry-point group ``kkt_hil.families``; a third party adds one (say, Штрих-М) by shipping a
package with an entry point that names a :class:`Family` record::

    [project.entry-points."kkt_hil.families"]
    shtrih = "kkt_shtrih.family:FAMILY"

The ``harness`` package never imports a vendor or emulator module by path: it asks here.  Every
heavy part of a family is named by an import string (``"module:attribute"``) and imported on
first use, so a run on a real Касса Ф imports neither the АТОЛ code nor the emulator.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

from .errors import UsageError
from .safety import Destructive, Scanner

if TYPE_CHECKING:
    from devices.models import Identified, Model

    from .device import Kkt
    from .link import Link

FAMILY_GROUP = "kkt_hil.families"
CLOUD_GROUP = "kkt_hil.clouds"
# always known, also when the package runs from a source tree without `pip install` (no entry points)
BUILTIN_FAMILIES = {"pirit": "devices.pirit.family:FAMILY", "atol": "devices.atol.family:FAMILY"}
BUILTIN_CLOUDS = {"dreamkas": "devices.dreamkas.cloud:CLOUD"}


def resolve(ref: str) -> Any:
    """``"package.module:attribute"`` → the attribute (imported now)."""
    module_name, _, attribute = ref.partition(":")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split(".") if attribute else ():
        value = getattr(value, part)
    return value


@dataclass(frozen=True)
class Setting:
    """A wire front-end choice a family adds to its emulator profiles (``--set name=value``)."""

    name: str
    default: str
    choices: tuple[str, ...]
    help: str

    def check(self, value: str) -> str:
        if value not in self.choices:
            raise ValueError(f"{self.name} takes one of {', '.join(self.choices)}, not {value!r} ({self.help})")
        return value


class FrontEnd(Protocol):
    """A wire front-end: bytes from the host in, bytes to the host out, over a fiscal core."""

    def feed(self, data: bytes) -> bytes: ...

    def pending(self) -> bool: ...

    def reset(self) -> None: ...


class Emulated(Protocol):
    """An emulated register as the harness sees it (built by a family's ``emulator``)."""

    @property
    def model(self) -> Model: ...

    @property
    def serial(self) -> str: ...

    @property
    def fn_kind(self) -> str: ...

    def control(self, request: dict[str, Any]) -> dict[str, Any]:
        """One control-channel request (the JSON-lines contract), answered in process."""

    def now(self) -> datetime: ...

    def serve(self, listen: str, *, allow_lan: bool = False) -> str:
        """Serve the wire protocol on ``pty`` / ``pty:LINK`` / ``tcp://127.0.0.1:PORT`` (another
        host only with ``allow_lan``); the pyserial URL."""

    def serve_control(self, listen: str, *, allow_lan: bool = False) -> str:
        """Serve the control channel on ``tcp://127.0.0.1:PORT`` (another host only with
        ``allow_lan``); its URL."""

    def attach_cloud(self, url: str, *, poll_interval: float | None = None) -> None:
        """Link the register to its vendor cloud (the Dreamkas hub) at ``url``; it polls every
        ``poll_interval`` device seconds (default: the vendor's)."""

    def snapshot(self) -> dict[str, Any]: ...

    def restore(self, snapshot: dict[str, Any]) -> None: ...

    def persist(self, path: str, *, after_load: Callable[[], None] | None = None) -> KeptState:
        """Keep the state in ``path`` (``--state FILE``): load it if it exists (then call
        ``after_load``), write it now, and from now on make every ФН commit durable before its
        answer leaves.  ValueError with one line for a path that cannot be written or a damaged
        file (nothing written then).  Call with the stop signals blocked (it starts a thread)."""

    def close(self) -> None: ...


class KeptState(Protocol):
    """The state file of an emulated register, from :meth:`Emulated.persist`."""

    def save(self) -> None:
        """Write what changed since the last write (commits are on disk already); fast."""

    def close(self) -> None:
        """The final snapshot; OSError if it cannot be written (every commit is on disk all the same)."""


@dataclass(frozen=True)
class Family:
    """One protocol family; the callables are import strings resolved on first use."""

    name: str
    title: str
    models: tuple[Model, ...]
    driver: str  # (link, *, model, host_clock=...) -> Kkt
    describe: str  # (raw bytes) -> one-line decoding for the wire trace
    detect: str  # (link, *, host_clock=...) -> Identified | None: is a register of this family on the link?
    safety: str  # (outgoing bytes) -> (destructive requests, bytes used): the guard's scanner
    frontend: str | None = None  # (core) -> FrontEnd: the emulator's wire side
    emulator: str | None = None  # (model id, settings, *, flowing_clock) -> Emulated
    cloud: str | None = None  # name of the vendor cloud its models' tasks come from (kkt_hil.clouds)
    inter_byte_timeout: float = 0.2  # an unfinished frame is dropped after this silence
    settings: tuple[Setting, ...] = field(default=())

    def make_driver(self, link: Link, *, model: str, host_clock: Callable[[], datetime] | None = None) -> Kkt:
        kwargs: dict[str, Any] = {"model": model}
        if host_clock is not None:
            kwargs["host_clock"] = host_clock
        driver: Kkt = resolve(self.driver)(link, **kwargs)
        return driver

    def describe_bytes(self, raw: bytes) -> str:
        describe: Callable[[bytes], str] = resolve(self.describe)
        return describe(raw)

    def detect_on(self, link: Link, *, host_clock: Callable[[], datetime] | None = None) -> Identified | None:
        """``host_clock``: the register's time as the lab knows it, for a family whose registers
        need the host's time before they answer (Pirit "start of work" after power-up)."""
        detect: Callable[..., Identified | None] = resolve(self.detect)
        return detect(link, host_clock=host_clock) if host_clock is not None else detect(link)

    def scan(self, stream: bytes) -> tuple[list[Destructive], int]:
        scanner: Scanner = resolve(self.safety)
        return scanner(stream)

    def make_frontend(self, core: Any) -> FrontEnd:
        if self.frontend is None:
            raise UsageError(f"the {self.title} family has no emulator")
        frontend: FrontEnd = resolve(self.frontend)(core)
        return frontend

    def start_emulator(
        self, model: str, settings: Mapping[str, str] | None = None, *, flowing_clock: bool = False
    ) -> Emulated:
        """Build (not yet serve) an emulated register; ValueError with one line for a bad setting."""
        if self.emulator is None:
            raise UsageError(f"the {self.title} family has no emulator")
        emulated: Emulated = resolve(self.emulator)(model, settings or {}, flowing_clock=flowing_clock)
        return emulated

    def setting(self, name: str) -> Setting | None:
        return next((s for s in self.settings if s.name == name), None)


class Cloud(Protocol):
    """A vendor cloud (the Dreamkas Кабинет): a hub emulator and its admin API."""

    name: str
    title: str

    def serve_hub(self, host: str = "127.0.0.1", port: int = 0, *, allow_lan: bool = False) -> Any:
        """Start the hub emulator (loopback unless ``allow_lan``); the server has ``.url`` and ``.close()``."""

    def admin(self, url: str) -> Any:
        """The partner/admin client of a hub at ``url`` (schedule, withhold, device)."""

    def attach(self, emulator: Any, url: str, *, poll_interval: float | None = None) -> Any:
        """Make an emulated register of this cloud's models poll the hub at ``url``."""


# ------------------------------------------------------------------------------------ registry


def _discover(group: str, builtin: Mapping[str, str]) -> dict[str, str]:
    """Entry points of ``group``: the built-in ones first, in their order, then the others by name.

    Two packages claiming one name with different targets is a configuration error, never a
    silent choice."""
    found = dict(builtin)
    for ep in entry_points(group=group):
        if ep.name in found and found[ep.name] != ep.value:
            raise UsageError(f"two packages register {group} {ep.name!r}: {found[ep.name]} and {ep.value}")
        found[ep.name] = ep.value
    order = [name for name in builtin if name in found] + sorted(name for name in found if name not in builtin)
    return {name: found[name] for name in order}


def _load(group: str, name: str, ref: str) -> Any:
    """Import an entry point's target; any failure is one line naming the entry point."""
    try:
        return resolve(ref)
    except Exception as exc:  # noqa: BLE001 - a third party's import error, of any kind, is a configuration error
        raise UsageError(f"{group} entry point {name} = {ref} cannot be loaded: {type(exc).__name__}: {exc}") from None


@cache
def families() -> Mapping[str, Family]:
    """Every registered family by name (their records only: cheap to load)."""
    loaded: dict[str, Family] = {}
    for name, ref in _discover(FAMILY_GROUP, BUILTIN_FAMILIES).items():
        record = _load(FAMILY_GROUP, name, ref)
        if not isinstance(record, Family) or record.name != name:
            raise UsageError(f"entry point {name} = {ref} is not a kkt-hil Family named {name!r}")
        loaded[name] = record
    return loaded


def scan_all(stream: bytes) -> tuple[list[Destructive], int]:
    """Every family's scanner over ``stream`` (a transport opened without naming the family)."""
    found: list[Destructive] = []
    used = len(stream)
    for record in families().values():
        requests, consumed = record.scan(stream)
        found += requests
        used = min(used, consumed)
    return found, used


def family(name: str) -> Family:
    known = families()
    if name not in known:
        raise UsageError(f"unknown protocol family {name!r} (known: {', '.join(known)})")
    return known[name]


@cache
def catalogue() -> Mapping[str, Model]:
    """Every model of every registered family, in registration and catalogue order."""
    table: dict[str, Model] = {}
    for record in families().values():
        for model in record.models:
            if model.id in table:
                raise UsageError(f"model {model.id!r} is claimed by two families")
            table[model.id] = model
    return table


def model_ids() -> tuple[str, ...]:
    """Known model ids: the default set (``emulator:all``) first, then the others."""
    models = catalogue().values()
    return tuple(m.id for m in models if m.in_default_set) + tuple(m.id for m in models if not m.in_default_set)


def default_models() -> tuple[str, ...]:
    """What ``emulator:all`` means: one register of each model in the default set whose family
    can emulate it (a third-party family with a driver only is reached by ``url:`` specs)."""
    known = families()
    return tuple(m.id for m in catalogue().values() if m.in_default_set and known[m.family].emulator is not None)


def model(model_id: str) -> Model:
    key = model_id.strip().lower()
    table = catalogue()
    if key not in table:
        raise UsageError(f"unknown model {model_id!r} (known: {', '.join(model_ids())})")
    return table[key]


def family_of(model_id: str) -> Family:
    return family(model(model_id).family)


@cache
def clouds() -> Mapping[str, Cloud]:
    loaded: dict[str, Cloud] = {}
    for name, ref in _discover(CLOUD_GROUP, BUILTIN_CLOUDS).items():
        record = _load(CLOUD_GROUP, name, ref)
        if not all(callable(getattr(record, method, None)) for method in ("serve_hub", "admin", "attach")):
            raise UsageError(f"entry point {name} = {ref} is not a kkt-hil Cloud (serve_hub, admin, attach)")
        loaded[name] = record
    return loaded


def cloud(name: str) -> Cloud:
    known = clouds()
    if name not in known:
        raise UsageError(f"unknown vendor cloud {name!r} (known: {', '.join(known) or 'none'})")
    return known[name]


def cloud_of(model_id: str) -> Cloud | None:
    """The cloud a model takes deferred re-registration tasks from, if any."""
    record = model(model_id)
    owner = family(record.family)
    if not record.has_cloud_tasks or owner.cloud is None:
        return None
    return cloud(owner.cloud)
